//! A one-request HTTP/1.1 client (`Connection: close`), enough for
//! `/sessions`, `/metrics` and `/healthz` of any server under test — the
//! tool's and the tests' alike, with [`exchange`] as the escape hatch for a
//! request written by hand — and the probe that tells whether a session
//! still holds its seat.

use std::{net::SocketAddr, time::Duration};

use serde_json::Value;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};

use crate::{target::Target, ChaosError};

/// Longest wait for one whole response.
const RESPONSE_LIMIT: Duration = Duration::from_secs(10);

/// Sends one request to `addr`; returns status and body (de-chunked).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    exchange(addr, req.as_bytes()).await
}

/// The escape hatch: writes `request` to `addr` exactly as given (a `Host`
/// trick, a missing header) and reads the answer to the end.
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> std::io::Result<(u16, String)> {
    let s = tokio::time::timeout(RESPONSE_LIMIT, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::other("HTTP connect timed out"))??;
    exchange_on(s, request).await
}

/// [`exchange`] over a stream already open (a TLS session): writes
/// `request`, reads to EOF; returns status and body (de-chunked).
pub async fn exchange_on<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    request: &[u8],
) -> std::io::Result<(u16, String)> {
    let talk = async {
        s.write_all(request).await?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(RESPONSE_LIMIT, talk)
        .await
        .map_err(|_| std::io::Error::other("HTTP response timed out"))??;
    parse(&raw)
}

/// Status and (de-chunked) body of a whole response.
fn parse(raw: &[u8]) -> std::io::Result<(u16, String)> {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response: {head}")))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Reads a server's `/sessions` route.
#[derive(Debug, Clone)]
pub struct SessionsProbe {
    target: Target,
}

impl SessionsProbe {
    /// A probe of `url` (an `http://HOST:PORT/sessions` URL).
    pub async fn new(url: &str) -> Result<Self, ChaosError> {
        Ok(Self {
            target: Target::parse(url).await?,
        })
    }

    /// The address polled.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The whole `/sessions` document.
    pub async fn get(&self) -> Result<Value, ChaosError> {
        let (status, body) = http(self.target.addr, "GET", &self.target.path, &[], "")
            .await
            .map_err(ChaosError::io("GET /sessions"))?;
        if status != 200 {
            return Err(ChaosError::Protocol(format!("/sessions answered {status}")));
        }
        serde_json::from_str(&body)
            .map_err(|e| ChaosError::Protocol(format!("/sessions is not JSON: {e}")))
    }

    /// Whether the session `id` is still listed (its seat is held, whatever
    /// its state: `detached` still holds a seat). Asks `GET /sessions/{id}`
    /// first — one session, not the whole list, which matters when a
    /// thousand clients poll at once — and confirms a 404 with the list, for
    /// servers without that route.
    pub async fn holds(&self, id: &str) -> Result<bool, ChaosError> {
        let path = format!("{}/{id}", self.target.path.trim_end_matches('/'));
        if let Ok((200, body)) = http(self.target.addr, "GET", &path, &[], "").await {
            // Only a Session object naming `id` says so: a server without
            // the route may answer any /sessions/… with the whole list.
            match serde_json::from_str::<Value>(&body) {
                Ok(v) if v["id"] == id => return Ok(true),
                Ok(v) if v["sessions"].is_array() => {
                    return Ok(v["sessions"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|s| s["id"] == id)))
                }
                _ => {}
            }
        }
        let doc = self.get().await?;
        Ok(doc["sessions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s["id"] == id)))
    }

    /// The listed session `id`, if any.
    pub async fn session(&self, id: &str) -> Result<Option<Value>, ChaosError> {
        let doc = self.get().await?;
        Ok(doc["sessions"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["id"] == id).cloned()))
    }

    /// Seats held right now.
    pub async fn held(&self) -> Result<u64, ChaosError> {
        Ok(self.get().await?["seats"]["held"].as_u64().unwrap_or(0))
    }

    /// Polls every `every` until `id` is no longer listed or `limit` after
    /// `since` passes; returns the time from `since` to the first poll that
    /// saw it gone. A failed poll counts as "still held" (a busy server must
    /// not fake a release).
    pub async fn wait_released(
        &self,
        id: &str,
        since: tokio::time::Instant,
        every: Duration,
        limit: Duration,
    ) -> Option<Duration> {
        loop {
            if let Ok(false) = self.holds(id).await {
                return Some(since.elapsed());
            }
            if since.elapsed() >= limit {
                return None;
            }
            tokio::time::sleep(every).await;
        }
    }
}
