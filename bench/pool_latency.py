#!/usr/bin/env python3
"""Claim -> first slice through the pool (issue 6), on loopback.

    python3 bench/pool_latency.py [RUNS]

Starts a throwaway redis-server and one pod (`seatkeeper serve --pool`),
then RUNS times: `seatkeeper pool claim` as a process (what a router's shell
would do), connect to the claimed URL, hello with the seat token, wait for
the first slice, bye. Prints one JSON line with the percentiles.
"""
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time

import websockets

BIN = "target/release/seatkeeper"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def main(runs):
    rport, pport = free_port(), free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(rport), "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{rport}"
    pod = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{pport}", "--pool", url, "--pod-id", "bench",
                            "--advertise-url", f"ws://127.0.0.1:{pport}/ws", "--pool-ttl-s", "2"],
                           stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            ls = subprocess.run([BIN, "pool", "ls", "--redis", url], capture_output=True, text=True)
            if '"ready":true' in ls.stdout:
                break
            time.sleep(0.1)
        claim_ms, total_ms = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            out = subprocess.run([BIN, "pool", "claim", "--redis", url], capture_output=True, text=True, check=True)
            claim = json.loads(out.stdout)
            t1 = time.perf_counter()
            async with websockets.connect(claim["url"], max_size=None) as ws:
                await ws.send(json.dumps({"type": "hello", "seat_token": claim["seat_token"]}))
                while True:
                    msg = await ws.recv()
                    if isinstance(msg, bytes):
                        break
                t2 = time.perf_counter()
                await ws.send(json.dumps({"type": "bye"}))
            claim_ms.append((t1 - t0) * 1e3)
            total_ms.append((t2 - t0) * 1e3)
            # The seat is back within a heartbeat; wait for it before the next claim.
            for _ in range(100):
                ls = subprocess.run([BIN, "pool", "ls", "--redis", url], capture_output=True, text=True)
                if '"seats_free":1' in ls.stdout:
                    break
                time.sleep(0.02)
        q = lambda xs, p: sorted(xs)[min(len(xs) - 1, int(len(xs) * p))]
        print(json.dumps({
            "runs": runs,
            "claim_process_ms": {"median": round(statistics.median(claim_ms), 2), "p90": round(q(claim_ms, 0.9), 2)},
            "claim_to_first_slice_ms": {"median": round(statistics.median(total_ms), 2), "p90": round(q(total_ms, 0.9), 2),
                                        "max": round(max(total_ms), 2)},
        }))
    finally:
        pod.terminate()
        pod.wait(timeout=10)
        redis.terminate()
        redis.wait(timeout=10)


asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
