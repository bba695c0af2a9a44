"""Payloads: any buffer, numpy arrays without a copy, wrong layouts refused."""

import asyncio
import array

import numpy as np
import pytest

from conftest import eventually, run_async
from seatkeeper.client import Client
from seatkeeper.engine import AsyncEngine, payload_view


def test_payload_view_shares_the_arrays_memory():
    arr = np.linspace(-1, 1, 9600, dtype="<f2").reshape(4800, 2)
    view = payload_view(arr)
    assert view.nbytes == arr.nbytes and view.format == "B"
    assert np.shares_memory(arr, np.frombuffer(view, dtype="<f2"))
    # Other buffers are viewed, not copied, too.
    raw = bytearray(b"abc")
    assert payload_view(raw).obj is raw
    ints = array.array("h", [1, 2, 3])
    assert bytes(payload_view(ints)) == ints.tobytes()


def test_layouts_the_wire_cannot_carry_are_refused_not_copied():
    with pytest.raises(ValueError, match="C-contiguous"):
        payload_view(np.zeros((4, 4), dtype="<f2").T)
    with pytest.raises(ValueError, match="C-contiguous"):
        payload_view(np.zeros(8, dtype="<f2")[::2])
    with pytest.raises(TypeError, match="big-endian"):
        payload_view(np.zeros(8, dtype=">f2"))
    with pytest.raises(TypeError, match="bytes-like"):
        payload_view("a str")


def test_an_array_sent_by_the_asyncio_sdk_is_queued_as_itself_and_arrives_intact(engine_server):
    """The outbox holds a view of the caller's array (no copy on the way to
    the kernel), and the client receives exactly its bytes."""
    server, address = engine_server
    arr = (np.arange(4800 * 2, dtype=np.float32) / 9600).astype("<f2").reshape(4800, 2)
    # Far over a socket buffer: written in many partial sendmsg calls.
    big = np.arange(768 * 1024, dtype="<u4")
    queued = []

    async def on_session(session):
        await session.ready({"name": "zc", "kind": 1})
        session.send_nowait(arr, kind=1, timestamp_us=0, keyframe=True)
        # No await since the send: the writer has not run, the outbox holds it.
        queued.append(session._link._outbox[-1])
        await session.send(big, kind=2, timestamp_us=1, keyframe=True, droppable=False)
        await session.flush()
        await session.wait_ended()

    async def main():
        engine = AsyncEngine(on_session, name="zc")
        runner = asyncio.ensure_future(engine.run(address))
        await eventually(lambda: server.status("/readyz") == 200, "the engine")
        async with Client(server.url) as client:
            got = []
            async for s in client.slices():
                got.append((s.kind, bytes(s.payload)))
                if len(got) == 2:
                    break
            assert got == [(1, arr.tobytes()), (2, big.tobytes())]
        engine.stop()
        await asyncio.wait_for(runner, 10)

    run_async(main())
    assert len(queued) == 1
    assert np.shares_memory(arr, np.frombuffer(queued[0], dtype="<f2"))
