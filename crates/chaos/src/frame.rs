//! The WebSocket wire format by hand, for what a library client will not
//! write: frames a conforming client never sends (binary, oversized, a
//! flood in one write) and an upgrade whose every byte the caller counts.
//! The [`Client`](crate::client::Client) sends these through its raw escape
//! hatch; tests that count stream offsets read frames with [`read_frame`].

use tokio::io::{AsyncRead, AsyncReadExt};

/// Text frame opcode.
pub const TEXT: u8 = 0x1;
/// Binary frame opcode.
pub const BINARY: u8 = 0x2;
/// Close frame opcode.
pub const CLOSE: u8 = 0x8;
/// Ping frame opcode.
pub const PING: u8 = 0x9;
/// Pong frame opcode.
pub const PONG: u8 = 0xA;

/// The `Sec-WebSocket-Accept` a server answers [`upgrade_request`]'s key
/// with (RFC 6455 §1.3).
pub const UPGRADE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Longest upgrade response head [`read_head`] accepts.
const HEAD_LIMIT: usize = 16 << 10;

/// One final, masked client frame (clients must mask; the key is fixed,
/// which the protocol allows and keeps a capture readable).
pub fn encode(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    encode_into(opcode, payload, &mut out);
    out
}

/// [`encode`], appended to `out` (a buffer the caller reuses).
pub fn encode_into(opcode: u8, payload: &[u8], out: &mut Vec<u8>) {
    let mask = [0x5a, 0xc3, 0x17, 0x88];
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
}

/// A whole server frame at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// The opcode.
    pub opcode: u8,
    /// Where the payload starts and ends (the frame ends there too).
    pub payload: (usize, usize),
}

/// The server frame at the start of `buf`: `Ok(None)` until all of it is
/// there; an error for what a server must not send (a masked frame, RSV
/// bits, a fragment — seatkeeper never fragments — or a payload over
/// `max_len`).
pub fn parse(buf: &[u8], max_len: usize) -> Result<Option<Parsed>, &'static str> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    if b1 & 0x80 != 0 {
        return Err("a masked server frame");
    }
    if b0 & 0x70 != 0 {
        return Err("RSV bits set");
    }
    if b0 & 0x80 == 0 || b0 & 0x0f == 0 {
        return Err("a fragmented message");
    }
    let (len, at) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => (u64::from_be_bytes(b.try_into().expect("8 bytes")), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    let len = usize::try_from(len)
        .ok()
        .filter(|&n| n <= max_len)
        .ok_or("a frame over the size limit")?;
    Ok((at + len <= buf.len()).then_some(Parsed {
        opcode: b0 & 0x0f,
        payload: (at, at + len),
    }))
}

/// The HTTP/1.1 upgrade request for `path` on `host`.
pub fn upgrade_request(host: &str, path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Reads a response head byte by byte (so nothing after it is consumed),
/// up to 16 KiB; returns it with its closing blank line.
pub async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > HEAD_LIMIT {
            return Err(std::io::Error::other("response head over 16 KiB"));
        }
        head.push(s.read_u8().await?);
    }
    Ok(head)
}

/// One server frame read off `s`: its opcode, payload and length on the
/// wire. A masked server frame is an error (servers never mask).
pub async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<(u8, Vec<u8>, u64)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).await?;
    if h[1] & 0x80 != 0 {
        return Err(std::io::Error::other("a masked server frame"));
    }
    let (len, ext) = match h[1] & 0x7f {
        126 => (u64::from(s.read_u16().await?), 2),
        127 => (s.read_u64().await?, 8),
        n => (u64::from(n), 0),
    };
    let n = usize::try_from(len).map_err(|_| std::io::Error::other("frame too long"))?;
    let mut payload = vec![0u8; n];
    s.read_exact(&mut payload).await?;
    Ok((h[0] & 0x0f, payload, 2 + ext + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_take_the_three_encodings() {
        assert_eq!(encode(TEXT, b"hi")[..2], [0x81, 0x82]);
        let mid = encode(BINARY, &[0; 300]);
        assert_eq!(mid[..4], [0x82, 0x80 | 126, 1, 44]);
        assert_eq!(mid.len(), 4 + 4 + 300);
        let big = encode(TEXT, &[0; 70_000]);
        assert_eq!(big[1], 0x80 | 127);
        assert_eq!(big.len(), 10 + 4 + 70_000);
    }

    #[test]
    fn parse_waits_for_the_last_byte_and_refuses_what_servers_must_not_send() {
        for len in [0usize, 125, 126, 65_535, 65_536] {
            let mut f = vec![0x82];
            match len {
                n if n < 126 => f.push(n as u8),
                n if n <= 0xffff => {
                    f.push(126);
                    f.extend_from_slice(&(n as u16).to_be_bytes());
                }
                n => {
                    f.push(127);
                    f.extend_from_slice(&(n as u64).to_be_bytes());
                }
            }
            let at = f.len();
            f.resize(at + len, 7);
            f.push(0x81); // the next frame's first byte
            let p = parse(&f, 1 << 20).unwrap().expect("whole");
            assert_eq!((p.opcode, p.payload), (BINARY, (at, at + len)));
            assert_eq!(parse(&f[..at + len - 1], 1 << 20), Ok(None), "len {len}");
        }
        assert_eq!(parse(&[0x82], 10), Ok(None));
        assert_eq!(parse(&[0x82, 126, 1], 10), Ok(None));
        assert!(parse(&[0x82, 11], 10).is_err(), "over the limit");
        assert!(parse(&encode(TEXT, b"x"), 10).is_err(), "masked");
        assert!(parse(&[0x02, 0], 10).is_err(), "no FIN");
        assert!(parse(&[0x80, 0], 10).is_err(), "continuation");
        assert!(parse(&[0xC2, 0], 10).is_err(), "RSV1");
    }

    #[tokio::test]
    async fn reads_back_an_unmasked_frame_and_refuses_a_masked_one() {
        let mut wire: &[u8] = &[0x89, 2, b'p', b'!', 0x81, 0x80, 0, 0, 0, 0];
        let (op, payload, len) = read_frame(&mut wire).await.unwrap();
        assert_eq!((op, payload.as_slice(), len), (PING, &b"p!"[..], 4));
        assert!(read_frame(&mut wire).await.is_err());
    }
}
