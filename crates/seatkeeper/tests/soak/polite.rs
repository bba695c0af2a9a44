//! Well-behaved clients on testkit's `Client`: each worker loops until the
//! soak ends, counting what happened and reporting what should not have.

use super::*;

/// Sends `hello`; the first text reply, or `None` if there was none.
async fn hello(s: &Soak, c: &mut Client, extra: Value) -> Option<Value> {
    let mut msg = json!({"type": "hello", "client_id": "soak"});
    if let (Some(m), Some(e)) = (msg.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    s.hellos_sent.fetch_add(1, Relaxed);
    c.send(msg).await;
    let reply = loop {
        match c.next(PATIENCE).await {
            Some(Event::Text(v)) => break Some(v),
            Some(Event::Slice(..)) => continue,
            _ => break None,
        }
    };
    s.hellos_answered.fetch_add(1, Relaxed);
    reply
}

/// A fresh session's `ready`; `busy` is counted (and must close 1013).
async fn admit(s: &Soak, c: &mut Client, who: &str) -> Option<Value> {
    match hello(s, c, json!({})).await {
        Some(v) if v["type"] == "ready" => return Some(v),
        Some(v) if v["type"] == "busy" => {
            s.count("busy");
            match c.until_closed(PATIENCE).await {
                Some(Event::Closed(Some(1013))) => {}
                other => s.fail(format!("{who}: busy closed with {other:?}")),
            }
        }
        other => s.fail(format!("{who}: hello answered {other:?}")),
    }
    None
}

/// Reads and acks slices for `dur`; slices seen and the last seq.
async fn stream(c: &mut Client, dur: Duration) -> Result<(u64, u64), String> {
    let end = tokio::time::Instant::now() + dur;
    let (mut n, mut last) = (0, 0);
    while let Some(left) = end.checked_duration_since(tokio::time::Instant::now()) {
        match c.next(left).await {
            Some(Event::Slice(h, ..)) => {
                n += 1;
                last = h.seq;
                c.send(json!({"type": "ack", "seq": h.seq})).await;
            }
            Some(Event::Text(v)) if v["type"] == "stats" => {}
            None => break,
            other => return Err(format!("stream ended after {n} slices: {other:?}")),
        }
    }
    Ok((n, last))
}

/// `bye`, a 1000 close, and the session gone at once.
async fn bye(s: &Soak, c: &mut Client, id: &str, who: &str) {
    c.send(json!({"type": "bye"})).await;
    match c.until_closed(PATIENCE).await {
        Some(Event::Closed(Some(1000))) => {}
        other => return s.fail(format!("{who} {id}: bye closed with {other:?}")),
    }
    if !s.gone(id, PATIENCE).await {
        s.fail(format!("{who} {id}: still listed after bye"));
    }
}

/// Connect, hello, stream, bye.
pub(crate) async fn streamer(s: Arc<Soak>, mut rng: Rng) {
    while s.running() {
        let mut c = Client::connect(s.server.addr).await;
        let Some(ready) = admit(&s, &mut c, "streamer").await else {
            sleep(Duration::from_millis(200)).await;
            continue;
        };
        let id = str_of(&ready, "session_id");
        match stream(&mut c, rng.millis(500, 2000)).await {
            Ok((n, _)) if n > 0 => {}
            other => {
                s.fail(format!("streamer {id}: {other:?}"));
                continue;
            }
        }
        bye(&s, &mut c, &id, "streamer").await;
        s.count("bye");
    }
}

/// Connect, hello, stream, then a reset or a half-close: the session
/// detaches and expires at the end of its resume window.
pub(crate) async fn dropper(s: Arc<Soak>, mut rng: Rng) {
    while s.running() {
        let mut c = Client::connect(s.server.addr).await;
        if admit(&s, &mut c, "dropper").await.is_some() {
            if let Err(e) = stream(&mut c, rng.millis(200, 800)).await {
                s.fail(format!("dropper: {e}"));
            }
            if rng.coin() {
                c.rst();
                s.count("rst");
            } else {
                let c = c.fin().await;
                sleep(Duration::from_millis(100)).await;
                drop(c);
                s.count("fin");
            }
        }
        sleep(rng.millis(300, 1000)).await;
    }
}

/// Connect, hello, stream, lose the transport (a reset, or a FIN without a
/// close frame), resume (one to three times), bye.
pub(crate) async fn resumer(s: Arc<Soak>, mut rng: Rng) {
    'outer: while s.running() {
        let mut c = Client::connect(s.server.addr).await;
        let Some(ready) = admit(&s, &mut c, "resumer").await else {
            sleep(Duration::from_millis(200)).await;
            continue;
        };
        let id = str_of(&ready, "session_id");
        let mut token = str_of(&ready, "resume_token");
        let mut last = match stream(&mut c, Duration::from_millis(300)).await {
            Ok((n, last)) if n > 0 => last,
            other => {
                s.fail(format!("resumer {id}: {other:?}"));
                continue;
            }
        };
        for _ in 0..1 + rng.next_u64() % 3 {
            // A half-closed socket is kept open until the resume is done:
            // closing it with slices unread would turn the FIN into a reset.
            let mut half_closed = None;
            let how = if rng.coin() {
                c.rst();
                "resume_after_rst"
            } else {
                half_closed = Some(c.fin().await);
                "resume_after_fin"
            };
            c = Client::connect(s.server.addr).await;
            let again = hello(&s, &mut c, json!({"resume": token})).await;
            let Some(again) = again else {
                s.fail(format!("resumer {id}: no answer to a resume"));
                continue 'outer;
            };
            if again["resumed"] != true || again["session_id"] != id {
                s.fail(format!("resumer {id} ({how}): resume answered {again}"));
                continue 'outer;
            }
            token = str_of(&again, "resume_token");
            match c.next(PATIENCE).await {
                Some(Event::Slice(h, ..)) if h.keyframe() && h.seq > last => {}
                other => {
                    s.fail(format!(
                        "resumer {id}: first after resume (last {last}): {other:?}"
                    ));
                    continue 'outer;
                }
            }
            last = match stream(&mut c, Duration::from_millis(300)).await {
                Ok((_, l)) => l.max(last),
                Err(e) => {
                    s.fail(format!("resumer {id}: {e}"));
                    continue 'outer;
                }
            };
            drop(half_closed);
            s.count(how);
        }
        bye(&s, &mut c, &id, "resumer").await;
    }
}

