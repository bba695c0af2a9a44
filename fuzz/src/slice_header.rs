//! `SliceHeader::decode`: the 20-byte header in front of every slice.
//!
//! The header has no spare bits and no reserved bytes, so decoding is a
//! bijection on version-1 headers: whatever decodes must encode back to the
//! very same 20 bytes, and the payload behind it must be left untouched.

use seatkeeper_protocol::slice::{
    Frame, SliceError, FLAG_DROPPABLE, FLAG_KEYFRAME, SLICE_HEADER_LEN, VERSION,
};
use seatkeeper_protocol::SliceHeader;

/// Decodes `data` as a slice frame and checks the outcome.
pub fn check(data: &[u8]) {
    match SliceHeader::decode(data) {
        Err(SliceError::Short(n)) => {
            assert_eq!(n, data.len());
            assert!(n < SLICE_HEADER_LEN);
        }
        Err(SliceError::Version(v)) => {
            assert!(data.len() >= SLICE_HEADER_LEN);
            assert_eq!(v, data[0]);
            assert_ne!(v, VERSION);
        }
        Ok(h) => {
            assert!(data.len() >= SLICE_HEADER_LEN);
            let mut out = [0u8; SLICE_HEADER_LEN];
            h.write(&mut out);
            assert_eq!(out, data[..SLICE_HEADER_LEN], "header round trip");
            assert_eq!(h.droppable(), h.flags & FLAG_DROPPABLE != 0);
            assert_eq!(h.keyframe(), h.flags & FLAG_KEYFRAME != 0);
            // The server's own path: a payload framed and stamped with this
            // header is the frame we started from, byte for byte.
            let payload = &data[SLICE_HEADER_LEN..];
            let frame = Frame::from_payload(payload);
            assert_eq!(frame.payload(), payload);
            assert_eq!(&frame.stamp(&h)[..], data, "stamped frame round trip");
        }
    }
}
