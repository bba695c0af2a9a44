#!/usr/bin/env python3
"""A load engine: fixed-size slices as fast as the link takes them.

    python3 engines/python/flood_engine.py unix:/tmp/seatkeeper-engine.sock

For benchmarks of the engine link (slices per second through an external
engine). Per session, from the client's ``hello.engine``: ``bytes`` (payload
size, default 1024) and ``rate_hz`` (0, the default: unpaced). Kind 0xFFFF,
droppable keyframes, like the built-in ``synthetic`` engine.
"""

import logging
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from seatkeeper_engine import Engine  # noqa: E402

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


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s flood_engine %(levelname)s %(message)s")
    try:
        Flood().run(sys.argv[1])
    except KeyboardInterrupt:
        pass
