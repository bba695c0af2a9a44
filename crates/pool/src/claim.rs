//! What a claim hands a router: a pod, its URL and a seat token.

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::client::PoolError;

/// One reserved seat. Serializes to exactly
/// `{"pod_id": str, "url": str, "seat_token": str, "expires_in_s": number}`,
/// the line `pool claim` prints and `POST /claim` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// The pod that holds the seat.
    pub pod_id: String,
    /// The pod's advertised WebSocket URL.
    pub url: String,
    /// The secret the user sends as `seat_token` in its first `hello`.
    pub seat_token: String,
    /// Seconds until the claim lapses unless redeemed.
    pub expires_in_s: f64,
}

/// Why no seat was reserved.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// Every live pod is full, draining or not ready. `pool claim` exits 3;
    /// serializes to exactly `{"error":"no_free_seat"}`.
    #[error("no free seat in the pool")]
    NoFreeSeat,
    /// Redis could not be asked, or answered something unexpected.
    #[error(transparent)]
    Pool(#[from] PoolError),
}

impl ClaimError {
    /// The stable `error` code: `no_free_seat`, or the pool error's code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoFreeSeat => "no_free_seat",
            Self::Pool(e) => e.code(),
        }
    }
}

impl Serialize for ClaimError {
    /// `{"error": code}`, plus a `message` for anything but `no_free_seat`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let with_message = !matches!(self, Self::NoFreeSeat);
        let mut map = serializer.serialize_map(Some(1 + usize::from(with_message)))?;
        map.serialize_entry("error", self.code())?;
        if with_message {
            map.serialize_entry("message", &self.to_string())?;
        }
        map.end()
    }
}

/// The claim script's JSON answer.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum ScriptAnswer {
    Granted {
        pod_id: String,
        url: String,
        expires_in_ms: u64,
    },
    Refused {
        error: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_exact() {
        let c = Claim {
            pod_id: "p".into(),
            url: "ws://h:1/ws".into(),
            seat_token: "t".into(),
            expires_in_s: 30.0,
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"pod_id":"p","url":"ws://h:1/ws","seat_token":"t","expires_in_s":30.0}"#
        );
        assert_eq!(
            serde_json::to_string(&ClaimError::NoFreeSeat).unwrap(),
            r#"{"error":"no_free_seat"}"#
        );
    }

    #[test]
    fn script_answers_parse() {
        let a: ScriptAnswer = serde_json::from_str(
            r#"{"pod_id":"a","url":"u","expires_in_ms":30000,"epoch":4,"slot":0}"#,
        )
        .unwrap();
        assert!(matches!(
            a,
            ScriptAnswer::Granted {
                expires_in_ms: 30000,
                ..
            }
        ));
        let r: ScriptAnswer = serde_json::from_str(r#"{"error":"no_free_seat"}"#).unwrap();
        assert!(matches!(r, ScriptAnswer::Refused { error } if error == "no_free_seat"));
    }
}
