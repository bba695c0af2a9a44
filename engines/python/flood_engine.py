#!/usr/bin/env python3
"""A load engine: fixed-size slices as fast as the link takes them.

    python3 engines/python/flood_engine.py unix:/tmp/seatkeeper-engine.sock
    python3 engines/python/flood_engine.py --asyncio unix:/tmp/seatkeeper-engine.sock

For benchmarks of the engine link (slices per second through an external
engine). Per session, from the client's ``hello.engine``: ``bytes`` (payload
size, default 1024) and ``rate_hz`` (0, the default: unpaced). Kind 0xFFFF,
droppable keyframes, like the built-in ``synthetic`` engine. ``--asyncio``
serves with the asyncio SDK (``AsyncEngine``) instead of the thread SDK, so
the two can be measured side by side.
"""

import asyncio

import logging
import os
import sys
import threading
import time

try:
    from seatkeeper.engine import AsyncEngine, AsyncSession, Engine, SessionClosed
except ImportError:  # run from a checkout without `pip install ./sdk/python`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "..", "sdk", "python", "src"))
    from seatkeeper.engine import AsyncEngine, AsyncSession, Engine, SessionClosed

KIND_SYNTHETIC = 0xFFFF


class Flood(Engine):
    name = "flood"
    version = "1.0.0"
    capabilities = {"kinds": [KIND_SYNTHETIC]}

    def on_session_start(self, session, config):
        size = int(config.get("bytes", 1024))
        rate = float(config.get("rate_hz", 0))
        threading.Thread(target=flood, args=(session, size, rate), daemon=True).start()
        return {"name": self.name, "kind": KIND_SYNTHETIC, "bytes": size, "rate_hz": rate, "knobs": []}


def flood(session, size, rate):
    payload = bytes(i % 256 for i in range(size))
    period = 1.0 / rate if rate > 0 else 0.0
    start = time.monotonic()
    n = 0
    while session.send_slice(payload, kind=KIND_SYNTHETIC, timestamp_us=n, keyframe=True):
        n += 1
        if period:
            delay = start + n * period - time.monotonic()
            if delay > 0:
                session.wait_ended(delay)


async def flood_async(session: AsyncSession) -> None:
    size = int(session.config.get("bytes", 1024))
    rate = float(session.config.get("rate_hz", 0))
    await session.ready({"name": "flood", "kind": KIND_SYNTHETIC, "bytes": size,
                         "rate_hz": rate, "knobs": []})
    payload = bytes(i % 256 for i in range(size))
    period = 1.0 / rate if rate > 0 else 0.0
    start = time.monotonic()
    n = 0
    try:
        while True:
            # Awaiting send is the backpressure: it returns at once while the
            # link's buffer has room and waits while it is full.
            await session.send(payload, kind=KIND_SYNTHETIC, timestamp_us=n, keyframe=True)
            n += 1
            if period:
                delay = start + n * period - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
    except SessionClosed:
        pass


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s flood_engine %(levelname)s %(message)s")
    args = [a for a in sys.argv[1:] if a != "--asyncio"]
    if len(args) != 1:
        sys.exit("usage: flood_engine.py [--asyncio] unix:PATH|tcp:HOST:PORT")
    if "--asyncio" in sys.argv[1:]:
        AsyncEngine(flood_async, name="flood", version="1.0.0",
                    capabilities={"kinds": [KIND_SYNTHETIC]}).run_forever(args[0])
    else:
        try:
            Flood().run(args[0])
        except KeyboardInterrupt:
            pass
