//! The seat rules as a property over random event sequences: a few
//! sessions, a model of the registry's token map, and every step checked.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use proptest::prelude::*;
use seatkeeper_engine::EngineError;
use seatkeeper_liveness::Reason;

use super::{lost, reaped, C, WINDOW};
use crate::session::{
    conn::ConnEnd,
    machine::{Action, EndRequest, Input, Machine, State},
};

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
