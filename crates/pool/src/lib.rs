//! The Redis seat pool: many pods, one Redis, one claim per seat.
//!
//! A pod in pool mode runs a [`PodAgent`]: it registers, heartbeats every
//! third of its TTL, turns a hello's seat token into a [`Lease`] with one
//! atomic script, and releases the seat when the lease drops. Routers
//! reserve seats with [`claim()`] (or the HTTP [`allocator()`], or the claim
//! script from any Redis client, see `docs/FLEET.md`) and inspect the fleet
//! with [`ls()`]. Every change to the pool is one Lua script, so two claims
//! never get one seat; every claim carries a fencing epoch so a stale
//! holder can never free a newer claim's seat; unredeemed claims lapse by a
//! sweep against Redis `TIME`; Redis holds only SHA-256 hashes of tokens.
//!
//! # Layout
//! - [`config`]: [`PoolConfig`] and its validation.
//! - [`agent`]: [`PodAgent`], [`PodStatus`], [`Lease`], [`Refusal`]; the
//!   agent task, its backoff.
//! - [`mod@claim`]: [`Claim`] and [`ClaimError`], the shapes a router sees.
//! - [`mod@ls`]: [`PodInfo`], one row of `pool ls`.
//! - [`client`]: [`PoolClient`], [`ClientOptions`] (how many connections
//!   it lends to claims confirmed by `WAIT`), [`ClaimRequest`] (selector,
//!   claim id) and the one-shot [`claim()`] / [`claim_with()`] / [`ls()`].
//! - [`mod@allocator`]: `POST /claim` over HTTP, its token and rate limit.
//! - [`metrics`]: [`PoolMetrics`] (a pod's), [`ClaimMetrics`] (a claimer's).
//! - [`scripts`]: the Lua scripts (`src/lua/*.lua`) and the key prefix.
//! - `conn`: one cached connection with deadlines, found directly or
//!   through Redis Sentinel (`redis+sentinel://`), rebuilt after every
//!   error, and a bounded set of connections lent one caller at a time
//!   (a claim's write and its `WAIT`); `token`: minting, deriving and
//!   hashing seat tokens.

pub mod agent;
pub mod allocator;
pub mod claim;
pub mod client;
pub mod config;
pub mod ls;
pub mod metrics;
pub mod scripts;

mod conn;
mod token;

pub use agent::{Lease, PodAgent, PodStatus, Refusal, TokenProblem};
pub use allocator::{allocator, AllocatorConfig};
pub use claim::{Claim, ClaimError};
pub use client::{claim, claim_with, ls, ClaimRequest, ClientOptions, PoolClient, PoolError};
pub use config::{parse_labels, redact_url, MAX_LABELS};
pub use config::{ConfigError, PoolConfig};
pub use ls::PodInfo;
pub use metrics::{ClaimMetrics, PoolMetrics};
