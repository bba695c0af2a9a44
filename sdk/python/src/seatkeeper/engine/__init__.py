"""Write a seatkeeper engine in Python: threads or asyncio.

seatkeeper fronts real-time sessions (seats, dead clients, flow control,
resume); an engine only makes slices. It connects to the socket seatkeeper
listens on (``seatkeeper serve --engine unix:PATH``), says hello, and from
then on serves sessions. The protocol is docs/ENGINE.md; this package
speaks it for you.

- :class:`Engine` (threads): override ``on_session_start`` & co., produce
  on your own threads with ``session.send_slice``.
- :class:`AsyncEngine` (asyncio): ``async def on_session(session)``,
  ``await session.send(...)`` (awaiting is the backpressure), events from
  ``async for event in session.events()``.

Payloads are any buffer: bytes, memoryview, numpy arrays (C-contiguous,
little-endian), sent without a copy.
"""

from .._wire import FLAG_DROPPABLE, FLAG_KEYFRAME, MAX_FRAME_BYTES, payload_view
from ..errors import ProtocolError, QueueFull, SessionClosed, SessionRefused
from ._aio_engine import AsyncEngine
from ._aio_session import AsyncSession
from ._events import Detached, End, Event, Keyframe, Params, Progress, Resumed
from ._thread import Session
from ._thread_engine import Engine

__all__ = [
    "Engine", "Session", "AsyncEngine", "AsyncSession",
    "Params", "Keyframe", "Detached", "Resumed", "Progress", "End", "Event",
    "SessionRefused", "SessionClosed", "QueueFull", "ProtocolError",
    "FLAG_DROPPABLE", "FLAG_KEYFRAME", "MAX_FRAME_BYTES", "payload_view",
    "KIND_PCM_F16",
]

#: The demo engine's kind: PCM f16 little-endian interleaved (``pcm_f16le``).
KIND_PCM_F16 = 1
