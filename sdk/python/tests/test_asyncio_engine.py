"""The asyncio engine SDK serving real clients through the real binary."""

import asyncio

import numpy as np

from conftest import PYTHON, REPO, crossings_hz, eventually, run_async
from seatkeeper.audio import from_pcm_f16le
from seatkeeper.client import Client, ServerError
from seatkeeper.engine import AsyncEngine, AsyncSession, End, Params, SessionClosed, SessionRefused


def test_the_numpy_example_engine_serves_a_client_and_knobs_change_the_tone(
        engine_server, spawn):
    server, address = engine_server
    spawn([PYTHON, str(REPO / "examples" / "asyncio_numpy_engine.py"), address])
    server.wait_ready()

    async def main():
        async with Client(server.url, engine={"freq": 300}) as client:
            info = client.engine
            assert (info["name"], info["format"], info["sample_rate"], info["channels"]) == \
                ("numpy-tone", "pcm_f16le", 48000, 2), info
            assert [k["name"] for k in info["knobs"]] == ["freq", "gain"]
            tones, stamps = [], []
            async for s in client.slices():
                assert (s.kind, s.keyframe, s.droppable) == (1, True, True)
                assert len(s.payload) == 4800 * 2 * 2
                stamps.append(s.timestamp_us)
                tones.append(crossings_hz(from_pcm_f16le(s.payload, 2)[:, 0], 48000))
                if len(tones) == 3:
                    await client.send_params(freq=1200)
                if len(tones) > 3 and tones[-1] > 1100:
                    break
                assert len(tones) < 100, f"the tone never changed: {tones[-5:]}"
            assert 270 < tones[0] < 330, tones[:3]
            assert stamps[:3] == [0, 100_000, 200_000]
            sid = client.session_id
        return server, sid

    run_async(main())


def test_sessions_events_sends_and_refusals_in_process(engine_server):
    server, address = engine_server
    seen = {}

    async def on_session(session: AsyncSession) -> None:
        if session.config.get("refuse"):
            raise SessionRefused("not today", code="bad_config")
        await session.ready({"name": "inproc", "kind": 7})
        block = np.arange(64, dtype="<u2")  # 128 bytes, numpy without a copy
        n = 0
        sender = asyncio.ensure_future(_send_until_end(session, block))
        async for event in session.events():
            seen.setdefault(session.id, []).append(event)
            if isinstance(event, Params):
                session.send_stats(got_params=event.params.get("x"))
        n = await sender
        seen[session.id + ":sent"] = n

    async def main():
        engine = AsyncEngine(on_session, name="inproc", version="9")
        runner = asyncio.ensure_future(engine.run(address))
        await eventually(lambda: server.status("/readyz") == 200, "the engine to be ready")
        async with Client(server.url, engine={}) as client:
            assert client.engine == {"name": "inproc", "kind": 7}
            got = []
            async for s in client.slices():
                got.append(s)
                if len(got) == 2:
                    await client.send_params(x=42)
                if len(got) == 50:
                    break
            assert [s.kind for s in got] == [7] * 50
            assert bytes(got[0].payload) == np.arange(64, dtype="<u2").tobytes()
            assert [s.seq for s in got] == list(range(1, 51))
            sid = client.session_id
        await eventually(lambda: sid + ":sent" in seen, "the session's coroutine to end")
        kinds = [type(e).__name__ for e in seen[sid]]
        assert "Params" in kinds and kinds[-1] == "End", kinds
        assert seen[sid][-1] == End("bye")
        assert seen[sid + ":sent"] >= 50

        refused = Client(server.url, engine={"refuse": True}, reconnect=False)
        try:
            await refused.connect()
            async for _ in refused.slices():
                pass
            raise AssertionError("a refused session streamed")
        except ServerError as e:
            assert e.code == "engine_error" and "not today" in e.message, e
        finally:
            await refused.close()
        engine.stop()
        await asyncio.wait_for(runner, 10)

    run_async(main())


async def _send_until_end(session: AsyncSession, block) -> int:
    n = 0
    while not session.ended:
        try:
            await session.send(block, kind=7, timestamp_us=n * 1000,
                               keyframe=session.keyframe_wanted)
        except SessionClosed:
            break
        n += 1
        await asyncio.sleep(0.002)
    return n
