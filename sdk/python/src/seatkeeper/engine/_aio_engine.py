"""The asyncio SDK's :class:`AsyncEngine`: connect, dispatch, one task per session."""

import asyncio
import inspect
import logging
import socket
import time
from typing import Any, Awaitable, Callable, Dict, Optional, Set

from .. import _wire
from ..errors import SessionClosed, SessionRefused
from ._aio_link import AioLink
from ._aio_session import AsyncSession
from ._reconnect import CONNECTION_ENDED, Reconnect, server_error

log = logging.getLogger("seatkeeper.engine")

OnSession = Callable[[AsyncSession], Awaitable[None]]
_SEND_BUFFER = 1 << 20
_SESSION_MESSAGES = ("params", "keyframe", "session_detached", "session_resumed", "progress")


class AsyncEngine:
    """An engine on asyncio: one coroutine per session.

    Either pass ``on_session`` or subclass and override :meth:`on_session`::

        async def on_session(session):
            await session.ready({"name": "tone", "kind": 1, "knobs": []})
            while not session.ended:
                await session.send(pcm, kind=1, timestamp_us=t)

        AsyncEngine(on_session, name="tone").run_forever("unix:/tmp/engine.sock")

    ``high_water`` bounds the bytes queued for the socket (sends wait past
    it); ``stall_warning_s`` is how late the event loop may run before the
    engine logs that something blocks it.
    """

    name = "engine"
    version = "0"
    capabilities: Dict[str, Any] = {}
    max_sessions: Optional[int] = None

    def __init__(self, on_session: Optional[OnSession] = None, *, name: Optional[str] = None,
                 version: Optional[str] = None, capabilities: Optional[Dict[str, Any]] = None,
                 max_sessions: Optional[int] = None, warm: bool = True,
                 high_water: int = 1 << 20, stall_warning_s: float = 0.5) -> None:
        if on_session is not None:
            self.on_session = on_session  # type: ignore[method-assign,assignment]
        if name is not None:
            self.name = name
        if version is not None:
            self.version = version
        if capabilities is not None:
            self.capabilities = capabilities
        if max_sessions is not None:
            self.max_sessions = max_sessions
        self._warm = warm
        self._high_water = high_water
        self._stall_warning_s = stall_warning_s
        self._link: Optional[AioLink] = None
        self._stopping = False
        # The loop run() runs on, while it does: stop() from another thread
        # hands its work to it.
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        # The wait between attempts run() is in, if any: stop() ends it.
        self._pause: Optional["asyncio.Future[None]"] = None
        self._tasks: Set["asyncio.Task[None]"] = set()
        self.welcome: Optional[Dict[str, Any]] = None
        self.connected = asyncio.Event() if _loop_running() else None

    async def on_session(self, session: AsyncSession) -> None:
        """Serves one session: call ``await session.ready(info)``, then send
        slices until ``session.ended`` (or iterate ``session.events()``)."""
        raise NotImplementedError("pass on_session= or override AsyncEngine.on_session")

    def on_connect(self, welcome: Dict[str, Any]) -> Optional[Awaitable[None]]:
        """Connected; ``welcome`` holds the server's limits (may be async)."""
        return None

    # -- controls (from the loop's thread) ----------------------------------

    def set_warm(self, warm: bool = True) -> None:
        self._warm = warm
        if self._link is not None:
            self._link.push_json({"type": "warm", "warm": warm})

    def send_stats(self, **fields: Any) -> bool:
        return self._link is not None and self._link.push_json(dict(fields, type="stats"))

    def report_error(self, code: str, message: str) -> bool:
        return self._link is not None and self._link.push_json(
            {"type": "error", "code": code, "message": message})

    def stop(self) -> None:
        """Makes :meth:`run` return: it closes the connection, and a wait
        between attempts ends at once. Safe from any thread (a signal
        handler's, a GUI's): off the loop's thread it hands the work to the
        loop :meth:`run` runs on."""
        self._stopping = True
        loop = self._loop
        if loop is not None and not _running_on(loop):
            try:
                loop.call_soon_threadsafe(self._stop_now)
            except RuntimeError:
                pass  # the loop is closed: run() has returned
            return
        self._stop_now()

    def _stop_now(self) -> None:
        if self._link is not None:
            self._link.close()
        pause = self._pause
        if pause is not None and not pause.done():
            pause.set_result(None)

    # -- the loop -----------------------------------------------------------

    def run_forever(self, address: str, **kwargs: Any) -> None:
        """``asyncio.run(self.run(address))``, ending quietly on Ctrl-C."""
        try:
            asyncio.run(self.run(address, **kwargs))
        except KeyboardInterrupt:
            pass

    async def run(self, address: str, reconnect: bool = True,
                  retry_interval: float = 0.5) -> None:
        """Connects to seatkeeper at ``address`` and serves until :meth:`stop`.

        Waits for the server to listen, reconnects after a lost connection
        (if ``reconnect``), and backs off while another engine is connected.
        :meth:`stop` ends a wait between attempts at once.
        """
        if self.connected is None:
            self.connected = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        watchdog = asyncio.ensure_future(self._watch_loop())
        retry = Reconnect(address, reconnect, retry_interval)
        try:
            while not self._stopping:
                try:
                    sock = await _connect(address)
                except OSError as e:
                    await self._wait(retry.connect_failed(e))
                    continue
                retry.connected()
                try:
                    await self._serve(sock)
                except CONNECTION_ENDED as e:
                    hold = retry.connection_ended(e, self._stopping)
                    if hold is not None:
                        await self._wait(hold)
                finally:
                    sock.close()
                delay = retry.next_delay(self._stopping)
                if delay is None:
                    break
                await self._wait(delay)
        finally:
            self._loop = None
            watchdog.cancel()
            for task in list(self._tasks):
                task.cancel()

    async def _wait(self, delay: float) -> None:
        """``asyncio.sleep(delay)`` (the same timer), ended early by :meth:`stop`."""
        if self._stopping:
            return
        loop = asyncio.get_running_loop()
        pause: "asyncio.Future[None]" = loop.create_future()
        timer = loop.call_later(delay, _wake, pause)
        self._pause = pause
        try:
            await pause
        finally:
            timer.cancel()
            self._pause = None

    async def _serve(self, sock: socket.socket) -> None:
        link = AioLink(sock, high_water=self._high_water)
        self._link = link
        writer = asyncio.ensure_future(link.writer())
        try:
            link.push_json(_wire.engine_hello(self, self._warm))
            async for ftype, body in link.frames():
                if ftype != _wire.FRAME_JSON:
                    log.warning("ignoring frame of type %d", ftype)
                    continue
                self._dispatch(link, _wire.decode_json(body))
        finally:
            link.close()
            self._link = None
            assert self.connected is not None
            self.connected.clear()
            for session in list(link.sessions.values()):
                session._end("disconnected")
            link.sessions.clear()
            writer.cancel()

    def _dispatch(self, link: AioLink, msg: Dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "welcome":
            link.max_frame_bytes = msg.get("max_frame_bytes", _wire.MAX_FRAME_BYTES)
            self.welcome = msg
            assert self.connected is not None
            self.connected.set()
            result = self.on_connect(msg)
            if inspect.isawaitable(result):
                self._spawn(result)
        elif kind == "session_start":
            session = AsyncSession(link, msg["session_id"], msg["handle"],
                                   msg.get("config") or {})
            link.sessions[session.id] = session
            self._spawn(self._run_session(link, session))
        elif kind in _SESSION_MESSAGES or kind == "session_end":
            found = link.sessions.get(msg.get("session_id"))  # type: ignore[arg-type]
            if found is None:
                return  # ended on our side already: a late message
            if kind == "session_end":
                link.sessions.pop(found.id, None)
                found._end(msg.get("reason", "closed"))
            else:
                found._on_message(kind, msg)
        elif kind == "error":
            server_error(msg)
        else:
            log.debug("ignoring message of type %r", kind)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_session(self, link: AioLink, session: AsyncSession) -> None:
        def refuse(code: str, message: str) -> None:
            link.sessions.pop(session.id, None)
            if session._end("refused" if code != "engine_exception" else "engine_error"):
                link.push_json({"type": "session_error", "session_id": session.id,
                                "code": code, "message": message})

        try:
            await self.on_session(session)
        except SessionRefused as e:
            if session.ready_sent:
                session.fail(e.message, e.code)
            else:
                refuse(e.code, e.message)
        except SessionClosed:
            pass  # the session ended while sending: the normal way out
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the engine's bug must not take the connection down
            log.exception("on_session failed for session %s", session.id)
            if session.ready_sent:
                session.fail(repr(e), "engine_exception")
            else:
                refuse("engine_exception", repr(e))
        else:
            if not session.ready_sent and not session.ended:
                refuse("no_ready", "on_session returned without calling session.ready()")

    async def _watch_loop(self) -> None:
        """Warns when the event loop runs late: something blocks it (a model
        call that should be in a thread: ``await asyncio.to_thread(...)``)."""
        interval = 0.1
        last_warning = 0.0
        while True:
            before = time.monotonic()
            await asyncio.sleep(interval)
            lag = time.monotonic() - before - interval
            if lag > self._stall_warning_s and time.monotonic() - last_warning > 10:
                last_warning = time.monotonic()
                log.warning("the event loop stalled for %.2f s: a blocking call in a "
                            "coroutine delays every session (use asyncio.to_thread)", lag)


def _wake(pause: "asyncio.Future[None]") -> None:
    if not pause.done():
        pause.set_result(None)


def _running_on(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether this thread is running ``loop``."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


async def _connect(address: str) -> socket.socket:
    family, addr = _wire.parse_address(address)
    loop = asyncio.get_running_loop()
    if family != socket.AF_UNIX:
        infos = await loop.getaddrinfo(addr[0], addr[1], type=socket.SOCK_STREAM)
        family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        # A non-blocking writer is woken only once the send buffer has
        # drained to a quarter (Unix sockets); a bigger buffer keeps the
        # server fed while the loop gets round to refilling it. The kernel
        # caps it at net.core.wmem_max.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
    except OSError:
        pass
    try:
        await loop.sock_connect(sock, addr)
        if family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        sock.close()
        raise
    return sock
