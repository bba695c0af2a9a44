//! Where the chaos tool may send traffic: parsing `ws://` and `http://`
//! URLs, and the guard that keeps every connection on this machine.

use std::net::{IpAddr, SocketAddr};

use crate::{netns, ChaosError};

/// A parsed `ws://HOST:PORT/PATH` or `http://HOST:PORT/PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Resolved address.
    pub addr: SocketAddr,
    /// `HOST:PORT` as written (for the `Host` header).
    pub authority: String,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Target {
    /// The WebSocket route (`/ws`) of a server at `addr`.
    pub fn ws(addr: SocketAddr) -> Self {
        Self {
            addr,
            authority: addr.to_string(),
            path: "/ws".to_owned(),
        }
    }

    /// Parses and resolves `url` (scheme `ws` or `http`; no TLS).
    pub async fn parse(url: &str) -> Result<Self, ChaosError> {
        let bad = |why: &str| ChaosError::Url(url.to_owned(), why.to_owned());
        let rest = url
            .strip_prefix("ws://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| bad("expected ws:// or http:// (TLS is not supported)"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if !authority.contains(':') {
            return Err(bad("the port is required"));
        }
        let addr = tokio::net::lookup_host(authority)
            .await
            .map_err(|e| bad(&e.to_string()))?
            .next()
            .ok_or_else(|| bad("host resolves to no address"))?;
        Ok(Self {
            addr,
            authority: authority.to_owned(),
            path: path.to_owned(),
        })
    }

    /// The `/sessions` URL of the same server.
    pub fn sessions_url(&self) -> String {
        format!("http://{}/sessions", self.authority)
    }

    /// Fails unless the address is on this machine: loopback or one end of
    /// the chaos namespace's veth pair.
    pub fn check_local(&self, allow_remote: bool) -> Result<(), ChaosError> {
        if allow_remote || is_local(self.addr.ip()) {
            Ok(())
        } else {
            Err(ChaosError::Forbidden(self.addr))
        }
    }
}

/// Loopback, or an address of the namespace this crate creates.
pub fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback()
        || ip == IpAddr::V4(netns::HOST_ADDR)
        || ip == IpAddr::V4(netns::NS_ADDR)
        || crate::field::is_field_addr(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parses_and_guards() {
        let t = Target::parse("ws://127.0.0.1:1318/ws").await.unwrap();
        assert_eq!(t.addr.port(), 1318);
        assert_eq!(t.path, "/ws");
        assert_eq!(t.sessions_url(), "http://127.0.0.1:1318/sessions");
        assert!(t.check_local(false).is_ok());
        let far = Target::parse("ws://192.0.2.7:80/ws").await.unwrap();
        assert!(far.check_local(false).is_err());
        assert!(Target::parse("wss://127.0.0.1:1/ws").await.is_err());
        assert!(Target::parse("ws://127.0.0.1/ws").await.is_err());
    }
}
