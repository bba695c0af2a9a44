//! Shared by the chaos integration tests: where the server binary is, and
//! the short grace windows the scenarios run under.

#![allow(dead_code, unreachable_pub)]

use std::{path::PathBuf, time::Duration};

use seatkeeper_chaos::{ChaosArgs, Scenario};
use seatkeeper_testkit::Server;

/// Grace window of the send-stall rule in these tests.
pub const GRACE: Duration = Duration::from_secs(3);
/// Watchdog sampling interval.
pub const TICK: Duration = Duration::from_millis(250);
/// Pong timeout.
pub const PONG: Duration = Duration::from_secs(5);
/// Slack on top of every contract bound, for a loaded 2-core CI machine.
pub const SLACK: Duration = Duration::from_secs(3);

/// The `seatkeeper` binary (testkit finds it).
pub fn server_bin() -> String {
    seatkeeper_testkit::server::bin()
}

/// The chaos binary of this package (the child client of sigstop/blackhole).
pub fn chaos_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_seatkeeper-chaos"))
}

/// A server with the short windows, on `listen`'s host when given.
pub async fn server(extra: &[&str]) -> Server {
    let mut args = vec![
        "--dead-client-stall-s",
        "3",
        "--watchdog-interval-ms",
        "250",
        "--ping-interval-s",
        "1",
        "--pong-timeout-s",
        "5",
        "--resume-window-s",
        "0",
    ];
    args.extend_from_slice(extra);
    Server::start(&server_bin(), &args).await
}

/// Arguments for `scenario` against `url`, with short waits.
pub fn args(url: &str, scenario: Scenario) -> ChaosArgs {
    let mut a = ChaosArgs::new(url, scenario);
    a.observe_s = (GRACE * 3).as_secs_f64();
    a.timeout_s = 25.0;
    a.child_exe = Some(chaos_bin());
    a.client_id = format!("test-{}", scenario.name());
    a
}
