//! The skip rule against a sweep that looks at every socket every time, on
//! simulated sockets and simulated time: the same client behaviour is swept
//! twice (every sweep a look; looks skipped where the rule allows), through
//! the sampler's own per-socket turn, and the verdicts compared.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::{
    sampler::{State, Turn},
    Detector, DetectorConfig, Pings, Reason, TcpState,
};

const TICK: Duration = Duration::from_millis(500);
const GRACE: Duration = Duration::from_secs(30);
const PONG: Duration = Duration::from_secs(20);

fn k() -> u32 {
    max_gap(TICK, GRACE)
}

/// What happens between two sweeps.
#[derive(Debug, Clone, Copy, Default)]
struct Step {
    /// Bytes the server writes.
    write: u64,
    /// The client's TCP acknowledges everything written so far.
    tcp_ack: bool,
    /// The owner reads an ack or a pong from the client.
    mark: bool,
    /// The server writes a ping.
    ping: bool,
    /// The client answers every ping it has.
    pong: bool,
    /// The peer closes (the state leaves ESTABLISHED).
    close: bool,
}

/// A simulated socket and its owner's side.
struct Sim {
    state: State,
    pings: Pings,
    written: u64,
    acked: u64,
    progress: u64,
    closed: bool,
    next_ping: u64,
}

/// How a run went: when (tick) and why it was reaped, and the ticks that
/// were kernel looks.
#[derive(Debug)]
struct Run {
    reap: Option<(usize, Reason)>,
    looks: Vec<usize>,
}

fn sweep(steps: &[Step], max_gap: u32) -> Run {
    let t0 = Instant::now();
    let config = DetectorConfig {
        grace: GRACE,
        pong_timeout: Some(PONG),
    };
    let mut sim = Sim {
        state: State {
            detector: Detector::new(config, t0),
            doubt: Doubt::default(),
        },
        pings: Pings::default(),
        written: 0,
        acked: 0,
        progress: 0,
        closed: false,
        next_ping: 1,
    };
    let mut looks = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let now = t0 + TICK * (i as u32 + 1);
        sim.written += step.write;
        if step.ping {
            sim.written += 10;
            sim.pings
                .written(sim.next_ping, sim.written, now - TICK / 2);
            sim.next_ping += 1;
        }
        if step.tcp_ack {
            sim.acked = sim.written;
        }
        if step.pong {
            sim.pings.answered(u64::MAX);
        }
        sim.progress += u64::from(step.mark || step.pong);
        sim.closed |= step.close;
        let signals = Signals {
            progress: sim.progress,
            written: sim.written,
            ping_needs_look: sim.pings.needs_look(now, PONG, TICK),
        };
        let (written, acked, closed) = (sim.written, sim.acked, sim.closed);
        let turn = sim.state.turn(now, max_gap, true, signals, &sim.pings, || {
            Ok(crate::Sample {
                state: if closed {
                    TcpState(8)
                } else {
                    TcpState::ESTABLISHED
                },
                send_queue: (written - acked) as u32,
                bytes_acked: Some(acked),
                rtt_us: 100,
                snd_wnd: Some(65535),
                notsent_bytes: Some(0),
                probes: 0,
                retransmits: 0,
            })
        });
        match turn {
            Turn::Skipped => {}
            Turn::Closed(_) => unreachable!("the simulated socket is never retired"),
            Turn::Judged(v, _) => {
                looks.push(i);
                if let Verdict::Reap(e) = v {
                    return Run {
                        reap: Some((i, e.reason)),
                        looks,
                    };
                }
            }
        }
    }
    Run { reap: None, looks }
}

/// Both runs: every sweep a look, and the rule's.
fn both(steps: &[Step]) -> (Run, Run) {
    (sweep(steps, 1), sweep(steps, k()))
}

fn streaming() -> Step {
    Step {
        write: 5 * 1024,
        tcp_ack: true,
        mark: true,
        ..Step::default()
    }
}

fn largest_gap(looks: &[usize]) -> usize {
    let mut prev = None;
    let mut gap = 0;
    for &l in looks {
        gap = gap.max(l - prev.map_or(0, |p: usize| p + 1));
        prev = Some(l);
    }
    gap
}

#[test]
fn the_gap_is_an_eighth_of_the_grace_within_bounds() {
    assert_eq!(k(), 7); // 30 s grace, 500 ms sweeps: 3.5 s
    assert_eq!(
        max_gap(Duration::from_millis(50), Duration::from_millis(500)),
        1
    );
    assert_eq!(
        max_gap(Duration::from_millis(10), Duration::from_secs(3600)),
        MAX_GAP_SWEEPS
    );
    assert_eq!(max_gap(Duration::ZERO, GRACE), 1);
}

