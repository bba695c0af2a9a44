"""The reconnect policy on its own: Backoff (the client's and the engines'
delays) and the engines' Reconnect decisions. Pure objects, no I/O: the
delays are checked exactly against a seeded random source."""

import logging
import random

import pytest

from seatkeeper.client import Backoff
from seatkeeper.engine._reconnect import (BUSY_HOLD_S, CONNECTION_ENDED, EngineBusy, Reconnect,
                                          server_error)
from seatkeeper.errors import ProtocolError

ENGINE_LOG = "seatkeeper.engine"


def test_the_jittered_delays_are_uniform_draws_under_a_doubling_cap():
    b = Backoff(initial=0.5, maximum=4.0, rng=random.Random(7))
    want_caps = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    caps, delays = [], []
    for _ in want_caps:
        caps.append(b.cap())
        delays.append(b.next_delay())
    assert caps == want_caps
    # Full jitter: each delay is one uniform draw in [0, cap], nothing else.
    reference = random.Random(7)
    assert delays == [reference.uniform(0.0, cap) for cap in want_caps]
    assert all(0.0 <= d <= cap for d, cap in zip(delays, caps)), delays
    assert b.attempt == len(want_caps)
    # Two clients with different seeds do not come back in lockstep.
    other = Backoff(initial=0.5, maximum=4.0, rng=random.Random(8))
    assert [other.next_delay() for _ in want_caps] != delays


def test_the_cap_stays_at_the_maximum_however_many_attempts():
    b = Backoff(initial=0.5, maximum=20.0, rng=random.Random(1))
    b.attempt = 10_000
    assert b.cap() == 20.0
    assert 0.0 <= b.next_delay() <= 20.0


def test_a_server_floor_comes_first_and_the_jitter_on_top():
    b = Backoff(initial=1.0, maximum=8.0, rng=random.Random(3))
    reference = random.Random(3)
    assert b.next_delay(at_least=3.0) == 3.0 + reference.uniform(0.0, 1.0)
    assert b.next_delay(at_least=0.0) == reference.uniform(0.0, 2.0)
    assert b.attempt == 2


def test_the_attempts_reset_only_after_a_healthy_spell():
    b = Backoff(initial=1.0, maximum=8.0, healthy_after_s=5.0, rng=random.Random(0))
    for _ in range(4):
        b.next_delay()
    assert b.cap() == 8.0
    b.connection_ended(None)   # never reached ready
    b.connection_ended(4.99)   # ready, then closed too soon
    assert (b.attempt, b.cap()) == (4, 8.0)
    b.connection_ended(5.0)
    assert (b.attempt, b.cap()) == (0, 1.0)


def test_giving_up_counts_the_failed_attempts_in_a_row():
    b = Backoff(rng=random.Random(0))
    assert not b.exhausted(None)
    assert b.exhausted(1)          # one attempt allowed: the first failure ends it
    assert not b.exhausted(3)
    b.next_delay()
    assert not b.exhausted(3)
    b.next_delay()
    assert b.exhausted(3)
    b.attempt = 1_000_000
    assert not b.exhausted(None)   # None: never
    b.connection_ended(60.0)       # a healthy connection starts the count again
    assert not b.exhausted(3)


def test_the_fixed_form_waits_the_same_interval_every_time():
    b = Backoff.fixed(0.05)
    assert [b.next_delay() for _ in range(40)] == [0.05] * 40
    assert b.cap() == 0.05
    assert b.next_delay(at_least=1.0) == 1.05
    b.connection_ended(1e9)
    assert b.next_delay() == 0.05
    assert Backoff.fixed(0.0).next_delay() == 0.0   # taken as given


@pytest.mark.parametrize("initial, maximum", [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_a_growing_backoff_needs_a_positive_start_under_its_cap(initial, maximum):
    with pytest.raises(ValueError, match="0 < initial <= maximum"):
        Backoff(initial, maximum)


def test_the_engine_waits_for_the_server_and_says_so_once_per_outage(caplog):
    caplog.set_level(logging.INFO, logger=ENGINE_LOG)
    retry = Reconnect("unix:/run/x.sock", retry_interval=0.25)
    refused = ConnectionRefusedError(111, "Connection refused")
    assert [retry.connect_failed(refused) for _ in range(3)] == [0.25] * 3
    retry.connected()
    assert retry.connect_failed(refused) == 0.25
    assert [r.getMessage() for r in caplog.records] == [
        "waiting for seatkeeper at unix:/run/x.sock ([Errno 111] Connection refused)",
        "connected to seatkeeper at unix:/run/x.sock",
        "waiting for seatkeeper at unix:/run/x.sock ([Errno 111] Connection refused)",
    ]


@pytest.mark.parametrize("retry_interval, hold", [(0.05, BUSY_HOLD_S), (0.5, 1.0), (2.0, 2.0)])
def test_a_refused_engine_holds_off_at_least_a_second(retry_interval, hold, caplog):
    caplog.set_level(logging.INFO, logger=ENGINE_LOG)
    retry = Reconnect("unix:/x", retry_interval=retry_interval)
    with pytest.raises(EngineBusy):
        server_error({"type": "error", "code": "engine_busy", "message": "one engine at a time"})
    assert retry.connection_ended(EngineBusy(), stopping=False) == hold
    assert retry.next_delay(stopping=False) == retry_interval
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "seatkeeper refused this engine: one engine at a time")]


def test_how_a_connection_ended_is_logged_and_then_retried(caplog):
    caplog.set_level(logging.INFO, logger=ENGINE_LOG)
    retry = Reconnect("unix:/x", retry_interval=0.5)
    server_error({"type": "error", "code": "protocol_error", "message": "bad frame"})
    for exc in (EOFError(), ConnectionResetError(104, "Connection reset by peer"),
                ProtocolError("unsupported protocol version 9"), ValueError("bad json")):
        assert isinstance(exc, CONNECTION_ENDED)
        assert retry.connection_ended(exc, stopping=False) is None
        assert retry.next_delay(stopping=False) == 0.5
    assert retry.connection_ended(EOFError(), stopping=True) is None  # stop(): no warning
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "seatkeeper error protocol_error: bad frame"),
        ("WARNING", "connection to seatkeeper lost: "),
        ("WARNING", "connection to seatkeeper lost: [Errno 104] Connection reset by peer"),
        ("ERROR", "dropping the connection: unsupported protocol version 9"),
        ("ERROR", "dropping the connection: bad json"),
    ]
    assert not isinstance(RuntimeError("an engine's bug"), CONNECTION_ENDED)  # propagates


def test_the_engine_gives_up_only_on_stop_or_without_reconnect():
    assert Reconnect("unix:/x", reconnect=True).next_delay(stopping=False) == 0.5
    assert Reconnect("unix:/x", reconnect=True).next_delay(stopping=True) is None
    no_reconnect = Reconnect("unix:/x", reconnect=False)
    assert no_reconnect.next_delay(stopping=False) is None
    # Without reconnect it still waits for the server to listen.
    assert no_reconnect.connect_failed(FileNotFoundError(2, "No such file")) == 0.5
