"""What the server tells an engine about a session, as typed values.

The asyncio SDK yields these from ``session.events()``; the thread SDK
passes the same values to its callbacks (``on_progress`` gets a
:class:`Progress`).
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Union

__all__ = ["Params", "Keyframe", "Detached", "Resumed", "Progress", "End", "Event"]


@dataclass(frozen=True)
class Params:
    """The client's knobs (its ``params`` message without ``type``)."""

    params: Dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Keyframe:
    """The client (re)attached: make the next slice a keyframe."""


@dataclass(frozen=True)
class Detached:
    """The client's transport is lost; the session waits up to
    ``resume_window_ms`` for a resume. Stop producing: slices now are for nobody."""

    resume_window_ms: int


@dataclass(frozen=True)
class Resumed:
    """The client is back (a :class:`Keyframe` follows)."""


@dataclass(frozen=True)
class Progress:
    """The client's progress: the last ``seq`` it acknowledged, the last
    ``seq`` sent to it, and its playback buffer in ms when it reports one.
    Sent by the server at most 4 times a second, only when something changed."""

    acked_seq: int
    sent_seq: int
    buffer_ms: Optional[float] = None

    @property
    def in_flight(self) -> int:
        """Slices sent to the client and not yet acknowledged."""
        return max(0, self.sent_seq - self.acked_seq)

    @classmethod
    def from_msg(cls, msg: Dict[str, Any]) -> "Progress":
        buffer_ms = msg.get("buffer_ms")
        return cls(int(msg.get("acked_seq", 0)), int(msg.get("sent_seq", 0)),
                   float(buffer_ms) if isinstance(buffer_ms, (int, float)) else None)


@dataclass(frozen=True)
class End:
    """The session is over (the last event): ``bye``, ``evicted``,
    ``expired``, ``reaped:...``, ``shutdown``, ``closed``, or
    ``disconnected`` (this engine's connection to the server dropped)."""

    reason: str


Event = Union[Params, Keyframe, Detached, Resumed, Progress, End]
