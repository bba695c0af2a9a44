use proptest::prelude::*;
use serde_json::json;

use super::*;

/// Reads every frame in `bytes` until the end or the first error.
fn read_all(bytes: &[u8], max: usize) -> (Vec<Incoming>, Option<FrameError>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut r = bytes;
        let mut out = Vec::new();
        loop {
            match read(&mut r, max).await {
                Ok(Some(f)) => out.push(f),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    })
}

fn one_error(bytes: &[u8]) -> FrameError {
    let (frames, err) = read_all(bytes, MAX_FRAME_BYTES);
    assert!(frames.is_empty(), "{frames:?}");
    err.expect("an error")
}

proptest! {
    #[test]
    fn slices_round_trip(handle: u32, kind: u16, flags: u8, timestamp_us: u64,
                         payload in proptest::collection::vec(any::<u8>(), 0..300)) {
        let head = SliceHead { handle, kind, flags, timestamp_us };
        let wire = encode_slice(&head, &payload);
        let (frames, err) = read_all(&wire, MAX_FRAME_BYTES);
        prop_assert!(err.is_none());
        prop_assert_eq!(frames.len(), 1);
        match &frames[0] {
            Incoming::Slice(h, frame) => {
                prop_assert_eq!(*h, head);
                prop_assert_eq!(frame.payload(), &payload[..]);
            }
            other => prop_assert!(false, "not a slice: {:?}", other),
        }
    }

    #[test]
    fn json_round_trips(session_id in "[a-zA-Z0-9_é\"\\\\]{0,20}", n: i64) {
        let msg = json!({"type": "params", "session_id": session_id, "params": {"n": n}});
        let wire = encode_json(&msg);
        let (frames, err) = read_all(&wire, MAX_FRAME_BYTES);
        prop_assert!(err.is_none());
        match &frames[..] {
            [Incoming::Json(body)] => {
                let back: serde_json::Value = serde_json::from_slice(body).unwrap();
                prop_assert_eq!(back, msg);
            }
            other => prop_assert!(false, "not one JSON frame: {:?}", other),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = read_all(&bytes, 1024);
    }
}

#[test]
fn frames_follow_each_other_and_end_cleanly() {
    let mut wire = encode_json(&json!({"type": "hello"})).to_vec();
    let head = SliceHead {
        handle: 7,
        kind: 1,
        flags: 3,
        timestamp_us: 100_000,
    };
    wire.extend_from_slice(&encode_slice(&head, b"abc"));
    wire.extend_from_slice(&encode_slice(&head, b""));
    let (frames, err) = read_all(&wire, MAX_FRAME_BYTES);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(frames.len(), 3);
    assert!(matches!(&frames[2], Incoming::Slice(h, f) if *h == head && f.payload().is_empty()));
}

#[test]
fn slice_layout_is_the_documented_one() {
    let head = SliceHead {
        handle: 0x0102_0304,
        kind: 0x0506,
        flags: 3,
        timestamp_us: 0x0708,
    };
    let wire = encode_slice(&head, &[0xAA]);
    let want: [u8; 23] = [
        19, 0, 0, 0, // length: version + type + 16 + 1
        1, 2, // version, type
        4, 3, 2, 1, // handle
        6, 5, // kind
        3, 0, // flags, reserved
        8, 7, 0, 0, 0, 0, 0, 0,    // timestamp
        0xAA, // payload
    ];
    assert_eq!(&wire[..], &want[..]);
}

#[test]
fn bad_prefixes_are_named() {
    assert!(matches!(
        one_error(&[0, 0, 0, 0, 1, 1]),
        FrameError::TooShort(0)
    ));
    assert!(matches!(
        one_error(&[1, 0, 0, 0, 1]),
        FrameError::TooShort(1)
    ));
    assert!(matches!(
        one_error(&[0xFF, 0xFF, 0xFF, 0xFF, 1, 1]),
        FrameError::TooLong { len: u32::MAX, .. }
    ));
    assert!(matches!(
        one_error(&[2, 0, 0, 0, 2, 1]),
        FrameError::Version(2)
    ));
    assert!(matches!(
        one_error(&[2, 0, 0, 0, 1, 9]),
        FrameError::Type(9)
    ));
    assert!(matches!(
        one_error(&[5, 0, 0, 0, 1, 2, 0, 0, 0]),
        FrameError::SliceTooShort(3)
    ));
    assert!(matches!(one_error(&[9, 0, 0]), FrameError::Truncated));
    assert!(matches!(
        one_error(&[9, 0, 0, 0, 1, 1, b'{']),
        FrameError::Truncated
    ));
}

#[test]
fn the_limit_is_inclusive() {
    let body = vec![b' '; 98];
    let mut wire = vec![100, 0, 0, 0, 1, 1];
    wire.extend_from_slice(&body);
    let (frames, err) = read_all(&wire, 100);
    assert!(err.is_none() && frames.len() == 1);
    let (_, err) = read_all(&wire, 99);
    assert!(matches!(
        err,
        Some(FrameError::TooLong { len: 100, max: 99 })
    ));
}
