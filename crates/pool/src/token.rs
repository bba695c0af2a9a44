//! Seat tokens: minted by the claimer, known to Redis only as a hash.

use sha2::{Digest, Sha256};

/// Mints a seat token: 256 bits from the thread-local CSPRNG, as 64
/// lowercase hex digits (URL- and JSON-safe without escaping).
pub(crate) fn mint() -> String {
    hex(&rand::random::<[u8; 32]>())
}

/// The seat token of a caller-chosen claim id: a retry of the same claim
/// must hand out the same token, and no process keeps it (Redis holds
/// only its hash).
pub(crate) fn derive(claim_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"seatkeeper seat token v1\0");
    h.update(claim_id.as_bytes());
    hex(&h.finalize())
}

/// The lowercase hex SHA-256 of a token: what Redis stores and the scripts
/// compare. A leaked Redis dump therefore holds no redeemable token.
pub(crate) fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// What is wrong with a token before any Redis lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Plausible: worth hashing and looking up.
    Ok,
    /// Empty: the hello carried no token.
    Missing,
    /// Too short to hold 128 random bits, too long, or not printable ASCII.
    Malformed,
}

/// Tokens minted by other routers are accepted if they could carry 128
/// random bits (at least 22 characters) and stay printable and bounded.
pub(crate) fn shape(token: &str) -> Shape {
    if token.is_empty() {
        Shape::Missing
    } else if !(22..=256).contains(&token.len()) || !token.bytes().all(|b| b.is_ascii_graphic()) {
        Shape::Malformed
    } else {
        Shape::Ok
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn minted_tokens_are_long_distinct_and_well_shaped() {
        let a = mint();
        let b = mint();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(shape(&a), Shape::Ok);
    }

    #[test]
    fn shapes() {
        assert_eq!(shape(""), Shape::Missing);
        assert_eq!(shape("short"), Shape::Malformed);
        assert_eq!(shape(&"x".repeat(257)), Shape::Malformed);
        assert_eq!(shape(&format!("{} ", "x".repeat(30))), Shape::Malformed);
        assert_eq!(shape(&"x".repeat(22)), Shape::Ok);
    }
}
