//! One session's throughput against raw TCP, read by the same reader.
//!
//! The reader is one thread on a blocking socket: it reads into a 1 MiB
//! buffer, walks the WebSocket frames in place (no copy of a payload), takes
//! the `seq` from each slice header and sends one cumulative ack per read.
//! It reads either a seatkeeper session (`ws`) or a raw TCP socket fed by
//! `raw-send`, a trivial sender that writes the same binary frames (header,
//! 20-byte slice header, payload) as fast as the kernel takes them — so both
//! runs put the same bytes through the same loop, and the ratio of the two
//! is what the server costs over the wire's own limit.
//!
//! ```text
//! stream-reader raw-send --listen 127.0.0.1:PORT --slice-bytes 4096
//! stream-reader raw --connect 127.0.0.1:PORT --seconds 5
//! stream-reader ws --connect 127.0.0.1:PORT --seconds 5
//! ```
//!
//! Prints one JSON object: payload and wire MB/s, slices/s.

use std::{
    io::{self, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    time::{Duration, Instant},
};

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// A seatkeeper session: upgrade, hello, then slices.
    Ws,
    /// A raw TCP socket fed by `raw-send`.
    Raw,
    /// The trivial sender for `raw`.
    RawSend,
}

/// The same reader on a WebSocket session or on raw TCP.
#[derive(Debug, Parser)]
struct Args {
    mode: Mode,
    /// Where to connect (`ws`, `raw`).
    #[arg(long)]
    connect: Option<SocketAddr>,
    /// Where to listen (`raw-send`).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Payload bytes per slice (`raw-send`).
    #[arg(long, default_value_t = 1 << 20)]
    slice_bytes: usize,
    /// Seconds to count, after a 0.5 s warm-up.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
}

const SLICE_HEADER: usize = 20;
const MASK: [u8; 4] = [0x5a, 0x17, 0xc3, 0x08];

/// A binary frame header for `len` payload bytes (server to client: no mask).
fn frame_header(opcode: u8, len: usize, out: &mut Vec<u8>) {
    out.push(0x80 | opcode);
    match len {
        0..=125 => out.push(len as u8),
        126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
}

/// A masked client frame (text or pong).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 14);
    frame_header(opcode, payload.len(), &mut f);
    f[1] |= 0x80;
    f.extend_from_slice(&MASK);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    f
}

fn raw_send(listen: SocketAddr, slice_bytes: usize) -> io::Result<()> {
    let l = TcpListener::bind(listen)?;
    let (mut s, _) = l.accept()?;
    s.set_nodelay(true)?;
    // The reader's acks are drained and ignored, so its writes never block.
    let mut acks = s.try_clone()?;
    std::thread::spawn(move || {
        let mut b = [0u8; 4096];
        while matches!(acks.read(&mut b), Ok(n) if n > 0) {}
    });
    // About 1 MiB of whole frames per write.
    let mut block = Vec::new();
    let mut seq = 1u64;
    while block.is_empty() || block.len() + slice_bytes < (1 << 20) {
        frame_header(2, SLICE_HEADER + slice_bytes, &mut block);
        block.extend_from_slice(&[1, 3, 0xFF, 0xFF]);
        block.extend_from_slice(&seq.to_le_bytes());
        block.extend_from_slice(&0u64.to_le_bytes());
        block.extend((0..slice_bytes).map(|i| i as u8));
        seq += 1;
    }
    while s.write_all(&block).is_ok() {}
    Ok(())
}

