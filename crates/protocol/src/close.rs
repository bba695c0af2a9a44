//! Close codes (contract, "Close codes").

/// Normal closure: `bye`, a clean close, an eviction.
pub const NORMAL: u16 = 1000;
/// The server is going away (shutdown).
pub const GOING_AWAY: u16 = 1001;
/// The client sent data the server does not accept (a binary frame).
pub const UNSUPPORTED_DATA: u16 = 1003;
/// A text frame that is not a JSON object.
pub const INVALID_PAYLOAD: u16 = 1007;
/// Policy: bad token, flood, no `hello` in time, `hello` required.
pub const POLICY: u16 = 1008;
/// A message over `--max-message-bytes`.
pub const TOO_BIG: u16 = 1009;
/// Engine or internal failure.
pub const INTERNAL: u16 = 1011;
/// No seat is free.
pub const BUSY: u16 = 1013;
/// Replaced by a connection that resumed the same session.
pub const REPLACED: u16 = 4002;
