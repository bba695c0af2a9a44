//! JSON text messages. Client messages are parsed strictly (nothing a client
//! sends is trusted); server messages are serialized from typed structs.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A message from the client, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMsg {
    /// First message: take a seat or resume a session.
    Hello(Hello),
    /// Cumulative acknowledgement: every slice with `seq` at or below was processed.
    Ack {
        /// Highest processed sequence number.
        seq: u64,
        /// The client's playback buffer depth in milliseconds, if it reports
        /// one (passed on to the engine in `progress`).
        buffer_ms: Option<f64>,
    },
    /// Knobs for the engine: the whole object, `type` included.
    Params(Map<String, Value>),
    /// Clean end: release the seat now.
    Bye,
}

/// An ack read without building a JSON value: one comes per slice, and the
/// value (a map, its keys and strings) was most of the allocations per
/// slice. It reads a flat object of `"type":"ack"`, `"seq"` and an optional
/// `"buffer_ms"` of whole milliseconds, in any order, with any JSON
/// whitespace — what the clients write (`JSON.stringify`, Python's `json`,
/// serde's sorted keys). Anything else (another key, an escape, a
/// fraction, a leading zero, a repeated key, numbers too long to be exact)
/// is `None` and goes through the full parser, which reads the same text to
/// the same message.
fn plain_ack(text: &str) -> Option<ClientMsg> {
    let mut s = Scan {
        b: text.as_bytes(),
        at: 0,
    };
    s.ws();
    s.eat(b'{')?;
    let (mut ack, mut seq, mut buffer_ms) = (false, None, None);
    loop {
        s.ws();
        let key = s.key()?;
        s.ws();
        match key {
            b"type" if !ack => {
                s.lit(br#""ack""#)?;
                ack = true;
            }
            // u64::MAX has 20 digits.
            b"seq" if seq.is_none() => seq = Some(s.uint(20)?),
            // 15 digits of milliseconds are exact in an f64.
            b"buffer_ms" if buffer_ms.is_none() => buffer_ms = Some(s.uint(15)? as f64),
            _ => return None,
        }
        s.ws();
        match s.next()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    s.ws();
    (ack && s.at == s.b.len()).then_some(ClientMsg::Ack {
        seq: seq?,
        buffer_ms,
    })
}

/// A cursor over the bytes of [`plain_ack`]'s text.
struct Scan<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Scan<'a> {
    fn next(&mut self) -> Option<u8> {
        let c = *self.b.get(self.at)?;
        self.at += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn lit(&mut self, lit: &[u8]) -> Option<()> {
        let end = self.at + lit.len();
        (self.b.get(self.at..end)? == lit).then(|| self.at = end)
    }

    /// JSON whitespace.
    fn ws(&mut self) {
        while matches!(self.b.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// A key without escapes, and the colon after it.
    fn key(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.at;
        while !matches!(self.next()?, b'"' | b'\\') {}
        let b = self.b;
        // An escape ends the shortcut: the full parser reads it.
        (b[self.at - 1] == b'"').then_some(())?;
        let key = &b[start..self.at - 1];
        self.ws();
        self.eat(b':')?;
        Some(key)
    }

    /// A JSON non-negative integer of at most `max_digits` digits that fits
    /// a `u64`, followed by no fraction or exponent.
    fn uint(&mut self, max_digits: usize) -> Option<u64> {
        let start = self.at;
        while self.b.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        let digits = &self.b[start..self.at];
        let ok = !digits.is_empty()
            && digits.len() <= max_digits
            && (digits[0] != b'0' || digits.len() == 1)
            && !matches!(self.b.get(self.at), Some(b'.' | b'e' | b'E'));
        ok.then(|| std::str::from_utf8(digits).ok()?.parse().ok())
            .flatten()
    }
}

/// The `hello` message.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Hello {
    /// A client-chosen label, shown in `/sessions`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// A resume token from an earlier `ready`.
    #[serde(default)]
    pub resume: Option<String>,
    /// A seat token from the pool (pool mode).
    #[serde(default)]
    pub seat_token: Option<String>,
    /// Engine configuration, handed to the engine unchanged.
    #[serde(default)]
    pub engine: Option<Map<String, Value>>,
}

/// Longest `client_id` accepted: it is echoed in `/sessions` and logs.
pub const MAX_CLIENT_ID_LEN: usize = 128;
/// Longest token (resume or seat) accepted.
pub const MAX_TOKEN_LEN: usize = 256;

/// Why a client text frame was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON at all: close 1007.
    #[error("text frame is not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object: close 1007.
    #[error("text frame is not a JSON object")]
    NotObject,
    /// An object without a string `type`: close 1007.
    #[error("message has no string \"type\" field")]
    MissingType,
    /// A known type with fields of the wrong shape: answered with an error.
    #[error("bad \"{kind}\" message: {detail}")]
    BadField {
        /// The message type.
        kind: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A type this server does not know: answered with `unknown_type`.
    #[error("unknown message type {0:?}")]
    UnknownType(String),
}

impl ParseError {
    /// Whether the connection must be closed (1007) rather than answered.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::NotJson(_) | Self::NotObject | Self::MissingType)
    }

    /// The `error.code` sent to the client.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotJson(_) | Self::NotObject | Self::MissingType => "invalid_payload",
            Self::BadField { .. } => "bad_message",
            Self::UnknownType(_) => "unknown_type",
        }
    }
}

