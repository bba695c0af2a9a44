//! The binary slice frame: a 20-byte little-endian header, then the payload.
//!
//! Engines build slices in a [`SliceBuf`], which reserves the header's room
//! in front of the payload, so the writer stamps the header in place and the
//! payload is never copied on its way to the socket.

use bytes::{BufMut, Bytes, BytesMut};

/// Length of the slice header.
pub const SLICE_HEADER_LEN: usize = 20;
/// The only header version.
pub const VERSION: u8 = 1;
/// Flag bit 0: the slice may be dropped by flow control.
pub const FLAG_DROPPABLE: u8 = 1;
/// Flag bit 1: the slice can be decoded without the ones before it.
pub const FLAG_KEYFRAME: u8 = 2;

/// The demo engine's kind: PCM, f16, interleaved.
pub const KIND_PCM_F16: u16 = 1;

/// A decoded slice header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceHeader {
    /// Flag bits ([`FLAG_DROPPABLE`], [`FLAG_KEYFRAME`]).
    pub flags: u8,
    /// Engine-defined payload kind.
    pub kind: u16,
    /// Per-session sequence number, from 1.
    pub seq: u64,
    /// Media timestamp in microseconds.
    pub timestamp_us: u64,
}

/// Why a slice frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SliceError {
    /// Fewer than 20 bytes.
    #[error("slice frame of {0} bytes is shorter than the 20-byte header")]
    Short(usize),
    /// A version this decoder does not know.
    #[error("unknown slice header version {0}")]
    Version(u8),
}

impl SliceHeader {
    /// Writes the header into the first 20 bytes of `out`.
    pub fn write(&self, out: &mut [u8]) {
        out[0] = VERSION;
        out[1] = self.flags;
        out[2..4].copy_from_slice(&self.kind.to_le_bytes());
        out[4..12].copy_from_slice(&self.seq.to_le_bytes());
        out[12..20].copy_from_slice(&self.timestamp_us.to_le_bytes());
    }

    /// The header's 20 bytes.
    pub fn to_bytes(&self) -> [u8; SLICE_HEADER_LEN] {
        let mut out = [0; SLICE_HEADER_LEN];
        self.write(&mut out);
        out
    }

    /// Decodes a frame's header; the payload is `&frame[SLICE_HEADER_LEN..]`.
    pub fn decode(frame: &[u8]) -> Result<Self, SliceError> {
        if frame.len() < SLICE_HEADER_LEN {
            return Err(SliceError::Short(frame.len()));
        }
        if frame[0] != VERSION {
            return Err(SliceError::Version(frame[0]));
        }
        let u64_at = |i: usize| u64::from_le_bytes(frame[i..i + 8].try_into().expect("8 bytes"));
        Ok(Self {
            flags: frame[1],
            kind: u16::from_le_bytes([frame[2], frame[3]]),
            seq: u64_at(4),
            timestamp_us: u64_at(12),
        })
    }

    /// Whether flow control may drop this slice.
    pub fn droppable(&self) -> bool {
        self.flags & FLAG_DROPPABLE != 0
    }

    /// Whether this slice is a keyframe.
    pub fn keyframe(&self) -> bool {
        self.flags & FLAG_KEYFRAME != 0
    }
}

/// A slice under construction: header room reserved, payload appended.
#[derive(Debug)]
pub struct SliceBuf(BytesMut);

impl SliceBuf {
    /// An empty slice with room for `payload_len` bytes of payload.
    pub fn with_capacity(payload_len: usize) -> Self {
        let mut buf = BytesMut::with_capacity(SLICE_HEADER_LEN + payload_len);
        buf.put_bytes(0, SLICE_HEADER_LEN);
        Self(buf)
    }

    /// The payload written so far, for appending.
    pub fn payload_mut(&mut self) -> &mut BytesMut {
        &mut self.0
    }

