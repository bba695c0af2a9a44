//! A panic inside one session's work never takes the server down or leaks
//! its seat. In-process, with an engine built to panic on request.

use std::{sync::Arc, time::Duration};

use seatkeeper_engine::{
    spec::BuiltIn, BoxFuture, Engine, EngineError, EngineSession, EngineSpec, OpenRequest,
};
use seatkeeper_server::{Config, Server};
use seatkeeper_testkit::{http::http, Client, Event};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// The demo engine, except that `hello.engine.panic` makes `open` panic.
struct Panicky(BuiltIn);

impl Engine for Panicky {
    fn name(&self) -> String {
        "panicky".into()
    }
    fn is_ready(&self) -> bool {
        true
    }
    fn open(&self, req: OpenRequest) -> BoxFuture<Result<EngineSession, EngineError>> {
        if req.config.contains_key("panic") {
            panic!("engine asked to panic");
        }
        self.0.open(req)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_session_start_releases_its_seat_and_the_server_goes_on() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let engine = Arc::new(Panicky(BuiltIn::new(EngineSpec::Demo)));
    let server = Server::new(Config::default(), engine, None, shutdown.clone()).unwrap();
    let serving = tokio::spawn(server.serve(listener));

    for _ in 0..3 {
        let mut c = Client::connect(addr).await;
        c.send(json!({"type": "hello", "engine": {"panic": true}}))
            .await;
        // The connection just ends: no session, no reply.
        let end = c.until_closed(Duration::from_secs(5)).await;
        assert!(
            matches!(end, Some(Event::Closed(_) | Event::Error(_))),
            "{end:?}"
        );
        let (_, body) = http(addr, "GET", "/sessions", &[], "").await.unwrap();
        let sessions: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(sessions["seats"]["held"], 0, "seat leaked: {sessions}");
    }
    let mut ok = Client::connect(addr).await;
    assert_eq!(ok.hello(json!({})).await["type"], "ready");
    let (n, _) = ok.stream_for(Duration::from_millis(500), true).await;
    assert!(n >= 3, "{n}");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(6), serving)
        .await
        .expect("serve returns after shutdown")
        .unwrap()
        .unwrap();
}
