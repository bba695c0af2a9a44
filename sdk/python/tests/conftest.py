"""Fixtures: the real seatkeeper binary on a free loopback port.

``SEATKEEPER_BIN`` names the binary (default: the workspace's
``target/release/seatkeeper``). Without it the tests skip, except with
``CI=true``, where a missing binary fails them.
"""

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

REPO = Path(__file__).resolve().parents[3]
PYTHON = sys.executable
# Generous bounds: these tests assert outcomes, never timings.
SOON = 20.0


def need(what: str) -> None:
    """Skips (fails with CI=true) for a missing dependency."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"missing dependency: {what}")
    pytest.skip(f"missing dependency: {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A ``seatkeeper serve`` process on 127.0.0.1, killed at teardown."""

    def __init__(self, binary: str, args: List[str], log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/ws"
        self.log = log_dir / f"seatkeeper-{self.port}.log"
        cmd = [binary, "serve", "--listen", f"127.0.0.1:{self.port}", *args]
        self.proc = subprocess.Popen(cmd, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        wait_for(lambda: self.status("/healthz") == 200, f"seatkeeper on {self.port}", self)

    def status(self, path: str) -> Optional[int]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return None

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
            return json.loads(r.read())

    def session(self, session_id: str) -> Dict[str, Any]:
        return self.get(f"/sessions/{session_id}")

    def wait_ready(self) -> None:
        wait_for(lambda: self.status("/readyz") == 200, "/readyz 200 (an engine ready)", self)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def wait_for(cond: Any, what: str, server: Optional[Server] = None, timeout: float = SOON) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        if server is not None and server.proc.poll() is not None:
            raise AssertionError(f"seatkeeper exited ({server.proc.returncode}) waiting for "
                                 f"{what}: {server.log.read_text()[-2000:]}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def eventually(cond: Any, what: str, timeout: float = SOON) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="session")
def seatkeeper_bin() -> str:
    binary = os.environ.get("SEATKEEPER_BIN") or str(REPO / "target" / "release" / "seatkeeper")
    if not os.access(binary, os.X_OK):
        need(f"the seatkeeper binary at {binary} (set SEATKEEPER_BIN)")
    return binary


@pytest.fixture
def tmp_dir() -> Any:
    # Short paths: a Unix socket path must stay under 108 bytes.
    with tempfile.TemporaryDirectory(prefix="skpy-") as d:
        yield Path(d)


@pytest.fixture
def serve(seatkeeper_bin: str, tmp_dir: Path) -> Any:
    """``serve(*args)`` starts a server; every one is killed at teardown."""
    servers: List[Server] = []

    def start(*args: str) -> Server:
        server = Server(seatkeeper_bin, list(args), tmp_dir)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def engine_server(serve: Any, tmp_dir: Path) -> Tuple[Server, str]:
    """A server with an external engine socket: (server, ``unix:PATH``)."""
    address = f"unix:{tmp_dir / 'engine.sock'}"
    return serve("--engine", address), address


@pytest.fixture
def spawn() -> Any:
    """``spawn(argv)`` starts a process; every one is killed at teardown."""
    procs: List[subprocess.Popen] = []

    def start(argv: List[str], **kwargs: Any) -> subprocess.Popen:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen(argv, **kwargs)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def run_async(coro: Any, timeout: float = 60.0) -> Any:
    """Runs a test coroutine with a bound (no pytest-asyncio needed)."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def crossings_hz(samples: Any, rate: int) -> float:
    """Zero crossings per second / 2: a tone's frequency."""
    import numpy as np

    s = np.asarray(samples, dtype=np.float32)
    signs = np.signbit(s)
    return float(np.count_nonzero(signs[1:] != signs[:-1])) * rate / (2.0 * len(s))