fn upgrade(s: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )?;
    let mut end = 0;
    loop {
        let n = s.read(&mut buf[end..])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        end += n;
        if let Some(i) = buf[..end].windows(4).position(|w| w == b"\r\n\r\n") {
            if !buf.starts_with(b"HTTP/1.1 101") {
                let head = String::from_utf8_lossy(&buf[..i]).into_owned();
                return Err(io::Error::other(format!("upgrade refused: {head}")));
            }
            let rest = end - (i + 4);
            buf.copy_within(i + 4..end, 0);
            s.write_all(&client_frame(1, br#"{"type":"hello"}"#))?;
            return Ok(rest);
        }
    }
}

#[derive(Default)]
struct Count {
    wire: u64,
    payload: u64,
    slices: u64,
}

fn read(mode: Mode, addr: SocketAddr, seconds: f64) -> io::Result<()> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut end = if mode == Mode::Ws {
        upgrade(&mut s, &mut buf)?
    } else {
        0
    };
    let (mut start, mut skip) = (0usize, 0u64);
    let (mut last_seq, mut acked) = (0u64, 0u64);
    let mut n = Count::default();
    let t_start = Instant::now();
    let warm = Duration::from_millis(500);
    let (mut counting, mut t0) = (false, t_start);
    let dur = Duration::from_secs_f64(seconds);
    loop {
        if !counting && t_start.elapsed() >= warm {
            (counting, t0, n) = (true, Instant::now(), Count::default());
        }
        if counting && t0.elapsed() >= dur {
            break;
        }
        // Keep the unparsed tail (a partial header) at the front.
        if start == end {
            (start, end) = (0, 0);
        } else if start > 0 {
            buf.copy_within(start..end, 0);
            (start, end) = (0, end - start);
        }
        let got = s.read(&mut buf[end..])?;
        if got == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        end += got;
        n.wire += got as u64;
        let k = skip.min((end - start) as u64);
        (start, skip) = (start + k as usize, skip - k);
        while skip == 0 && end - start >= 2 {
            let f = &buf[start..end];
            let (opcode, len7) = (f[0] & 0x0F, (f[1] & 0x7F) as usize);
            let (hlen, len) = match len7 {
                126 if f.len() >= 4 => (4, u16::from_be_bytes([f[2], f[3]]) as usize),
                127 if f.len() >= 10 => (
                    10,
                    u64::from_be_bytes(f[2..10].try_into().unwrap()) as usize,
                ),
                126 | 127 => break,
                l => (2, l),
            };
            if opcode == 2 {
                if f.len() < hlen + SLICE_HEADER {
                    break;
                }
                let h = &f[hlen..hlen + SLICE_HEADER];
                last_seq = u64::from_le_bytes(h[4..12].try_into().unwrap());
                n.slices += 1;
                n.payload += len.saturating_sub(SLICE_HEADER) as u64;
                let take = (f.len() - hlen).min(len);
                start += hlen + take;
                skip = (len - take) as u64;
                continue;
            }
            if f.len() < hlen + len {
                break; // a small control or text frame, not all here yet
            }
            match opcode {
                8 => return Err(io::Error::other("the server closed the session")),
                9 => s.write_all(&client_frame(0xA, &f[hlen..hlen + len]))?,
                _ => {} // ready, stats: not counted
            }
            start += hlen + len;
        }
        if last_seq > acked {
            let ack = format!(r#"{{"type":"ack","seq":{last_seq}}}"#);
            s.write_all(&client_frame(1, ack.as_bytes()))?;
            acked = last_seq;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{{\"mode\": \"{}\", \"payload_mb_per_s\": {:.1}, \"wire_mb_per_s\": {:.1}, \"slices_per_s\": {:.0}, \"seconds\": {:.2}}}",
        if mode == Mode::Ws { "ws" } else { "raw" },
        n.payload as f64 / secs / 1e6,
        n.wire as f64 / secs / 1e6,
        n.slices as f64 / secs,
        secs
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    match (a.mode, a.connect, a.listen) {
        (Mode::RawSend, _, Some(l)) => raw_send(l, a.slice_bytes)?,
        (Mode::Ws | Mode::Raw, Some(c), _) => read(a.mode, c, a.seconds)?,
        _ => anyhow::bail!("raw-send needs --listen; ws and raw need --connect"),
    }
    Ok(())
}
