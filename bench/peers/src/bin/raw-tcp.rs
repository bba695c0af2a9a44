//! The physical limit: one TCP connection on loopback, a writer pushing
//! `--chunk`-byte buffers as fast as the kernel takes them to a reader in
//! another process (`--serve` / `--connect`), or both ends in this one
//! process when neither is given. Prints `{"mb_per_s": …}`.

use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    time::Instant,
};

/// Raw TCP throughput on loopback.
#[derive(Debug, Parser)]
struct Args {
    /// Seconds to measure.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Bytes per write.
    #[arg(long, default_value_t = 1 << 20)]
    chunk: usize,
    /// Run only the writer, listening here (the reader is another process).
    #[arg(long)]
    serve: Option<SocketAddr>,
    /// Run only the reader, connecting here.
    #[arg(long)]
    connect: Option<SocketAddr>,
}

async fn write_for(mut s: TcpStream, chunk: usize, dur: Duration) {
    let buf = vec![7u8; chunk];
    let end = Instant::now() + dur + Duration::from_secs(1);
    while Instant::now() < end {
        if s.write_all(&buf).await.is_err() {
            return;
        }
    }
}

async fn read_for(mut s: TcpStream, dur: Duration) -> f64 {
    let mut buf = vec![0u8; 1 << 20];
    // Skip the first 200 ms (slow start, scheduling), then count.
    let warm = Instant::now() + Duration::from_millis(200);
    while Instant::now() < warm {
        if s.read(&mut buf).await.unwrap_or(0) == 0 {
            return 0.0;
        }
    }
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < dur {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k as u64,
        }
    }
    n as f64 / t0.elapsed().as_secs_f64() / 1e6
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let dur = Duration::from_secs_f64(a.seconds);
    if let Some(addr) = a.serve {
        let l = TcpListener::bind(addr).await?;
        let (s, _) = l.accept().await?;
        write_for(s, a.chunk, dur).await;
        return Ok(());
    }
    if let Some(addr) = a.connect {
        let s = TcpStream::connect(addr).await?;
        println!("{{\"mb_per_s\": {:.1}}}", read_for(s, dur).await);
        return Ok(());
    }
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    let chunk = a.chunk;
    tokio::spawn(async move {
        if let Ok((s, _)) = l.accept().await {
            write_for(s, chunk, dur).await;
        }
    });
    let s = TcpStream::connect(addr).await?;
    println!("{{\"mb_per_s\": {:.1}}}", read_for(s, dur).await);
    Ok(())
}
