//! Every lifecycle path on a simulated clock; the seat rules as a property
//! over random event sequences are in `tests/property.rs`.

mod property;

use std::time::{Duration, Instant};

use seatkeeper_engine::{Control, EngineError};
use seatkeeper_liveness::{Evidence, Reason};
use seatkeeper_protocol::close;

use super::{Action, AlreadyEnding, End, EndRequest, Input, Link, Machine, State};
use crate::session::conn::ConnEnd;

/// A connection in the tests: just its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct C(u64);

impl Link for C {
    fn id(&self) -> u64 {
        self.0
    }
}

const WINDOW: Duration = Duration::from_secs(30);

fn reaped(reason: Reason) -> ConnEnd {
    ConnEnd::Reaped(Evidence {
        reason,
        queue_bytes: 0,
        bytes_acked: None,
        stalled_for: Duration::ZERO,
        tcp_state: None,
        error: None,
        ping: None,
    })
}

fn lost() -> ConnEnd {
    ConnEnd::Lost("reset".into())
}

/// A machine on a simulated clock.
struct Sim {
    m: Machine<C>,
    now: Instant,
    tokens: u64,
}

impl Sim {
    fn new(window: Option<Duration>) -> Self {
        Self {
            m: Machine::new(window),
            now: Instant::now(),
            tokens: 0,
        }
    }

    fn advance(&mut self, d: Duration) -> Vec<Action<C>> {
        self.now += d;
        self.m.step(self.now, Input::Tick)
    }

    fn step(&mut self, input: Input<C>) -> Vec<Action<C>> {
        self.m.step(self.now, input)
    }

    /// Attaches `conn` (a resume when `resume` is given); the new token.
    fn attach(&mut self, conn: u64, resume: Option<&str>) -> (Vec<Action<C>>, String) {
        self.tokens += 1;
        let token = format!("t{}", self.tokens);
        let actions = self.step(Input::Attach {
            conn: C(conn),
            resume: resume.map(str::to_owned),
            token: token.clone(),
        });
        (actions, token)
    }

    /// A session streaming on connection 1; its token.
    fn streaming(window: Option<Duration>) -> (Self, String) {
        let mut s = Self::new(window);
        let (_, token) = s.attach(1, None);
        assert_eq!(s.m.state(), State::Streaming);
        (s, token)
    }

    fn ended(&mut self, conn: u64, how: ConnEnd) -> Vec<Action<C>> {
        self.step(Input::ConnEnded { conn, how })
    }
}

/// The actions in a short form that is easy to compare.
fn names(actions: &[Action<C>]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::Attach { conn, resumed, .. } => format!("attach {} resumed={resumed}", conn.0),
            Action::Replace { old, new } => format!("replace {} by {}", old.0, new.0),
            Action::Engine(Control::Keyframe) => "engine keyframe".into(),
            Action::Engine(Control::Resumed) => "engine resumed".into(),
            Action::Engine(Control::Detached { resume_window_ms }) => {
                format!("engine detached {resume_window_ms}")
            }
            Action::Engine(other) => format!("engine {other:?}"),
            Action::Finish(conn, how) => match how.goodbye() {
                crate::session::goodbye::Goodbye::Close { code, reason, .. } => {
                    format!("finish {} {code} {reason}", conn.0)
                }
                other => format!("finish {} {other:?}", conn.0),
            },
            Action::Resumed { after } => format!("resumed after {}s", after.as_secs()),
            Action::Detached { window, .. } => format!("detached for {}s", window.as_secs()),
            Action::Expired { after } => format!("expired after {}s", after.as_secs()),
            Action::End(end) => format!("end {}", end.engine_reason()),
        })
        .collect()
}

#[test]
fn a_fresh_attach_sends_ready_and_asks_for_a_keyframe() {
    let mut s = Sim::new(Some(WINDOW));
    assert_eq!(s.m.state(), State::Streaming);
    assert!(!s.m.streaming(), "no connection yet");
    let (a, _) = s.attach(1, None);
    assert_eq!(names(&a), ["attach 1 resumed=false", "engine keyframe"]);
    assert!(s.m.streaming());
    assert_eq!(s.m.conn(), Some(&C(1)));
}

