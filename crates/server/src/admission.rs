//! The hook the pool plugs into: extra admission for fresh sessions, and
//! the lease a session holds until it ends.

use std::any::Any;

use seatkeeper_engine::BoxFuture;

/// Why a fresh `hello` was refused by the admission policy (the pool).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `error.code` for the client (`bad_seat_token`, `pool_unavailable`, …).
    pub code: String,
    /// What the client can act on.
    pub message: String,
    /// The close code: 1008 for a bad token, 1013 for "try again later".
    pub close_code: u16,
}

/// A lease the session holds until it ends (the pool's seat claim).
pub type Lease = Box<dyn Any + Send>;

/// Extra admission for fresh sessions (pool mode). Resumes bypass it: the
/// resumed session already holds its lease.
pub trait Admission: Send + Sync + 'static {
    /// Admits a fresh session with the `hello`'s seat token.
    fn admit(&self, seat_token: Option<String>) -> BoxFuture<Result<Lease, Refusal>>;
    /// Whether new sessions can be admitted now (feeds `/readyz`).
    fn ready(&self) -> bool;
    /// Seats reserved for sessions not yet started (unredeemed pool
    /// claims): with the held ones, they make the pod full for `/readyz`.
    fn reserved(&self) -> u32 {
        0
    }
    /// A seat was released: publish it soon.
    fn released(&self) {}
    /// Appends the admission's metrics (Prometheus text).
    fn render_metrics(&self, _out: &mut String) {}
    /// The fleet as the pool sees it (`pool ls`), for the operator's page.
    fn fleet(&self) -> BoxFuture<Option<serde_json::Value>> {
        Box::pin(async { None })
    }
}
