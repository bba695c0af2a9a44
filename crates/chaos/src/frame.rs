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

/// Longest upgrade response head [`read_head`] accepts.
const HEAD_LIMIT: usize = 16 << 10;

/// One final, masked client frame (clients must mask; the key is fixed,
/// which the protocol allows and keeps a capture readable).
pub fn encode(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x5a, 0xc3, 0x17, 0x88];
    let mut out = Vec::with_capacity(payload.len() + 14);
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
    out
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

    #[tokio::test]
    async fn reads_back_an_unmasked_frame_and_refuses_a_masked_one() {
        let mut wire: &[u8] = &[0x89, 2, b'p', b'!', 0x81, 0x80, 0, 0, 0, 0];
        let (op, payload, len) = read_frame(&mut wire).await.unwrap();
        assert_eq!((op, payload.as_slice(), len), (PING, &b"p!"[..], 4));
        assert!(read_frame(&mut wire).await.is_err());
    }
}
