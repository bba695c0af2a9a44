//! `seatkeeper drain`: `POST /drain` on a running server (or `DELETE
//! /drain` with `--cancel`), then (with `--wait`) poll `/sessions` until no
//! seat is held. It goes through the admin listener when one is named
//! (no token needed), else through the public port with the admin token.

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use seatkeeper_server::config::AdminAddr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::cli::DrainArgs;

/// How to reach the server.
enum Target {
    Public(SocketAddr, Option<String>),
    Admin(AdminAddr),
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Self::Public(a, _) => a.to_string(),
            Self::Admin(a) => format!("{a} (admin listener)"),
        }
    }

    async fn request(&self, method: &str, path: &str) -> std::io::Result<(u16, String)> {
        let connect = Duration::from_secs(5);
        match self {
            Self::Public(addr, token) => {
                let s =
                    tokio::time::timeout(connect, tokio::net::TcpStream::connect(addr)).await??;
                exchange(s, method, path, &addr.to_string(), token.as_deref()).await
            }
            Self::Admin(AdminAddr::Tcp(addr)) => {
                let s =
                    tokio::time::timeout(connect, tokio::net::TcpStream::connect(addr)).await??;
                exchange(s, method, path, &addr.to_string(), None).await
            }
            Self::Admin(AdminAddr::Unix(path_buf)) => {
                let s = tokio::time::timeout(connect, tokio::net::UnixStream::connect(path_buf))
                    .await??;
                exchange(s, method, path, "localhost", None).await
            }
        }
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    method: &str,
    path: &str,
    host: &str,
    token: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
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
    let target = match (args.admin_listen, args.listen) {
        (Some(admin), _) => Target::Admin(admin),
        (None, listen) => Target::Public(
            listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 1318))),
            args.admin_token.filter(|t| !t.is_empty()),
        ),
    };
    let (method, done) = if args.cancel {
        ("DELETE", "admits sessions again")
    } else {
        ("POST", "is draining")
    };
    match target.request(method, "/drain").await {
        Ok((202, _)) => eprintln!("seatkeeper: {} {done}", target.describe()),
        Ok((code, body)) => {
            eprintln!("seatkeeper: drain refused ({code}): {}", body.trim());
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("seatkeeper: cannot reach {}: {e}", target.describe());
            return ExitCode::from(1);
        }
    }
    if !args.wait {
        return ExitCode::SUCCESS;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout_s);
    while tokio::time::Instant::now() < deadline {
        if let Ok((200, body)) = target.request("GET", "/sessions").await {
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
