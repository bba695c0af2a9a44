use super::*;
use proptest::prelude::*;

const GRACE: Duration = Duration::from_secs(3);
const TICK: Duration = Duration::from_millis(250);

fn sample(queue: u32, acked: u64) -> Sample {
    Sample {
        state: TcpState::ESTABLISHED,
        send_queue: queue,
        bytes_acked: Some(acked),
        rtt_us: 50,
        snd_wnd: Some(65535),
        notsent_bytes: Some(0),
        probes: 0,
        retransmits: 0,
    }
}

fn obs(s: Sample) -> Observation {
    Observation {
        sample: Ok(s),
        ping: None,
    }
}

fn config() -> DetectorConfig {
    DetectorConfig {
        grace: GRACE,
        pong_timeout: Some(Duration::from_secs(60)),
    }
}

/// Feeds samples one tick apart; returns the first reap and when it came.
fn run(samples: impl IntoIterator<Item = Sample>) -> Option<(Duration, Evidence)> {
    let t0 = Instant::now();
    let mut d = Detector::new(config(), t0);
    for (i, s) in samples.into_iter().enumerate() {
        let at = TICK * i as u32;
        if let Verdict::Reap(e) = d.observe(t0 + at, &obs(s)) {
            return Some((at, e));
        }
    }
    None
}

#[test]
fn steady_drain_is_kept() {
    let samples = (0..200u64).map(|i| sample(50_000, i * 100_000));
    assert_eq!(run(samples), None);
}

#[test]
fn empty_queue_is_healthy_forever() {
    assert_eq!(run((0..200).map(|_| sample(0, 1_000))), None);
}

#[test]
fn zero_window_plateau_is_reaped_after_the_grace_window() {
    // Draining, then a plateau at sample 8 (t = 2 s).
    let samples = (0..8u64)
        .map(|i| sample(100_000, i * 10_000))
        .chain((0..40).map(|_| sample(2_600_000, 70_000)));
    let (at, e) = run(samples).expect("reaped");
    assert_eq!(e.reason, Reason::SendStall);
    assert_eq!(e.queue_bytes, 2_600_000);
    assert_eq!(e.bytes_acked, Some(70_000));
    // The last progress was the last draining sample (t = 1.75 s); the
    // verdict lands at grace after it, within one tick.
    let last_progress = TICK * 7;
    assert!(at >= last_progress + GRACE, "{at:?}");
    assert!(at <= last_progress + GRACE + TICK, "{at:?}");
    assert!(e.stalled_for >= GRACE);
}

#[test]
fn a_trickle_that_drains_a_little_every_window_is_kept() {
    // One acked byte every 2.5 s (ten ticks), queue never empty.
    let samples = (0..400u64).map(|i| sample(500_000, 1_000 + i / 10));
    assert_eq!(run(samples), None);
}

#[test]
fn a_shrinking_queue_counts_as_progress_without_acked_bytes() {
    let t0 = Instant::now();
    let mut d = Detector::new(config(), t0);
    for i in 0..100u32 {
        let mut s = sample(1_000_000 - i * 100, 0);
        s.bytes_acked = None;
        assert!(!matches!(
            d.observe(t0 + TICK * i, &obs(s)),
            Verdict::Reap(_)
        ));
    }
}

#[test]
fn a_pause_shorter_than_the_grace_window_is_kept() {
    let samples = (0..10u64)
        .map(|i| sample(10_000, i * 10_000))
        .chain((0..10).map(|_| sample(300_000, 100_000))) // 2.5 s still
        .chain((0..40u64).map(|i| sample(10_000, 200_000 + i * 10_000)));
    assert_eq!(run(samples), None);
}

#[test]
fn a_growing_queue_without_acks_is_a_stall() {
    let samples = (0..40u32).map(|i| sample(100_000 + i * 1_000, 5_000));
    let (_, e) = run(samples).expect("reaped");
    assert_eq!(e.reason, Reason::SendStall);
}

#[test]
fn fin_is_a_peer_close_at_once() {
    let mut s = sample(0, 10);
    s.state = TcpState(8); // CLOSE_WAIT
    let (at, e) = run([sample(0, 1), s]).expect("reaped");
    assert_eq!(at, TICK);
    assert_eq!(e.reason, Reason::PeerClose);
    assert_eq!(e.tcp_state.map(TcpState::name), Some("CLOSE_WAIT"));
}