#[test]
fn a_second_fresh_attach_and_a_resume_before_any_are_refused() {
    let mut s = Sim::new(Some(WINDOW));
    let (a, _) = s.attach(1, Some("t0"));
    assert!(a.is_empty(), "nothing to resume yet: {a:?}");
    let (_, _) = s.attach(2, None);
    let (a, _) = s.attach(3, None);
    assert!(a.is_empty(), "only the first attach is fresh: {a:?}");
    assert_eq!(s.m.conn(), Some(&C(2)));
}

#[test]
fn a_resume_needs_the_newest_token_and_each_token_works_once() {
    let (mut s, first) = Sim::streaming(Some(WINDOW));
    let (a, _) = s.attach(2, Some("forged"));
    assert!(a.is_empty());
    let (a, second) = s.attach(2, Some(&first));
    assert_eq!(
        names(&a),
        ["attach 2 resumed=true", "replace 1 by 2", "engine keyframe"]
    );
    let (a, _) = s.attach(3, Some(&first));
    assert!(a.is_empty(), "a used token works no more: {a:?}");
    let (a, _) = s.attach(3, Some(&second));
    assert_eq!(names(&a)[1], "replace 2 by 3");
}

#[test]
fn the_replaced_connection_ending_is_old_news() {
    let (mut s, t) = Sim::streaming(Some(WINDOW));
    s.attach(2, Some(&t));
    for how in [
        ConnEnd::Replaced,
        lost(),
        ConnEnd::Bye,
        reaped(Reason::SendStall),
    ] {
        assert!(s.ended(1, how).is_empty());
    }
    assert!(s.m.streaming());
    assert_eq!(s.m.conn(), Some(&C(2)));
}

#[test]
fn a_lost_transport_detaches_and_a_resume_brings_it_back() {
    let (mut s, t) = Sim::streaming(Some(WINDOW));
    let a = s.ended(1, lost());
    assert_eq!(names(&a), ["detached for 30s", "engine detached 30000"]);
    assert_eq!(s.m.state(), State::Detached);
    assert_eq!(s.m.conn(), None);
    assert_eq!(s.m.deadline(), Some(s.now + WINDOW));
    assert!(!s.m.streaming(), "no pings or stats while detached");
    assert!(s.advance(Duration::from_secs(29)).is_empty());
    let (a, _) = s.attach(2, Some(&t));
    assert_eq!(
        names(&a),
        [
            "attach 2 resumed=true",
            "resumed after 29s",
            "engine resumed",
            "engine keyframe"
        ]
    );
    assert_eq!(s.m.deadline(), None);
    assert!(s.m.streaming());
}

#[test]
fn a_peer_close_verdict_detaches_like_a_lost_transport() {
    let (mut s, _) = Sim::streaming(Some(WINDOW));
    let a = s.ended(1, reaped(Reason::PeerClose));
    assert_eq!(names(&a)[0], "detached for 30s");
}

#[test]
fn no_resume_within_the_window_expires_the_session() {
    let (mut s, t) = Sim::streaming(Some(WINDOW));
    s.ended(1, lost());
    let a = s.advance(WINDOW);
    assert_eq!(names(&a), ["expired after 30s", "end expired"]);
    assert!(s.m.ended());
    let (a, _) = s.attach(2, Some(&t));
    assert!(a.is_empty(), "an expired session takes no resume");
}

#[test]
fn without_a_resume_window_a_lost_transport_ends_the_session() {
    let (mut s, _) = Sim::streaming(None);
    assert_eq!(names(&s.ended(1, lost())), ["end lost"]);
    let (mut s, _) = Sim::streaming(None);
    assert_eq!(
        names(&s.ended(1, reaped(Reason::PeerClose))),
        ["end reaped:peer_close"]
    );
}

#[test]
fn a_stalled_or_unresponsive_client_is_reaped_even_with_a_window() {
    for (reason, label) in [
        (Reason::SendStall, "end reaped:send_stall"),
        (Reason::Unresponsive, "end reaped:unresponsive"),
    ] {
        let (mut s, t) = Sim::streaming(Some(WINDOW));
        assert_eq!(names(&s.ended(1, reaped(reason))), [label]);
        assert!(s.attach(2, Some(&t)).0.is_empty());
    }
}

#[test]
fn the_client_ending_its_connection_ends_the_session_without_a_word() {
    let violation = ConnEnd::Violation {
        code: close::POLICY,
        error: seatkeeper_protocol::ServerMsg::error("rate_limited", "slow down"),
    };
    for (how, label) in [
        (ConnEnd::Bye, "end bye"),
        (ConnEnd::PeerClosed(Some(1000)), "end client_close"),
        (violation, "end violation"),
    ] {
        let (mut s, _) = Sim::streaming(Some(WINDOW));
        assert_eq!(names(&s.ended(1, how)), [label]);
    }
}