/// Connect (a small receive buffer, or the default), hello, stream a
/// little, then never read again: the reaper must release the seat.
pub(crate) async fn freezer(s: Arc<Soak>, mut rng: Rng) {
    while s.running() {
        let small = rng.coin();
        let mut c = Client::connect_with(s.server.addr, small.then_some(8 << 10)).await;
        let Some(ready) = admit(&s, &mut c, "freezer").await else {
            sleep(Duration::from_millis(200)).await;
            continue;
        };
        let id = str_of(&ready, "session_id");
        if let Err(e) = stream(&mut c, Duration::from_millis(300)).await {
            s.fail(format!("freezer {id}: {e}"));
            continue;
        }
        // Frozen: the socket stays open and unread. Stall grace 2 s, pong
        // timeout 4 s; 20 s is the generous bound. A reaped session is
        // released at once: it must never be seen waiting for a resume.
        let path = format!("/sessions/{id}");
        let verdict = wait_until(Duration::from_secs(20), || async {
            match s.server.get(&path).await {
                Ok((404, _)) => Some(Ok(())),
                Ok((200, body)) => serde_json::from_str::<Value>(&body)
                    .ok()
                    .filter(|v| v["state"] == "detached")
                    .map(|v| Err(v.to_string())),
                _ => None,
            }
        })
        .await;
        match verdict {
            Some(Ok(())) => s.count("frozen_reaped"),
            Some(Err(v)) => s.fail(format!(
                "freezer: a frozen session was detached, not released: {v}"
            )),
            None => s.fail(format!(
                "freezer {id} (small buffer: {small}): not reaped in 20 s"
            )),
        }
        drop(c);
        // A reaped session cannot be resumed: its token is a plain hello now.
        let mut c = Client::connect(s.server.addr).await;
        let token = str_of(&ready, "resume_token");
        match hello(&s, &mut c, json!({"resume": token})).await {
            Some(v) if v["type"] == "ready" && v["resumed"] == false && v["session_id"] != id => {
                bye(&s, &mut c, &str_of(&v, "session_id"), "freezer").await;
                s.count("reaped_not_resumed");
            }
            Some(v) if v["type"] == "busy" => s.count("busy"),
            other => s.fail(format!(
                "freezer {id}: resuming a reaped session answered {other:?}"
            )),
        }
    }
}
