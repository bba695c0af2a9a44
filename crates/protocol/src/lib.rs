//! The wire protocol of seatkeeper, defined once and shared by the server,
//! the engines, the chaos tool, the load generator and the tests.
//!
//! # Layout
//! - [`close`]: WebSocket close codes the contract names.
//! - [`messages`]: client-to-server and server-to-client JSON messages, and
//!   the strict parser for client text frames.
//! - [`slice`]: the 20-byte binary slice header and zero-copy slice buffers.

pub mod close;
pub mod messages;
pub mod slice;

pub use messages::{ClientMsg, ParseError, ServerMsg};
pub use slice::{SliceHeader, SLICE_HEADER_LEN};
