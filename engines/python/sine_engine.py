#!/usr/bin/env python3
"""A knob-controlled tone: the example seatkeeper engine.

    python3 engines/python/sine_engine.py unix:/tmp/seatkeeper-engine.sock
    python3 engines/python/sine_engine.py tcp:127.0.0.1:7000

Start it before or after ``seatkeeper serve --engine unix:...``: it waits for
the server, and reconnects if the server restarts. Each session streams a
sine in the built-in demo engine's format (kind 1: PCM f16 little-endian,
interleaved stereo, 48 kHz, 100 ms slices of 4,800 frames, every slice a
droppable keyframe), paced in real time. Knobs: ``freq`` (Hz) and ``gain``
(0..1), from the client's ``hello.engine`` and ``params`` messages. While the
client is away (``session_detached``) it produces nothing, and goes on from
where it was when the client resumes.
"""

import argparse
import logging
import math
import os
import struct
import sys
import threading
import time

try:
    from seatkeeper.engine import Engine
except ImportError:  # run from a checkout without `pip install ./sdk/python`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "..", "sdk", "python", "src"))
    from seatkeeper.engine import Engine

SAMPLE_RATE = 48_000
CHANNELS = 2
FRAMES_PER_SLICE = 4_800
SLICE_US = FRAMES_PER_SLICE * 1_000_000 // SAMPLE_RATE
KIND_PCM_F16 = 1
# After a stall (the machine was busy), skip what is older than this rather
# than bursting it out: it would be stale on arrival.
MAX_CATCH_UP_S = 0.25

KNOBS = {
    # name: (min, max, step, default)
    "freq": (20.0, 2000.0, 1.0, 440.0),
    "gain": (0.0, 1.0, 0.01, 0.25),
}
KNOB_LOOKS = {"freq": ("Hz", "Frequency"), "gain": ("", "Gain")}

_PACK = struct.Struct(f"<{FRAMES_PER_SLICE * CHANNELS}e")


class Tone:
    """One session's oscillator. Knobs may change from the reader thread
    while the session's thread renders; each slice reads them once."""

    def __init__(self):
        self.knobs = {name: spec[3] for name, spec in KNOBS.items()}
        self.phase = 0.0
        self.last_gain = self.knobs["gain"]

    def apply(self, params):
        """Takes the known knobs from ``params``, clamped; ignores the rest."""
        for name, (lo, hi, _step, _default) in KNOBS.items():
            value = params.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.knobs[name] = min(hi, max(lo, float(value)))

    def describe(self):
        # The knob schema (docs/ENGINE.md); "value" is the older name of
        # "default", kept for clients that read it.
        knobs = []
        for name, (lo, hi, step, _default) in KNOBS.items():
            unit, label = KNOB_LOOKS[name]
            knob = {"name": name, "kind": "number", "min": lo, "max": hi, "step": step,
                    "default": self.knobs[name], "value": self.knobs[name], "label": label}
            if unit:
                knob["unit"] = unit
            knobs.append(knob)
        return knobs

    def render(self):
        """One slice of f16 stereo PCM. Phase carries over (no click on a
        frequency change) and gain ramps across the slice (none on a gain change)."""
        step = 2.0 * math.pi * self.knobs["freq"] / SAMPLE_RATE
        g0, g1 = self.last_gain, self.knobs["gain"]
        self.last_gain = g1
        dg = (g1 - g0) / FRAMES_PER_SLICE
        sin = math.sin
        phase = self.phase
        out = [0.0] * (FRAMES_PER_SLICE * CHANNELS)
        for i in range(FRAMES_PER_SLICE):
            v = (g0 + dg * i) * sin(phase)
            out[2 * i] = v
            out[2 * i + 1] = v
            phase += step
        self.phase = phase % (2.0 * math.pi)
        return _PACK.pack(*out)


class SineEngine(Engine):
    name = "sine"
    version = "1.0.0"
    capabilities = {"kinds": [KIND_PCM_F16], "formats": ["pcm_f16le"]}

    def on_session_start(self, session, config):
        tone = Tone()
        tone.apply(config)
        session.state = tone
        threading.Thread(target=stream, args=(session, tone), daemon=True,
                         name=f"session-{session.id}").start()
        return {
            "name": self.name,
            "version": self.version,
            "kind": KIND_PCM_F16,
            "format": "pcm_f16le",
            "sample_rate": SAMPLE_RATE,
            "channels": CHANNELS,
            "slice_ms": SLICE_US // 1000,
            "knobs": tone.describe(),
        }

    def on_params(self, session, params):
        session.state.apply(params)


def stream(session, tone):
    """Sends slice n at start + n * 100 ms until the session ends; pauses
    while the client is detached (nobody would hear those slices)."""
    start = time.monotonic()
    n = 0
    while not session.ended:
        if session.detached:
            if not session.wait_attached():
                return
            start = time.monotonic() - n * SLICE_US / 1e6
        payload = tone.render()
        if not session.send_slice(payload, kind=KIND_PCM_F16, timestamp_us=n * SLICE_US,
                                  droppable=True, keyframe=True):
            return
        n += 1
        behind = time.monotonic() - (start + n * SLICE_US / 1e6)
        if behind > MAX_CATCH_UP_S:
            n += int(behind * 1e6) // SLICE_US
        elif behind < 0:
            session.wait_ended(-behind)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("address", help="unix:PATH or tcp:HOST:PORT (where seatkeeper listens)")
    parser.add_argument("--warmup-s", type=float, default=0.0,
                        help="connect cold and turn warm after this long (like a model load)")
    parser.add_argument("--once", action="store_true", help="exit when the connection ends")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sine_engine %(levelname)s %(message)s")
    engine = SineEngine(warm=args.warmup_s <= 0)
    if args.warmup_s > 0:
        threading.Timer(args.warmup_s, engine.set_warm, args=(True,)).start()
    try:
        engine.run(args.address, reconnect=not args.once)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
