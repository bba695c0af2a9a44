//! Why a pod refused a hello's seat token.

/// A refused redeem. The server answers `error` with [`Refusal::code`] and
/// closes with 1008.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The token is missing, malformed, unknown to this pod (never issued,
    /// issued for another pod, released), already used, or lapsed.
    #[error("bad seat token: {0}")]
    BadSeatToken(TokenProblem),
    /// Redis cannot be reached or the pod is not registered, so no token
    /// can be checked; the pod admits no new session rather than risk
    /// granting a seat twice.
    #[error("seat pool unavailable: {0}")]
    PoolUnavailable(&'static str),
}

/// What exactly was wrong with a token (for logs; clients see one code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenProblem {
    /// The hello carried no `seat_token`.
    #[error("missing")]
    Missing,
    /// Too short, too long or not printable ASCII.
    #[error("malformed")]
    Malformed,
    /// No claim on this pod has this token: never issued, issued for
    /// another pod, or its seat was already released.
    #[error("not issued for this pod")]
    Unknown,
    /// Already redeemed by an earlier hello.
    #[error("already used")]
    Used,
    /// Redeemed after its claim lapsed.
    #[error("expired")]
    Expired,
    /// The claim names a seat this pod already holds for an earlier token
    /// (Redis lost that state in a failover): the pod keeps the first
    /// session. Claim again.
    #[error("seat taken, claim again")]
    SeatTaken,
}

impl Refusal {
    /// The contract's error code: `bad_seat_token` or `pool_unavailable`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadSeatToken(_) => "bad_seat_token",
            Self::PoolUnavailable(_) => "pool_unavailable",
        }
    }
}
