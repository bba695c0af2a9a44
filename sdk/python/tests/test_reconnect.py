"""Both engine runtimes' reconnect loop against the real binary: waiting for
the server, reconnecting after a restart, a standby engine taking over after
engine_busy, giving up without ``reconnect``, and ``stop()`` cutting a wait
short."""

import asyncio
import logging
import threading
from typing import Any, List, Optional

import pytest

from conftest import SOON, run_async, wait_for
from seatkeeper.client import Client
from seatkeeper.engine import AsyncEngine, Engine

RUNTIMES = ["thread", "asyncio"]


class Background:
    """An engine of either runtime running on a thread of its own; every
    session it serves gets ``b"abc"`` slices until it ends."""

    def __init__(self, runtime: str, address: str, name: str, **run_kwargs: Any) -> None:
        self.served: List[str] = []
        self.welcomed = threading.Event()  # the server took this engine (no engine_busy)
        self.error: Optional[BaseException] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        if runtime == "thread":
            self.engine: Any = _ThreadEngine(name, self.served, self.welcomed)
        else:
            self.engine = AsyncEngine(self._on_session, name=name)
            self.engine.on_connect = lambda welcome: self.welcomed.set()
        self._thread = threading.Thread(target=self._main, args=(address, run_kwargs),
                                        daemon=True)
        self._thread.start()

    def _main(self, address: str, run_kwargs: Any) -> None:
        try:
            if isinstance(self.engine, Engine):
                self.engine.run(address, **run_kwargs)
            else:
                asyncio.run(self._run_async(address, run_kwargs))
        except BaseException as e:  # reported by join()
            self.error = e

    async def _run_async(self, address: str, run_kwargs: Any) -> None:
        self._loop = asyncio.get_running_loop()
        await self.engine.run(address, **run_kwargs)

    async def _on_session(self, session: Any) -> None:
        self.served.append(session.id)
        await session.ready({"name": self.engine.name})
        while not session.ended:
            await session.send(b"abc", kind=5, timestamp_us=0, keyframe=True)
            await session.wait_ended(0.02)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self.engine.stop)
        else:
            self.engine.stop()

    def join(self, timeout: float = SOON) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "run() did not return"
        assert self.error is None, repr(self.error)


class _ThreadEngine(Engine):
    def __init__(self, name: str, served: List[str], welcomed: threading.Event) -> None:
        super().__init__()
        self.name = name
        self._served = served
        self._welcomed = welcomed

    def on_connect(self, welcome: Any) -> None:
        self._welcomed.set()

    def on_session_start(self, session: Any, config: Any) -> Any:
        self._served.append(session.id)

        def produce() -> None:
            while not session.ended:
                session.send_slice(b"abc", kind=5, timestamp_us=0, keyframe=True)
                session.wait_ended(0.02)

        threading.Thread(target=produce, daemon=True).start()
        return {"name": self.name}


