//! Session ids, unguessable tokens, wall-clock time.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngCore;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn random_b64(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut raw);
    // 6 bits a character; `bytes` is a multiple of 3.
    raw.chunks(3)
        .flat_map(|c| {
            let n = (c[0] as u32) << 16 | (c[1] as u32) << 8 | c[2] as u32;
            [18, 12, 6, 0].map(|s| ALPHABET[(n >> s & 63) as usize] as char)
        })
        .collect()
}

/// A session id: 8 characters, 48 random bits (ids are not secrets).
pub(crate) fn session_id() -> String {
    random_b64(6)
}

/// A resume or seat token: 32 characters, 192 random bits.
pub(crate) fn token() -> String {
    random_b64(24)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_have_their_sizes_and_differ() {
        assert_eq!(super::session_id().len(), 8);
        let (a, b) = (super::token(), super::token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| super::ALPHABET.contains(&c)));
    }
}
