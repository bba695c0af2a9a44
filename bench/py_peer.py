#!/usr/bin/env python3
"""A session server on Python's `websockets` library — the stack seatkeeper
replaces — speaking the contract's minimal subset: hello -> ready or busy,
paced binary slices with the 20-byte header under an ack window, acks, bye,
and GET /sessions.

Keepalive is the library's default (ping every 20 s, close when no pong 20 s
later). With --watchdog it also runs the contract's send-stall watchdog,
written from the README's description ("How dead clients are reaped"): a thread samples every session's
socket every --interval-ms (SIOCOUTQ via fcntl.ioctl, TCP_INFO via
getsockopt, struct-unpacked) and reaps a session whose send queue stays
above zero while tcpi_bytes_acked does not advance and the queue does not
shrink for --stall-s, or whose TCP state leaves ESTABLISHED. A reap aborts
the socket with SO_LINGER 0 (a reset), so the blocked send returns.
"""

import argparse
import asyncio
import collections
import fcntl
import json
import socket
import struct
import termios
import threading
import time
from http import HTTPStatus

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

TCP_INFO_LEN = 232
TCP_ESTABLISHED = 1
BYTES_ACKED_OFFSET = 120  # struct tcp_info: tcpi_bytes_acked (u64), Linux >= 4.1


class Seats:
    def __init__(self, total):
        self.total = total
        self.sessions = {}  # id -> dict
        self.next_id = 1

    def doc(self):
        return {
            "lockHeld": bool(self.sessions),
            "seats": {"total": self.total, "held": len(self.sessions)},
            "sessions": [{"id": k, "state": "streaming"} for k in self.sessions],
        }


class Watchdog(threading.Thread):
    """Samples sockets from its own thread, so a wedged send cannot delay it.
    Each session is registered with a dup() of its socket's descriptor: the
    number cannot be reused by another connection while the watchdog holds
    it."""

    def __init__(self, loop, grace_s, interval_s):
        super().__init__(daemon=True)
        self.loop, self.grace, self.interval = loop, grace_s, interval_s
        self.lock = threading.Lock()
        self.watched = {}  # id -> [fd, abort_cb, last_q, last_acked, stalled_since]
        self.samples = 0
        self.sweep_s = 0.0

    def add(self, sid, fd, abort_cb):
        # fromfd() dups the descriptor: ours stays valid (never reused)
        # until remove() closes it.
        own = socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM)
        with self.lock:
            self.watched[sid] = [own, abort_cb, None, None, None]

    def remove(self, sid):
        with self.lock:
            w = self.watched.pop(sid, None)
        if w:
            w[0].close()

    def run(self):
        buf = bytearray(4)
        while True:
            time.sleep(self.interval)
            t0 = time.perf_counter()
            now = time.monotonic()
            with self.lock:
                items = list(self.watched.items())
            for sid, w in items:
                own = w[0]
                try:
                    fcntl.ioctl(own.fileno(), termios.TIOCOUTQ, buf)  # SIOCOUTQ == TIOCOUTQ
                    q = struct.unpack("i", buf)[0]
                    info = own.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_LEN)
                except OSError:
                    self._reap(sid, w, "socket_error")
                    continue
                self.samples += 1
                state = info[0]
                acked = struct.unpack_from("Q", info, BYTES_ACKED_OFFSET)[0]
                if state != TCP_ESTABLISHED:
                    self._reap(sid, w, "peer_close")
                    continue
                moving = w[3] is None or acked != w[3] or (w[2] is not None and q < w[2])
                if q > 0 and not moving:
                    if w[4] is None:
                        w[4] = now - self.interval  # stalled since the previous sample
                    if now - w[4] >= self.grace:
                        self._reap(sid, w, "send_stall")
                        continue
                else:
                    w[4] = None
                w[2], w[3] = q, acked
            self.sweep_s += time.perf_counter() - t0

    def _reap(self, sid, w, reason):
        with self.lock:
            if self.watched.get(sid) is not w:
                return
        self.loop.call_soon_threadsafe(w[1], reason)


