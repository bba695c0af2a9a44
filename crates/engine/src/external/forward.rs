//! One session over the engine link: opening it (`session_start` and the
//! wait for `session_ready`) and forwarding its control messages.
//!
//! The server talks to a session only through [`EngineSession`]'s
//! non-blocking `control`; a forwarder task per session moves those messages
//! into the connection's bounded write queue, again without waiting, each
//! against the session's own quota there. A session past its quota fails
//! alone ([`EngineError::Flooded`]); only a queue full beyond every quota
//! (the engine not reading at all) is [`EngineError::Stalled`].

use std::{sync::Arc, time::Duration};

use serde_json::Value;

use super::{
    conn::{Conn, Lane, Registered},
    messages::ToEngine,
};
use crate::{Control, ControlReceiver, EngineError, EngineSession, OpenRequest};

/// Starts a session on `conn` and waits (at most `limit`) for the engine's answer.
pub(super) async fn open(
    conn: Arc<Conn>,
    req: OpenRequest,
    limit: Duration,
) -> Result<EngineSession, EngineError> {
    let Registered {
        handle,
        reply,
        quota,
    } = conn.register(&req.session_id, req.sink)?;
    let start = ToEngine::SessionStart {
        session_id: &req.session_id,
        handle,
        config: &req.config,
    };
    if let Err(err) = conn.send_for(&quota, Lane::Lifecycle, &start) {
        conn.forget(handle);
        return Err(err);
    }
    // From here on, giving up (a timeout, or the caller dropping this
    // future) must tell the engine, or it would stream into the void.
    let mut guard = Abandon {
        conn: &conn,
        handle,
        reason: "closed",
    };
    let answered = tokio::select! {
        _ = req.shutdown.cancelled() => {
            guard.reason = "shutdown";
            return Err(EngineError::NotReady);
        }
        answered = tokio::time::timeout(limit, reply) => answered,
    };
    match answered {
        Ok(answer) => {
            guard.disarm();
            // A dropped sender means the connection went down first.
            answer.unwrap_or(Err(EngineError::Lost))
        }
        Err(_) => {
            guard.reason = "open_timeout";
            tracing::warn!(
                conn = conn.id,
                session_id = req.session_id,
                "the engine did not answer session_start in time"
            );
            Err(EngineError::Failed(format!(
                "the engine did not answer session_start within {} s",
                limit.as_secs_f64()
            )))
        }
    }
}

/// Ends an opening session that its opener gave up on.
struct Abandon<'a> {
    conn: &'a Conn,
    handle: u32,
    reason: &'static str,
}

impl Abandon<'_> {
    fn disarm(&mut self) {
        self.handle = 0;
    }
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if self.handle != 0 {
            self.conn.end(self.handle, self.reason);
        }
    }
}

/// Forwards one live session's control messages until it ends.
pub(super) async fn run(
    conn: Arc<Conn>,
    handle: u32,
    session_id: String,
    mut control: ControlReceiver,
) {
    // Once the session failed (queue full, engine error) its messages are
    // discarded, but the loop goes on so that its end is still noticed.
    let mut detached = false;
    loop {
        let msg = tokio::select! {
            biased;
            _ = conn.closed.cancelled() => return,
            msg = control.recv() => msg,
        };
        let msg = match msg {
            Some(Control::End(reason)) => {
                return finish(&conn, handle, &session_id, &reason, detached)
            }
            None => return finish(&conn, handle, &session_id, "closed", detached),
            Some(_) if detached => continue,
            Some(msg) => msg,
        };
        let sid = session_id.as_str();
        let sent = match msg {
            Control::Params(mut params) => {
                // `type` is the client message's, not a knob.
                if params.get("type") == Some(&Value::from("params")) {
                    params.remove("type");
                }
                let msg = ToEngine::Params {
                    session_id: sid,
                    params: &params,
                };
                conn.to_session(handle, Lane::Data, &msg, false)
            }
            Control::Keyframe => {
                let msg = ToEngine::Keyframe { session_id: sid };
                conn.to_session(handle, Lane::Lifecycle, &msg, false)
            }
            Control::Detached { resume_window_ms } => {
                let msg = ToEngine::SessionDetached {
                    session_id: sid,
                    resume_window_ms,
                };
                conn.to_session(handle, Lane::Lifecycle, &msg, false)
            }
            Control::Resumed => {
                let msg = ToEngine::SessionResumed { session_id: sid };
                conn.to_session(handle, Lane::Lifecycle, &msg, false)
            }
            // Progress is a latest value: past the quota it is skipped.
            Control::Progress(p) => {
                let msg = ToEngine::Progress {
                    session_id: sid,
                    acked_seq: p.acked_seq,
                    sent_seq: p.sent_seq,
                    buffer_ms: p.buffer_ms,
                };
                conn.to_session(handle, Lane::Data, &msg, true)
            }
            Control::End(_) => unreachable!("handled above"),
        };
        detached = !sent;
    }
}

/// The session ended on the server's side: tell the engine.
fn finish(conn: &Conn, handle: u32, session_id: &str, reason: &str, detached: bool) {
    if detached {
        // Already out of the connection's books; the engine may still be
        // running it (a full queue is not a dead engine), so say it anyway.
        conn.send_end(session_id, reason);
    } else {
        conn.end(handle, reason);
    }
}
