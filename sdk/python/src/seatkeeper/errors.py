"""Typed errors of the seatkeeper SDK, shared by the engine and the client.

Every error derives from :class:`SeatkeeperError`, so ``except
SeatkeeperError`` catches whatever this package raises on purpose.
"""

from typing import Optional

__all__ = [
    "SeatkeeperError",
    "ProtocolError",
    "SessionRefused",
    "SessionClosed",
    "QueueFull",
    "ConnectionLost",
    "ServerError",
    "Busy",
]


class SeatkeeperError(Exception):
    """Base class of every error this package raises."""


class ProtocolError(SeatkeeperError):
    """The peer sent something this SDK does not understand."""


class SessionRefused(SeatkeeperError):
    """Raise from an engine's session start to refuse a session.

    The client gets an ``error`` (code ``engine_error``) with ``code: message``.
    """

    def __init__(self, message: str, code: str = "refused") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SessionClosed(SeatkeeperError):
    """The session has ended (or its connection is gone): nothing more can
    be sent for it. ``reason`` says why (``bye``, ``evicted``, ``disconnected``...)."""

    def __init__(self, reason: Optional[str]) -> None:
        super().__init__(f"session ended ({reason})")
        self.reason = reason


class QueueFull(SeatkeeperError):
    """The link's send buffer stayed full: raised by ``send_nowait`` at once,
    and by ``send(..., timeout=...)`` when the timeout passes."""


class ConnectionLost(SeatkeeperError):
    """The connection to the server dropped and could not be recovered
    (the client gave up reconnecting, or reconnecting was off)."""


class ServerError(SeatkeeperError):
    """The server refused or ended the session with an ``error`` message.

    ``code`` is the server's code (``engine_error``, ``bad_seat_token``,
    ``engine_lost`` ...), ``close_code`` the WebSocket close code if known.
    ``retryable`` says whether the client's reconnect loop treats it as
    transient.
    """

    def __init__(self, code: str, message: str, close_code: Optional[int] = None,
                 retryable: bool = False) -> None:
        super().__init__(f"{code}: {message}" + (f" (close {close_code})" if close_code else ""))
        self.code = code
        self.message = message
        self.close_code = close_code
        self.retryable = retryable


class Busy(ServerError):
    """No seat was free (``busy``, close 1013); ``retry_after_s`` is the
    server's hint."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__("busy", f"no free seat, retry after {retry_after_s} s", 1013,
                         retryable=True)
        self.retry_after_s = retry_after_s
