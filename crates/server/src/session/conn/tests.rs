//! The connection's reader and writer driven in-process: the server side of
//! a real tokio-tungstenite pair over a `tokio::io::duplex` pipe, the test
//! playing both the client and the session task.
//!
//! The socket handle a connection carries needs a live descriptor (the
//! sampler and aborts act on it), so each harness holds a real Unix
//! socketpair for it; nothing is sent on that pair, and the sampler's
//! interval is an hour, so no verdict ever lands on it.

use std::{
    os::{fd::AsRawFd, unix::net::UnixStream},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use seatkeeper_engine::Slice;
use seatkeeper_liveness::{DetectorConfig, Hooks, Sampler, SocketHandle};
use seatkeeper_protocol::{
    close,
    messages::Window,
    slice::{Frame, SliceHeader, FLAG_DROPPABLE, FLAG_KEYFRAME},
};
use tokio::{io::DuplexStream, sync::mpsc};
use tokio_tungstenite::{
    tungstenite::{
        protocol::{frame::coding::CloseCode, CloseFrame, Role, WebSocketConfig},
        Message,
    },
    WebSocketStream,
};
use tokio_util::sync::CancellationToken;

use super::{wire::frame_head, Conn, ConnEnd};
use crate::test_io::{HeldUntilFlush, PipeEnd};
use crate::{
    config::Config, session::shared::Shared, session::Event, session::Session,
    write_through::WriteThrough,
};

type Client = WebSocketStream<DuplexStream>;

/// A live descriptor for a connection's socket handle, retired before it
/// closes (as the listener does).
struct Fd(Arc<SocketHandle>, Option<(UnixStream, UnixStream)>);

impl Drop for Fd {
    fn drop(&mut self) {
        let _retired = self.0.retire();
        drop(self.1.take());
    }
}

struct Harness {
    app: Arc<Shared>,
    session: Arc<Session>,
    events: mpsc::Receiver<Event>,
    conn: Arc<Conn>,
    client: Client,
    _fd: Fd,
}

fn app(config: Config) -> Arc<Shared> {
    let detector = DetectorConfig {
        grace: config.stall_grace,
        pong_timeout: config.pong_timeout,
    };
    let sampler = Sampler::start(Duration::from_secs(3600), detector).expect("sampler thread");
    Arc::new(Shared::new(config, None, sampler, CancellationToken::new()))
}

/// A client connected to a running connection of `session`.
async fn connect(
    app: &Arc<Shared>,
    session: &Arc<Session>,
    pipe: usize,
) -> (Arc<Conn>, Client, Fd) {
    connect_over(app, session, pipe, |p| p).await
}

/// [`connect`], with the server's end of the pipe wrapped by `wrap`.
async fn connect_over<S: super::Io>(
    app: &Arc<Shared>,
    session: &Arc<Session>,
    pipe: usize,
    wrap: impl FnOnce(PipeEnd) -> S,
) -> (Arc<Conn>, Client, Fd) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    let socket = Arc::new(SocketHandle::new(a.as_raw_fd()));
    let fd = Fd(Arc::clone(&socket), Some((a, b)));
    let (server_end, client_end) = tokio::io::duplex(pipe);
    let io = WriteThrough::new(wrap(PipeEnd {
        io: server_end,
        socket: Some(Arc::clone(&socket)),
    }));
    let config = WebSocketConfig::default()
        .max_message_size(Some(app.config.max_message_bytes))
        .max_frame_size(Some(app.config.max_message_bytes));
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
    let client = WebSocketStream::from_raw_socket(client_end, Role::Client, None).await;
    let conn = Conn::new(app, &session.id, "127.0.0.1:9".parse().unwrap(), socket);
    let generation = session.attach_now(&conn);
    tokio::spawn(super::run(
        ws,
        Arc::clone(session),
        Arc::clone(&conn),
        generation,
    ));
    (conn, client, fd)
}

