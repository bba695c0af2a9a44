//! `ClientMsg::parse`: everything a client's text frame can become.
//!
//! The oracle is plain `serde_json::Value` parsing of the same text: the
//! strict parser must classify each input the way the contract says
//! (not JSON, not an object, no `type`, a known type with bad fields, an
//! unknown type), and what it accepts must say exactly what the text said.

use seatkeeper_protocol::{
    messages::{Hello, MAX_CLIENT_ID_LEN, MAX_TOKEN_LEN},
    ClientMsg, ParseError,
};
use serde_json::{json, Map, Value};

/// Types the parser knows; anything else is `UnknownType`.
const KNOWN: [&str; 4] = ["hello", "ack", "params", "bye"];
/// The longest unknown type echoed back in an error (the parser truncates).
const MAX_ECHOED_TYPE: usize = 64;

/// Parses `text` and checks the outcome against the contract.
pub fn check(text: &str) {
    let parsed = ClientMsg::parse(text);
    // The parser keeps no state: the same frame always gets the same answer.
    assert_eq!(parsed, ClientMsg::parse(text), "parse is not deterministic");
    let value = serde_json::from_str::<Value>(text).ok();
    match &parsed {
        Err(e) => check_refusal(value.as_ref(), e),
        Ok(msg) => check_accepted(value.as_ref().expect("accepted text is JSON"), msg),
    }
}

fn type_of(value: Option<&Value>) -> Option<&str> {
    value?.as_object()?.get("type")?.as_str()
}

fn check_refusal(value: Option<&Value>, e: &ParseError) {
    // The server closes 1007 exactly for the fatal ones; the code it sends
    // must agree, or a client would be told one thing and shown another.
    assert_eq!(e.is_fatal(), e.code() == "invalid_payload", "{e:?}");
    assert!(!e.to_string().is_empty());
    match e {
        ParseError::NotJson(detail) => {
            assert!(value.is_none(), "JSON refused as not JSON");
            assert!(!detail.is_empty());
        }
        ParseError::NotObject => assert!(value.is_some_and(|v| !v.is_object())),
        ParseError::MissingType => {
            let map = value.and_then(Value::as_object).expect("an object");
            assert!(!map.get("type").is_some_and(Value::is_string));
        }
        ParseError::BadField { kind, detail } => {
            assert_eq!(type_of(value), Some(*kind));
            assert!(
                *kind == "hello" || *kind == "ack",
                "{kind} has no fields to refuse"
            );
            assert!(!detail.is_empty());
        }
        ParseError::UnknownType(echoed) => {
            let ty = type_of(value).expect("a string type");
            assert!(!KNOWN.contains(&ty), "known type {ty:?} called unknown");
            // The echo is bounded and a prefix of what was sent (cut on a
            // character boundary), so an error can never carry a megabyte.
            assert!(echoed.len() <= MAX_ECHOED_TYPE);
            assert!(ty.starts_with(echoed.as_str()));
            if ty.len() <= MAX_ECHOED_TYPE {
                assert_eq!(echoed, ty);
            } else {
                assert!(echoed.len() > MAX_ECHOED_TYPE - 4, "cut too short");
            }
        }
    }
}

fn check_accepted(value: &Value, msg: &ClientMsg) {
    let map = value.as_object().expect("accepted text is an object");
    let ty = map
        .get("type")
        .and_then(Value::as_str)
        .expect("a string type");
    match msg {
        ClientMsg::Ack { seq, buffer_ms } => {
            assert_eq!(ty, "ack");
            assert_eq!(map.get("seq").and_then(Value::as_u64), Some(*seq));
            let again = ClientMsg::parse(&json!({"type": "ack", "seq": seq}).to_string());
            assert!(buffer_ms.is_none_or(|ms| ms.is_finite() && ms >= 0.0));
            assert_eq!(
                again,
                Ok(ClientMsg::Ack {
                    seq: *seq,
                    buffer_ms: None
                }),
                "ack seq round trip"
            );
        }
        ClientMsg::Hello(h) => {
            assert_eq!(ty, "hello");
            check_hello(map, h);
        }
        ClientMsg::Params(params) => {
            assert_eq!(ty, "params");
            assert_eq!(params, map, "params must reach the engine unchanged");
        }
        ClientMsg::Bye => assert_eq!(ty, "bye"),
    }
}

fn check_hello(map: &Map<String, Value>, h: &Hello) {
    let field = |name: &str| map.get(name).and_then(Value::as_str);
    assert_eq!(h.client_id.as_deref(), field("client_id"));
    assert_eq!(h.resume.as_deref(), field("resume"));
    assert_eq!(h.seat_token.as_deref(), field("seat_token"));
    assert_eq!(
        h.engine.as_ref(),
        map.get("engine").and_then(Value::as_object),
        "engine config must reach the engine unchanged"
    );
    let len = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    assert!(len(&h.client_id) <= MAX_CLIENT_ID_LEN);
    assert!(len(&h.resume) <= MAX_TOKEN_LEN);
    assert!(len(&h.seat_token) <= MAX_TOKEN_LEN);
    // Re-encoded, the hello parses to itself. The engine object is left out:
    // serde_json's default float parsing may move a float by one ulp on a
    // second trip, which is serde_json's documented trade-off, not ours.
    let again = json!({
        "type": "hello",
        "client_id": h.client_id,
        "resume": h.resume,
        "seat_token": h.seat_token,
    });
    let want = Hello {
        engine: None,
        ..h.clone()
    };
    assert_eq!(
        ClientMsg::parse(&again.to_string()),
        Ok(ClientMsg::Hello(want)),
        "hello round trip"
    );
}
