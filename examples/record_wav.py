#!/usr/bin/env python3
"""Record a seatkeeper session to a WAV file (a Python client).

    pip install './sdk/python[client,numpy]'
    python3 examples/record_wav.py ws://127.0.0.1:1318/ws out.wav --seconds 5
    python3 examples/record_wav.py ws://127.0.0.1:1318/ws out.wav --engine '{"freq": 880}'

Opens a session (the engine's config from ``--engine``), reads the audio
format from ``ready.engine`` (``pcm_f16le``, ``sample_rate``,
``channels``), and writes 16-bit PCM until ``--seconds`` of media time are
recorded. Slices the server dropped (a slow link) become silence at their
place, by media timestamp, so the file keeps the session's timing. The
client acks for you and resumes the session if the connection drops.
"""

import argparse
import asyncio
import json
import logging
import os
import sys
import wave

try:
    from seatkeeper.client import Client
    from seatkeeper.audio import f16le_to_s16le
except ImportError:  # run from a checkout without `pip install ./sdk/python`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "sdk", "python", "src"))
    from seatkeeper.client import Client
    from seatkeeper.audio import f16le_to_s16le


async def record(url: str, path: str, seconds: float, engine: dict) -> dict:
    """Records; returns a summary (frames written, slices, gaps filled, resumes)."""
    summary = {"slices": 0, "gap_frames": 0, "frames": 0}
    async with Client(url, engine=engine) as client:
        info = client.engine
        if info.get("format", "pcm_f16le") != "pcm_f16le":
            raise SystemExit(f"the engine streams {info.get('format')!r}, not pcm_f16le")
        rate, channels = int(info.get("sample_rate", 48000)), int(info.get("channels", 2))
        want = int(seconds * rate)
        with wave.open(path, "wb") as out:
            out.setnchannels(channels)
            out.setsampwidth(2)
            out.setframerate(rate)
            first_ts = None
            async for s in client.slices():
                if s.kind != 1:
                    continue
                if first_ts is None:
                    first_ts = s.timestamp_us
                # Where this slice belongs in the file, by media time.
                at = (s.timestamp_us - first_ts) * rate // 1_000_000
                if at > summary["frames"]:
                    gap = min(at, want) - summary["frames"]
                    out.writeframes(b"\0\0" * channels * gap)
                    summary["gap_frames"] += gap
                    summary["frames"] += gap
                pcm = f16le_to_s16le(s.payload)
                frames = min(len(pcm) // (2 * channels), want - summary["frames"])
                out.writeframes(pcm[: frames * 2 * channels])
                summary["frames"] += frames
                summary["slices"] += 1
                if summary["frames"] >= want:
                    break
        summary["resumes"] = client.resumes
        summary["session_id"] = client.session_id
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the server's WebSocket URL, e.g. ws://127.0.0.1:1318/ws")
    parser.add_argument("out", help="the WAV file to write")
    parser.add_argument("--seconds", type=float, default=5.0, help="media time to record")
    parser.add_argument("--engine", default="{}", help="hello.engine as JSON (the engine's config)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s record_wav %(levelname)s %(message)s")
    summary = asyncio.run(record(args.url, args.out, args.seconds, json.loads(args.engine)))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
