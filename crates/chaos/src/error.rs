//! The library's error type.

/// Why a chaos run could not be carried out (as opposed to a verdict that
/// did not match its expectation, which is a [`Verdict`](crate::Verdict)).
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// A URL that is not `ws://HOST:PORT/PATH` or `http://HOST:PORT/PATH`.
    #[error("bad URL {0:?}: {1}")]
    Url(String, String),
    /// A target outside loopback and our own namespace.
    #[error("refusing to send traffic to {0}: only loopback and the chaos namespace are allowed (pass --allow-remote to override)")]
    Forbidden(std::net::SocketAddr),
    /// A socket or process operation failed.
    #[error("{0}: {1}")]
    Io(&'static str, std::io::Error),
    /// The WebSocket handshake or a frame failed.
    #[error("websocket: {0}")]
    Ws(String),
    /// The server answered something the contract does not allow here.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A bounded wait ran out.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A child client process misbehaved.
    #[error("child client: {0}")]
    Child(String),
    /// Setting up the network namespace failed.
    #[error("network namespace: {0}")]
    Netns(String),
}

impl ChaosError {
    /// Wraps an I/O error with what was being done.
    pub fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |e| Self::Io(what, e)
    }
}
