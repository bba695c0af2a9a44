//! `external::frame::read`: the length-prefixed frames an engine process
//! sends to the server (docs/ENGINE.md, "Framing").
//!
//! Input layout: byte 0 picks the frame limit (`max`), byte 1 shapes the
//! reader (bits 0–6: bytes per read, 0 meaning as many as asked; bit 7: every
//! read is `Pending` once first), the rest is the byte stream. The shaped
//! reader matters: `read` takes a different path when its first read
//! returns fewer than the 4 length bytes or fewer than the 6 prefix bytes.
//!
//! The oracle is a few lines of reference decoder written from the framing
//! rules; `read` must agree with it on every frame and every refusal, must
//! consume exactly one frame's bytes per frame, and what it returns must
//! encode back to those bytes.

use std::{
    future::Future,
    io,
    pin::Pin,
    task::{Context, Poll, Waker},
};

use seatkeeper_engine::external::frame::{
    self, check_prefix, encode_slice, FrameError, Incoming, SliceHead, MAX_FRAME_BYTES, PREFIX_LEN,
    SLICE_HEAD_LEN, TYPE_JSON, TYPE_SLICE, VERSION,
};
use tokio::io::{AsyncRead, ReadBuf};

/// Frame limits worth testing: below the minimum, the boundaries of a
/// minimal slice, a small one, and the server's default.
const MAXES: [usize; 6] = [0, 2, 17, 18, 4096, MAX_FRAME_BYTES];
/// Offset of the reserved byte in a slice frame (ignored on decode).
const RESERVED_AT: usize = PREFIX_LEN + 7;

/// A reader over a byte slice that hands out at most `chunk` bytes a read
/// and, when `pend` is set, answers each read with `Pending` once first.
struct Shaped<'a> {
    data: &'a [u8],
    pos: usize,
    chunk: usize,
    pend: bool,
    pended: bool,
}

impl AsyncRead for Shaped<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pend && !self.pended {
            self.pended = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.pended = false;
        let n = (self.data.len() - self.pos)
            .min(buf.remaining())
            .min(self.chunk);
        let start = self.pos;
        buf.put_slice(&self.data[start..start + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

/// What the reference decoder expects of the next frame.
enum Expect {
    /// A clean end of stream.
    End,
    /// A frame of this many bytes, prefix included.
    Frame(usize),
    /// A refusal.
    Refused(FrameError),
}

/// The framing rules, written out plainly: the length (4 bytes) is checked
/// as soon as it is in, the version and type once the 6-byte prefix is in,
/// and the body must be there in full.
fn reference(rest: &[u8], max: usize) -> Expect {
    if rest.is_empty() {
        return Expect::End;
    }
    if rest.len() < 4 {
        return Expect::Refused(FrameError::Truncated);
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
    if len < 2 {
        return Expect::Refused(FrameError::TooShort(len));
    }
    if len as usize > max {
        return Expect::Refused(FrameError::TooLong { len, max });
    }
    if rest.len() < PREFIX_LEN {
        return Expect::Refused(FrameError::Truncated);
    }
    if rest[4] != VERSION {
        return Expect::Refused(FrameError::Version(rest[4]));
    }
    let body = len as usize - 2;
    match rest[5] {
        TYPE_JSON => {}
        TYPE_SLICE if body >= SLICE_HEAD_LEN => {}
        TYPE_SLICE => return Expect::Refused(FrameError::SliceTooShort(body)),
        other => return Expect::Refused(FrameError::Type(other)),
    }
    if rest.len() < 4 + len as usize {
        return Expect::Refused(FrameError::Truncated);
    }
    Expect::Frame(4 + len as usize)
}

/// Polls `fut` to completion; the reader is never pending twice in a row,
/// so more than `limit` polls means `read` lost its wake-up.
fn block_on<F: Future>(fut: F, limit: usize) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..limit {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("frame::read still pending after {limit} polls of an always-ready reader");
}

/// Reads every frame in the stream described by `data` and checks each.
pub fn check(data: &[u8]) {
    let [sel, shape, stream @ ..] = data else {
        return;
    };
    let max = MAXES[*sel as usize % MAXES.len()];
    let chunk = match shape & 0x7f {
        0 => usize::MAX,
        n => n as usize,
    };
    let mut r = Shaped {
        data: stream,
        pos: 0,
        chunk,
        pend: shape & 0x80 != 0,
        pended: false,
    };
    if let Ok(prefix) = <[u8; PREFIX_LEN]>::try_from(stream.get(..PREFIX_LEN).unwrap_or(&[])) {
        check_prefix_agrees(&prefix, max);
    }
    // Every frame is at least 6 bytes, so this bounds the frames in a stream.
    for _ in 0..=stream.len() / PREFIX_LEN {
        let at = r.pos;
        let expect = reference(&stream[at..], max);
        let polls = 4 * (stream.len() - at) + 16;
        let got = block_on(frame::read(&mut r, max), polls);
        let frame = &stream[at..r.pos];
        match (got, expect) {
            (Ok(None), Expect::End) => return,
            (Err(e), Expect::Refused(want)) => {
                assert_eq!(e.to_string(), want.to_string());
                return;
            }
            (Ok(Some(incoming)), Expect::Frame(n)) => {
                assert_eq!(frame.len(), n, "read consumed more or less than one frame");
                check_frame(frame, &incoming, max);
            }
            (got, expect) => panic!(
                "read disagrees with the framing rules at byte {at}: got {got:?}, want {}",
                match expect {
                    Expect::End => "end of stream".to_owned(),
                    Expect::Frame(n) => format!("a frame of {n} bytes"),
                    Expect::Refused(e) => format!("refusal: {e}"),
                }
            ),
        }
    }
    panic!("more frames than the stream can hold");
}

/// `check_prefix` on a full prefix agrees with the reference decoder.
fn check_prefix_agrees(prefix: &[u8; PREFIX_LEN], max: usize) {
    match (check_prefix(prefix, max), reference(prefix, max)) {
        (Err(e), Expect::Refused(want)) => assert_eq!(e.to_string(), want.to_string()),
        // A prefix alone is a body-less frame or a truncated one.
        (Ok(body), Expect::Frame(_) | Expect::Refused(FrameError::Truncated)) => {
            let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
            assert_eq!(body, len as usize - 2);
        }
        (got, _) => panic!("check_prefix disagrees with the framing rules: {got:?}"),
    }
}

/// A decoded frame says exactly what its bytes said.
fn check_frame(bytes: &[u8], incoming: &Incoming, max: usize) {
    let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    assert!((2..=max).contains(&len));
    match incoming {
        Incoming::Json(body) => {
            assert_eq!(bytes[5], TYPE_JSON);
            assert_eq!(body.len(), len - 2);
            assert_eq!(&bytes[PREFIX_LEN..], &body[..]);
        }
        Incoming::Slice(head, payload) => {
            assert_eq!(bytes[5], TYPE_SLICE);
            assert_eq!(
                SliceHead::decode(&head.encode()),
                *head,
                "slice head round trip"
            );
            // Re-encoded, the frame is the input with its reserved byte zeroed.
            let mut want = bytes.to_vec();
            want[RESERVED_AT] = 0;
            assert_eq!(&encode_slice(head, payload.payload())[..], &want[..]);
        }
    }
}