#[test]
fn a_client_that_keeps_up_is_skipped_but_looked_at_within_the_gap() {
    let steps = vec![streaming(); 400];
    let (all, rule) = both(&steps);
    assert!(all.reap.is_none() && rule.reap.is_none());
    assert_eq!(all.looks.len(), 400);
    assert!(largest_gap(&rule.looks) < k() as usize, "{:?}", rule.looks);
    // One look in k sweeps (and the first two, before a clearing look).
    assert!(
        rule.looks.len() <= 400 / k() as usize + 2,
        "{} looks",
        rule.looks.len()
    );
}

/// Its marks stop, so the next sweep looks; the progress that look finds
/// is credited to its own time, one sweep after the last skipped one.
#[test]
fn a_dead_client_is_reaped_at_most_one_sweep_later() {
    let mut steps = vec![streaming(); 40];
    steps.extend(vec![
        Step {
            write: 1024,
            ..Step::default()
        };
        200
    ]);
    let (all, rule) = both(&steps);
    let (at, why) = all.reap.expect("reaped when every sweep looks");
    assert_eq!(why, Reason::SendStall);
    let (rat, rwhy) = rule.reap.expect("reaped with the rule");
    assert_eq!(rwhy, Reason::SendStall);
    assert!(rat == at || rat == at + 1, "{at} vs {rat}");
}

/// The one client the rule can be slow with: its acks keep coming while
/// its TCP acknowledges nothing. It is still reaped, at most one gap late.
#[test]
fn a_client_that_acks_without_reading_is_still_reaped() {
    let mut steps = vec![streaming(); 40];
    steps.extend(vec![
        Step {
            write: 1024,
            mark: true,
            ..Step::default()
        };
        200
    ]);
    let (all, rule) = both(&steps);
    let (at, why) = all.reap.expect("reaped when every sweep looks");
    let (rat, rwhy) = rule
        .reap
        .expect("a stalled socket must not be skipped forever");
    assert_eq!((why, rwhy), (Reason::SendStall, Reason::SendStall));
    assert!(rat >= at && rat <= at + k() as usize, "{at} vs {rat}");
}

/// A ping the client's TCP acknowledged and the client never answers: the
/// socket is looked at until the ping's bytes are seen acknowledged, skipped
/// while the pong clock runs (acks keep coming), looked at again from the
/// sweep before the timeout, and reaped at the very sweep a sweep that
/// always looks reaps it.
#[test]
fn an_unanswered_ping_is_reaped_at_the_same_sweep() {
    let mut steps = vec![streaming(); 40];
    // The ping's bytes are not acknowledged for three sweeps.
    steps.push(Step {
        ping: true,
        tcp_ack: false,
        ..streaming()
    });
    steps.extend(vec![
        Step {
            tcp_ack: false,
            ..streaming()
        };
        2
    ]);
    steps.extend(vec![streaming(); 100]);
    let (all, rule) = both(&steps);
    let (at, why) = all.reap.expect("reaped when every sweep looks");
    assert_eq!(why, Reason::Unresponsive);
    assert_eq!(rule.reap, all.reap);
    // Every sweep until the clock started, and the two before the verdict.
    for i in (40..=43).chain(at - 1..=at) {
        assert!(rule.looks.contains(&i), "no look at {i}: {:?}", rule.looks);
    }
    let waiting = rule.looks.iter().filter(|&&i| i > 43 && i < at - 1).count();
    assert!(
        waiting <= (at - 44) / k() as usize + 1,
        "{waiting} looks while the pong clock ran: {:?}",
        rule.looks
    );
}

/// Without a pong rule pings never hold a socket in doubt (their bytes are
/// never marked acknowledged, since nothing reads the clock).
#[test]
fn pings_need_no_look_while_their_clock_runs() {
    let t0 = Instant::now();
    let pings = Pings::default();
    assert!(!pings.needs_look(t0, PONG, TICK));
    pings.written(1, 100, t0);
    assert!(pings.needs_look(t0, PONG, TICK), "not yet acknowledged");
    pings.acknowledged(t0, Some(100));
    assert!(!pings.needs_look(t0 + TICK, PONG, TICK));
    assert!(!pings.needs_look(t0 + PONG - TICK * 2, PONG, TICK));
    assert!(
        pings.needs_look(t0 + PONG - TICK, PONG, TICK),
        "the sweep before"
    );
    assert!(pings.needs_look(t0 + PONG, PONG, TICK));
    pings.written(2, 200, t0 + TICK);
    assert!(
        pings.needs_look(t0 + TICK, PONG, TICK),
        "a newer ping is out"
    );
    pings.answered(2);
    assert!(!pings.needs_look(t0 + PONG, PONG, TICK));
}

