//! Pool mode end to end (issue 6, "How it is checked"; contract, "Pool"):
//! the real `seatkeeper` binary as pods, `pool claim` / `pool ls` /
//! `pool allocator` / `drain` as child processes, and a real `redis-server`
//! per test on a free loopback port. Short TTLs (heartbeat every third of
//! `--pool-ttl-s`), generous bounds: timing figures are printed, not
//! asserted tightly (run with `--nocapture` to see them).
//!
//! Without `redis-server` the tests skip with a message, except under
//! `CI=true`, where they fail. The helpers live in `seatkeeper_testkit::pool`.
//!
//! # Layout
//! - `registration`: pods register, leave when killed, wait for a twin, drain.
//! - `claims`: grants never exceed seats, the allocator, refused tokens,
//!   lapsed claims.
//! - `seats`: a seat returns after `bye`, a reap, an expired resume window.
//! - `outage`: a Redis outage loses no session and double-grants no seat.

mod claims;
mod outage;
mod registration;
mod seats;

use std::{
    process::{Command as StdCommand, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use seatkeeper_testkit::{http::http, pool::*, proc, redis_or_skip, wait_until, Server};
use serde_json::{json, Value};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_seatkeeper");
/// Slack for a loaded 2-core machine on top of each contract bound.
const SLACK: Duration = Duration::from_secs(3);
