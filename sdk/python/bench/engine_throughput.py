#!/usr/bin/env python3
"""Slices per second an engine pushes through one connection: the thread SDK
and the asyncio SDK side by side, in one run, through the real binary.

    target/py-venv/bin/python sdk/python/bench/engine_throughput.py [--seconds 3]

For each SDK and payload size: a fresh ``seatkeeper serve --engine unix:...``,
``engines/python/flood_engine.py`` (``--asyncio`` for the asyncio SDK)
producing unpaced, one client session; ``--runs`` runs per cell with the
SDKs alternating, the median shown. The engine's rate is what the server
took from it: ``slices_sent + slices_dropped`` of the session (GET
/sessions/{id}) over the window, after a warm-up second. Prints a Markdown
table.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from conftest import free_port  # noqa: E402
from seatkeeper.client import Client  # noqa: E402


def produced(port: int, sid: str) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/sessions/{sid}", timeout=5) as r:
        s = json.loads(r.read())
    return s["slices_sent"] + s["slices_dropped"]


async def measure(port: int, size: int, seconds: float) -> float:
    async with Client(f"ws://127.0.0.1:{port}/ws", engine={"bytes": size}) as client:
        sid = client.session_id

        async def drain() -> None:
            async for _ in client.slices():
                pass

        reader = asyncio.ensure_future(drain())
        await asyncio.sleep(1.0)
        t0, n0 = time.monotonic(), produced(port, sid)
        await asyncio.sleep(seconds)
        t1, n1 = time.monotonic(), produced(port, sid)
        reader.cancel()
    return (n1 - n0) / (t1 - t0)


def run_one(binary: str, mode: str, size: int, seconds: float) -> float:
    with tempfile.TemporaryDirectory(prefix="skbench-") as d:
        address = f"unix:{d}/e.sock"
        port = free_port()
        server = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}",
                                   "--engine", address], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        flood = [sys.executable, os.path.join(REPO, "engines", "python", "flood_engine.py")]
        if mode == "asyncio":
            flood.append("--asyncio")
        engine = subprocess.Popen(flood + [address], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.05)
            return asyncio.run(measure(port, size, seconds))
        finally:
            for p in (engine, server):
                p.kill()
                p.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3,
                        help="runs per cell, the SDKs alternating; the median is shown")
    parser.add_argument("--sizes", default="64,1024,9600")
    parser.add_argument("--bin", default=os.environ.get("SEATKEEPER_BIN") or
                        os.path.join(REPO, "target", "release", "seatkeeper"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    samples = {}
    # Alternate the SDKs run by run, so a busy spell of a shared machine
    # falls on both alike.
    for size in sizes:
        for _ in range(args.runs):
            for mode in ("thread", "asyncio"):
                rate = run_one(args.bin, mode, size, args.seconds)
                samples.setdefault((mode, size), []).append(rate)
                print(f"{mode} {size} B: {rate / 1000:.0f}k/s", file=sys.stderr)
    rows = {key: statistics.median(rates) for key, rates in samples.items()}
    print("| SDK | " + " | ".join(f"{s:,} B slices" for s in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for mode in ("thread", "asyncio"):
        cells = []
        for size in sizes:
            rate = rows[(mode, size)]
            cell = f"{rate / 1000:.0f}k/s"
            if size >= 4096:
                cell += f" ({rate * size / 1e9:.2f} GB/s)"
            cells.append(cell)
        print(f"| {mode} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