#[test]
fn requests_end_the_session_once_and_tell_the_connection() {
    for (why, said) in [
        (
            EndRequest::Evict,
            vec!["finish 1 1000 evicted", "end evicted"],
        ),
        (EndRequest::Bye, vec!["finish 1 1000 bye", "end bye"]),
        (
            EndRequest::Overflow,
            vec!["finish 1 1008 too far behind", "end overflow"],
        ),
    ] {
        let (mut s, _) = Sim::streaming(Some(WINDOW));
        assert_eq!(s.m.request(why), Ok(()));
        assert_eq!(s.m.request(EndRequest::Evict), Err(AlreadyEnding));
        assert_eq!(names(&s.step(Input::Requested)), said);
        assert_eq!(s.m.request(EndRequest::Evict), Err(AlreadyEnding));
        assert!(s.step(Input::Requested).is_empty());
    }
}

#[test]
fn an_eviction_of_a_detached_session_has_no_one_to_tell() {
    let (mut s, _) = Sim::streaming(Some(WINDOW));
    s.ended(1, lost());
    s.m.request(EndRequest::Evict).unwrap();
    assert_eq!(names(&s.step(Input::Requested)), ["end evicted"]);
}

#[test]
fn engine_failures_say_whose_fault_it_was() {
    let (mut s, _) = Sim::streaming(Some(WINDOW));
    let a = s.step(Input::EngineFailed(EngineError::Lost));
    assert_eq!(
        names(&a),
        ["finish 1 1011 engine_lost", "end engine:engine_lost"]
    );
    let (mut s, _) = Sim::streaming(Some(WINDOW));
    let a = s.step(Input::EngineFailed(EngineError::Flooded("params".into())));
    assert!(names(&a)[0].starts_with("finish 1 1008 "), "{a:?}");
}

#[test]
fn shutdown_closes_with_1001_in_every_phase() {
    let mut s = Sim::new(Some(WINDOW));
    assert_eq!(names(&s.step(Input::Shutdown)), ["end shutdown"]);
    let (mut s, _) = Sim::streaming(Some(WINDOW));
    assert_eq!(
        names(&s.step(Input::Shutdown)),
        ["finish 1 1001 server shutting down", "end shutdown"]
    );
    let (mut s, _) = Sim::streaming(Some(WINDOW));
    s.ended(1, lost());
    assert_eq!(names(&s.step(Input::Shutdown)), ["end shutdown"]);
}

#[test]
fn a_panic_closes_with_1011() {
    let (mut s, _) = Sim::streaming(Some(WINDOW));
    assert_eq!(
        names(&s.step(Input::Panicked)),
        ["finish 1 1011 internal error", "end internal"]
    );
}

#[test]
fn an_ended_session_does_nothing_more() {
    let (mut s, t) = Sim::streaming(Some(WINDOW));
    s.step(Input::Shutdown);
    assert_eq!(s.m.state(), State::Closing);
    assert!(s.attach(2, Some(&t)).0.is_empty());
    assert!(s.ended(1, lost()).is_empty());
    assert!(s.step(Input::EngineFailed(EngineError::Lost)).is_empty());
    assert!(s.step(Input::Panicked).is_empty());
    assert!(s.advance(WINDOW * 2).is_empty());
    assert!(s.m.conn().is_none());
}

#[test]
fn end_mapping_is_one_table() {
    // Every ending has a metric label and an engine reason; those that end
    // on the server's side tell the connection with a code.
    let all = [
        End::Bye,
        End::ClientClose,
        End::Reaped(Reason::SendStall),
        End::Lost,
        End::Expired,
        End::Evicted,
        End::Violation,
        End::Overflow,
        End::Engine(EngineError::Lost),
        End::Shutdown,
        End::Internal,
    ];
    for end in all {
        assert!(!end.engine_reason().is_empty());
        let _ = end.label();
        let told = end.farewell().is_some();
        let own_terms = matches!(
            end,
            End::ClientClose | End::Reaped(_) | End::Lost | End::Violation
        );
        assert_eq!(told, !own_terms, "{end:?}");
    }
}