    /// Payload length so far.
    pub fn payload_len(&self) -> usize {
        self.0.len() - SLICE_HEADER_LEN
    }

    /// Finishes the buffer: a frame whose header is still blank.
    pub fn freeze(self) -> Frame {
        Frame(self.0.freeze())
    }
}

/// A frozen slice frame (blank header + payload), cheap to clone and share.
#[derive(Debug, Clone)]
pub struct Frame(Bytes);

impl Frame {
    /// A frame around an existing payload (copies it once, behind the header).
    pub fn from_payload(payload: &[u8]) -> Self {
        let mut buf = SliceBuf::with_capacity(payload.len());
        buf.payload_mut().extend_from_slice(payload);
        buf.freeze()
    }

    /// Payload length.
    pub fn payload_len(&self) -> usize {
        self.0.len() - SLICE_HEADER_LEN
    }

    /// The payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.0[SLICE_HEADER_LEN..]
    }

    /// The payload as shared bytes (no copy), for a writer that sends the
    /// header from elsewhere ([`SliceHeader::to_bytes`]).
    pub fn payload_bytes(&self) -> Bytes {
        self.0.slice(SLICE_HEADER_LEN..)
    }

    /// Stamps `header` and returns the wire bytes. In place when this is the
    /// only reference to the buffer; one copy when it is shared.
    pub fn stamp(self, header: &SliceHeader) -> Bytes {
        let mut buf = match self.0.try_into_mut() {
            Ok(unique) => unique,
            Err(shared) => BytesMut::from(&shared[..]),
        };
        header.write(&mut buf[..SLICE_HEADER_LEN]);
        buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn header_round_trips(flags: u8, kind: u16, seq: u64, ts: u64, payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let h = SliceHeader { flags, kind, seq, timestamp_us: ts };
            let wire = Frame::from_payload(&payload).stamp(&h);
            prop_assert_eq!(SliceHeader::decode(&wire).unwrap(), h);
            prop_assert_eq!(&wire[SLICE_HEADER_LEN..], &payload[..]);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = SliceHeader::decode(&bytes);
        }
    }

    #[test]
    fn header_layout_is_the_contracts() {
        let h = SliceHeader {
            flags: FLAG_DROPPABLE | FLAG_KEYFRAME,
            kind: 1,
            seq: 0x0102,
            timestamp_us: 7,
        };
        let wire = Frame::from_payload(b"ab").stamp(&h);
        assert_eq!(&wire[..4], &[1, 3, 1, 0]);
        assert_eq!(&wire[4..12], &[2, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&wire[12..20], &[7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(SliceHeader::decode(&wire[..19]), Err(SliceError::Short(19)));
    }

    #[test]
    fn shared_frames_are_stamped_independently() {
        let f = Frame::from_payload(b"xyz");
        let a = f.clone().stamp(&SliceHeader {
            flags: 0,
            kind: 1,
            seq: 1,
            timestamp_us: 0,
        });
        let b = f.stamp(&SliceHeader {
            flags: 0,
            kind: 1,
            seq: 2,
            timestamp_us: 0,
        });
        assert_eq!(SliceHeader::decode(&a).unwrap().seq, 1);
        assert_eq!(SliceHeader::decode(&b).unwrap().seq, 2);
    }

    /// The header on its own and the shared payload make the same wire
    /// bytes as a stamped frame, and the payload is the frame's own memory.
    #[test]
    fn header_bytes_and_shared_payload_match_the_stamped_frame() {
        let f = Frame::from_payload(b"payload");
        let h = SliceHeader {
            flags: FLAG_KEYFRAME,
            kind: 3,
            seq: 9,
            timestamp_us: 11,
        };
        let body = f.payload_bytes();
        assert_eq!(body.as_ptr(), f.payload().as_ptr(), "not copied");
        let mut joined = h.to_bytes().to_vec();
        joined.extend_from_slice(&body);
        assert_eq!(&joined[..], &f.stamp(&h)[..]);
    }
}