def header(seq, ts):
    return struct.pack("<BBHQQ", 1, 3, 0xFFFF, seq, ts)


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", default="127.0.0.1:1320")
    p.add_argument("--seats", type=int, default=1)
    p.add_argument("--engine", default="synthetic:10:19200")
    p.add_argument("--window-slices", type=int, default=16)
    p.add_argument("--window-bytes", type=int, default=4 << 20)
    p.add_argument("--watchdog", action="store_true")
    p.add_argument("--stall-s", type=float, default=30.0)
    p.add_argument("--interval-ms", type=float, default=500.0)
    a = p.parse_args()
    spec = "synthetic:10:19200" if a.engine == "demo" else a.engine
    _, rate, nbytes = spec.split(":")
    rate, nbytes = float(rate), int(nbytes)
    pattern = bytes(i % 256 for i in range(nbytes + 256))
    seats = Seats(a.seats)
    loop = asyncio.get_running_loop()
    dog = Watchdog(loop, a.stall_s, a.interval_ms / 1000) if a.watchdog else None
    if dog:
        dog.start()

    def process_request(connection, request):
        if request.path.startswith("/sessions"):
            doc = seats.doc()
            if dog:
                doc["watchdog"] = {"samples": dog.samples, "sweep_seconds": dog.sweep_s}
            return connection.respond(HTTPStatus.OK, json.dumps(doc) + "\n")
        return None

    async def handler(ws):
        try:
            first = await asyncio.wait_for(ws.recv(), 10)
        except (asyncio.TimeoutError, ConnectionClosed):
            await ws.close(1008)
            return
        try:
            hello = json.loads(first)
        except (TypeError, ValueError):
            await ws.close(1007)
            return
        if not isinstance(hello, dict) or hello.get("type") != "hello":
            await ws.close(1008)
            return
        if len(seats.sessions) >= seats.total:
            await ws.send(json.dumps({"type": "busy", "retry_after_s": 2.0}))
            await ws.close(1013)
            return
        sid = "py%d" % seats.next_id
        seats.next_id += 1
        seats.sessions[sid] = True
        acked = [0]
        try:
            await ws.send(json.dumps({
                "type": "ready", "session_id": sid, "resume_token": "", "resumed": False,
                "window": {"slices": a.window_slices, "bytes": a.window_bytes},
                "engine": {"name": "synthetic", "rate_hz": rate, "bytes": nbytes},
            }))
            if dog:
                sock = ws.transport.get_extra_info("socket")

                def abort(reason, sock=sock, ws=ws):
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    except OSError:
                        pass
                    print(f"reaped {sid}: {reason}", flush=True)
                    ws.transport.abort()

                dog.add(sid, sock.fileno(), abort)

            async def reader():
                async for msg in ws:
                    if isinstance(msg, bytes):
                        return
                    m = json.loads(msg)
                    if m.get("type") == "ack":
                        acked[0] = max(acked[0], int(m.get("seq", 0)))
                    elif m.get("type") == "bye":
                        return

            async def writer():
                start = time.monotonic()
                produced = seq = 0
                inflight = collections.deque()  # (seq, bytes)
                inflight_bytes = 0
                max_batch = max(1, int(0.25 * rate))
                while True:
                    due = int((time.monotonic() - start) * rate) + 1
                    if due - produced > max_batch:
                        produced = due - max_batch
                    while produced < due:
                        n = produced
                        produced += 1
                        while inflight and inflight[0][0] <= acked[0]:
                            inflight_bytes -= inflight.popleft()[1]
                        if len(inflight) >= a.window_slices or \
                                inflight_bytes + nbytes > a.window_bytes:
                            continue  # dropped: the window is full
                        seq += 1
                        inflight.append((seq, nbytes))
                        inflight_bytes += nbytes
                        s = n % 256
                        await ws.send(header(seq, int(n * 1e6 / rate)) + pattern[s:s + nbytes])
                    nxt = start + produced / rate
                    await asyncio.sleep(max(nxt - time.monotonic(), 0.001))

            tasks = [asyncio.create_task(reader()), asyncio.create_task(writer())]
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in pending:
                t.cancel()
            for t in done:
                t.exception() if not t.cancelled() else None
        except ConnectionClosed:
            pass
        finally:
            if dog:
                dog.remove(sid)
            seats.sessions.pop(sid, None)

    host, port = a.listen.rsplit(":", 1)
    async with serve(handler, host, int(port), process_request=process_request,
                     max_size=1 << 20) as server:
        print(f"listening on {a.listen}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
