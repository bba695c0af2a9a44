use super::*;
use proptest::prelude::*;

#[test]
fn hello_minimal_and_full() {
    assert_eq!(
        ClientMsg::parse(r#"{"type":"hello"}"#).unwrap(),
        ClientMsg::Hello(Hello::default())
    );
    let ClientMsg::Hello(h) = ClientMsg::parse(
        r#"{"type":"hello","client_id":"tab-1","resume":"r","seat_token":"s","engine":{"seed":3}}"#,
    )
    .unwrap() else {
        panic!("not hello")
    };
    assert_eq!(h.client_id.as_deref(), Some("tab-1"));
    assert_eq!(h.resume.as_deref(), Some("r"));
    assert_eq!(h.seat_token.as_deref(), Some("s"));
    assert_eq!(h.engine.unwrap()["seed"], 3);
}

#[test]
fn refusals_have_the_contract_codes() {
    assert!(ClientMsg::parse("nope").unwrap_err().is_fatal());
    assert_eq!(ClientMsg::parse("[1]").unwrap_err(), ParseError::NotObject);
    assert_eq!(ClientMsg::parse("{}").unwrap_err(), ParseError::MissingType);
    assert_eq!(
        ClientMsg::parse(r#"{"type":7}"#).unwrap_err(),
        ParseError::MissingType
    );
    let e = ClientMsg::parse(r#"{"type":"warp"}"#).unwrap_err();
    assert_eq!(e.code(), "unknown_type");
    assert!(!e.is_fatal());
    for bad in [
        r#"{"type":"ack"}"#,
        r#"{"type":"ack","seq":-1}"#,
        r#"{"type":"ack","seq":1.5}"#,
        r#"{"type":"ack","seq":"3"}"#,
        r#"{"type":"ack","seq":18446744073709551616}"#,
        r#"{"type":"hello","client_id":5}"#,
        r#"{"type":"hello","engine":[1]}"#,
    ] {
        let e = ClientMsg::parse(bad).unwrap_err();
        assert_eq!(e.code(), "bad_message", "{bad}");
    }
    // Unknown fields are ignored: newer clients work with older servers.
    assert!(ClientMsg::parse(r#"{"type":"hello","future":1}"#).is_ok());
    let long = format!(r#"{{"type":"hello","client_id":"{}"}}"#, "x".repeat(200));
    assert_eq!(ClientMsg::parse(&long).unwrap_err().code(), "bad_message");
}

#[test]
fn ack_takes_the_full_u64_range() {
    assert_eq!(
        ClientMsg::parse(r#"{"type":"ack","seq":18446744073709551615}"#).unwrap(),
        ClientMsg::Ack {
            seq: u64::MAX,
            buffer_ms: None
        }
    );
}

#[test]
fn ack_may_report_the_client_buffer() {
    assert_eq!(
        ClientMsg::parse(r#"{"type":"ack","seq":3,"buffer_ms":180.5}"#).unwrap(),
        ClientMsg::Ack {
            seq: 3,
            buffer_ms: Some(180.5)
        }
    );
    for bad in [
        r#"{"type":"ack","seq":3,"buffer_ms":-1}"#,
        r#"{"type":"ack","seq":3,"buffer_ms":"x"}"#,
    ] {
        assert_eq!(
            ClientMsg::parse(bad).unwrap_err().code(),
            "bad_message",
            "{bad}"
        );
    }
}

#[test]
fn server_messages_match_the_contract() {
    let busy = ServerMsg::Busy { retry_after_s: 2.0 }.to_json();
    assert_eq!(busy, r#"{"type":"busy","retry_after_s":2.0}"#);
    let err = ServerMsg::error("hello_required", "say hello first").to_json();
    assert_eq!(
        err,
        r#"{"type":"error","code":"hello_required","message":"say hello first"}"#
    );
    let ready: Value = serde_json::from_str(
        &ServerMsg::Ready {
            session_id: "a".into(),
            resume_token: "t".into(),
            resumed: false,
            window: Window {
                slices: 16,
                bytes: 4,
            },
            engine: serde_json::json!({"name":"demo"}),
        }
        .to_json(),
    )
    .unwrap();
    assert_eq!(ready["type"], "ready");
    assert_eq!(ready["window"]["slices"], 16);
    let stats: Value = serde_json::from_str(&ServerMsg::Stats(Stats::default()).to_json()).unwrap();
    assert_eq!(stats["type"], "stats");
    assert_eq!(stats["slices_sent"], 0);
}

proptest! {
    #[test]
    fn parse_never_panics(s in ".{0,200}") {
        let _ = ClientMsg::parse(&s);
    }

    /// The plain-ack shortcut reads what the clients write — any key
    /// order, any JSON whitespace — exactly as the JSON parser does.
    #[test]
    fn the_plain_ack_reads_as_the_json_parser_does(
        seq: u64,
        ms in proptest::option::of(0u64..1_000_000_000_000_000),
        order in Just(vec![0usize, 1, 2]).prop_shuffle(),
        ws in proptest::collection::vec("[ \t\n\r]{0,2}", 12),
    ) {
        let member = |i: usize| match i {
            0 => Some(format!(r#""type"{}:{}"ack""#, ws[0], ws[1])),
            1 => Some(format!(r#""seq"{}:{}{seq}"#, ws[2], ws[3])),
            _ => ms.map(|ms| format!(r#""buffer_ms"{}:{}{ms}"#, ws[4], ws[5])),
        };
        let members: Vec<String> = order.iter().filter_map(|&i| member(i)).collect();
        let text = format!("{}{{{}{}{}}}{}", ws[6], ws[7], members.join(&format!("{},{}", ws[8], ws[9])), ws[10], ws[11]);
        let plain = plain_ack(&text);
        prop_assert!(plain.is_some(), "{:?} took the slow path", text);
        prop_assert_eq!(plain, ClientMsg::parse_json(&text).ok());
    }

    /// Whatever the text, the shortcut either declines or agrees with the
    /// JSON parser: it can never accept what the parser refuses.
    #[test]
    fn the_plain_ack_never_disagrees(
        head in "( ?\\{ ?\"type\" ?: ?\"ack\"|\\{\"seq\":1|\\{\"ty\\\\pe\":\"ack\"|\\{\"type\":\"ac\"|\\{)",
        seq in "(,\"seq\" ?: ?(0|[1-9][0-9]{0,20}|0[0-9]{1,3}|-?[0-9.eE+]{1,6})|,\"seq\":\"1\"|)",
        ms in "(|,\"buffer_ms\":(0|[1-9][0-9]{0,17}|0[0-9]|[0-9.eE+-]{1,5}|null)|,\"x\":1|,\"type\":\"ack\")",
        tail in "(\\}|\\} |\\}\\}|\\},|\\} x|)",
    ) {
        let text = format!("{head}{seq}{ms}{tail}");
        if let Some(plain) = plain_ack(&text) {
            prop_assert_eq!(Ok(plain), ClientMsg::parse_json(&text), "{}", text);
        }
    }

    #[test]
    fn the_plain_ack_declines_what_it_cannot_read_exactly(s in ".{0,60}") {
        if let Some(plain) = plain_ack(&s) {
            prop_assert_eq!(Ok(plain), ClientMsg::parse_json(&s), "{}", s);
        }
    }

    #[test]
    fn any_ack_round_trips(seq: u64) {
        let text = format!(r#"{{"type":"ack","seq":{seq}}}"#);
        prop_assert_eq!(ClientMsg::parse(&text).unwrap(), ClientMsg::Ack { seq, buffer_ms: None });
    }
}
