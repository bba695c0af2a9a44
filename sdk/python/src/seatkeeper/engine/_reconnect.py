"""The engine runtimes' reconnect policy: what to do when, without any I/O.

Both runtimes connect, serve until the connection ends, and go again. The
decisions between those steps (how long to wait, what to log, when to stop
trying) are the same for both and live here, in one synchronous object:
:class:`Engine` waits its delays on a ``threading.Event``,
:class:`AsyncEngine` on an asyncio timer, so that ``stop()`` ends a wait at
once. Its delays come from the package's one backoff policy
(:class:`seatkeeper._backoff.Backoff`), at a fixed interval.
"""

import logging
from typing import Any, Dict, Optional

from .._backoff import Backoff
from ..errors import ProtocolError

log = logging.getLogger("seatkeeper.engine")

#: The least time a refused engine (``engine_busy``: another one is
#: connected) holds off before its next try, so a standby engine takes over
#: about a second after the live one dies.
BUSY_HOLD_S = 1.0


class EngineBusy(Exception):
    """The server refused this engine: another one is connected."""


def server_error(msg: Dict[str, Any]) -> None:
    """An engine-wide ``error`` from the server: logged; a refusal
    (``engine_busy``) raises :class:`EngineBusy`, which ends the connection."""
    if msg.get("code") == "engine_busy":
        log.warning("seatkeeper refused this engine: %s", msg.get("message"))
        raise EngineBusy()
    log.warning("seatkeeper error %s: %s", msg.get("code"), msg.get("message"))


#: What ends one connection and leads to the next; anything else propagates.
CONNECTION_ENDED = (EngineBusy, EOFError, OSError, ProtocolError, ValueError)


class Reconnect:
    """One :meth:`run`'s reconnect loop as decisions (see the module doc).

    The loop it steers: try to connect (on failure wait
    :meth:`connect_failed` and try again, whatever ``reconnect`` says: the
    engine waits for the server to listen); say :meth:`connected`; serve;
    when the connection ends with one of :data:`CONNECTION_ENDED`, hold
    :meth:`connection_ended` seconds (if not None) before closing the
    socket; then wait :meth:`next_delay` seconds, or return if it is None.
    """

    def __init__(self, address: str, reconnect: bool = True, retry_interval: float = 0.5) -> None:
        self.address = address
        self.reconnect = reconnect
        self.retry_interval = retry_interval
        self.backoff = Backoff.fixed(retry_interval)
        self._waiting_logged = False

    def connect_failed(self, exc: OSError) -> float:
        """Connecting failed (nobody listens yet); returns the wait before
        the next try. Logs the first failure of a run of them."""
        if not self._waiting_logged:
            log.info("waiting for seatkeeper at %s (%s)", self.address, exc)
            self._waiting_logged = True
        return self.backoff.next_delay()

    def connected(self) -> None:
        self._waiting_logged = False
        log.info("connected to seatkeeper at %s", self.address)

    def connection_ended(self, exc: BaseException, stopping: bool) -> Optional[float]:
        """The connection ended with ``exc`` (one of :data:`CONNECTION_ENDED`);
        logs why. Returns how long to hold off before closing the socket (a
        refusal: another engine is connected), None to close it at once."""
        if isinstance(exc, EngineBusy):
            return max(self.retry_interval, BUSY_HOLD_S)
        if isinstance(exc, (EOFError, OSError)):
            if not stopping:
                log.warning("connection to seatkeeper lost: %s", exc or "closed")
        else:
            log.error("dropping the connection: %s", exc)
        return None

    def next_delay(self, stopping: bool) -> Optional[float]:
        """After a connection: the wait before connecting again, or None to
        give up (``reconnect=False``, or :meth:`stop` was called)."""
        if not self.reconnect or stopping:
            return None
        return self.backoff.next_delay()