/// An idle socket skipped for a while must not count those sweeps as stall
/// time once bytes sit in its queue: a stall just under the grace is kept.
#[test]
fn skipped_sweeps_of_an_empty_queue_are_not_stall_time() {
    let ticks = (GRACE.as_millis() / TICK.as_millis()) as usize;
    // Every phase of the forced look against the start of the stall.
    for idle in 50..50 + k() as usize {
        let mut steps = vec![streaming(); 10];
        steps.extend(vec![
            Step {
                mark: true,
                ..Step::default()
            };
            idle
        ]);
        steps.extend(vec![
            Step {
                write: 1024,
                mark: true,
                ..Step::default()
            };
            ticks - 1
        ]);
        steps.extend(vec![streaming(); 20]);
        let (all, rule) = both(&steps);
        assert!(all.reap.is_none(), "{:?}", all.reap);
        assert!(
            rule.reap.is_none(),
            "reaped a live client early: {:?}",
            rule.reap
        );
    }
}

#[test]
fn a_peer_close_is_seen_within_the_gap() {
    let mut steps = vec![streaming(); 40];
    steps.push(Step {
        close: true,
        ..streaming()
    });
    steps.extend(vec![streaming(); 40]);
    let (all, rule) = both(&steps);
    assert_eq!(all.reap, Some((40, Reason::PeerClose)));
    let (rat, why) = rule.reap.expect("seen");
    assert_eq!(why, Reason::PeerClose);
    assert!(rat < 40 + k() as usize, "{rat}");
}

fn step() -> impl Strategy<Value = Step> {
    (
        0u64..3000,
        any::<bool>(),
        any::<bool>(),
        0u8..20,
        0u8..4,
        0u16..800,
    )
        .prop_map(|(write, tcp_ack, mark, ping, pong, close)| Step {
            write,
            tcp_ack,
            mark,
            ping: ping == 0,
            pong: pong == 0,
            close: close == 0,
        })
}

/// Phases of one behaviour each (long enough for stalls near the grace),
/// some of them a client that keeps up, some single arbitrary steps.
fn script() -> impl Strategy<Value = Vec<Step>> {
    let phase = prop_oneof![
        (Just(streaming()), 1usize..40),
        (step(), 1usize..80),
        (step(), Just(1usize)),
    ];
    prop::collection::vec(phase, 1..12).prop_map(|phases| {
        phases
            .into_iter()
            .flat_map(|(s, n)| std::iter::repeat_n(s, n))
            .collect()
    })
}

fn signals(progress: u64, written: u64) -> Signals {
    Signals {
        progress,
        written,
        ping_needs_look: false,
    }
}

fn sample(queue: u32, acked: Option<u64>) -> Result<crate::Sample, crate::SampleError> {
    Ok(crate::Sample {
        state: TcpState::ESTABLISHED,
        send_queue: queue,
        bytes_acked: acked,
        rtt_us: 100,
        snd_wnd: None,
        notsent_bytes: None,
        probes: 0,
        retransmits: 0,
    })
}

/// A doubt whose first look (at `written` bytes) said `verdict`.
fn after(verdict: Verdict, queue: u32, acked: Option<u64>, written: u64) -> Doubt {
    let mut d = Doubt::default();
    assert_eq!(d.plan(16, signals(0, written)), Plan::Look(Why::Uncleared));
    d.looked(&verdict, &sample(queue, acked), written);
    d
}

#[test]
fn a_look_that_saw_a_stall_leaves_the_socket_in_doubt() {
    let mut d = after(Verdict::Stalled(TICK), 100, Some(50), 150);
    for i in 1..20 {
        assert_eq!(
            d.plan(16, signals(i, 150 + i * 10)),
            Plan::Look(Why::Uncleared)
        );
    }
}

#[test]
fn a_writer_that_may_be_blocked_keeps_the_socket_in_doubt() {
    // Bytes queued at the last look, and the socket takes nothing more.
    let mut d = after(Verdict::Draining, 100, Some(50), 150);
    for i in 1..20 {
        assert_eq!(d.plan(16, signals(i, 150)), Plan::Look(Why::Blocked));
    }
    // The socket takes bytes again: the writer is not blocked.
    assert_eq!(d.plan(16, signals(20, 200)), Plan::Skip);
}

#[test]
fn without_progress_marks_or_acked_counts_every_sweep_looks() {
    let mut d = after(Verdict::Healthy, 0, Some(150), 150);
    for i in 1..20 {
        assert_eq!(d.plan(16, signals(0, 150 + i)), Plan::Look(Why::Quiet));
    }
    let mut d = after(Verdict::Healthy, 0, None, 150);
    for i in 1..20 {
        assert_eq!(d.plan(16, signals(i, 150 + i)), Plan::Look(Why::Uncleared));
    }
    let mut d = after(Verdict::Unknown, 0, None, 150);
    assert_eq!(d.plan(16, signals(1, 151)), Plan::Look(Why::Uncleared));
}

