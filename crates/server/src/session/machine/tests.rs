//! Every lifecycle path on a simulated clock, and the seat rules as a
//! property over random event sequences.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use proptest::prelude::*;
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
    t0: Instant,
    now: Instant,
    tokens: u64,
}

impl Sim {
    fn new(window: Option<Duration>) -> Self {
        let t0 = Instant::now();
        Self {
            m: Machine::new(window),
            t0,
            now: t0,
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
    let _ = s.t0;
}

// ---- the property -------------------------------------------------------

/// One thing that can happen to one of a few sessions.
#[derive(Debug, Clone)]
enum Op {
    /// Start session `i` (if it has not started) with a fresh connection.
    Start(usize),
    /// A client presents the `k`-th token ever issued (mod how many).
    Resume(usize),
    /// The `k`-th token reaches session `i` without the registry (a
    /// racing redeem, a bug elsewhere): the machine judges it alone.
    Stray(usize, usize),
    /// The attached (or, when `old`, an earlier) connection of `i` ends.
    ConnEnded {
        i: usize,
        old: bool,
        how: u8,
    },
    Request(usize, u8),
    Shutdown(usize),
    EngineFailed(usize),
    Panicked(usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let i = 0usize..3;
    prop_oneof![
        i.clone().prop_map(Op::Start),
        (0usize..64).prop_map(Op::Resume),
        (i.clone(), 0usize..64).prop_map(|(i, k)| Op::Stray(i, k)),
        (i.clone(), any::<bool>(), 0u8..7).prop_map(|(i, old, how)| Op::ConnEnded { i, old, how }),
        (i.clone(), 0u8..3).prop_map(|(i, w)| Op::Request(i, w)),
        i.clone().prop_map(Op::Shutdown),
        i.clone().prop_map(Op::EngineFailed),
        i.prop_map(Op::Panicked),
        (0u64..40).prop_map(Op::Advance),
    ]
}

fn conn_end(how: u8) -> ConnEnd {
    match how {
        0 => lost(),
        1 => reaped(Reason::PeerClose),
        2 => reaped(Reason::SendStall),
        3 => ConnEnd::Bye,
        4 => ConnEnd::PeerClosed(None),
        5 => ConnEnd::Replaced,
        _ => reaped(Reason::Unresponsive),
    }
}

enum Kind {
    Attach,
    Other,
}

/// A session in the model: its machine, whether its seat is held, the
/// connections it has had.
struct Model {
    m: Machine<C>,
    seat: bool,
    conns: Vec<u64>,
}

/// The server around the machines, as far as the rules need it: the
/// registry's token map (a token is removed when redeemed), the seats.
struct World {
    sessions: Vec<Option<Model>>,
    /// Live tokens → session, like the registry.
    tokens: HashMap<String, usize>,
    issued: Vec<String>,
    used: HashSet<String>,
    /// Each session's newest token, as the machine should know it.
    current: Vec<Option<String>>,
    next_conn: u64,
    next_token: u64,
    now: Instant,
    window: Option<Duration>,
}

impl World {
    fn new(window: Option<Duration>) -> Self {
        Self {
            sessions: (0..3).map(|_| None).collect(),
            tokens: HashMap::new(),
            issued: Vec::new(),
            used: HashSet::new(),
            current: vec![None; 3],
            next_conn: 1,
            next_token: 1,
            now: Instant::now(),
            window,
        }
    }

    /// Steps session `i` and carries out its actions as the server does,
    /// checking the rules on the way. Returns whether an attach happened.
    fn step(&mut self, i: usize, input: Input<C>) -> bool {
        let (presented, input_kind) = match &input {
            Input::Attach { resume, .. } => (resume.clone(), Kind::Attach),
            _ => (None, Kind::Other),
        };
        let s = self.sessions[i].as_mut().expect("started");
        let was_ended = s.m.ended();
        let actions = s.m.step(self.now, input);
        if was_ended {
            assert!(actions.is_empty(), "an ended session acted: {actions:?}");
        }
        let expected = match &presented {
            Some(t) => !was_ended && self.current[i].as_ref() == Some(t),
            None => !was_ended && s.conns.is_empty(),
        };
        let mut attached = false;
        for (n, action) in actions.iter().enumerate() {
            match action {
                Action::Attach { conn, token, .. } => {
                    attached = true;
                    if let Some(t) = &presented {
                        assert!(self.used.insert(t.clone()), "token {t} worked twice");
                    }
                    self.tokens.retain(|_, owner| *owner != i);
                    self.tokens.insert(token.clone(), i);
                    self.issued.push(token.clone());
                    self.current[i] = Some(token.clone());
                    s.conns.push(conn.0);
                }
                Action::Finish(conn, _) => {
                    assert_eq!(
                        s.conns.last(),
                        Some(&conn.0),
                        "told a connection not attached"
                    );
                }
                Action::End(_) => {
                    assert_eq!(n, actions.len() - 1, "End is the last action");
                    assert!(s.seat, "a seat released twice");
                    s.seat = false;
                    self.tokens.retain(|_, owner| *owner != i);
                    self.current[i] = None;
                }
                _ => {}
            }
        }
        if matches!(input_kind, Kind::Attach) {
            assert_eq!(
                attached, expected,
                "attach with {presented:?} judged wrongly"
            );
        }
        attached
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Start(i) => {
                if self.sessions[i].is_none() {
                    self.sessions[i] = Some(Model {
                        m: Machine::new(self.window),
                        seat: true,
                        conns: Vec::new(),
                    });
                    let input = self.attach_input(None);
                    assert!(self.step(i, input), "a fresh session attaches");
                }
            }
            Op::Resume(k) => {
                if self.issued.is_empty() {
                    return;
                }
                let token = self.issued[k % self.issued.len()].clone();
                // The registry finds the session by token and forgets it.
                if let Some(i) = self.tokens.remove(&token) {
                    let input = self.attach_input(Some(token.clone()));
                    assert!(self.step(i, input), "a live token resumes its session");
                }
            }
            Op::Stray(i, k) => {
                if self.issued.is_empty() || self.sessions[i].is_none() {
                    return;
                }
                let token = self.issued[k % self.issued.len()].clone();
                let input = self.attach_input(Some(token));
                self.step(i, input);
            }
            Op::ConnEnded { i, old, how } => {
                let Some(s) = &self.sessions[i] else { return };
                let conn = if old { s.conns.first() } else { s.conns.last() };
                if let Some(&conn) = conn {
                    let how = conn_end(how);
                    self.step(i, Input::ConnEnded { conn, how });
                }
            }
            Op::Request(i, w) => {
                let why = [EndRequest::Evict, EndRequest::Bye, EndRequest::Overflow][w as usize];
                if let Some(s) = self.sessions[i].as_mut() {
                    let ok = s.m.request(why).is_ok();
                    assert_eq!(ok, !s.m.ended(), "a request is taken while alive");
                    self.step(i, Input::Requested);
                }
            }
            Op::Shutdown(i) => self.each(i, || Input::Shutdown),
            Op::EngineFailed(i) => self.each(i, || Input::EngineFailed(EngineError::Lost)),
            Op::Panicked(i) => self.each(i, || Input::Panicked),
            Op::Advance(s) => {
                self.now += Duration::from_secs(s);
                for i in 0..self.sessions.len() {
                    self.each(i, || Input::Tick);
                }
            }
        }
    }

    fn each(&mut self, i: usize, input: impl Fn() -> Input<C>) {
        if self.sessions[i].is_some() {
            self.step(i, input());
        }
    }

    fn attach_input(&mut self, resume: Option<String>) -> Input<C> {
        let conn = C(self.next_conn);
        self.next_conn += 1;
        let token = format!("tok{}", self.next_token);
        self.next_token += 1;
        Input::Attach {
            conn,
            resume,
            token,
        }
    }

    /// The rules that hold between any two steps.
    fn check(&self) {
        let live = self
            .sessions
            .iter()
            .flatten()
            .filter(|s| !s.m.ended())
            .count();
        let held = self.sessions.iter().flatten().filter(|s| s.seat).count();
        assert_eq!(held, live, "held seats equal live sessions");
        for (i, s) in self.sessions.iter().enumerate() {
            let Some(s) = s else { continue };
            match s.m.state() {
                State::Detached => {
                    assert!(s.m.conn().is_none() && s.m.deadline().is_some())
                }
                State::Streaming => assert!(s.m.conn().is_some()),
                State::Closing => {
                    assert!(s.m.conn().is_none());
                    assert!(
                        !self.tokens.values().any(|&o| o == i),
                        "an ended session's token lives"
                    );
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn seats_tokens_and_endings_hold_over_any_sequence(
        ops in proptest::collection::vec(op(), 1..80),
        window in prop_oneof![Just(None), Just(Some(WINDOW))],
    ) {
        let mut world = World::new(window);
        for op in ops {
            world.apply(op);
            world.check();
        }
    }
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
