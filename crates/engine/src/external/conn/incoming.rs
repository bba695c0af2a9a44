//! What a connection does with each message the engine sends after `hello`.

use std::sync::{atomic::Ordering, Arc};

use seatkeeper_protocol::slice::{Frame, FLAG_DROPPABLE, FLAG_KEYFRAME};
use serde_json::{Map, Value};

use super::{Conn, Phase, ProtocolError};
use crate::{
    external::{frame::SliceHead, messages::FromEngine},
    EngineError, EngineSession, Slice,
};

impl Conn {
    /// Handles one slice from the engine.
    pub(in crate::external) fn on_slice(
        &self,
        head: SliceHead,
        frame: Frame,
    ) -> Result<(), ProtocolError> {
        let sink = {
            let st = self.state();
            match st.sessions.get(&head.handle) {
                Some(entry) => Some(entry.sink.clone()),
                None if head.handle == 0 || head.handle >= st.next_handle => {
                    return Err(ProtocolError::UnknownHandle(head.handle))
                }
                None => None,
            }
        };
        let Some(sink) = sink else {
            // The session ended while this slice was on its way.
            self.discarded.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        self.slices.fetch_add(1, Ordering::Relaxed);
        sink.push(Slice {
            kind: head.kind,
            // Only the flags the client protocol defines reach the client.
            flags: head.flags & (FLAG_DROPPABLE | FLAG_KEYFRAME),
            timestamp_us: head.timestamp_us,
            frame,
        });
        Ok(())
    }

    /// Handles one JSON message after the `hello`.
    pub(in crate::external) fn on_json(self: &Arc<Self>, body: &[u8]) -> Result<(), ProtocolError> {
        match serde_json::from_slice::<FromEngine>(body)? {
            FromEngine::Hello { .. } => return Err(ProtocolError::Unexpected("a second hello")),
            FromEngine::Warm { warm } => {
                tracing::info!(conn = self.id, engine = %self.hello.name, warm, "engine warmth changed");
                self.warm.store(warm, Ordering::Relaxed);
            }
            FromEngine::SessionReady { session_id, info } => self.on_ready(&session_id, info)?,
            FromEngine::SessionError {
                session_id,
                code,
                message,
            } => {
                let handle = self.state().lookup(&session_id)?;
                if let Some(h) = handle {
                    tracing::info!(
                        conn = self.id,
                        session_id,
                        code,
                        message,
                        "engine refused a session"
                    );
                    self.fail(h, EngineError::Failed(describe(&code, &message)));
                }
            }
            FromEngine::Error {
                session_id: Some(session_id),
                code,
                message,
            } => {
                let handle = self.state().lookup(&session_id)?;
                if let Some(h) = handle {
                    tracing::warn!(
                        conn = self.id,
                        session_id,
                        code,
                        message,
                        "engine failed a session"
                    );
                    self.fail(h, EngineError::Failed(describe(&code, &message)));
                }
            }
            FromEngine::Error {
                session_id: None,
                code,
                message,
            } => {
                tracing::warn!(conn = self.id, engine = %self.hello.name, code, message, "engine reported an error");
            }
            FromEngine::Stats { session_id, fields } => {
                let mut st = self.state();
                if let Some(id) = &session_id {
                    if let Some(h) = st.lookup(id)? {
                        if let Some(entry) = st.sessions.get(&h) {
                            entry.stats.set(fields.clone());
                        }
                    }
                }
                tracing::debug!(conn = self.id, ?session_id, stats = ?fields, "engine stats");
                let skipped = st.gauges.update(&fields);
                if skipped > 0 {
                    tracing::debug!(
                        conn = self.id,
                        skipped,
                        "stats fields left out of /metrics (name not [a-z_][a-z0-9_]{{0,63}}, or over 32 names)"
                    );
                }
                st.stats = Some(fields);
            }
            FromEngine::Unknown => {
                tracing::debug!(conn = self.id, "ignoring an engine message of unknown type");
            }
        }
        Ok(())
    }

    /// `session_ready`: the opening session becomes live and `open` returns it.
    fn on_ready(
        self: &Arc<Self>,
        session_id: &str,
        info: Map<String, Value>,
    ) -> Result<(), ProtocolError> {
        let (handle, tx, session, control) = {
            let mut st = self.state();
            let Some(handle) = st.lookup(session_id)? else {
                return Ok(());
            };
            let entry = st.sessions.get_mut(&handle).expect("looked up");
            if matches!(entry.phase, Phase::Live(_)) {
                tracing::warn!(
                    conn = self.id,
                    session_id,
                    "ignoring a second session_ready"
                );
                return Ok(());
            }
            if let Some(knobs) = info.get("knobs") {
                if let Err(why) = crate::knobs::validate(knobs) {
                    drop(st);
                    tracing::warn!(
                        conn = self.id,
                        session_id,
                        "engine described its knobs wrongly: {why}"
                    );
                    let message = format!("bad_knobs: the engine's knob list is invalid: {why}");
                    if let Some(entry) = self.state().remove(handle) {
                        super::report(entry, EngineError::Failed(message));
                    }
                    self.send_end(session_id, "bad_knobs");
                    return Ok(());
                }
            }
            let (session, side) =
                EngineSession::pair_with_stats(Value::Object(info), entry.stats.clone());
            let session = session.with_progress();
            let (control, reporter) = side.split();
            match std::mem::replace(&mut entry.phase, Phase::Live(reporter)) {
                Phase::Opening(tx) => (handle, tx, session, control),
                Phase::Live(_) => unreachable!("checked above"),
            }
        };
        tokio::spawn(crate::external::forward::run(
            self.clone(),
            handle,
            session_id.to_owned(),
            control,
        ));
        // If `open` gave up meanwhile, the session comes back and is dropped
        // here, which the forwarder turns into `session_end` (`closed`).
        let _ = tx.send(Ok(session));
        Ok(())
    }
}

fn describe(code: &str, message: &str) -> String {
    match (code.is_empty(), message.is_empty()) {
        (true, _) => message.to_owned(),
        (false, true) => code.to_owned(),
        (false, false) => format!("{code}: {message}"),
    }
}
