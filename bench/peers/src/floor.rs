//! The wire scraps `floor-peer` needs, by hand: WebSocket frame headers,
//! the two JSON facts it reads (a message's `type`, an ack's `seq`), and
//! the `synthetic:RATE:BYTES` engine spec.
//!
//! Nothing here allocates or parses JSON in general: a floor server reads
//! exactly the compact messages `seatkeeper load` (serde_json) sends,
//! e.g. `{"seq":42,"type":"ack"}`, and ignores anything it does not
//! recognise.
//!
//! - [`server`]: floor-peer's server.
//! - [`client`]: `floor-peer --client`, the matching lean client.

pub mod client;
mod conn;
pub mod server;

/// WebSocket opcodes used here.
pub mod opcode {
    /// Text frame.
    pub const TEXT: u8 = 0x1;
    /// Binary frame.
    pub const BINARY: u8 = 0x2;
    /// Close frame.
    pub const CLOSE: u8 = 0x8;
    /// Ping frame.
    pub const PING: u8 = 0x9;
    /// Pong frame.
    pub const PONG: u8 = 0xA;
}

/// Longest WebSocket frame header (2 + 8-byte length + 4-byte mask).
pub const MAX_HEADER: usize = 14;

/// Writes an unmasked, final frame header (server → client) for a payload
/// of `len` bytes into `out` (at least 10 bytes); returns its length
/// (2, 4 or 10).
pub fn frame_header(opcode: u8, len: usize, out: &mut [u8]) -> usize {
    out[0] = 0x80 | opcode;
    if len < 126 {
        out[1] = len as u8;
        2
    } else if len <= u16::MAX as usize {
        out[1] = 126;
        out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    }
}

/// A whole frame found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameAt {
    /// The opcode (low 4 bits of the first byte).
    pub opcode: u8,
    /// Where the payload starts.
    pub start: usize,
    /// Where the payload (and the frame) ends.
    pub end: usize,
    /// The masking key, if the frame is masked (client → server).
    pub mask: Option<[u8; 4]>,
}

/// The frame at the start of `buf`, or `None` if `buf` does not hold all of
/// it yet (or claims a length that cannot be a real message: the caller
/// treats an oversized carry as a broken peer).
pub fn parse_frame(buf: &[u8]) -> Option<FrameAt> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let (len, mut at) = match b1 & 0x7F {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as u64,
            4,
        ),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    let mask = if b1 & 0x80 != 0 {
        let m: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(m)
    } else {
        None
    };
    let end = at.checked_add(usize::try_from(len).ok()?)?;
    (end <= buf.len()).then_some(FrameAt {
        opcode: b0 & 0x0F,
        start: at,
        end,
        mask,
    })
}

/// Unmasks a client frame's payload in place.
pub fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Whether `hay` contains `needle`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// Where `needle` first starts in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The `type` of a compact JSON message is `ty` (`"type":"ack"`).
pub fn is_type(json: &[u8], ty: &str) -> bool {
    // `"type":"` + ty + `"`, compared piecewise so nothing is formatted.
    let key = b"\"type\":\"";
    let mut rest = json;
    while let Some(i) = find(rest, key) {
        let after = &rest[i + key.len()..];
        if after.len() > ty.len() && &after[..ty.len()] == ty.as_bytes() && after[ty.len()] == b'"'
        {
            return true;
        }
        rest = after;
    }
    false
}

/// The unsigned integer after `"seq":` in a compact JSON message.
pub fn seq_of(json: &[u8]) -> Option<u64> {
    let key = b"\"seq\":";
    let at = find(json, key)? + key.len();
    let digits = json[at..].iter().take_while(|b| b.is_ascii_digit());
    let mut n: u64 = 0;
    let mut any = false;
    for &d in digits {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        any = true;
    }
    any.then_some(n)
}

/// Parses `synthetic:RATE_HZ:BYTES` (`demo` = `synthetic:10:19200`), the
/// spelling tt-peer and seatkeeper take.
pub fn parse_engine(spec: &str) -> Result<(f64, usize), String> {
    let spec = if spec == "demo" {
        "synthetic:10:19200"
    } else {
        spec
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let bad = || format!("engine must be synthetic:RATE:BYTES, got {spec:?}");
    if parts.len() != 3 || parts[0] != "synthetic" {
        return Err(bad());
    }
    let rate: f64 = parts[1].parse().map_err(|_| bad())?;
    let bytes: usize = parts[2].parse().map_err(|_| bad())?;
    if !(rate > 0.0 && rate <= 1000.0) || bytes > 16 << 20 {
        return Err(format!(
            "rate must be in (0, 1000] Hz and bytes ≤ 16 MiB: {spec:?}"
        ));
    }
    Ok((rate, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_wait_for_their_last_byte() {
        let mut h = [0; MAX_HEADER];
        for len in [0, 125, 126, 1044, 65535, 65536] {
            let n = frame_header(opcode::BINARY, len, &mut h);
            let mut buf = h[..n].to_vec();
            buf.resize(n + len, 7);
            let f = parse_frame(&buf).expect("whole frame");
            assert_eq!((f.opcode, f.start, f.end, f.mask), (2, n, n + len, None));
            assert_eq!(parse_frame(&buf[..buf.len() - 1]), None, "len {len}");
        }
    }

    #[test]
    fn masked_text_unmasks() {
        let text = br#"{"seq":42,"type":"ack"}"#;
        let mask = [1, 2, 3, 4];
        let mut buf = vec![0x81, 0x80 | text.len() as u8, 1, 2, 3, 4];
        buf.extend(text.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        let f = parse_frame(&buf).expect("whole frame");
        let p = &mut buf[f.start..f.end];
        unmask(p, f.mask.expect("masked"));
        assert_eq!(p, text);
        assert!(is_type(p, "ack") && !is_type(p, "ac") && !is_type(p, "hello"));
        assert_eq!(seq_of(p), Some(42));
    }

    #[test]
    fn scraps_refuse_what_they_do_not_know() {
        assert_eq!(seq_of(br#"{"seq":"x","type":"ack"}"#), None);
        assert_eq!(seq_of(br#"{"seq":99999999999999999999999}"#), None);
        assert!(!is_type(br#"{"kind":"ack"}"#, "ack"));
        assert_eq!(parse_engine("synthetic:10:1024"), Ok((10.0, 1024)));
        assert_eq!(parse_engine("demo"), Ok((10.0, 19200)));
        assert!(parse_engine("synthetic:0:1024").is_err());
        assert!(parse_engine("python:10:1024").is_err());
    }
}
