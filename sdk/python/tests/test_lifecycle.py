"""Engine lifecycle: session_detached, session_resumed, progress.

These need the server side of those messages (the engine-link work); on
a server without it they fail, as they should.
"""

import asyncio

import pytest

from conftest import PYTHON, REPO, eventually, run_async
from seatkeeper.client import Client
from seatkeeper.engine import AsyncEngine, Detached, End, Keyframe, Progress, Resumed


def test_the_engine_hears_detached_on_an_rst_resumed_on_resume_and_progress(engine_server):
    server, address = engine_server
    events = []

    async def on_session(session):
        await session.ready({"name": "life", "kind": 9})
        producer = asyncio.ensure_future(_produce(session))
        async for event in session.events():
            events.append(event)
        await producer

    async def main():
        engine = AsyncEngine(on_session, name="life")
        runner = asyncio.ensure_future(engine.run(address))
        await eventually(lambda: server.status("/readyz") == 200, "the engine")
        client = Client(server.url, backoff_initial=0.05, backoff_max=0.1)
        client.buffer_ms = 123.0
        await client.connect()
        n = 0
        async for _ in client.slices():
            n += 1
            if n == 10:
                client.drop()
                await eventually(lambda: any(isinstance(e, Detached) for e in events),
                                 "session_detached at the engine")
            if client.resumes and any(isinstance(e, Resumed) for e in events) and n >= 30:
                break
        await eventually(lambda: any(isinstance(e, Progress) and e.buffer_ms == 123.0
                                     for e in events), "progress with the client's buffer")
        await client.close()
        await eventually(lambda: events and isinstance(events[-1], End), "the end")
        engine.stop()
        await asyncio.wait_for(runner, 10)

    run_async(main())
    kinds = [type(e) for e in events]
    detached = kinds.index(Detached)
    resumed = kinds.index(Resumed)
    assert detached < resumed and Keyframe in kinds[resumed:], kinds
    assert events[detached].resume_window_ms > 0
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress[-1].acked_seq > 0 and progress[-1].sent_seq >= progress[-1].acked_seq
    assert events[-1] == End("bye")


@pytest.mark.parametrize("example", ["engines/python/sine_engine.py",
                                     "examples/asyncio_numpy_engine.py"])
def test_the_example_engines_produce_nothing_while_detached(serve, tmp_dir, spawn, example):
    address = f"unix:{tmp_dir / 'e.sock'}"
    server = serve("--engine", address, "--resume-window-s", "10")
    spawn([PYTHON, str(REPO / example), address])
    server.wait_ready()
    samples = []

    def produced(sid):
        s = server.session(sid)
        return s["state"], s["slices_sent"] + s["slices_dropped"]

    async def hold_detached(attempt, delay, exc):
        # The client stays away 1.5 s (15 slice slots) before resuming.
        await eventually(lambda: produced(sid)[0] == "detached", "the detached state")
        await asyncio.sleep(0.3)  # messages in flight when the link dropped
        samples.append(produced(sid))
        await asyncio.sleep(1.5)
        samples.append(produced(sid))

    async def main():
        nonlocal sid
        client = Client(server.url, on_reconnecting=hold_detached, backoff_initial=0.01)
        await client.connect()
        sid = client.session_id
        n = 0
        async for _ in client.slices():
            n += 1
            if n == 3:
                client.drop()
            if client.resumes and n >= 6:
                break
        await client.close()

    sid = None
    run_async(main())
    (state0, before), (state1, after) = samples
    assert state0 == state1 == "detached"
    assert after == before, f"{after - before} slices produced while detached"


async def _produce(session):
    n = 0
    while not session.ended:
        if session.detached:
            await session.wait_attached()
            continue
        try:
            await session.send(b"x" * 32, kind=9, timestamp_us=n * 10_000,
                               keyframe=session.keyframe_wanted)
        except Exception:
            return
        n += 1
        await asyncio.sleep(0.01)
