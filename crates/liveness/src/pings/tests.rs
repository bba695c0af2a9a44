use super::*;
use crate::{
    detector::{Detector, DetectorConfig, Observation, Verdict},
    sys::{Sample, TcpState},
    Reason,
};
use proptest::prelude::*;

const TICK: Duration = Duration::from_millis(250);
const PING_EVERY: u32 = 20; // ticks: 5 s
const TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn the_clock_starts_at_the_acknowledgement_not_the_write() {
    let t0 = Instant::now();
    let mut l = PingLedger::default();
    l.written(1, 1_000, t0);
    assert_eq!(l.acknowledged(t0 + TICK, Some(999)), None);
    let later = t0 + Duration::from_secs(30);
    let p = l.acknowledged(later, Some(1_000)).expect("acknowledged");
    assert_eq!(p.written_at, t0);
    assert_eq!(p.acked_at, Some(later));
    assert_eq!(p.waited(later + TICK), TICK);
    // A later sweep does not move the acknowledgement.
    let again = l.acknowledged(later + TICK, Some(5_000)).unwrap();
    assert_eq!(again.acked_at, Some(later));
}

#[test]
fn a_newer_ping_never_resets_an_older_ones_clock() {
    let t0 = Instant::now();
    let mut l = PingLedger::default();
    l.written(1, 100, t0);
    l.acknowledged(t0, Some(100));
    l.written(2, 200, t0 + Duration::from_secs(5));
    let p = l
        .acknowledged(t0 + Duration::from_secs(6), Some(200))
        .unwrap();
    assert_eq!((p.id, p.acked_at), (1, Some(t0)));
}

#[test]
fn a_pong_answers_its_ping_and_every_older_one() {
    let t0 = Instant::now();
    let mut l = PingLedger::default();
    for id in 1..=3 {
        l.written(id, id * 100, t0);
    }
    assert!(l.answered(2));
    assert_eq!(l.len(), 1);
    let p = l.acknowledged(t0, Some(300)).unwrap();
    assert_eq!(p.id, 3);
    assert!(!l.answered(2), "an old pong answers nothing new");
    assert!(l.answered(3));
    assert!(l.is_empty());
}

#[test]
fn without_an_acked_byte_count_a_ping_counts_from_its_write() {
    let t0 = Instant::now();
    let mut l = PingLedger::default();
    l.written(1, 100, t0);
    let p = l.acknowledged(t0 + Duration::from_secs(3), None).unwrap();
    assert_eq!(p.acked_at, Some(t0));
}

#[test]
fn the_ledger_is_bounded_and_keeps_the_oldest() {
    let t0 = Instant::now();
    let mut l = PingLedger::default();
    for id in 1..=(MAX_PENDING as u64 + 10) {
        l.written(id, id, t0);
    }
    assert_eq!(l.len(), MAX_PENDING);
    assert_eq!(l.acknowledged(t0, Some(1)).unwrap().id, 1);
    // Out-of-order input is ignored rather than breaking the order.
    let mut l = PingLedger::default();
    l.written(5, 500, t0);
    l.written(4, 600, t0);
    l.written(6, 400, t0);
    assert_eq!(l.len(), 1);
}

fn sample(acked: u64, written: u64) -> Sample {
    Sample {
        state: TcpState::ESTABLISHED,
        send_queue: (written - acked) as u32,
        bytes_acked: Some(acked),
        rtt_us: 50_000,
        snd_wnd: Some(65_535),
        notsent_bytes: Some(0),
        probes: 0,
        retransmits: 0,
    }
}

