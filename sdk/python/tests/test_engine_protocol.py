"""Both engine SDKs against a scripted server on a real Unix socket: every
server-to-engine message, the lifecycle ones included, reaches the engine
as the documented callback or event. (The real binary's side of the
lifecycle messages is covered by test_lifecycle.py.)"""

import asyncio
import json
import socket
import struct
import threading
import time

from conftest import run_async
from seatkeeper.engine import (AsyncEngine, Detached, End, Engine, Keyframe, Params, Progress,
                               Resumed)

SCRIPT = [
    {"type": "params", "session_id": "s1", "params": {"freq": 880}},
    {"type": "progress", "session_id": "s1", "acked_seq": 4, "sent_seq": 6, "buffer_ms": 250.5},
    {"type": "session_detached", "session_id": "s1", "resume_window_ms": 5000},
    {"type": "session_resumed", "session_id": "s1"},
    {"type": "keyframe", "session_id": "s1"},
    {"type": "some_future_message", "session_id": "s1"},
    {"type": "session_end", "session_id": "s1", "reason": "bye"},
]
WANT = [Params({"freq": 880}), Progress(4, 6, 250.5), Detached(5000), Resumed(), Keyframe(),
        End("bye")]


def frame(msg):
    body = json.dumps(msg).encode()
    return struct.pack("<IBB", 2 + len(body), 1, 1) + body


def read_frame(f):
    length, version, ftype = struct.unpack("<IBB", f.read(6))
    body = f.read(length - 2)
    return ftype, (json.loads(body) if ftype == 1 else body)


def scripted_server(path, log):
    """Accepts one engine, runs one session through SCRIPT, records frames."""
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(1)

    def run():
        conn, _ = srv.accept()
        f = conn.makefile("rb")
        log.append(read_frame(f)[1])  # hello
        conn.sendall(frame({"type": "welcome", "protocol": 1, "max_frame_bytes": 1 << 24,
                            "max_sessions": 1}))
        conn.sendall(frame({"type": "session_start", "session_id": "s1", "handle": 7,
                            "config": {"a": 1}}))
        while True:
            ftype, msg = read_frame(f)
            log.append(msg)
            if ftype == 1 and msg.get("type") == "session_ready":
                break
        for msg in SCRIPT:
            conn.sendall(frame(msg))
        conn.settimeout(5)
        try:
            while True:
                log.append(read_frame(f)[1])
        except (OSError, struct.error):
            pass
        conn.close()
        srv.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_the_asyncio_sdk_yields_every_event(tmp_dir):
    path = str(tmp_dir / "s.sock")
    log, events = [], []
    server = scripted_server(path, log)

    async def on_session(session):
        assert session.config == {"a": 1} and session.handle == 7
        await session.ready({"name": "t"})
        async for event in session.events():
            events.append((event, session.detached))
        assert session.params == {"freq": 880} and session.reason == "bye"
        engine.stop()

    engine = AsyncEngine(on_session, name="t", version="1")
    run_async(engine.run(f"unix:{path}"), timeout=20)
    server.join(10)
    assert [e for e, _ in events] == WANT
    # The state attributes are the newest state (a resume already read).
    assert events[-1][1] is False
    assert log[0]["type"] == "hello" and log[0]["name"] == "t"
    assert {"type": "session_ready", "session_id": "s1", "info": {"name": "t"}} in log


def test_the_thread_sdk_calls_every_callback(tmp_dir):
    path = str(tmp_dir / "s.sock")
    log, calls = [], []
    server = scripted_server(path, log)

    class T(Engine):
        name = "t"

        def on_session_start(self, session, config):
            return {"name": "t"}

        def on_params(self, session, params):
            calls.append(Params(params))

        def on_progress(self, session, progress):
            assert session.progress == progress
            calls.append(progress)

        def on_session_detached(self, session, resume_window_ms):
            assert session.detached
            calls.append(Detached(resume_window_ms))

        def on_session_resumed(self, session):
            assert not session.detached
            calls.append(Resumed())

        def on_keyframe(self, session):
            calls.append(Keyframe())

        def on_session_end(self, session, reason):
            calls.append(End(reason))
            self.stop()

    T().run(f"unix:{path}", reconnect=False)
    server.join(10)
    assert calls == WANT


def test_backpressure_is_a_wait_then_a_typed_queue_full_and_a_stalled_loop_is_reported(
        tmp_dir, caplog):
    """A server that stops reading: sends wait, ``timeout`` turns the wait
    into QueueFull, ``send_nowait`` raises it at once; a blocking call in a
    coroutine is logged as a loop stall."""
    from seatkeeper.engine import QueueFull

    path = str(tmp_dir / "s.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(1)
    outcome = {}

    def serve():
        conn, _ = srv.accept()
        f = conn.makefile("rb")
        read_frame(f)
        conn.sendall(frame({"type": "welcome", "protocol": 1, "max_frame_bytes": 1 << 24}))
        conn.sendall(frame({"type": "session_start", "session_id": "s1", "handle": 1,
                            "config": {}}))
        outcome["done"] = threading.Event()
        outcome["done"].wait(20)  # never reads again
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()

    async def on_session(session):
        await session.ready({})
        block = bytes(64 * 1024)
        sent = 0
        try:
            while True:
                await session.send(block, kind=1, timestamp_us=sent, timeout=0.5)
                sent += 1
        except QueueFull as e:
            outcome["queue_full"] = str(e)
        outcome["sent"] = sent
        try:
            session.send_nowait(block, kind=1, timestamp_us=0)
        except QueueFull:
            outcome["nowait"] = True
        time.sleep(0.8)  # a blocking call on the loop
        await asyncio.sleep(0.3)
        outcome["done"].set()
        engine.stop()

    engine = AsyncEngine(on_session, high_water=256 * 1024)
    with caplog.at_level("WARNING", logger="seatkeeper.engine"):
        run_async(engine.run(f"unix:{path}", reconnect=False), timeout=30)
    t.join(10)
    srv.close()
    assert "stayed full" in outcome["queue_full"] and outcome.get("nowait") is True
    # What the kernel buffers took, plus the bounded outbox; then it waited.
    assert 4 <= outcome["sent"] < 200, outcome
    assert any("event loop stalled" in r.getMessage() for r in caplog.records)
