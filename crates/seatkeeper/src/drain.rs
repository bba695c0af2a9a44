//! `seatkeeper drain`: `POST /drain` on a running server, then (with
//! `--wait`) poll `/sessions` until no seat is held.

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::cli::DrainArgs;

async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await??;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut raw)).await??;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

pub(crate) async fn run(args: DrainArgs) -> ExitCode {
    match request(args.listen, "POST", "/drain", args.admin_token.as_deref()).await {
        Ok((202, _)) => eprintln!("seatkeeper: {} is draining", args.listen),
        Ok((code, body)) => {
            eprintln!("seatkeeper: drain refused ({code}): {body}");
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("seatkeeper: cannot reach {}: {e}", args.listen);
            return ExitCode::from(1);
        }
    }
    if !args.wait {
        return ExitCode::SUCCESS;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout_s);
    while tokio::time::Instant::now() < deadline {
        if let Ok((200, body)) = request(args.listen, "GET", "/sessions", None).await {
            if body.contains("\"lockHeld\":false") {
                eprintln!("seatkeeper: no seat held; drained");
                return ExitCode::SUCCESS;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!("seatkeeper: still holding seats after {} s", args.timeout_s);
    ExitCode::from(1)
}