def one_session(server: Any) -> str:
    """Opens a session, reads one slice; returns the engine's name."""
    async def main() -> str:
        async with Client(server.url, reconnect=False) as client:
            async for s in client.slices():
                assert bytes(s.payload) == b"abc"
                break
            return str(client.engine["name"])

    return run_async(main())


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_engine_waits_for_the_server_and_reconnects_after_a_restart(
        runtime, serve, tmp_dir, caplog):
    caplog.set_level(logging.INFO, logger="seatkeeper.engine")
    address = f"unix:{tmp_dir / 'later.sock'}"
    engine = Background(runtime, address, "again", retry_interval=0.05)
    # Nobody listens yet: the engine keeps trying (and says so once).
    wait_for(lambda: "waiting for seatkeeper" in caplog.text, "the engine to try")
    assert engine.running
    first = serve("--engine", address)
    first.wait_ready()
    assert one_session(first) == "again"
    first.stop()
    second = serve("--engine", address)
    second.wait_ready()
    assert one_session(second) == "again"
    engine.stop()
    engine.join()
    assert len(engine.served) == 2
    assert caplog.text.count(f"connected to seatkeeper at {address}") == 2


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_refused_standby_engine_takes_over_when_the_live_one_stops(
        runtime, engine_server, caplog):
    caplog.set_level(logging.INFO, logger="seatkeeper.engine")
    server, address = engine_server
    live = Background(runtime, address, "live", retry_interval=0.05)
    server.wait_ready()
    # /readyz is 200 once the server took the hello; the welcome may still
    # be on its way to the engine.
    wait_for(live.welcomed.is_set, "the live engine's welcome", server)
    standby = Background(runtime, address, "standby", retry_interval=0.05)
    wait_for(lambda: "seatkeeper refused this engine" in caplog.text, "engine_busy", server)
    assert one_session(server) == "live"
    live.stop()
    live.join()
    # The standby holds off a second after each refusal, then tries again.
    wait_for(standby.welcomed.is_set, "the standby to take over", server)
    server.wait_ready()
    assert one_session(server) == "standby"
    assert standby.running
    standby.stop()
    standby.join()
    assert live.served and standby.served


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_without_reconnect_run_returns_after_a_refusal_or_a_lost_connection(
        runtime, engine_server, caplog):
    caplog.set_level(logging.INFO, logger="seatkeeper.engine")
    server, address = engine_server
    live = Background(runtime, address, "live", reconnect=False)
    server.wait_ready()
    refused = Background(runtime, address, "refused", reconnect=False)
    refused.join()  # refused: run returns instead of trying again
    assert "seatkeeper refused this engine" in caplog.text
    assert not refused.welcomed.is_set() and not refused.served
    assert one_session(server) == "live"
    server.stop()
    live.join()     # the server is gone: run returns
    assert "connection to seatkeeper lost" in caplog.text


#: A retry wait far longer than the bound on ``stop()`` below: an engine that
#: sleeps it out instead of waking on stop fails the test.
LONG_RETRY_S = 30.0
STOP_BOUND_S = 5.0


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_stop_cuts_short_the_wait_for_a_server_that_does_not_listen(
        runtime, tmp_dir, caplog):
    caplog.set_level(logging.INFO, logger="seatkeeper.engine")
    address = f"unix:{tmp_dir / 'nobody.sock'}"
    engine = Background(runtime, address, "patient", retry_interval=LONG_RETRY_S)
    # The first try failed: the engine now waits LONG_RETRY_S before the next.
    wait_for(lambda: "waiting for seatkeeper" in caplog.text, "the engine to try")
    assert engine.running
    engine.stop()
    engine.join(STOP_BOUND_S)
    assert "connected to seatkeeper" not in caplog.text


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_stop_cuts_short_the_hold_after_a_refusal(runtime, engine_server, caplog):
    caplog.set_level(logging.INFO, logger="seatkeeper.engine")
    server, address = engine_server
    live = Background(runtime, address, "live", retry_interval=0.05)
    server.wait_ready()
    # Refused (engine_busy): the standby holds off max(LONG_RETRY_S, 1) s.
    standby = Background(runtime, address, "standby", retry_interval=LONG_RETRY_S)
    wait_for(lambda: "seatkeeper refused this engine" in caplog.text, "engine_busy", server)
    assert standby.running
    standby.stop()
    standby.join(STOP_BOUND_S)
    assert not standby.welcomed.is_set() and not standby.served
    # Only the standby stopped: the live engine still serves.
    assert one_session(server) == "live"
    live.stop()
    live.join()


def test_an_async_engine_stopped_from_another_thread_returns_at_once(tmp_dir, caplog):
    # A signal handler's or a GUI's thread calls stop() directly, not
    # through call_soon_threadsafe: the loop must still wake.
    caplog.set_level(logging.INFO, logger="seatkeeper.engine")
    address = f"unix:{tmp_dir / 'nobody.sock'}"
    engine = Background("asyncio", address, "patient", retry_interval=LONG_RETRY_S)
    wait_for(lambda: "waiting for seatkeeper" in caplog.text, "the engine to try")
    assert engine.running
    engine.engine.stop()  # from this (the test's) thread
    engine.join(STOP_BOUND_S)


def test_the_thread_runtime_still_refuses_a_negative_retry_interval(tmp_dir):
    # time.sleep raised ValueError for it; the interruptible wait must not
    # turn it into a wait of 0 (a busy loop of connect attempts).
    engine = Engine()
    with pytest.raises(ValueError):
        engine.run(f"unix:{tmp_dir / 'nobody.sock'}", retry_interval=-1.0)
