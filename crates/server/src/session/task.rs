//! The session task: it owns the seat, the engine session and the pool
//! lease, turns what happens (connection reports, requests, timers, the
//! engine, shutdown) into the machine's inputs, and carries out the
//! machine's actions. It decides nothing itself.

use std::{
    any::Any,
    collections::VecDeque,
    panic::AssertUnwindSafe,
    sync::{atomic::Ordering::Relaxed, Arc},
    time::Duration,
};

use futures_util::FutureExt;
use seatkeeper_engine::{Control, EngineSession};
use tokio::{
    sync::{mpsc, oneshot},
    time::{interval, Instant, MissedTickBehavior},
};
use tracing::{info, warn};

use super::{
    conn::{Conn, ConnEnd},
    machine::{Action, Closed, End, Input},
    AttachRequest, Event, Session,
};
use crate::{ids, metrics::EndReason, registry::Seat};

/// Shortest time between two `progress` reports to the engine.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// What the session task owns: dropping any of it ends the session's hold.
pub(crate) struct Owned {
    pub seat: Seat<Session>,
    pub engine: EngineSession,
    /// The pool lease (pool mode), dropped with the session.
    pub lease: Option<Box<dyn Any + Send>>,
}

/// The time the machine is given (tokio's clock, so paused tests agree).
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// The session task, guarded: if it panics, its seat is released by the
/// unwinding (the seat guard is owned by the task) and its connection is
/// closed with 1011 rather than left attached to nothing.
pub(crate) async fn run_guarded(
    session: Arc<Session>,
    events: mpsc::Receiver<Event>,
    owned: Owned,
) {
    let ran = AssertUnwindSafe(run(Arc::clone(&session), events, owned))
        .catch_unwind()
        .await;
    if ran.is_err() {
        tracing::error!(session_id = %session.id, "session task panicked; session ended");
        let actions = session.machine().step(now(), Input::Panicked);
        for action in actions {
            match action {
                Action::Finish(conn, how) => {
                    conn.finish(how);
                }
                Action::End(_) => session.app.metrics.ended(EndReason::Internal),
                _ => {}
            }
        }
        session.app.seat_released();
    }
}

/// The session task.
async fn run(session: Arc<Session>, mut events: mpsc::Receiver<Event>, owned: Owned) {
    let Owned {
        seat,
        mut engine,
        lease,
    } = owned;
    let app = Arc::clone(&session.app);
    // The ping and stats run on the server's shared pacer, not here.
    super::periodic::start(&session);
    let mut progress = interval(PROGRESS_EVERY);
    progress.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // Nothing to report before the first slice is sent.
    let mut last_progress = session.progress();
    // Made once, not on every pass: a fresh one would register and drop a
    // waiter (the shutdown token's list, the request `Notify`) or take the
    // runtime's handle (a timer) each time the task wakes, for every event
    // and every progress report.
    let shutdown = app.shutdown.cancelled();
    tokio::pin!(shutdown);
    let requested = session.end_requested.notified();
    tokio::pin!(requested);
    let expiry = tokio::time::sleep_until(Instant::now());
    tokio::pin!(expiry);
    let mut expiry_at = None;

    let end = loop {
        let (streaming, deadline) = {
            let m = session.machine();
            (m.streaming(), m.deadline())
        };
        if let Some(at) = deadline.filter(|&at| expiry_at != Some(at)) {
            expiry.as_mut().reset(Instant::from_std(at));
            expiry_at = Some(at);
        }
        let mut reply = None;
        let input = tokio::select! {
            _ = &mut shutdown => Input::Shutdown,
            err = engine.failed() => Input::EngineFailed(err),
            ev = events.recv() => match ev {
                // Unreachable: the session holds a sender.
                None => Input::Shutdown,
                Some(Event::Params(p)) => match engine.control(Control::Params(p)) {
                    Ok(()) => continue,
                    Err(e) => Input::EngineFailed(e),
                },
                Some(Event::ConnEnded(conn, how)) => Input::ConnEnded { conn, how: *how },
                Some(Event::Attach(asked)) => {
                    let AttachRequest { conn, resume, reply: r } = *asked;
                    reply = Some(r);
                    Input::Attach { conn, resume, token: ids::token() }
                }
            },
            _ = &mut requested => {
                requested.set(session.end_requested.notified());
                Input::Requested
            }
            _ = progress.tick(), if streaming && engine.wants_progress() => {
                let now = session.progress();
                if now != last_progress {
                    last_progress = now;
                    let _ = engine.control(Control::Progress(now));
                }
                continue;
            }
            _ = &mut expiry, if deadline.is_some() => {
                // Re-armed on the next pass if the deadline still stands.
                expiry_at = None;
                Input::Tick
            }
        };
        if let Some(end) = carry_out(&session, &engine, input, reply) {
            break end;
        }
    };

    let reason = end.engine_reason();
    engine.end(&reason);
    app.metrics.ended(end.label());
    let c = session.outbox().counters();
    if end.is_trouble() {
        warn!(session_id = %session.id, reason = %reason, slices_sent = c.slices_sent, slices_dropped = c.slices_dropped, "session ended");
    } else {
        info!(session_id = %session.id, reason = %reason, slices_sent = c.slices_sent, slices_dropped = c.slices_dropped, "session ended");
    }
    // Release: the seat (and the listing, and the token) go together.
    drop(seat);
    drop(lease);
    app.seat_released();
}