async fn harness(config: Config) -> Harness {
    let app = app(config);
    let (session, events) = Session::new(&app, None);
    let (conn, mut client, fd) = connect(&app, &session, 64 << 10).await;
    let ready = text(&mut client).await;
    assert!(ready.contains(r#""type":"ready""#), "{ready}");
    Harness {
        app,
        session,
        events,
        conn,
        client,
        _fd: fd,
    }
}

async fn next(client: &mut Client) -> Message {
    tokio::time::timeout(Duration::from_secs(10), client.next())
        .await
        .expect("a message in time")
        .expect("the stream is open")
        .expect("a well-formed frame")
}

async fn text(client: &mut Client) -> String {
    match next(client).await {
        Message::Text(t) => t.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

/// The close frame's code and reason.
async fn closed(client: &mut Client) -> (u16, String) {
    match next(client).await {
        Message::Close(Some(f)) => (u16::from(f.code), f.reason.to_string()),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// How the connection ended, as the session task hears it.
async fn ended(events: &mut mpsc::Receiver<Event>) -> ConnEnd {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("an event in time")
            .expect("the connection reports");
        if let Event::ConnEnded(_, end) = ev {
            return *end;
        }
    }
}

/// A session whose window takes 64 slices (64 MiB), on a connection through
/// a 4 KiB pipe, so the writer, not the window, waits.
async fn small_pipe_wide_window() -> (Arc<Shared>, Arc<Session>, Client, Fd, mpsc::Receiver<Event>)
{
    let app = app(Config {
        window: Window {
            slices: 64,
            bytes: 64 << 20,
        },
        ..Config::default()
    });
    let (session, events) = Session::new(&app, None);
    let (_conn, client, fd) = connect(&app, &session, 4096).await;
    (app, session, client, fd, events)
}

/// The close code of a connection that ended as a violation.
async fn violation_code(events: &mut mpsc::Receiver<Event>) -> u16 {
    match ended(events).await {
        ConnEnd::Violation { code, .. } => code,
        other => panic!("expected a violation, got {other:?}"),
    }
}

fn slice(flags: u8, timestamp_us: u64, payload: &[u8]) -> Slice {
    Slice {
        kind: 7,
        flags,
        timestamp_us,
        frame: Frame::from_payload(payload),
    }
}

/// Pushes as the engine does: written at once while the writer waits, or
/// queued and the writer woken.
fn push(session: &Arc<Session>, s: Slice) {
    use seatkeeper_engine::SliceSink;
    crate::session::Sink(Arc::clone(session)).push(s);
}

/// A slice as the client got it: header and payload.
async fn binary(client: &mut Client) -> (SliceHeader, Vec<u8>) {
    match next(client).await {
        Message::Binary(b) => (
            SliceHeader::decode(&b).expect("a slice header"),
            b[seatkeeper_protocol::SLICE_HEADER_LEN..].to_vec(),
        ),
        other => panic!("expected a slice, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_over_the_rate_is_closed_with_1008() {
    let mut h = harness(Config {
        max_msg_rate: 5,
        ..Config::default()
    })
    .await;
    // Acks that acknowledge nothing new are not exempt; the paused clock
    // refills nothing, so the sixth is over.
    for _ in 0..6 {
        h.client
            .send(Message::text(r#"{"type":"ack","seq":0}"#))
            .await
            .unwrap();
    }
    let err = text(&mut h.client).await;
    assert!(err.contains(r#""code":"rate_limited""#), "{err}");
    assert_eq!(
        closed(&mut h.client).await,
        (close::POLICY, "rate_limited".into())
    );
    assert_eq!(violation_code(&mut h.events).await, close::POLICY);
}

#[tokio::test]
async fn binary_from_the_client_is_closed_with_1003() {
    let mut h = harness(Config::default()).await;
    h.client.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    let err = text(&mut h.client).await;
    assert!(err.contains("binary_not_accepted"), "{err}");
    assert_eq!(closed(&mut h.client).await.0, close::UNSUPPORTED_DATA);
    assert_eq!(violation_code(&mut h.events).await, close::UNSUPPORTED_DATA);
}

#[tokio::test]
async fn an_unknown_type_is_answered_and_bad_json_is_closed_with_1007() {
    let mut h = harness(Config::default()).await;
    h.client
        .send(Message::text(r#"{"type":"nope"}"#))
        .await
        .unwrap();
    let err = text(&mut h.client).await;
    assert!(err.contains(r#""code":"unknown_type""#), "{err}");
    h.client.send(Message::text("{not json")).await.unwrap();
    let err = text(&mut h.client).await;
    assert!(err.contains(r#""code":"invalid_payload""#), "{err}");
    assert_eq!(closed(&mut h.client).await.0, close::INVALID_PAYLOAD);
}

#[tokio::test]
async fn bye_is_closed_with_1000() {
    let mut h = harness(Config::default()).await;
    h.client
        .send(Message::text(r#"{"type":"bye"}"#))
        .await
        .unwrap();
    assert_eq!(closed(&mut h.client).await, (close::NORMAL, "bye".into()));
    assert!(matches!(ended(&mut h.events).await, ConnEnd::Bye));
}

#[tokio::test]
async fn the_peers_close_is_echoed_with_its_code() {
    let mut h = harness(Config::default()).await;
    let frame = CloseFrame {
        code: CloseCode::from(3000),
        reason: "done".into(),
    };
    h.client.send(Message::Close(Some(frame))).await.unwrap();
    assert_eq!(closed(&mut h.client).await.0, 3000);
    assert!(matches!(
        ended(&mut h.events).await,
        ConnEnd::PeerClosed(Some(3000))
    ));
}

/// Exactly the bytes written up to the end of the ping are its offset (the
/// pipe counts every byte, as the tracked socket does), and the client's
/// automatic pong answers it.
#[tokio::test]
async fn a_ping_written_marks_its_end_offset_and_the_pong_answers_it() {
    let mut h = harness(Config::default()).await;
    let ready_len = h.conn.socket.bytes_written();
    push(&h.session, slice(FLAG_KEYFRAME, 1, &[9; 300]));
    let (header, payload) = binary(&mut h.client).await;
    assert_eq!((header.seq, payload.len()), (1, 300));
    h.session
        .outbox()
        .set_ping(Bytes::copy_from_slice(&h.conn.ping_payload()));
    h.session.wake.notify();
    assert!(matches!(next(&mut h.client).await, Message::Ping(_)));
    let ping = h.conn.pings().oldest().expect("the ping is recorded");
    let slice_frame = frame_head(2, 320).1 as u64 + 320;
    assert_eq!(ping.end_offset, ready_len + slice_frame + 10);
    assert_eq!(h.conn.socket.bytes_written(), ping.end_offset);
    // The client's pong goes out with its next write.
    h.client.flush().await.unwrap();
    for _ in 0..1000 {
        if h.conn.pings().pending() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the pong never answered the ping");
}

/// With a full window the writer sends nothing, droppable slices are
/// dropped, and the newest goes out once an ack opens the window.
#[tokio::test]
async fn the_writer_drops_stale_slices_and_sends_the_newest() {
    let mut h = harness(Config {
        window: Window {
            slices: 1,
            bytes: 1 << 20,
        },
        ..Config::default()
    })
    .await;
    push(
        &h.session,
        slice(FLAG_DROPPABLE | FLAG_KEYFRAME, 1, b"first"),
    );
    assert_eq!(binary(&mut h.client).await.1, b"first");
    for (ts, p) in [(2, &b"stale"[..]), (3, b"older"), (4, b"newest")] {
        push(&h.session, slice(FLAG_DROPPABLE, ts, p));
    }
    h.client
        .send(Message::text(r#"{"type":"ack","seq":1}"#))
        .await
        .unwrap();
    let (header, payload) = binary(&mut h.client).await;
    assert_eq!(
        (header.seq, header.timestamp_us, &payload[..]),
        (2, 4, &b"newest"[..])
    );
    assert_eq!(h.session.outbox().counters().slices_dropped, 2);
    drop(h.app);
}

/// Slices of every header length, megabytes and empty ones, with control
/// messages between them, through a pipe smaller than most of them: every
/// frame arrives whole and in order.
#[tokio::test]
async fn frames_of_every_length_arrive_whole_through_a_small_pipe() {
    let (_app, session, mut client, _fd, _events) = small_pipe_wide_window().await;
    assert!(text(&mut client).await.contains("ready"));
    let sizes = [0usize, 1, 105, 106, 125, 65_515, 65_516, 70_000, 1 << 20, 3];
    for (i, &n) in sizes.iter().enumerate() {
        let payload: Vec<u8> = (0..n).map(|j| (j * 7 + i) as u8).collect();
        push(&session, slice(0, i as u64, &payload));
        if i % 3 == 0 {
            session.send_control(&seatkeeper_protocol::ServerMsg::error(
                "x",
                format!("note {i}"),
            ));
        }
    }
    let (mut seq, mut notes) = (0, 0);
    while seq < sizes.len() as u64 {
        match next(&mut client).await {
            Message::Binary(b) => {
                let h = SliceHeader::decode(&b).unwrap();
                seq += 1;
                assert_eq!(h.seq, seq);
                let i = h.timestamp_us as usize;
                let want: Vec<u8> = (0..sizes[i]).map(|j| (j * 7 + i) as u8).collect();
                assert!(b[20..] == want[..], "slice {i} differs");
            }
            Message::Text(t) => {
                assert!(t.contains(&format!("note {}", notes * 3)), "{t}");
                notes += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(notes, 4);
}

/// A resume takes the session over: the old connection's writer stops and
/// its client sees 4002.
#[tokio::test]
async fn a_takeover_closes_the_old_connection_with_4002() {
    let mut h = harness(Config::default()).await;
    let (_conn2, mut client2, _fd2) = connect(&h.app, &h.session, 64 << 10).await;
    assert!(text(&mut client2).await.contains("ready"));
    assert_eq!(closed(&mut h.client).await.0, close::REPLACED);
    assert!(matches!(ended(&mut h.events).await, ConnEnd::Replaced));
}

/// The writer waits on a full pipe while the client's ping makes the reader
/// write a pong, which takes over the pipe's one write waker: once the
/// client reads again, every slice and the pong still arrive (the writer is
/// woken through tungstenite, not lost).
#[tokio::test]
async fn a_pong_written_while_the_writer_waits_does_not_strand_it() {
    let (_app, session, mut client, _fd, _events) = small_pipe_wide_window().await;
    for i in 0..20u64 {
        push(&session, slice(0, i, &[i as u8; 16 << 10]));
    }
    // Let the writer fill the pipe and wait on it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    client
        .send(Message::Ping(Bytes::from_static(b"hi")))
        .await
        .unwrap();
    // Let the reader take the ping and find the pipe full for its pong.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (mut slices, mut pong) = (0, false);
    while slices < 20 || !pong {
        match next(&mut client).await {
            Message::Binary(_) => slices += 1,
            Message::Pong(p) => pong = &p[..] == b"hi",
            Message::Text(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The peer sends its close and goes while the writer is stuck writing a
/// ping, before the reader has got to the close (it waits on a full session
/// queue behind the peer's earlier messages): the ping's write fails first,
/// yet the connection ends as the peer's close, not as a lost transport.
#[tokio::test]
async fn a_ping_failing_after_the_peers_close_ends_as_peer_closed() {
    let app = app(Config {
        max_msg_rate: 10_000,
        close_grace: Duration::from_secs(60),
        ..Config::default()
    });
    let (session, mut events) = Session::new(&app, None);
    let (conn, mut client, _fd) = connect(&app, &session, 4096).await;
    assert!(text(&mut client).await.contains("ready"));
    // One slice that fills the 4 KiB pipe to the client exactly (a 4-byte
    // frame header, the 20-byte slice header, the payload)...
    let start = conn.socket.bytes_written();
    push(&session, slice(FLAG_KEYFRAME, 1, &[7; 4096 - 24]));
    let filled = until(|| conn.socket.bytes_written() == start + 4096).await;
    assert!(filled, "the slice did not fill the pipe");
    // ...so the ping's write waits.
    session
        .outbox()
        .set_ping(Bytes::copy_from_slice(&conn.ping_payload()));
    session.wake.notify();
    // More messages than the session queue holds, then the close: the
    // reader waits with the close frame unread.
    for _ in 0..80 {
        client
            .feed(Message::text(r#"{"type":"params","x":1}"#))
            .await
            .unwrap();
    }
    let frame = CloseFrame {
        code: CloseCode::from(3000),
        reason: "done".into(),
    };
    client.send(Message::Close(Some(frame))).await.unwrap();
    assert!(
        until(|| session.events().capacity() == 0).await,
        "queue not full"
    );
    assert!(conn.pings().oldest().is_none(), "the ping got out");
    // The peer goes: the ping's write fails at once.
    drop(client);
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let end = ended(&mut events).await;
    assert!(matches!(end, ConnEnd::PeerClosed(Some(3000))), "{end:?}");
}

/// Whether `check` holds within 10 s (polled every 5 ms).
async fn until(check: impl Fn() -> bool) -> bool {
    for _ in 0..2000 {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

fn written_by_push(app: &Shared) -> u64 {
    app.metrics
        .slices_written_by_push
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// While the writer waits, a pushed slice is written by the push itself
/// (no wake-up); a control message still goes through the writer, in order.
#[tokio::test]
async fn a_slice_pushed_while_the_writer_waits_is_written_by_the_push() {
    let mut h = harness(Config::default()).await;
    assert!(until(|| h.session.outbox().writer_waits()).await);
    push(&h.session, slice(0, 1, b"first"));
    let (head, payload) = binary(&mut h.client).await;
    assert_eq!((head.seq, &payload[..]), (1, &b"first"[..]));
    assert_eq!(written_by_push(&h.app), 1);
    h.session
        .send_control(&seatkeeper_protocol::ServerMsg::error("x", "note"));
    assert!(text(&mut h.client).await.contains("note"));
    assert!(until(|| h.session.outbox().writer_waits()).await);
    push(&h.session, slice(0, 2, b"second"));
    assert_eq!(binary(&mut h.client).await.0.seq, 2);
    assert_eq!(written_by_push(&h.app), 2);
}

/// A slice pushed while the writer waits, larger than the pipe: the push
/// writes what the pipe takes and the writer the rest, with nothing else
/// pushed to wake it; what comes after follows whole and in order. A slice
/// over the push's limit is the writer's from the start.
#[tokio::test]
async fn a_pushed_slice_the_pipe_cannot_take_whole_is_finished_by_the_writer() {
    let (app, session, mut client, _fd, _events) = small_pipe_wide_window().await;
    assert!(text(&mut client).await.contains("ready"));
    assert!(until(|| session.outbox().writer_waits()).await);
    let big: Vec<u8> = (0..super::PUSH_WRITE_MAX as u32)
        .map(|i| (i % 251) as u8)
        .collect();
    push(&session, slice(0, 1, &big));
    assert_eq!(written_by_push(&app), 1, "the push wrote the start of it");
    // Nothing else is pushed: the writer alone must finish it.
    let (head, payload) = binary(&mut client).await;
    assert_eq!(head.seq, 1);
    assert!(payload == big, "the big slice arrived whole");
    session.send_control(&seatkeeper_protocol::ServerMsg::error("x", "after"));
    push(&session, slice(0, 2, b"small"));
    assert!(text(&mut client).await.contains("after"));
    let (head, payload) = binary(&mut client).await;
    assert_eq!((head.seq, &payload[..]), (2, &b"small"[..]));
    assert!(until(|| session.outbox().writer_waits()).await);
    let pushed = written_by_push(&app);
    let over = vec![7u8; super::PUSH_WRITE_MAX + 1];
    push(&session, slice(0, 3, &over));
    let (head, payload) = binary(&mut client).await;
    assert_eq!((head.seq, payload.len()), (3, over.len()));
    assert_eq!(written_by_push(&app), pushed, "the writer wrote it");
}

/// Over a stream that holds what it is given until flushed (as TLS holds
/// its records), a slice the push writes still goes out with nothing else
/// written after it.
#[tokio::test]
async fn a_pushed_slice_goes_out_through_a_stream_that_holds_writes_until_flushed() {
    let app = app(Config::default());
    let (session, _events) = Session::new(&app, None);
    let (_conn, mut client, _fd) =
        connect_over(&app, &session, 64 << 10, HeldUntilFlush::new).await;
    assert!(text(&mut client).await.contains("ready"));
    assert!(until(|| session.outbox().writer_waits()).await);
    push(&session, slice(0, 1, b"held"));
    let (head, payload) = binary(&mut client).await;
    assert_eq!((head.seq, &payload[..]), (1, &b"held"[..]));
    assert_eq!(written_by_push(&app), 1);
}
