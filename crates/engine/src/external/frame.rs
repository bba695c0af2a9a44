//! The engine link's framing, shared by the server, the tests and any Rust
//! engine: `u32` little-endian length, version byte, type byte, body.
//!
//! The length counts everything after itself (version + type + body), so a
//! reader needs exactly two reads per frame and can refuse an oversize frame
//! before allocating anything. Slices carry a compact 16-byte head (a `u32`
//! session handle instead of the session id string) because they are the
//! hot path; everything else is a JSON object, where clarity beats bytes.

use bytes::{BufMut, Bytes, BytesMut};
use seatkeeper_protocol::slice::{Frame, SliceBuf};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The only protocol version; a frame with another version byte is refused.
pub const VERSION: u8 = 1;
/// Frame type: a UTF-8 JSON object with a `type` field.
pub const TYPE_JSON: u8 = 1;
/// Frame type: a slice (engine to server only).
pub const TYPE_SLICE: u8 = 2;
/// Bytes before the body: length (4), version (1), type (1).
pub const PREFIX_LEN: usize = 6;
/// Bytes of a slice frame's head, between the prefix and the payload.
pub const SLICE_HEAD_LEN: usize = 16;
/// Default largest value of the length field (version + type + body): 16 MiB.
pub const MAX_FRAME_BYTES: usize = 16 << 20;

/// Why a frame was refused. Every variant but `Io` is the peer's fault.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length field is below 2 (it must at least cover version and type).
    #[error("frame length {0} is below the minimum of 2")]
    TooShort(u32),
    /// The length field is over the limit.
    #[error("frame length {len} is over the limit of {max} bytes")]
    TooLong {
        /// The length field.
        len: u32,
        /// The limit in force.
        max: usize,
    },
    /// A version byte this side does not speak.
    #[error("unsupported protocol version {0} (this server speaks version 1)")]
    Version(u8),
    /// A type byte this side does not know.
    #[error("unknown frame type {0}")]
    Type(u8),
    /// A slice frame too short for its 16-byte head.
    #[error("slice frame body of {0} bytes is shorter than the 16-byte slice head")]
    SliceTooShort(usize),
    /// The stream ended in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// Reading failed.
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The head of a slice frame: whose slice it is and how to stamp it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceHead {
    /// The session handle from `session_start`.
    pub handle: u32,
    /// Engine-defined payload kind (becomes the slice header's `kind`).
    pub kind: u16,
    /// Flag bits: 1 droppable, 2 keyframe.
    pub flags: u8,
    /// Media timestamp in microseconds.
    pub timestamp_us: u64,
}

impl SliceHead {
    /// Encodes the head: handle u32, kind u16, flags u8, reserved u8 (0),
    /// timestamp u64, all little-endian.
    pub fn encode(&self) -> [u8; SLICE_HEAD_LEN] {
        let mut out = [0u8; SLICE_HEAD_LEN];
        out[0..4].copy_from_slice(&self.handle.to_le_bytes());
        out[4..6].copy_from_slice(&self.kind.to_le_bytes());
        out[6] = self.flags;
        out[8..16].copy_from_slice(&self.timestamp_us.to_le_bytes());
        out
    }

    /// Decodes a head; the reserved byte is ignored.
    pub fn decode(b: &[u8; SLICE_HEAD_LEN]) -> Self {
        Self {
            handle: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            kind: u16::from_le_bytes([b[4], b[5]]),
            flags: b[6],
            timestamp_us: u64::from_le_bytes(b[8..16].try_into().expect("8 bytes")),
        }
    }
}

/// One decoded frame.
#[derive(Debug)]
pub enum Incoming {
    /// A JSON frame's body, not yet parsed.
    Json(Vec<u8>),
    /// A slice: its head and the payload, already in a [`Frame`] with the
    /// client slice header's room in front, so it is never copied again.
    Slice(SliceHead, Frame),
}

/// Checks a length field on its own, so a bad one is refused as soon as
/// its four bytes are in.
fn check_len(len: [u8; 4], max: usize) -> Result<(), FrameError> {
    let len = u32::from_le_bytes(len);
    if len < 2 {
        return Err(FrameError::TooShort(len));
    }
    if len as usize > max {
        return Err(FrameError::TooLong { len, max });
    }
    Ok(())
}

/// Checks a frame prefix; returns the body length.
pub fn check_prefix(prefix: &[u8; PREFIX_LEN], max: usize) -> Result<usize, FrameError> {
    check_len([prefix[0], prefix[1], prefix[2], prefix[3]], max)?;
    let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    if prefix[4] != VERSION {
        return Err(FrameError::Version(prefix[4]));
    }
    match prefix[5] {
        TYPE_JSON => {}
        TYPE_SLICE if len as usize - 2 >= SLICE_HEAD_LEN => {}
        TYPE_SLICE => return Err(FrameError::SliceTooShort(len as usize - 2)),
        other => return Err(FrameError::Type(other)),
    }
    Ok(len as usize - 2)
}

/// Reads one frame. `Ok(None)` is a clean end of stream between frames.
/// Cancel-unsafe (a partial frame is lost): call it from one reader loop.
pub async fn read<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<Incoming>, FrameError> {
    let mut prefix = [0u8; PREFIX_LEN];
    let first = r.read(&mut prefix).await?;
    if first == 0 {
        return Ok(None);
    }
    if first < 4 {
        read_full(r, &mut prefix[first..4]).await?;
    }
    check_len([prefix[0], prefix[1], prefix[2], prefix[3]], max)?;
    read_full(r, &mut prefix[first.max(4)..]).await?;
    let body = check_prefix(&prefix, max)?;
    if prefix[5] == TYPE_JSON {
        let mut json = vec![0u8; body];
        read_full(r, &mut json).await?;
        return Ok(Some(Incoming::Json(json)));
    }
    let mut head = [0u8; SLICE_HEAD_LEN];
    read_full(r, &mut head).await?;
    let payload_len = body - SLICE_HEAD_LEN;
    let mut buf = SliceBuf::with_capacity(payload_len);
    let bytes = buf.payload_mut();
    let start = bytes.len();
    bytes.resize(start + payload_len, 0);
    read_full(r, &mut bytes[start..]).await?;
    Ok(Some(Incoming::Slice(
        SliceHead::decode(&head),
        buf.freeze(),
    )))
}

/// `read_exact`, with end of stream reported as [`FrameError::Truncated`].
async fn read_full<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> Result<(), FrameError> {
    match r.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(FrameError::Truncated),
        Err(e) => Err(e.into()),
    }
}

/// Encodes a JSON frame.
pub fn encode_json<T: Serialize + ?Sized>(msg: &T) -> Bytes {
    let mut out = BytesMut::with_capacity(128);
    out.put_bytes(0, PREFIX_LEN);
    serde_json::to_writer((&mut out).writer(), msg).expect("JSON values always serialize");
    let len = (out.len() - 4) as u32;
    out[0..4].copy_from_slice(&len.to_le_bytes());
    out[4] = VERSION;
    out[5] = TYPE_JSON;
    out.freeze()
}

/// Encodes a slice frame (what an engine sends).
pub fn encode_slice(head: &SliceHead, payload: &[u8]) -> Bytes {
    let len = 2 + SLICE_HEAD_LEN + payload.len();
    let mut out = BytesMut::with_capacity(4 + len);
    out.put_u32_le(len as u32);
    out.put_u8(VERSION);
    out.put_u8(TYPE_SLICE);
    out.put_slice(&head.encode());
    out.put_slice(payload);
    out.freeze()
}

#[cfg(test)]
mod tests;