impl ClientMsg {
    /// Parses one client text frame.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        match plain_ack(text) {
            Some(ack) => Ok(ack),
            None => Self::parse_json(text),
        }
    }

    /// [`parse`](Self::parse) through a JSON value, for every message.
    fn parse_json(text: &str) -> Result<Self, ParseError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| ParseError::NotJson(e.to_string()))?;
        let Value::Object(map) = value else {
            return Err(ParseError::NotObject);
        };
        let kind = match map.get("type") {
            Some(Value::String(s)) => s.as_str(),
            _ => return Err(ParseError::MissingType),
        };
        match kind {
            "hello" => {
                let hello: Hello = serde_json::from_value(Value::Object(map.clone()))
                    .map_err(|e| bad("hello", e))?;
                let too_long = |s: &Option<String>, max| s.as_ref().is_some_and(|s| s.len() > max);
                if too_long(&hello.client_id, MAX_CLIENT_ID_LEN) {
                    return Err(bad("hello", "client_id is longer than 128 bytes"));
                }
                if too_long(&hello.resume, MAX_TOKEN_LEN)
                    || too_long(&hello.seat_token, MAX_TOKEN_LEN)
                {
                    return Err(bad("hello", "token is longer than 256 bytes"));
                }
                Ok(Self::Hello(hello))
            }
            "ack" => {
                let seq = match map.get("seq") {
                    Some(Value::Number(n)) => n
                        .as_u64()
                        .ok_or_else(|| bad("ack", "seq must be an integer in 0..2^64"))?,
                    _ => return Err(bad("ack", "seq must be an integer")),
                };
                let buffer_ms = match map.get("buffer_ms") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(
                        v.as_f64()
                            .filter(|ms| ms.is_finite() && *ms >= 0.0)
                            .ok_or_else(|| bad("ack", "buffer_ms must be a number of 0 or more"))?,
                    ),
                };
                Ok(Self::Ack { seq, buffer_ms })
            }
            "params" => Ok(Self::Params(map)),
            "bye" => Ok(Self::Bye),
            other => Err(ParseError::UnknownType(truncate(other, 64))),
        }
    }
}

fn bad(kind: &'static str, detail: impl ToString) -> ParseError {
    ParseError::BadField {
        kind,
        detail: detail.to_string(),
    }
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// The flow-control window announced in `ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Most slices sent and not acknowledged.
    pub slices: u32,
    /// Most payload bytes sent and not acknowledged.
    pub bytes: u64,
}

/// Telemetry for the client (coalesced: only the newest matters).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Slices sent in this session.
    pub slices_sent: u64,
    /// Slices dropped by flow control in this session.
    pub slices_dropped: u64,
    /// Payload bytes sent in this session.
    pub bytes_sent: u64,
    /// Highest cumulative ack received.
    pub last_ack_seq: u64,
    /// Slices sent and not yet acknowledged.
    pub in_flight: u32,
    /// Last ping round trip, microseconds.
    pub rtt_us: Option<u64>,
    /// Server wall clock, milliseconds since the Unix epoch.
    pub server_time_ms: u64,
}

/// A message from the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerMsg {
    /// The session is live.
    Ready {
        /// Session id (stable across resumes).
        session_id: String,
        /// Single-use token for `hello.resume`.
        resume_token: String,
        /// Whether this `ready` reattached an existing session.
        resumed: bool,
        /// The flow-control window.
        window: Window,
        /// Engine description: name and knobs.
        engine: Value,
    },
    /// No seat; the server closes with 1013.
    Busy {
        /// Suggested wait before retrying.
        retry_after_s: f64,
    },
    /// A refusal or failure.
    Error {
        /// Machine-readable code.
        code: String,
        /// What a developer can act on.
        message: String,
    },
    /// Telemetry.
    Stats(Stats),
}

impl ServerMsg {
    /// An `error` message.
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        Self::Error {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// Serializes to the JSON text of a frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }
}

#[cfg(test)]
mod tests;
