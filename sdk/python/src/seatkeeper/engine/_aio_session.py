"""The asyncio SDK's :class:`AsyncSession`: sending, state and events."""

import asyncio
import logging
from collections import deque
from typing import Any, AsyncIterator, Deque, Dict, Optional

from .. import _wire
from ..errors import QueueFull, SessionClosed
from ._aio_link import AioLink
from ._events import Detached, End, Event, Keyframe, Params, Progress, Resumed

log = logging.getLogger("seatkeeper.engine")

# Events a session keeps for a consumer that is behind; past this the oldest
# are dropped (the state attributes stay exact), with one warning.
EVENT_QUEUE = 256


class AsyncSession:
    """One session served by an :class:`AsyncEngine`; use it from the loop.

    Attributes: ``id``, ``handle``, ``config`` (the client's ``hello.engine``),
    ``params`` (every knob the client has sent, merged), ``progress`` (the
    newest :class:`Progress` or None), ``detached``, ``ended``, ``reason``,
    ``keyframe_wanted`` (true at the start and after a keyframe request,
    cleared by a keyframe slice: the server delivers a client nothing
    before its first keyframe) and ``state`` (free for the engine's use).
    """

    def __init__(self, link: AioLink, session_id: str, handle: int,
                 config: Dict[str, Any]) -> None:
        self._link = link
        self.id = session_id
        self.handle = handle
        self.config = config
        self.params: Dict[str, Any] = {}
        self.progress: Optional[Progress] = None
        self.reason: Optional[str] = None
        self.keyframe_wanted = True
        self.state: Any = None
        self.ready_sent = False
        self._events: Deque[Event] = deque()
        self._events_dropped = 0
        self._wake = asyncio.Event()
        self._ended = asyncio.Event()
        self._attached = asyncio.Event()
        self._attached.set()

    # -- state --------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    @property
    def detached(self) -> bool:
        """True while the client is away and the session waits for a resume."""
        return not self._attached.is_set()

    async def wait_ended(self, timeout: Optional[float] = None) -> bool:
        """Sleeps up to ``timeout`` s, waking early if the session ends; True
        if it has ended. A pacing loop's sleep."""
        try:
            await asyncio.wait_for(self._ended.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        return self.ended

    async def wait_attached(self, timeout: Optional[float] = None) -> bool:
        """Waits while detached; True when a client is attached, False if
        the session ended or ``timeout`` passed."""
        if not self.ended and not self._attached.is_set():
            try:
                await asyncio.wait_for(self._attached.wait(), timeout)
            except asyncio.TimeoutError:
                return False
        return not self.ended

    # -- sending ------------------------------------------------------------

    async def ready(self, info: Optional[Dict[str, Any]] = None) -> None:
        """Answers the session's start: it runs, and ``info`` becomes the
        client's ``ready.engine`` (name, format, knobs ...). Call it once,
        first thing in ``on_session`` (or raise SessionRefused instead)."""
        if self.ended:
            raise SessionClosed(self.reason)
        if self.ready_sent:
            raise RuntimeError("session.ready() was already called")
        self.ready_sent = True
        self._link.push_json({"type": "session_ready", "session_id": self.id,
                              "info": info or {}})

    def _frame(self, payload: Any, kind: int, timestamp_us: int, droppable: bool,
               keyframe: bool) -> Any:
        if self.ended:
            raise SessionClosed(self.reason)
        view = _wire.payload_view(payload)
        n = len(view)
        if 2 + _wire.SLICE_HEAD_LEN + n > self._link.max_frame_bytes:
            raise ValueError(f"slice of {n} bytes is over the frame limit")
        if keyframe:
            self.keyframe_wanted = False
        return _wire.slice_head(self.handle, kind, timestamp_us, droppable, keyframe, n), view

    async def send(self, payload: Any, kind: int, timestamp_us: int, droppable: bool = True,
                   keyframe: bool = False, timeout: Optional[float] = None) -> None:
        """Sends one slice; awaiting it is the backpressure.

        ``payload`` is any buffer (bytes, memoryview, a C-contiguous
        little-endian numpy array), queued without a copy: do not change it
        afterwards (``await session.flush()`` if you must reuse it). Waits
        while the link's buffer is full; raises :class:`QueueFull` if it
        stays full for ``timeout`` s, :class:`SessionClosed` once the
        session has ended.
        """
        head, view = self._frame(payload, kind, timestamp_us, droppable, keyframe)
        link = self._link
        if link.full():
            await link.wait_space(timeout)
            if self.ended:
                raise SessionClosed(self.reason)
        link.push(head, view)

    def send_nowait(self, payload: Any, kind: int, timestamp_us: int, droppable: bool = True,
                    keyframe: bool = False) -> None:
        """Like :meth:`send`, but raises :class:`QueueFull` instead of waiting."""
        head, view = self._frame(payload, kind, timestamp_us, droppable, keyframe)
        if self._link.full():
            raise QueueFull("the send buffer is full")
        self._link.push(head, view)

    async def flush(self) -> None:
        """Waits until every slice sent so far is written to the socket."""
        await self._link.flush()

    def send_stats(self, **fields: Any) -> bool:
        """Reports this session's figures (e.g. ``gen_ms=41.5``)."""
        return not self.ended and self._link.push_json(
            dict(fields, type="stats", session_id=self.id))

    def fail(self, message: str, code: str = "engine_error") -> None:
        """Gives up this session: its client gets an error and close 1011."""
        if self._end(code):
            self._link.sessions.pop(self.id, None)
            self._link.push_json({"type": "error", "session_id": self.id,
                                  "code": code, "message": message})

    # -- events -------------------------------------------------------------

    async def events(self) -> AsyncIterator[Event]:
        """Params, Keyframe, Detached, Resumed, Progress, then End (last).

        The iterator ends after End. Events are kept (up to 256) from the
        session's start, so none is missed by starting to iterate late.
        """
        while True:
            while not self._events:
                self._wake.clear()
                await self._wake.wait()
            event = self._events.popleft()
            yield event
            if isinstance(event, End):
                return

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()

    def _push(self, event: Event) -> None:
        q = self._events
        if isinstance(event, Progress) and q and isinstance(q[-1], Progress):
            q[-1] = event  # only the newest progress matters
        else:
            if len(q) >= EVENT_QUEUE:
                q.popleft()
                self._events_dropped += 1
                if self._events_dropped == 1:
                    log.warning("session %s: events are not being consumed; dropping the "
                                "oldest (session.params and .progress stay current)", self.id)
            q.append(event)
        self._wake.set()

    def _on_message(self, kind: str, msg: Dict[str, Any]) -> None:
        if kind == "params":
            params = msg.get("params") or {}
            self.params.update(params)
            self._push(Params(params))
        elif kind == "keyframe":
            self.keyframe_wanted = True
            self._push(Keyframe())
        elif kind == "session_detached":
            self._attached.clear()
            self._push(Detached(int(msg.get("resume_window_ms", 0))))
        elif kind == "session_resumed":
            self._attached.set()
            self._push(Resumed())
        elif kind == "progress":
            self.progress = Progress.from_msg(msg)
            self._push(self.progress)

    def _end(self, reason: str) -> bool:
        if self._ended.is_set():
            return False
        self.reason = reason
        self._ended.set()
        self._attached.set()
        self._push(End(reason))
        return True
