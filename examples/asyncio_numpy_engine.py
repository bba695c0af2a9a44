#!/usr/bin/env python3
"""An asyncio engine streaming numpy audio (pcm_f16le): a knob-controlled tone.

    pip install './sdk/python[numpy]'
    seatkeeper serve --engine unix:/tmp/seatkeeper-engine.sock &
    python3 examples/asyncio_numpy_engine.py unix:/tmp/seatkeeper-engine.sock

Each session is one coroutine. It renders 100 ms blocks of 48 kHz stereo
with numpy and sends each block as it is: a C-contiguous ``<f2`` array goes
to the socket without a copy. Awaiting ``session.send`` is the
backpressure. The knobs (``freq``, ``gain``) arrive as events; while the
client is away (``Detached``) the coroutine renders nothing, and after a
resume it goes on where it was. A model would do the same: ``await
asyncio.to_thread(model.generate, ...)`` in place of ``render``.
"""

import argparse
import asyncio
import logging
import os
import sys

try:
    from seatkeeper.engine import AsyncEngine, AsyncSession, Detached, Params
except ImportError:  # run from a checkout without `pip install ./sdk/python`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "sdk", "python", "src"))
    from seatkeeper.engine import AsyncEngine, AsyncSession, Detached, Params

import numpy as np

SAMPLE_RATE = 48_000
CHANNELS = 2
FRAMES = 4_800  # 100 ms
SLICE_US = FRAMES * 1_000_000 // SAMPLE_RATE
KIND_PCM_F16 = 1
# After a stall, skip what is older than this rather than bursting it out.
MAX_CATCH_UP_S = 0.25
KNOBS = [
    {"name": "freq", "kind": "number", "min": 20.0, "max": 2000.0, "step": 1.0,
     "default": 440.0, "unit": "Hz", "label": "Frequency"},
    {"name": "gain", "kind": "number", "min": 0.0, "max": 1.0, "step": 0.01,
     "default": 0.25, "label": "Gain"},
]


class Tone:
    """One session's oscillator: phase carries across blocks and knob
    changes, the gain ramps across a block (no clicks)."""

    def __init__(self) -> None:
        self.knobs = {k["name"]: k["default"] for k in KNOBS}
        self.phase = 0.0
        self.last_gain = self.knobs["gain"]
        self._ramp = np.arange(FRAMES, dtype=np.float64)

    def apply(self, params: dict) -> None:
        for knob in KNOBS:
            value = params.get(knob["name"])
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.knobs[knob["name"]] = min(knob["max"], max(knob["min"], float(value)))

    def render(self) -> np.ndarray:
        step = 2.0 * np.pi * self.knobs["freq"] / SAMPLE_RATE
        g0, g1 = self.last_gain, self.knobs["gain"]
        self.last_gain = g1
        gain = g0 + (g1 - g0) * self._ramp / FRAMES
        mono = gain * np.sin(self.phase + step * self._ramp)
        self.phase = (self.phase + step * FRAMES) % (2.0 * np.pi)
        block = np.empty((FRAMES, CHANNELS), dtype="<f2")  # C-contiguous, interleaved
        block[:] = mono[:, None]
        return block


async def follow_events(session: AsyncSession, tone: Tone) -> None:
    async for event in session.events():
        if isinstance(event, Params):
            tone.apply(event.params)
        elif isinstance(event, Detached):
            logging.info("session %s: client away (resume window %d ms), pausing",
                         session.id, event.resume_window_ms)


async def on_session(session: AsyncSession) -> None:
    tone = Tone()
    tone.apply(session.config)
    await session.ready({
        "name": "numpy-tone", "version": "1.0.0", "kind": KIND_PCM_F16, "format": "pcm_f16le",
        "sample_rate": SAMPLE_RATE, "channels": CHANNELS, "slice_ms": SLICE_US // 1000,
        "knobs": [dict(k, default=tone.knobs[k["name"]]) for k in KNOBS],
    })
    events = asyncio.ensure_future(follow_events(session, tone))
    loop = asyncio.get_running_loop()
    start, n = loop.time(), 0
    try:
        while not session.ended:
            if session.detached:
                if not await session.wait_attached():
                    return
                start = loop.time() - n * SLICE_US / 1e6  # go on from here
            await session.send(tone.render(), kind=KIND_PCM_F16, timestamp_us=n * SLICE_US,
                               droppable=True, keyframe=True)
            n += 1
            behind = loop.time() - (start + n * SLICE_US / 1e6)
            if behind > MAX_CATCH_UP_S:
                n += int(behind * 1e6) // SLICE_US
            elif behind < 0:
                await session.wait_ended(-behind)
    finally:
        events.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("address", help="unix:PATH or tcp:HOST:PORT (where seatkeeper listens)")
    parser.add_argument("--once", action="store_true", help="exit when the connection ends")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s numpy_engine %(levelname)s %(message)s")
    engine = AsyncEngine(on_session, name="numpy-tone", version="1.0.0",
                         capabilities={"kinds": [KIND_PCM_F16], "formats": ["pcm_f16le"]})
    engine.run_forever(args.address, reconnect=not args.once)


if __name__ == "__main__":
    main()
