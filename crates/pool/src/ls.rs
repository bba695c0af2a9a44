//! One row of `pool ls`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A live pod as `pool ls` shows it. Serializes to
/// `{"pod_id","url","seats_total","seats_free","lockHeld","ready","age_ms","labels"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodInfo {
    /// The pod's id.
    pub pod_id: String,
    /// Its advertised WebSocket URL.
    pub url: String,
    /// Seats it offers.
    pub seats_total: u32,
    /// Seats neither held by a session nor reserved by an unexpired claim.
    pub seats_free: u32,
    /// True while at least one seat is held by a session.
    #[serde(rename = "lockHeld")]
    pub lock_held: bool,
    /// Healthy, engine ready and not draining: eligible for new claims.
    pub ready: bool,
    /// Milliseconds since the pod (re-)registered, by Redis's clock.
    pub age_ms: u64,
    /// Its `--pod-label`s (`{}` when none).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}
