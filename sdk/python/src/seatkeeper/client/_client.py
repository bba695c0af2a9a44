"""The seatkeeper WebSocket client: hello/resume, slices, acks, reconnects.

Built on the ``websockets`` package (the ``client`` extra): it does the
RFC 6455 work (handshake, masking, fragments, ping/pong, the close
handshake) well and is maintained; this module adds seatkeeper's session
semantics on top.
"""

import asyncio
import inspect
import json
import logging
import socket
import struct
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, Optional, Union

from .._backoff import Backoff
from ..errors import Busy, ConnectionLost, ProtocolError, ServerError
from ._slice import Slice, decode_slice

log = logging.getLogger("seatkeeper.client")

OnReconnecting = Callable[[int, float, Optional[BaseException]], Union[None, Awaitable[None]]]

# Close codes after which reconnecting cannot help: a policy refusal (bad
# token, flood), data the server refuses, or this session taken over by a
# newer connection (4002). 1000 is the session's normal end.
FATAL_CLOSE = {1003, 1007, 1008, 1009, 4002}
NORMAL_CLOSE = 1000
# Server error codes that are a state of the server, not of this client.
RETRYABLE_ERRORS = {"engine_not_ready", "engine_lost", "engine_stalled", "draining", "busy"}


class _End:
    def __init__(self, exc: Optional[BaseException]) -> None:
        self.exc = exc