/// Steps the machine with `input` and carries out what it says; the end,
/// if this was it. `reply` answers an attach.
fn carry_out(
    session: &Session,
    engine: &EngineSession,
    input: Input<Arc<Conn>>,
    mut reply: Option<oneshot::Sender<Result<u64, Closed>>>,
) -> Option<End> {
    let mut actions: VecDeque<_> = session.machine().step(now(), input).into();
    while let Some(action) = actions.pop_front() {
        match action {
            Action::Attach {
                conn,
                token,
                resumed,
            } => {
                let generation = session.attached(token, resumed);
                if resumed {
                    session.app.metrics.resumes.fetch_add(1, Relaxed);
                    info!(session_id = %session.id, peer = %conn.peer, "session resumed");
                }
                if let Some(r) = reply.take() {
                    let _ = r.send(Ok(generation));
                }
            }
            Action::Replace { old, new } => {
                session.app.metrics.takeovers.fetch_add(1, Relaxed);
                old.finish(ConnEnd::Replaced);
                info!(session_id = %session.id, peer = %new.peer, old_peer = %old.peer, "session taken over by a resume");
            }
            Action::Engine(control) => {
                let must = matches!(control, Control::Detached { .. });
                if let Err(e) = engine.control(control) {
                    if must {
                        // The engine would produce for nobody: end here.
                        let more = session.machine().step(now(), Input::EngineFailed(e));
                        actions.extend(more);
                    }
                }
            }
            Action::Finish(conn, how) => {
                conn.finish(how);
            }
            Action::Resumed { after } => {
                info!(session_id = %session.id, detached_ms = after.as_millis() as u64, "detached session resumed");
            }
            Action::Detached { how, window } => log_detached(&session.id, &how, window),
            Action::Expired { after } => {
                info!(session_id = %session.id, detached_ms = after.as_millis() as u64, "no resume within the window: session expired");
            }
            Action::End(end) => return Some(end),
        }
    }
    // Refused (ended, or not the current token): dropping `reply` says so.
    drop(reply);
    None
}

/// The log line of a lost transport, with what was seen of the loss.
fn log_detached(session_id: &str, how: &ConnEnd, window: Duration) {
    let window_s = window.as_secs_f64();
    match how {
        ConnEnd::Reaped(ev) => info!(
            session_id,
            window_s,
            evidence = ev.reason.as_str(),
            tcp_state = ev.tcp_state.map(|s| s.name()),
            error = ev.error.as_deref(),
            queue_bytes = ev.queue_bytes,
            "transport lost; waiting for a resume"
        ),
        ConnEnd::Lost(why) => info!(
            session_id,
            window_s,
            evidence = %why,
            "transport lost; waiting for a resume"
        ),
        _ => info!(session_id, window_s, "transport lost; waiting for a resume"),
    }
}
