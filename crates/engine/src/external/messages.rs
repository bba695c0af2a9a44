//! The JSON control messages of the engine link, both directions.
//! docs/ENGINE.md is their reference; keep the two in step.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A message from the engine.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum FromEngine {
    /// The first frame of every connection.
    Hello {
        /// Engine name, for logs and `status`.
        name: String,
        /// Engine version.
        #[serde(default)]
        version: String,
        /// Free-form description (kinds, models, devices …).
        #[serde(default)]
        capabilities: Map<String, Value>,
        /// Whether it can serve sessions now (false while loading a model).
        warm: bool,
        /// Most concurrent sessions it takes (the server's limit if absent).
        #[serde(default)]
        max_sessions: Option<usize>,
    },
    /// The engine became warm or cold.
    Warm {
        /// The new state.
        warm: bool,
    },
    /// Answer to `session_start`: the session runs.
    SessionReady {
        /// Whose session.
        session_id: String,
        /// Becomes the client's `ready.engine`.
        #[serde(default)]
        info: Map<String, Value>,
    },
    /// Answer to `session_start`: the engine refuses the session.
    SessionError {
        /// Whose session.
        session_id: String,
        /// Short machine-readable reason.
        #[serde(default)]
        code: String,
        /// Human-readable reason.
        #[serde(default)]
        message: String,
    },
    /// Telemetry; kept as the engine's latest figures.
    Stats {
        /// The session they describe, if any.
        #[serde(default)]
        session_id: Option<String>,
        /// The figures.
        #[serde(flatten)]
        fields: Map<String, Value>,
    },
    /// A failure: of one session (which then ends) or of the engine (logged).
    Error {
        /// The failed session, if any.
        #[serde(default)]
        session_id: Option<String>,
        /// Short machine-readable reason.
        code: String,
        /// Human-readable reason.
        #[serde(default)]
        message: String,
    },
    /// Any other `type`: ignored, so newer engines work with this server.
    #[serde(other)]
    Unknown,
}

/// A message to the engine.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum ToEngine<'a> {
    /// Answer to `hello`: the engine now serves, within these limits.
    Welcome {
        /// Protocol version (1).
        protocol: u8,
        /// "seatkeeper".
        server: &'a str,
        /// Server version.
        version: &'a str,
        /// Largest frame length the server accepts.
        max_frame_bytes: usize,
        /// Most concurrent sessions the server opens on this connection.
        max_sessions: usize,
    },
    /// A session begins.
    SessionStart {
        /// The seatkeeper session id.
        session_id: &'a str,
        /// The handle slice frames carry for this session.
        handle: u32,
        /// The client's `hello.engine`.
        config: &'a Map<String, Value>,
    },
    /// Knob changes from the client.
    Params {
        /// Whose session.
        session_id: &'a str,
        /// The client's `params` message without its `type`.
        params: &'a Map<String, Value>,
    },
    /// The client (re)attached: make the next slice a keyframe.
    Keyframe {
        /// Whose session.
        session_id: &'a str,
    },
    /// The client's transport is lost; the session waits for a resume.
    SessionDetached {
        /// Whose session.
        session_id: &'a str,
        /// How long the session waits for the client, in milliseconds.
        resume_window_ms: u64,
    },
    /// The client is back (a `keyframe` follows).
    SessionResumed {
        /// Whose session.
        session_id: &'a str,
    },
    /// The client's progress (at most 4 a second, when it changed).
    Progress {
        /// Whose session.
        session_id: &'a str,
        /// The client's last acknowledged `seq`.
        acked_seq: u64,
        /// The last `seq` sent to the client.
        sent_seq: u64,
        /// The client's playback buffer depth, when it reports one.
        #[serde(skip_serializing_if = "Option::is_none")]
        buffer_ms: Option<f64>,
    },
    /// The session is over; slices for it are discarded from now on.
    SessionEnd {
        /// Whose session.
        session_id: &'a str,
        /// Why (`bye`, `reaped:send_stall`, `evicted`, `closed`, …).
        reason: &'a str,
    },
    /// The server refuses the connection or drops it, and says why.
    Error {
        /// Short machine-readable reason.
        code: &'a str,
        /// Human-readable reason.
        message: &'a str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn engine_messages_parse() {
        let hello: FromEngine = serde_json::from_value(json!({
            "type": "hello", "name": "sine", "version": "1", "warm": true,
            "capabilities": {"kinds": [1]}
        }))
        .unwrap();
        assert!(matches!(
            hello,
            FromEngine::Hello {
                warm: true,
                max_sessions: None,
                ..
            }
        ));
        let stats: FromEngine =
            serde_json::from_value(json!({"type": "stats", "gpu_util": 0.5})).unwrap();
        match stats {
            FromEngine::Stats { session_id, fields } => {
                assert_eq!(session_id, None);
                assert_eq!(Value::Object(fields), json!({"gpu_util": 0.5}));
            }
            other => panic!("{other:?}"),
        }
        let future: FromEngine =
            serde_json::from_value(json!({"type": "telepathy", "x": 1})).unwrap();
        assert!(matches!(future, FromEngine::Unknown));
        let err = serde_json::from_value::<FromEngine>(json!({"type": "hello", "name": "x"}))
            .unwrap_err();
        assert!(err.to_string().contains("warm"), "{err}");
    }

    #[test]
    fn server_messages_have_the_documented_shape() {
        let config = Map::new();
        let start = ToEngine::SessionStart {
            session_id: "s1",
            handle: 3,
            config: &config,
        };
        assert_eq!(
            serde_json::to_value(&start).unwrap(),
            json!({"type": "session_start", "session_id": "s1", "handle": 3, "config": {}})
        );
        assert_eq!(
            serde_json::to_value(ToEngine::SessionDetached {
                session_id: "s1",
                resume_window_ms: 5000
            })
            .unwrap(),
            json!({"type": "session_detached", "session_id": "s1", "resume_window_ms": 5000})
        );
        assert_eq!(
            serde_json::to_value(ToEngine::SessionResumed { session_id: "s1" }).unwrap(),
            json!({"type": "session_resumed", "session_id": "s1"})
        );
        let progress = |buffer_ms| ToEngine::Progress {
            session_id: "s1",
            acked_seq: 7,
            sent_seq: 9,
            buffer_ms,
        };
        assert_eq!(
            serde_json::to_value(progress(None)).unwrap(),
            json!({"type": "progress", "session_id": "s1", "acked_seq": 7, "sent_seq": 9})
        );
        assert_eq!(
            serde_json::to_value(progress(Some(180.5))).unwrap(),
            json!({"type": "progress", "session_id": "s1", "acked_seq": 7, "sent_seq": 9, "buffer_ms": 180.5})
        );
        let end = ToEngine::SessionEnd {
            session_id: "s1",
            reason: "bye",
        };
        assert_eq!(
            serde_json::to_value(&end).unwrap(),
            json!({"type": "session_end", "session_id": "s1", "reason": "bye"})
        );
    }
}
