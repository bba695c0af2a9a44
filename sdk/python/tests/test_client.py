"""The client against the real binary: acks, resume after a drop, busy."""

import asyncio

import pytest

from conftest import eventually, run_async, wait_for
from seatkeeper.client import Backoff, Busy, Client, ConnectionLost


def test_slices_are_acked_for_the_caller(serve):
    server = serve("--engine", "synthetic:200:512")

    async def main():
        async with Client(server.url) as client:
            n = 0
            async for s in client.slices():
                n += 1
                assert s.seq == n and len(s.payload) == 512
                if n == 100:
                    break
            sid = client.session_id
            assert sid
            # Acks keep the window open: far more than a window's worth arrived,
            # and the server saw them.
            assert n > client.ready["window"]["slices"]
            await eventually(lambda: server.session(sid)["last_ack_seq"] >= 90, "acks")

    run_async(main())


def test_a_dropped_connection_is_resumed_with_the_token(serve):
    server = serve("--engine", "synthetic:100:256", "--resume-window-s", "10")
    calls = []

    async def main():
        client = Client(server.url, backoff_initial=0.05, backoff_max=0.2,
                        on_reconnecting=lambda a, d, e: calls.append((a, d, e)))
        await client.connect()
        sid, seqs = client.session_id, []
        async for s in client.slices():
            seqs.append(s.seq)
            if len(seqs) == 10:
                client.drop()  # an RST: no bye, no close frame
            if client.resumes >= 1 and len(seqs) >= 20:
                break
        assert client.session_id == sid and client.resumes == 1 and client.sessions == 1
        assert client.ready["resumed"] is True
        assert server.session(sid)["resumes"] == 1
        # seq goes on across the resume, never back.
        assert all(b > a for a, b in zip(seqs, seqs[1:])), seqs
        await client.close()
        return sid

    run_async(main())
    assert len(calls) == 1 and calls[0][0] == 1 and 0 <= calls[0][1] <= 0.05, calls


def test_busy_is_retried_after_the_hint_and_without_retries_raises(serve):
    server = serve("--engine", "synthetic:10:64", "--seats", "1")

    async def main():
        holder = Client(server.url)
        await holder.connect()
        with pytest.raises(Busy) as refused:
            await Client(server.url, reconnect=False).connect()
        hint = refused.value.retry_after_s
        with pytest.raises(ConnectionLost):
            await Client(server.url, max_attempts=1).connect()

        delays = []
        waiter = Client(server.url, backoff_initial=0.05,
                        on_reconnecting=lambda a, d, e: delays.append((d, e)))
        task = asyncio.ensure_future(waiter.connect())
        await eventually(lambda: delays, "a busy retry")
        await holder.close()  # bye: the seat is free at once
        ready = await asyncio.wait_for(task, 30)
        assert ready["resumed"] is False
        assert isinstance(delays[0][1], Busy) and delays[0][0] >= hint
        await waiter.close()

    run_async(main())


def test_backoff_is_full_jitter_and_resets_only_after_a_healthy_spell():
    b = Backoff(initial=1.0, maximum=8.0, healthy_after_s=5.0)
    caps = []
    for _ in range(6):
        caps.append(b.cap())
        assert 0.0 <= b.next_delay() <= caps[-1]
    assert caps == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    b.connection_ended(None)      # never reached ready
    b.connection_ended(0.1)       # ready, then closed at once: no reset
    assert b.cap() == 8.0
    b.connection_ended(6.0)
    assert b.cap() == 1.0
    assert b.next_delay(at_least=3.0) >= 3.0


def test_bye_after_a_fast_stream_is_a_bye_not_a_rate_limit_violation(serve):
    """Acks of a fast stream drain the server's message-rate bucket (they are
    exempt, bye is not); close() leaves the bucket time to refill."""
    import re

    server = serve("--engine", "synthetic:300000:1024")

    async def main():
        for _ in range(3):
            client = Client(server.url, reconnect=False)
            await client.connect()
            n = 0
            async for _ in client.slices():
                n += 1
                if n == 20000:
                    break
            await client.close()

    run_async(main())

    def reasons():
        text = re.sub(r"\x1b\[[0-9;]*m", "", server.log.read_text())
        return re.findall(r"session ended.*?reason=([a-z_:]+)", text)

    wait_for(lambda: len(reasons()) == 3, "three sessions to end")
    assert reasons() == ["bye"] * 3
