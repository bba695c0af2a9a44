use super::*;
use proptest::prelude::*;
use seatkeeper_protocol::slice::Frame;

fn slice(flags: u8, len: usize) -> Slice {
    Slice {
        kind: 1,
        flags,
        timestamp_us: 0,
        frame: Frame::from_payload(&vec![0; len]),
    }
}

const D: u8 = FLAG_DROPPABLE;
const DK: u8 = FLAG_DROPPABLE | FLAG_KEYFRAME;

fn outbox(slices: u32, bytes: u64) -> Outbox {
    Outbox::new(Window { slices, bytes }, Limits::default())
}

fn seq_of(item: Item) -> u64 {
    match item {
        Item::Slice(b) => SliceHeader::decode(&b.header).unwrap().seq,
        other => panic!("not a slice: {other:?}"),
    }
}

#[test]
fn a_full_window_drops_all_but_the_newest() {
    let mut o = outbox(2, 1 << 20);
    let g = o.generation();
    for _ in 0..2 {
        o.push_slice(slice(D, 10)).unwrap();
        assert_eq!(seq_of(o.pop(g).unwrap().unwrap()), o.counters().slices_sent);
    }
    for i in 0..5 {
        let mut s = slice(D, 10);
        s.timestamp_us = i;
        o.push_slice(s).unwrap();
    }
    assert_eq!(o.pop(g).unwrap(), None, "window full");
    assert_eq!(o.counters().slices_dropped, 4);
    o.ack(1).unwrap();
    let Item::Slice(b) = o.pop(g).unwrap().unwrap() else {
        panic!()
    };
    let h = SliceHeader::decode(&b.header).unwrap();
    assert_eq!(
        (h.seq, h.timestamp_us),
        (3, 4),
        "newest wins, seq continues"
    );
}

#[test]
fn control_goes_first_and_overflow_is_reported() {
    let mut o = Outbox::new(
        Window {
            slices: 4,
            bytes: 100,
        },
        Limits {
            control: 2,
            nondroppable: 1,
        },
    );
    let g = o.generation();
    o.push_slice(slice(D, 1)).unwrap();
    o.set_stats("s".into());
    o.set_ping(Bytes::from_static(b"p"));
    o.push_control("a".into()).unwrap();
    o.push_control("b".into()).unwrap();
    assert_eq!(o.push_control("c".into()), Err(Overflow));
    assert_eq!(o.pop(g).unwrap(), Some(Item::Text("a".into())));
    assert_eq!(o.pop(g).unwrap(), Some(Item::Text("b".into())));
    assert_eq!(
        o.pop(g).unwrap(),
        Some(Item::Ping(Bytes::from_static(b"p")))
    );
    assert_eq!(o.pop(g).unwrap(), Some(Item::Text("s".into())));
    assert!(matches!(o.pop(g).unwrap(), Some(Item::Slice(_))));
    o.push_slice(slice(0, 1)).unwrap();
    assert_eq!(o.push_slice(slice(0, 1)), Err(Overflow));
}

#[test]
fn bytes_window_holds_but_one_oversized_slice_can_go_alone() {
    let mut o = outbox(10, 100);
    let g = o.generation();
    o.push_slice(slice(0, 150)).unwrap();
    o.push_slice(slice(0, 50)).unwrap();
    assert!(o.pop(g).unwrap().is_some(), "alone in flight");
    assert!(o.pop(g).unwrap().is_none(), "150 + 50 > 100");
    o.ack(1).unwrap();
    assert!(o.pop(g).unwrap().is_some());
}

#[test]
fn acks_ahead_of_what_was_sent_are_refused() {
    let mut o = outbox(4, 1000);
    let g = o.generation();
    assert_eq!(o.ack(1), Err(AckAhead { sent: 0 }));
    o.push_slice(slice(D, 1)).unwrap();
    o.pop(g).unwrap();
    assert_eq!(o.ack(1), Ok(()));
    assert_eq!(o.ack(0), Ok(()), "a repeat is harmless");
    assert_eq!(o.ack(u64::MAX), Err(AckAhead { sent: 1 }));
    assert_eq!(o.counters().last_ack_seq, 1);
}

#[test]
fn attach_resets_the_window_retires_the_old_writer_and_sends_a_keyframe_first() {
    let mut o = outbox(2, 1000);
    let old = o.generation();
    o.push_slice(slice(DK, 1)).unwrap();
    o.push_slice(slice(DK, 1)).unwrap();
    o.pop(old).unwrap();
    o.pop(old).unwrap();
    assert_eq!(o.in_flight(), 2);
    let new = o.attach();
    assert_eq!(o.pop(old), Err(Replaced));
    assert_eq!(o.in_flight(), 0);
    o.push_slice(slice(D, 1)).unwrap(); // not a keyframe: skipped
    o.push_slice(slice(DK, 1)).unwrap();
    o.push_slice(slice(D, 1)).unwrap();
    let Item::Slice(b) = o.pop(new).unwrap().unwrap() else {
        panic!()
    };
    let h = SliceHeader::decode(&b.header).unwrap();
    assert!(h.keyframe());
    assert_eq!(h.seq, 3, "seq continues across attach");
}

