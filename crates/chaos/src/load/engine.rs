//! The load generator's loop: every session on this one thread, one
//! `mio::Poll` (epoll, edge-triggered), no task or timer per session — the
//! C epoll client's shape. Sessions are opened while fewer than the connect
//! concurrency are setting up; each readiness event is handled by its
//! [`Conn`]; handshake deadlines sit in one queue in the order they were
//! set (so it stays sorted); the end of the run is one deadline for all.

use std::{
    collections::VecDeque,
    io,
    time::{Duration, Instant},
};

use mio::{net::TcpStream, Events, Interest, Poll, Token};

use super::conn::{Conn, Ctx, Done, Outcome, Phase};
use crate::{client::HANDSHAKE_LIMIT, hist::Histogram, target::Target};

/// How long the end of the run waits for the server to answer `bye` and
/// the close frame (the server closes TCP once it has).
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Bytes one read takes.
const READ_CHUNK: usize = 64 << 10;

/// What to run.
pub(super) struct Plan {
    pub(super) target: Target,
    pub(super) sessions: usize,
    pub(super) duration: Duration,
    pub(super) settle: Duration,
    pub(super) connect_concurrency: usize,
    pub(super) ack_each: bool,
    pub(super) bye: bool,
}

/// What happened.
pub(super) struct Ran {
    pub(super) outcomes: Vec<Outcome>,
    pub(super) hist: Histogram,
    /// From the first connect to the end of streaming.
    pub(super) elapsed: Duration,
}

struct Engine {
    poll: Poll,
    conns: Vec<Option<Conn>>,
    outcomes: Vec<Outcome>,
    /// Sessions opened and not yet over.
    live: usize,
    /// Of those, still setting up.
    handshaking: usize,
    /// (deadline, session) in the order they were set.
    deadlines: VecDeque<(Instant, usize)>,
}

/// Runs `plan` on this thread.
pub(super) fn run(plan: &Plan) -> io::Result<Ran> {
    let n = plan.sessions;
    let mut e = Engine {
        poll: Poll::new()?,
        conns: (0..n).map(|_| None).collect(),
        outcomes: (0..n).map(|_| Outcome::default()).collect(),
        live: 0,
        handshaking: 0,
        deadlines: VecDeque::new(),
    };
    let mut hist = Histogram::default();
    let start = Instant::now();
    let mut ctx = Ctx {
        authority: &plan.target.authority,
        path: &plan.target.path,
        settle: start + plan.settle,
        ack_each: plan.ack_each,
        hist: &mut hist,
        now: start,
        wbuf: Vec::with_capacity(256),
    };
    let mut scratch = vec![0u8; READ_CHUNK];
    let mut events = Events::with_capacity(1024);
    let end = start + plan.duration;
    let mut opened = 0;
    loop {
        while opened < n && e.handshaking < plan.connect_concurrency.max(1) {
            e.open(opened, plan.target.addr);
            opened += 1;
        }
        let now = Instant::now();
        if now >= end || (opened == n && e.live == 0) {
            break;
        }
        e.expire(now);
        let wake = e.deadlines.front().map_or(end, |&(t, _)| t.min(end));
        e.turn(&mut events, wake - now, &mut scratch, &mut ctx)?;
    }
    let elapsed = start.elapsed();
    e.end(plan.bye, &mut events, &mut scratch, &mut ctx)?;
    Ok(Ran {
        outcomes: e.outcomes,
        hist,
        elapsed,
    })
}

impl Engine {
    fn open(&mut self, i: usize, addr: std::net::SocketAddr) {
        let opened = TcpStream::connect(addr).and_then(|mut s| {
            s.set_nodelay(true)?;
            let both = Interest::READABLE | Interest::WRITABLE;
            self.poll.registry().register(&mut s, Token(i), both)?;
            Ok(s)
        });
        match opened {
            Ok(s) => {
                let deadline = Instant::now() + HANDSHAKE_LIMIT;
                self.conns[i] = Some(Conn::new(s, i, deadline));
                self.deadlines.push_back((deadline, i));
                self.live += 1;
                self.handshaking += 1;
            }
            Err(e) => self.outcomes[i].error = Some(format!("connect: {e}")),
        }
    }

    /// Fails every session whose handshake step ran out of time.
    fn expire(&mut self, now: Instant) {
        while let Some(&(t, i)) = self.deadlines.front() {
            if t > now {
                break;
            }
            self.deadlines.pop_front();
            let Some(c) = self.conns[i].as_ref() else {
                continue;
            };
            if c.phase.handshaking() && c.deadline <= now {
                let what = if c.phase == Phase::Hello {
                    "no answer to hello"
                } else {
                    "WebSocket upgrade"
                };
                self.finish(i, Done::Failed(format!("timed out: {what}")));
            }
        }
    }

    /// Waits up to `wait` for readiness and handles what came.
    fn turn(
        &mut self,
        events: &mut Events,
        wait: Duration,
        scratch: &mut [u8],
        ctx: &mut Ctx<'_>,
    ) -> io::Result<()> {
        match self.poll.poll(events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        ctx.now = Instant::now();
        for ev in events.iter() {
            let i = ev.token().0;
            let Some(c) = self.conns[i].as_mut() else {
                continue;
            };
            let was = c.phase;
            let r = c.on_event(ev, scratch, ctx);
            if was.handshaking() && !c.phase.handshaking() {
                self.handshaking -= 1;
            } else if was != c.phase && c.phase == Phase::Hello {
                // The upgrade is done: the answer to hello gets its own time.
                c.deadline = ctx.now + HANDSHAKE_LIMIT;
                self.deadlines.push_back((c.deadline, i));
            }
            if let Err(done) = r {
                self.finish(i, done);
            }
        }
        Ok(())
    }

    fn finish(&mut self, i: usize, done: Done) {
        let Some(c) = self.conns[i].take() else {
            return;
        };
        if c.phase.handshaking() {
            self.handshaking -= 1;
        }
        self.live -= 1;
        let mut out = c.out;
        match done {
            Done::Failed(e) => out.error = Some(e),
            Done::Refused(t) => out.refused = Some(t),
            Done::Ended(how) => out.ended = Some(how),
            Done::Finished => {}
        }
        self.outcomes[i] = out;
    }

    /// The run is over: sessions still setting up fail; streaming ones say
    /// `bye` and close (if asked to) and get up to [`CLOSE_WAIT`] for the
    /// server's close; the rest are dropped.
    fn end(
        &mut self,
        bye: bool,
        events: &mut Events,
        scratch: &mut [u8],
        ctx: &mut Ctx<'_>,
    ) -> io::Result<()> {
        for i in 0..self.conns.len() {
            let Some(c) = self.conns[i].as_mut() else {
                continue;
            };
            let done = if c.phase.handshaking() {
                Some(Done::Failed("the run ended during the handshake".into()))
            } else if bye {
                c.say_bye(ctx).err()
            } else {
                Some(Done::Finished)
            };
            if let Some(done) = done {
                self.finish(i, done);
            }
        }
        let until = Instant::now() + CLOSE_WAIT;
        while self.live > 0 {
            let now = Instant::now();
            if now >= until {
                break;
            }
            self.turn(events, until - now, scratch, ctx)?;
        }
        for i in 0..self.conns.len() {
            self.finish(i, Done::Finished);
        }
        Ok(())
    }
}