#[test]
fn only_a_queue_empty_at_the_look_and_untouched_since_is_vouched_empty() {
    let mut d = after(Verdict::Healthy, 0, Some(150), 150);
    assert_eq!(d.plan(16, signals(1, 150)), Plan::SkipEmpty);
    assert_eq!(d.plan(16, signals(2, 160)), Plan::Skip);
    assert_eq!(d.plan(16, signals(3, 170)), Plan::Skip);
    let mut d = after(Verdict::Draining, 10, Some(150), 160);
    assert_eq!(d.plan(16, signals(1, 170)), Plan::Skip);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]
    /// Whatever the client does: the rule never reaps earlier than looking
    /// every sweep, never loses a reap (a condition that reaps when every
    /// sweep looks, and persists, is reaped within one gap), and never
    /// leaves a socket unlooked for a gap.
    #[test]
    fn the_rule_never_reaps_early_nor_loses_a_reap(steps in script()) {
        let (all, rule) = both(&steps);
        prop_assert!(largest_gap(&rule.looks) < k() as usize);
        if let Some(r) = rule.reap {
            let at = all.reap.map(|a| a.0);
            prop_assert!(at.is_some_and(|at| at <= r.0), "early: {:?} vs {:?}", r, all.reap);
        }
        // The pong clock is exact: an unresponsive client is reaped at the
        // same sweep.
        if let Some((_, Reason::Unresponsive)) = all.reap {
            prop_assert_eq!(rule.reap, all.reap);
        }
        if let Some((at, _)) = all.reap {
            // The client stays as it was at the reap: no acknowledgement,
            // no pong. The rule must reap it within one gap.
            let persist = Step { tcp_ack: false, pong: false, ..steps[at] };
            let mut kept = steps[..=at].to_vec();
            kept.extend(vec![persist; k() as usize]);
            let rule = sweep(&kept, k());
            prop_assert!(
                rule.reap.is_some_and(|(rat, _)| rat >= at && rat <= at + k() as usize),
                "lost the reap at {}: {:?}", at, rule.reap
            );
        }
    }
}

#[test]
fn a_look_says_which_rule_held_the_socket_in_doubt() {
    let mut d = after(Verdict::Healthy, 0, Some(150), 150);
    let ping = Signals {
        ping_needs_look: true,
        ..signals(1, 160)
    };
    assert_eq!(d.plan(16, ping), Plan::Look(Why::Ping));
    d.looked(&Verdict::Healthy, &sample(0, Some(160)), 160);
    // Skipped up to the gap, then looked at for the gap's sake.
    for i in 2..4 {
        assert_eq!(d.plan(3, signals(i, 160 + i)), Plan::Skip);
    }
    assert_eq!(d.plan(3, signals(4, 164)), Plan::Look(Why::Gap));
    let labels: Vec<_> = Why::ALL.iter().map(|w| w.as_str()).collect();
    assert_eq!(labels, ["uncleared", "gap", "ping", "quiet", "blocked"]);
    assert!(Why::ALL.iter().enumerate().all(|(i, w)| w.index() == i));
}

/// A client that was sent nothing since a look found its queue empty owes
/// no ack: its silence keeps it out of doubt (up to the gap), and a peer
/// close only the kernel sees is still found within the gap.
#[test]
fn a_client_sent_nothing_needs_no_marks_to_be_skipped() {
    let mut d = after(Verdict::Healthy, 0, Some(150), 150);
    for _ in 0..4 {
        assert_eq!(d.plan(5, signals(0, 150)), Plan::SkipEmpty);
    }
    assert_eq!(d.plan(5, signals(0, 150)), Plan::Look(Why::Gap));

    let mut steps = vec![streaming(); 20];
    steps.extend(vec![Step::default(); 40]);
    steps.push(Step {
        close: true,
        ..Step::default()
    });
    steps.extend(vec![Step::default(); 20]);
    let (all, rule) = both(&steps);
    assert_eq!(all.reap, Some((60, Reason::PeerClose)));
    let (rat, why) = rule.reap.expect("the close is seen");
    assert_eq!(why, Reason::PeerClose);
    assert!(rat < 60 + k() as usize, "{rat}");
    let idle_looks = rule
        .looks
        .iter()
        .filter(|&&i| (21..60).contains(&i))
        .count();
    assert!(idle_looks <= 39 / k() as usize + 1, "{:?}", rule.looks);
}