#[test]
fn a_socket_error_is_a_peer_close() {
    let t0 = Instant::now();
    let mut d = Detector::new(config(), t0);
    let v = d.observe(
        t0,
        &Observation {
            sample: Err(SampleError::Os(104)),
            ping: None,
        },
    );
    let Verdict::Reap(e) = v else { panic!("{v:?}") };
    assert_eq!(e.reason, Reason::PeerClose);
    assert!(e.error.is_some());
}

fn acked_ping(acked_at: Instant) -> Ping {
    Ping {
        id: 1,
        end_offset: 100,
        written_at: acked_at - Duration::from_secs(7),
        acked_at: Some(acked_at),
    }
}

#[test]
fn an_acknowledged_ping_unanswered_for_the_timeout_is_unresponsive_even_with_an_empty_queue() {
    let t0 = Instant::now();
    let mut d = Detector::new(config(), t0);
    let mut o = obs(sample(0, 1));
    o.ping = Some(acked_ping(t0));
    assert_eq!(
        d.observe(t0 + Duration::from_secs(59), &o),
        Verdict::Healthy
    );
    let Verdict::Reap(e) = d.observe(t0 + Duration::from_secs(60), &o) else {
        panic!()
    };
    assert_eq!(e.reason, Reason::Unresponsive);
    assert_eq!(e.stalled_for, Duration::from_secs(60));
    let p = e.ping.expect("the ping is the evidence");
    assert_eq!(p.acked_at, Some(t0));
    assert_eq!(p.written_at, t0 - Duration::from_secs(7));
}

#[test]
fn a_ping_not_yet_acknowledged_never_counts() {
    let t0 = Instant::now();
    let mut d = Detector::new(config(), t0);
    let mut o = obs(sample(0, 1));
    o.ping = Some(Ping {
        acked_at: None,
        ..acked_ping(t0)
    });
    assert_eq!(
        d.observe(t0 + Duration::from_secs(10_000), &o),
        Verdict::Healthy
    );
}

#[test]
fn pong_rule_off_when_disabled() {
    let t0 = Instant::now();
    let mut d = Detector::new(
        DetectorConfig {
            grace: GRACE,
            pong_timeout: None,
        },
        t0,
    );
    let mut o = obs(sample(0, 1));
    o.ping = Some(acked_ping(t0));
    assert_eq!(
        d.observe(t0 + Duration::from_secs(100_000), &o),
        Verdict::Healthy
    );
}

#[test]
fn unsupported_platforms_give_no_kernel_verdict() {
    let t0 = Instant::now();
    let mut d = Detector::new(config(), t0);
    let o = Observation {
        sample: Err(SampleError::Unsupported),
        ping: None,
    };
    for i in 0..100 {
        assert_eq!(d.observe(t0 + TICK * i, &o), Verdict::Unknown);
    }
}

proptest! {
    /// Whatever the figures, a connection whose acked bytes rise at least
    /// once per grace window is never reaped for a send stall.
    #[test]
    fn progress_every_window_is_never_a_stall(
        queues in proptest::collection::vec(1u32..5_000_000, 1..300),
        step in 1u64..1_000_000,
    ) {
        let ticks_per_progress = (GRACE.as_millis() / TICK.as_millis()) as usize - 1;
        let samples = queues.iter().enumerate().map(|(i, q)| {
            sample(*q, (i / ticks_per_progress) as u64 * step)
        });
        prop_assert_eq!(run(samples), None);
    }

    /// A queue that sits still with no acks is always reaped, within grace
    /// plus one tick of the plateau's first sample.
    #[test]
    fn a_plateau_is_always_reaped_in_time(queue in 1u32..10_000_000, acked: u64, lead in 0usize..20) {
        let samples = (0..lead).map(|i| sample(queue.saturating_add(i as u32 + 1), i as u64))
            .chain(std::iter::repeat_n(sample(queue, acked), 100));
        let (at, e) = run(samples).expect("reaped");
        prop_assert_eq!(e.reason, Reason::SendStall);
        let plateau_start = TICK * lead as u32;
        prop_assert!(at <= plateau_start + GRACE + TICK);
    }
}