proptest! {
    /// Whatever the engine pushes and the client acks, the window is never
    /// exceeded, seqs are contiguous, and every droppable slice is either
    /// sent, dropped or still pending.
    #[test]
    fn the_window_is_never_exceeded(
        ops in proptest::collection::vec((0u8..4, 1usize..300), 1..400),
        slices in 1u32..8,
        bytes in 100u64..2000,
    ) {
        let mut o = outbox(slices, bytes);
        let g = o.generation();
        let mut pushed = 0u64;
        let mut next_expected = 1;
        let mut acked = 0;
        for (op, n) in ops {
            match op {
                0 | 1 => { o.push_slice(slice(DK, n)).unwrap(); pushed += 1; }
                2 => {
                    while let Some(item) = o.pop(g).unwrap() {
                        prop_assert_eq!(seq_of(item), next_expected);
                        next_expected += 1;
                        prop_assert!(o.in_flight() <= slices);
                        prop_assert!(o.in_flight() == 1 || o.in_flight_bytes <= bytes);
                    }
                }
                _ => {
                    let sent = next_expected - 1;
                    if sent > acked {
                        acked += 1 + (n as u64 % (sent - acked));
                        o.ack(acked).unwrap();
                    }
                }
            }
        }
        let c = o.counters();
        prop_assert_eq!(c.slices_sent + c.slices_dropped + o.pending.len() as u64, pushed);
    }

    /// `has_ready` says exactly whether `pop` would give something: the
    /// writer is woken after an ack only when it says so.
    #[test]
    fn has_ready_is_exactly_whether_pop_gives_something(
        ops in proptest::collection::vec((0u8..7, 1usize..300), 1..300),
        slices in 1u32..6,
        bytes in 100u64..1000,
    ) {
        let mut o = outbox(slices, bytes);
        let mut g = o.generation();
        for (op, n) in ops {
            match op {
                0 => { let _ = o.push_slice(slice(D, n)); }
                1 => { let _ = o.push_slice(slice(DK, n)); }
                2 => { let _ = o.push_slice(slice(0, n)); }
                3 | 4 => {
                    let ready = o.has_ready();
                    let got = o.pop(g).unwrap();
                    prop_assert_eq!(ready, got.is_some(), "{:?}", got);
                }
                5 => {
                    let sent = o.sent_seq();
                    if sent > 0 {
                        o.ack(1 + n as u64 % sent).unwrap();
                    }
                }
                _ if n % 7 == 0 => g = o.attach(),
                _ => { let _ = o.push_control(format!("c{n}")); }
            }
        }
    }
}

#[test]
fn a_pusher_may_write_a_slice_only_while_the_writer_waits_and_nothing_else_is_ready() {
    let mut o = outbox(16, 1 << 20);
    let g = o.generation();
    o.push_slice(slice(D, 10)).unwrap();
    assert_eq!(o.pop_slice(g, 64), None, "the writer has not said it waits");
    o.set_writer_waits(g + 1, true);
    assert_eq!(o.pop_slice(g, 64), None, "a stranger's word is ignored");
    o.set_writer_waits(g, true);
    assert_eq!(
        o.pop_slice(g + 1, 64),
        None,
        "a stale generation gets nothing"
    );
    let s = o.pop_slice(g, 64).expect("the writer waits");
    assert_eq!(SliceHeader::decode(&s.header).unwrap().seq, 1);
    assert_eq!(o.counters().slices_sent, 1);
    o.push_slice(slice(D, 65)).unwrap();
    assert_eq!(o.pop_slice(g, 64), None, "a larger slice is the writer's");
    assert!(matches!(o.pop(g).unwrap(), Some(Item::Slice(_))));
    for ready_first in 0..3 {
        o.push_slice(slice(D, 10)).unwrap();
        match ready_first {
            0 => o.push_control("note".into()).unwrap(),
            1 => o.set_ping(Bytes::from_static(b"p")),
            _ => o.set_stats("stats".into()),
        }
        assert_eq!(o.pop_slice(g, 64), None, "the writer sends what is ahead");
        assert!(!matches!(o.pop(g).unwrap(), Some(Item::Slice(_))));
        assert!(matches!(o.pop(g).unwrap(), Some(Item::Slice(_))));
    }
}

#[test]
fn a_flush_owed_comes_first_and_a_new_writer_owes_nothing() {
    let mut o = outbox(4, 1 << 20);
    let g = o.generation();
    o.set_writer_waits(g, true);
    o.push_slice(slice(D, 10)).unwrap();
    o.pop_slice(g, 64).expect("written by the pusher");
    o.owe_flush();
    assert!(!o.writer_waits(), "the writer is woken for the flush");
    o.push_control("note".into()).unwrap();
    assert!(o.has_ready());
    assert_eq!(o.pop(g).unwrap(), Some(Item::Flush));
    assert_eq!(o.pop(g).unwrap(), Some(Item::Text("note".into())));
    o.set_writer_waits(g, true);
    o.owe_flush();
    let g2 = o.attach();
    assert!(!o.writer_waits() && !o.has_ready());
    assert_eq!(o.pop(g2).unwrap(), None);
}