class Client:
    """A seatkeeper session from Python::

        async with Client("ws://127.0.0.1:1318/ws", engine={"freq": 440}) as c:
            async for s in c.slices():      # acks are sent for you
                play(s.payload)

    ``engine``: the ``hello.engine`` object (the engine's config).
    ``client_id``, ``seat_token``: as in ``hello``. ``reconnect``: after a
    lost transport, reconnect with backoff (full jitter, ``backoff_initial``
    doubling up to ``backoff_max`` s; reset only after ``ready`` and
    ``healthy_after_s`` s up) and resume the session with its token;
    ``max_attempts`` gives up after that many failed attempts in a row
    (None: never). ``on_reconnecting(attempt, delay, exc)`` is called (sync
    or async) before each wait. ``busy`` is retried after the server's
    ``retry_after_s``.
    """

    def __init__(self, url: str, *, engine: Optional[Dict[str, Any]] = None,
                 client_id: Optional[str] = None, seat_token: Optional[str] = None,
                 reconnect: bool = True, max_attempts: Optional[int] = None,
                 backoff_initial: float = 0.5, backoff_max: float = 20.0,
                 healthy_after_s: float = 5.0, on_reconnecting: Optional[OnReconnecting] = None,
                 open_timeout: float = 10.0, queue: int = 1024) -> None:
        self.url = url
        self.engine_config = engine
        self.client_id = client_id
        self.seat_token = seat_token
        self.reconnect = reconnect
        self.max_attempts = max_attempts
        self.on_reconnecting = on_reconnecting
        self.open_timeout = open_timeout
        self.backoff = Backoff(backoff_initial, backoff_max, healthy_after_s)
        #: The newest ``ready`` message, ``stats`` message.
        self.ready: Optional[Dict[str, Any]] = None
        self.stats: Optional[Dict[str, Any]] = None
        #: Resumes that kept the session; sessions started (a failed resume starts a new one).
        self.resumes = 0
        self.sessions = 0
        #: Reported to the server with each ack (the engine sees it in ``progress``).
        self.buffer_ms: Optional[float] = None
        self._queue_size = queue
        # Made in connect(), on the running loop (Python 3.9 binds asyncio
        # primitives to a loop when they are created).
        self._queue: "asyncio.Queue[Union[Slice, _End]]" = None  # type: ignore[assignment]
        self._connected: asyncio.Event = None  # type: ignore[assignment]
        self._ws: Any = None
        self._task: Optional["asyncio.Task[None]"] = None
        self._first_ready: Optional["asyncio.Future[Dict[str, Any]]"] = None
        self._closing = False
        self._processed = 0
        self._acked = 0
        self._ended: Optional[_End] = None
        self._last_error: Optional[Dict[str, Any]] = None
        self._last_ack_at = float("-inf")

    # -- state --------------------------------------------------------------

    @property
    def session_id(self) -> Optional[str]:
        return self.ready["session_id"] if self.ready else None

    @property
    def resume_token(self) -> Optional[str]:
        return self.ready["resume_token"] if self.ready else None

    @property
    def engine(self) -> Dict[str, Any]:
        """The engine's description (``ready.engine``: format, knobs ...)."""
        return (self.ready or {}).get("engine") or {}

    @property
    def connected(self) -> bool:
        return self._connected is not None and self._connected.is_set()

    @property
    def last_seq(self) -> int:
        """The seq of the newest slice handed to you."""
        return self._processed

    # -- lifecycle ----------------------------------------------------------

    async def connect(self) -> Dict[str, Any]:
        """Opens the session; returns ``ready``. Raises :class:`Busy`,
        :class:`ServerError` or :class:`ConnectionLost` if it cannot (after
        the retries ``reconnect`` allows)."""
        if self._task is None:
            self._queue = asyncio.Queue(self._queue_size)
            self._connected = asyncio.Event()
            self._first_ready = asyncio.get_running_loop().create_future()
            self._task = asyncio.ensure_future(self._run())
        assert self._first_ready is not None
        return await asyncio.shield(self._first_ready)

    async def __aenter__(self) -> "Client":
        await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self, bye: bool = True) -> None:
        """Ends the session (``bye`` releases the seat at once) and stops."""
        self._closing = True
        ws = self._ws
        if ws is not None:
            try:
                if bye and time.monotonic() - self._last_ack_at < 1.0:
                    # The server's message-rate bucket exempts acks of new
                    # slices but not bye: after a fast stream's acks it can
                    # be empty, and a bye would be refused as rate_limited.
                    # A few ms refill it.
                    await asyncio.sleep(0.01)
                if bye:
                    await ws.send(json.dumps({"type": "bye"}))
                await ws.close()
            except Exception:  # already gone: nothing to release
                pass
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    def drop(self) -> None:
        """Drops the connection as a network failure would (an RST, no close
        frame), so the session waits for a resume; the client then
        reconnects if ``reconnect``. For tests and chaos bots."""
        ws = self._ws
        if ws is None:
            return
        transport = ws.transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        transport.abort()

    async def send_params(self, params: Optional[Dict[str, Any]] = None, **knobs: Any) -> None:
        """Sends knobs to the engine (``{"type": "params", ...}``)."""
        msg = dict(params or {}, **knobs)
        msg["type"] = "params"
        await self._send(msg)

    async def _send(self, msg: Dict[str, Any]) -> None:
        if self._task is None:
            await self.connect()
        await self._connected.wait()
        await self._ws.send(json.dumps(msg))

    # -- slices -------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Slice]:
        return self.slices()

    async def slices(self) -> AsyncIterator[Slice]:
        """Every slice, in order, across reconnects; ends when the session
        ends normally, raises when it fails. A slice counts as processed
        (and is acked) once you ask for the next one."""
        if self._task is None:
            await self.connect()
        while True:
            if self._queue.empty():
                await self._ack(force=True)
            item = await self._queue.get()
            if isinstance(item, _End):
                self._queue.put_nowait(item)  # every later iteration ends too
                if item.exc is not None:
                    raise item.exc
                return
            yield item
            self._processed = max(self._processed, item.seq)
            await self._ack(force=False)

    async def _ack(self, force: bool) -> None:
        if self._processed <= self._acked or not self._connected.is_set():
            return
        window = ((self.ready or {}).get("window") or {}).get("slices", 16)
        if not force and self._processed - self._acked < max(1, window // 4):
            return
        msg: Dict[str, Any] = {"type": "ack", "seq": self._processed}
        if self.buffer_ms is not None:
            msg["buffer_ms"] = self.buffer_ms
        try:
            await self._ws.send(json.dumps(msg))
            self._acked = self._processed
            self._last_ack_at = time.monotonic()
        except Exception:  # the connection is going; the reconnect will ack
            pass

    # -- the connection loop ------------------------------------------------

    async def _run(self) -> None:
        exc: Optional[BaseException] = None
        try:
            while not self._closing:
                healthy_for, exc, retry, floor = await self._one_connection()
                self.backoff.connection_ended(healthy_for)
                if self._closing or not retry or not self.reconnect:
                    break
                if self.backoff.exhausted(self.max_attempts):
                    lost = ConnectionLost(f"gave up after {self.backoff.attempt + 1} "
                                          f"attempts: {exc}")
                    lost.__cause__ = exc
                    exc = lost
                    break
                delay = self.backoff.next_delay(floor)
                log.info("reconnecting in %.2f s (attempt %d): %s", delay,
                         self.backoff.attempt, exc)
                if self.on_reconnecting is not None:
                    result = self.on_reconnecting(self.backoff.attempt, delay, exc)
                    if inspect.isawaitable(result):
                        await result
                await asyncio.sleep(delay)
                exc = None
        except asyncio.CancelledError:
            exc = None
        except Exception as e:  # a bug here must still end the iterator
            exc = e
        finally:
            self._connected.clear()
            self._finish(exc)

    def _finish(self, exc: Optional[BaseException]) -> None:
        if self._first_ready is not None and not self._first_ready.done():
            self._first_ready.set_exception(exc or ConnectionLost("closed before ready"))
        if self._ended is None:
            self._ended = _End(exc)
            # Never blocks: drop a pending slice if the queue is full.
            if self._queue.full():
                self._queue.get_nowait()
            self._queue.put_nowait(self._ended)

    async def _one_connection(self):  # type: ignore[no-untyped-def]
        """One connection's life: (healthy seconds or None, why it ended,
        retry?, the server's retry floor)."""
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

        ready_at: Optional[float] = None
        self._last_error = None
        try:
            ws = await _open(self.url, self.open_timeout)
        except InvalidStatus as e:
            status = e.response.status_code
            return None, ServerError("http", f"upgrade refused with HTTP {status}"), \
                status >= 500, 0.0
        except (OSError, asyncio.TimeoutError, InvalidHandshake) as e:
            return None, e, True, 0.0
        self._ws = ws
        try:
            hello: Dict[str, Any] = {"type": "hello"}
            for key, value in (("client_id", self.client_id), ("resume", self.resume_token),
                               ("seat_token", self.seat_token), ("engine", self.engine_config)):
                if value is not None:
                    hello[key] = value
            await ws.send(json.dumps(hello))
            first = json.loads(await asyncio.wait_for(ws.recv(), self.open_timeout))
            kind = first.get("type")
            if kind == "busy":
                retry_after = float(first.get("retry_after_s", 1.0))
                return None, Busy(retry_after), True, retry_after
            if kind == "error":
                code = str(first.get("code"))
                return None, ServerError(code, str(first.get("message")),
                                         retryable=code in RETRYABLE_ERRORS), \
                    code in RETRYABLE_ERRORS, 0.0
            if kind != "ready":
                raise ProtocolError(f"expected ready, got {kind!r}")
            self._on_ready(first)
            ready_at = time.monotonic()
            async for message in ws:
                if isinstance(message, bytes):
                    await self._queue.put(decode_slice(message))
                else:
                    self._on_text(json.loads(message))
            # websockets ends the iteration quietly on 1000 and 1001.
            return self._classify(ws.close_code, ws.close_reason, ready_at, None)
        except ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd is not None else None
            reason = e.rcvd.reason if e.rcvd is not None else ""
            return self._classify(code, reason, ready_at, e)
        except (OSError, asyncio.TimeoutError) as e:
            return (None if ready_at is None else time.monotonic() - ready_at), e, True, 0.0
        finally:
            self._connected.clear()
            self._ws = None
            try:
                await asyncio.wait_for(ws.close(), 1.0)
            except Exception:
                pass

    def _classify(self, code: Optional[int], reason: str, ready_at: Optional[float],
                  exc: Optional[BaseException]):  # type: ignore[no-untyped-def]
        """How a connection ended -> (healthy s, error, retry?, retry floor)."""
        healthy = None if ready_at is None else time.monotonic() - ready_at
        error = self._last_error
        if error is not None:
            # The server said why before closing: retry only a state of the
            # server (its engine was lost), not a verdict on this session.
            err_code = str(error.get("code"))
            retry = err_code in RETRYABLE_ERRORS
            return healthy, ServerError(err_code, str(error.get("message")), code,
                                        retryable=retry), retry, 0.0
        if code == NORMAL_CLOSE:
            return healthy, None, False, 0.0  # the session is over
        if code in FATAL_CLOSE:
            return healthy, ServerError("closed", reason or "closed by the server", code), \
                False, 0.0
        # No close frame (a lost transport), going away, internal error.
        return healthy, exc or ConnectionLost(f"closed with {code}"), True, 0.0

    def _on_ready(self, ready: Dict[str, Any]) -> None:
        resumed = bool(ready.get("resumed"))
        if resumed:
            self.resumes += 1
        else:
            self.sessions += 1
            if self.ready is not None:
                log.warning("the session could not be resumed: a new one started (%s)",
                            ready.get("session_id"))
                self._processed = self._acked = 0  # a new session's seq starts at 1
        self.ready = ready
        self._connected.set()
        if self._first_ready is not None and not self._first_ready.done():
            self._first_ready.set_result(ready)

    def _on_text(self, msg: Dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "stats":
            self.stats = msg
        elif kind == "error":
            # Errors that end the session come right before the close.
            log.warning("seatkeeper error %s: %s", msg.get("code"), msg.get("message"))
            if msg.get("code") not in ("unknown_type", "bad_message"):
                self._last_error = msg
        else:
            log.debug("ignoring message of type %r", kind)


async def _open(url: str, open_timeout: float) -> Any:
    from websockets.asyncio.client import connect

    kwargs: Dict[str, Any] = {"open_timeout": open_timeout, "max_size": None,
                              "compression": None}
    if "proxy" in inspect.signature(connect.__init__).parameters:
        kwargs["proxy"] = None  # never route to a local server through $HTTP_PROXY
    return await connect(url, **kwargs)
