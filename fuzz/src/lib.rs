//! The invariants the fuzz targets assert, one function per decoder, so
//! the targets stay one-liners and the checks can be read in one place.
//!
//! Every check panics (which libFuzzer reports as a crash, with the input
//! saved under `fuzz/artifacts/<target>/`) when a decoder breaks a promise:
//! it panicked itself, it accepted something the contract refuses, or what
//! it decoded does not encode back to the bytes it came from.
//!
//! # Layout
//! - [`client_msg`]: `ClientMsg::parse`, the client's JSON text frames.
//! - [`slice_header`]: `SliceHeader::decode`, the 20-byte slice header.
//! - [`engine_frame`]: `external::frame::read`, the engine link's frames.

pub mod client_msg;
pub mod engine_frame;
pub mod slice_header;
