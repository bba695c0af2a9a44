"""Reconnect delays: exponential with full jitter, reset only when healthy.

Full jitter (a uniform draw in [0, cap]) spreads a crowd of clients that
lost the same server so they do not come back in lockstep. The attempt
count is reset only after a connection reached ``ready`` and stayed up for
a healthy spell: a server that accepts and then closes at once must not
make its clients loop with no delay.
"""

import random
from typing import Optional


class Backoff:
    def __init__(self, initial: float = 0.5, maximum: float = 20.0,
                 healthy_after_s: float = 5.0, rng: Optional[random.Random] = None) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError("backoff needs 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        self.healthy_after_s = healthy_after_s
        self.attempt = 0
        self._rng = rng or random.Random()

    def cap(self) -> float:
        """The upper bound of the next delay."""
        return min(self.maximum, self.initial * (2 ** min(self.attempt, 30)))

    def next_delay(self, at_least: float = 0.0) -> float:
        """The delay before the next attempt (and counts the attempt).

        ``at_least``: a floor from the server (``busy.retry_after_s``); the
        jitter is added on top so clients told the same hint still spread.
        """
        delay = self._rng.uniform(0.0, self.cap())
        self.attempt += 1
        return at_least + delay if at_least > 0 else delay

    def connection_ended(self, healthy_for_s: Optional[float]) -> None:
        """A connection ended; ``healthy_for_s`` is how long it was up after
        ``ready`` (None if it never got there)."""
        if healthy_for_s is not None and healthy_for_s >= self.healthy_after_s:
            self.attempt = 0
