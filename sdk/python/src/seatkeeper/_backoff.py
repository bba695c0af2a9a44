"""Reconnect delays: one policy for the client and both engine runtimes.

A pure, synchronous object: it says how long to wait before the next
attempt, when to give up and when to start over, and never sleeps itself.
The thread engine waits its delays on a ``threading.Event`` (``stop()``
ends the wait), the asyncio engine on an asyncio timer (likewise), and the
client with ``asyncio.sleep``.

The client's delays are exponential with full jitter: a uniform draw in
[0, cap] spreads a crowd of clients that lost the same server so they do
not come back in lockstep. The attempt count is reset only after a
connection reached ``ready`` and stayed up for a healthy spell: a server
that accepts and then closes at once must not make its clients loop with no
delay. The engines wait a fixed interval (:meth:`Backoff.fixed`): there is
one engine per server, no crowd to spread.
"""

import random
from typing import Optional


class Backoff:
    def __init__(self, initial: float = 0.5, maximum: float = 20.0,
                 healthy_after_s: float = 5.0, rng: Optional[random.Random] = None,
                 *, factor: float = 2, jitter: bool = True) -> None:
        # A fixed interval (factor 1, no growth) is taken as given; a growing
        # one needs a positive start under its cap.
        if maximum < initial or (factor != 1 and initial <= 0):
            raise ValueError("backoff needs 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        self.healthy_after_s = healthy_after_s
        self.factor = factor
        self.jitter = jitter
        self.attempt = 0
        self._rng = rng or random.Random()

    @classmethod
    def fixed(cls, interval: float) -> "Backoff":
        """The same ``interval`` before every attempt: no growth, no jitter,
        never given up on its own."""
        return cls(interval, interval, float("inf"), factor=1, jitter=False)

    def cap(self) -> float:
        """The upper bound of the next delay."""
        return min(self.maximum, self.initial * (self.factor ** min(self.attempt, 30)))

    def next_delay(self, at_least: float = 0.0) -> float:
        """The delay before the next attempt (and counts the attempt).

        ``at_least``: a floor from the server (``busy.retry_after_s``); the
        jitter is added on top so clients told the same hint still spread.
        """
        delay = self._rng.uniform(0.0, self.cap()) if self.jitter else self.cap()
        self.attempt += 1
        return at_least + delay if at_least > 0 else delay

    def exhausted(self, max_attempts: Optional[int]) -> bool:
        """Whether ``max_attempts`` failed attempts in a row have been made
        (None: never), so the caller should give up instead of waiting."""
        return max_attempts is not None and self.attempt + 1 >= max_attempts

    def connection_ended(self, healthy_for_s: Optional[float]) -> None:
        """A connection ended; ``healthy_for_s`` is how long it was up after
        ``ready`` (None if it never got there)."""
        if healthy_for_s is not None and healthy_for_s >= self.healthy_after_s:
            self.attempt = 0
