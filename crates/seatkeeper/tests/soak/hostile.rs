//! Hostile clients on the WebSocket client's `Result` API and its raw
//! escape hatch (floods, garbage, mute upgrades) — a failure is counted,
//! never a panic — and plain HTTP on the same port.

use super::*;

/// Sends `hello` on `w`; the first text reply.
async fn raw_hello(w: &mut ws::Client, s: &Soak) -> Option<Value> {
    s.hellos_sent.fetch_add(1, Relaxed);
    // A send the server already cut off shows in what is read next.
    let _ = w
        .send_text(r#"{"type":"hello","client_id":"soak-raw"}"#)
        .await;
    let reply = loop {
        match w.next(PATIENCE).await {
            Some(Event::Text(v)) => break Some(v),
            Some(Event::Slice(..)) => continue,
            _ => break None,
        }
    };
    s.hellos_answered.fetch_add(1, Relaxed);
    reply
}

/// Hello on `w`; `true` when a session started (a `busy` is counted).
async fn admitted(w: &mut ws::Client, s: &Soak, who: &str) -> bool {
    match raw_hello(w, s).await {
        Some(v) if v["type"] == "ready" => true,
        Some(v) if v["type"] == "busy" => {
            s.count("busy");
            false
        }
        other => {
            s.fail(format!("{who}: hello answered {other:?}"));
            false
        }
    }
}

/// Hello, then five times `--max-msg-rate` acks in one write: closed 1008.
pub(crate) async fn flooder(s: Arc<Soak>, mut rng: Rng) {
    let burst = frame::encode(TEXT, br#"{"type":"ack","seq":0}"#).repeat(5 * MAX_MSG_RATE);
    while s.running() {
        match ws::Client::connect_addr(s.server.addr, None).await {
            Ok(mut w) => {
                if admitted(&mut w, &s, "flooder").await {
                    let _ = w.write_raw(&burst).await;
                    match w.errors_until_closed(PATIENCE).await {
                        (e, Some(Event::Closed(Some(1008))))
                            if e.iter().any(|c| c == "rate_limited") =>
                        {
                            s.count("flood_closed_1008")
                        }
                        other => s.fail(format!("flooder: {other:?}")),
                    }
                }
            }
            Err(e) => s.fail(format!("flooder: {e}")),
        }
        sleep(rng.millis(200, 800)).await;
    }
}

/// One kind of bad input and what it must cost.
#[derive(Clone, Copy)]
struct Bad<'a> {
    /// Its tally.
    name: &'static str,
    /// Sent after a `ready` (else as the first message).
    in_session: bool,
    opcode: u8,
    payload: &'a [u8],
    /// The close code; `None`: an `unknown_type` error, connection kept.
    close: Option<u16>,
}

/// Each rule of the contract's "bad input" list, in turn, before and after
/// `hello`, with the close code it must cost.
pub(crate) async fn garbler(s: Arc<Soak>, mut rng: Rng) {
    let big = format!(
        r#"{{"type":"params","pad":"{}"}}"#,
        "x".repeat(MAX_MESSAGE_BYTES)
    );
    let bad = |name, in_session, opcode, payload, close| Bad {
        name,
        in_session,
        opcode,
        payload,
        close,
    };
    let cases = [
        bad(
            "garbage_first_not_json_1007",
            false,
            TEXT,
            b"not json",
            Some(1007),
        ),
        bad(
            "garbage_first_binary_1003",
            false,
            BINARY,
            b"\x01\x02",
            Some(1003),
        ),
        bad(
            "garbage_first_not_hello_1008",
            false,
            TEXT,
            br#"{"type":"ack","seq":1}"#,
            Some(1008),
        ),
        bad(
            "garbage_not_json_1007",
            true,
            TEXT,
            b"{\"type\":",
            Some(1007),
        ),
        bad("garbage_binary_1003", true, BINARY, &[0u8; 32], Some(1003)),
        bad(
            "garbage_too_big_1009",
            true,
            TEXT,
            big.as_bytes(),
            Some(1009),
        ),
        bad(
            "garbage_unknown_type_kept",
            true,
            TEXT,
            br#"{"type":"warp"}"#,
            None,
        ),
    ];
    let mut i = rng.next_u64() as usize;
    while s.running() {
        i += 1;
        let Bad {
            name,
            in_session,
            opcode,
            payload,
            close: code,
        } = cases[i % cases.len()];
        let mut w = match ws::Client::connect_addr(s.server.addr, None).await {
            Ok(w) => w,
            Err(e) => {
                s.fail(format!("{name}: {e}"));
                continue;
            }
        };
        if in_session && !admitted(&mut w, &s, name).await {
            continue;
        }
        // Raw: the WebSocket layer would refuse to send the oversized one.
        let _ = w.send_frame(opcode, payload).await;
        if code.is_none() {
            let answer = loop {
                match w.next(PATIENCE).await {
                    Some(Event::Text(v)) if v["type"] == "stats" => continue,
                    Some(Event::Slice(..)) => continue,
                    other => break other,
                }
            };
            if !matches!(&answer, Some(Event::Text(v)) if v["code"] == "unknown_type") {
                s.fail(format!("{name}: answered {answer:?}"));
                continue;
            }
            let _ = w.send_text(r#"{"type":"bye"}"#).await;
        }
        match w.errors_until_closed(PATIENCE).await {
            (_, Some(Event::Closed(got))) if got == code.or(Some(1000)) => s.count(name),
            other => s.fail(format!("{name}: {other:?}")),
        }
        sleep(rng.millis(50, 300)).await;
    }
}

/// Upgrades that never say `hello`, dropped after a second (FIN or RST).
pub(crate) async fn mute(s: Arc<Soak>, mut rng: Rng) {
    while s.running() {
        match ws::Client::connect_addr(s.server.addr, None).await {
            Ok(w) => {
                sleep(Duration::from_secs(1)).await;
                if rng.coin() {
                    w.rst();
                } else {
                    drop(w);
                }
                s.count("mute_upgrade");
            }
            Err(e) => s.fail(format!("mute: {e}")),
        }
    }
}

/// Plain HTTP on the same port.
pub(crate) async fn browser(s: Arc<Soak>, _rng: Rng) {
    let routes: [(&str, &[u16]); 5] = [
        ("/healthz", &[200]),
        ("/readyz", &[200, 503]),
        ("/metrics", &[200]),
        ("/no/such/route", &[404]),
        ("/sessions/no-such-session", &[404]),
    ];
    while s.running() {
        for (path, ok) in routes {
            match s.server.get(path).await {
                Ok((status, _)) if ok.contains(&status) => s.count("http"),
                other => s.fail(format!("GET {path}: {other:?}")),
            }
        }
        sleep(Duration::from_millis(100)).await;
    }
}