/// A connection played tick by tick: the server writes `writes[i]` bytes
/// each tick and a ping every 5 s; the link delivers (and the client's
/// kernel acknowledges) up to `link[i]` bytes a tick. A live client answers
/// each ping `answer_ticks` after its bytes were acknowledged; from tick
/// `freeze` on it answers nothing. Returns the tick of the reap (if any),
/// its evidence, and the tick at which the first ping written at or after
/// the freeze was acknowledged.
fn play(
    writes: &[u32],
    link: &[u32],
    answer_ticks: u32,
    freeze: Option<u32>,
) -> (Option<(u32, crate::Evidence)>, Option<u32>) {
    let t0 = Instant::now();
    let mut d = Detector::new(
        DetectorConfig {
            // Out of the way: this is about the pong rule.
            grace: Duration::from_secs(100_000),
            pong_timeout: Some(TIMEOUT),
        },
        t0,
    );
    let mut ledger = PingLedger::default();
    let (mut written, mut acked) = (0u64, 0u64);
    // (id, end offset, tick its bytes were acknowledged)
    let mut sent: Vec<(u64, u64, Option<u32>)> = Vec::new();
    let mut first_dead_ack = None;
    for i in 0..writes.len() as u32 {
        let now = t0 + TICK * i;
        written += u64::from(writes[i as usize]);
        if i % PING_EVERY == 0 {
            written += 10; // the ping frame
            let id = u64::from(i) + 1;
            ledger.written(id, written, now);
            sent.push((id, written, None));
        }
        acked = (acked + u64::from(link[i as usize])).min(written);
        for p in sent.iter_mut().filter(|p| p.2.is_none() && acked >= p.1) {
            p.2 = Some(i);
            if freeze.is_some_and(|f| p.0 > u64::from(f)) && first_dead_ack.is_none() {
                first_dead_ack = Some(i);
            }
        }
        let alive = freeze.is_none_or(|f| i < f);
        if alive {
            let due = sent
                .iter()
                .filter(|p| p.2.is_some_and(|a| i >= a + answer_ticks))
                .map(|p| p.0)
                .max();
            if let Some(id) = due {
                ledger.answered(id);
            }
        }
        let obs = Observation {
            sample: Ok(sample(acked, written)),
            ping: ledger.acknowledged(now, Some(acked)),
        };
        if let Verdict::Reap(e) = d.observe(now, &obs) {
            return (Some((i, e)), first_dead_ack);
        }
    }
    (None, first_dead_ack)
}

proptest! {
    /// However slow and bursty the link, a client that answers every ping
    /// within the timeout of receiving it is never reaped.
    #[test]
    fn a_live_client_on_any_link_is_never_reaped(
        writes in proptest::collection::vec(0u32..200_000, 400..800),
        link in proptest::collection::vec(0u32..50_000, 800),
        answer_ticks in 0u32..(TIMEOUT.as_millis() / TICK.as_millis()) as u32 - 1,
    ) {
        let (reap, _) = play(&writes, &link, answer_ticks, None);
        prop_assert!(reap.is_none(), "{:?}", reap);
    }

    /// A client that stops answering while its kernel keeps acknowledging
    /// (a big buffer, a draining tunnel) is reaped `unresponsive` one
    /// timeout (and a tick) after the first unanswered ping reached it.
    #[test]
    fn a_dead_client_whose_kernel_acks_is_reaped_in_time(
        writes in proptest::collection::vec(0u32..20_000, 600),
        freeze in 20u32..200,
        answer_ticks in 0u32..8,
    ) {
        let link = vec![u32::MAX / 2; writes.len()];
        let (reap, first_dead_ack) = play(&writes, &link, answer_ticks, Some(freeze));
        let (at, e) = reap.expect("reaped");
        prop_assert_eq!(e.reason, Reason::Unresponsive);
        prop_assert!(e.stalled_for >= TIMEOUT);
        let ping = e.ping.expect("evidence names the ping");
        prop_assert!(ping.acked_at.is_some_and(|a| a >= ping.written_at));
        // Reaped no later than a timeout after the first ping the client
        // got and never answered (within one tick).
        let bound = first_dead_ack.expect("a ping after the freeze") + (TIMEOUT.as_millis() / TICK.as_millis()) as u32 + 1;
        prop_assert!(at <= bound, "at {} bound {}", at, bound);
        // And never before the freeze plus the timeout.
        prop_assert!(TICK * at >= TICK * freeze + TIMEOUT - TICK * answer_ticks - TICK * PING_EVERY);
    }
}
