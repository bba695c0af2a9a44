"""The thread SDK's :class:`Engine`: the connection loop and the callbacks."""

import logging
import threading
import time
from typing import Any, Dict, Optional

from .. import _wire
from .._wire import MAX_FRAME_BYTES, PREFIX, PROTOCOL_VERSION, FRAME_JSON
from ..errors import ProtocolError, SessionRefused
from ._events import Progress
from ._reconnect import CONNECTION_ENDED, Reconnect, server_error
from ._thread import Session, _Link, _connect, _read_exact

log = logging.getLogger("seatkeeper.engine")


class Engine:
    """Base class of an engine: override the ``on_*`` callbacks, call :meth:`run`.

    Class attributes sent in the hello: ``name``, ``version``,
    ``capabilities`` (a free-form dict, e.g. ``{"kinds": [1]}``) and
    ``max_sessions`` (None: as many as the server allows).
    """

    name = "engine"
    version = "0"
    capabilities: Dict[str, Any] = {}
    max_sessions: Optional[int] = None

    def __init__(self, warm: bool = True):
        self._warm = warm
        self._link: Optional[_Link] = None
        self._stopping = False
        # Set by stop(): wakes run() from a retry wait or a refusal's hold.
        self._stopped = threading.Event()

    # -- callbacks (run on the reader thread; keep them short) --------------

    def on_connect(self, welcome: Dict[str, Any]) -> None:
        """Connected; ``welcome`` holds the server's limits."""

    def on_session_start(self, session: Session, config: Dict[str, Any]) -> Dict[str, Any]:
        """A session starts. Return its description (a dict) for the
        client's ``ready.engine``, or raise :class:`SessionRefused`."""
        return {"name": self.name, "version": self.version}

    def on_params(self, session: Session, params: Dict[str, Any]) -> None:
        """The client sent knobs (a dict without ``type``)."""

    def on_keyframe(self, session: Session) -> None:
        """The client (re)attached: make the next slice a keyframe."""

    def on_session_detached(self, session: Session, resume_window_ms: int) -> None:
        """The client's transport is lost; the session waits up to
        ``resume_window_ms`` for a resume. ``session.detached`` is already
        True: producers should pause (``session.wait_attached()``)."""

    def on_session_resumed(self, session: Session) -> None:
        """The client is back (an ``on_keyframe`` follows)."""

    def on_progress(self, session: Session, progress: Progress) -> None:
        """The client's progress (also kept in ``session.progress``)."""

    def on_session_end(self, session: Session, reason: str) -> None:
        """The session is over: ``bye``, ``reaped:send_stall``, ``evicted``,
        ``expired``, ``shutdown``, ``closed``, ... or ``disconnected``."""

    # -- controls (thread-safe) ---------------------------------------------

    def set_warm(self, warm: bool = True) -> None:
        """Says whether this engine can take sessions now (e.g. model loaded)."""
        self._warm = warm
        link = self._link
        if link is not None:
            link.send_json({"type": "warm", "warm": warm})

    def send_stats(self, **fields: Any) -> bool:
        """Reports engine-wide figures (free-form: ``gpu_util=0.8``)."""
        link = self._link
        return link is not None and link.send_json(dict(fields, type="stats"))

    def report_error(self, code: str, message: str) -> bool:
        """Reports an engine-wide problem; the server logs it."""
        link = self._link
        return link is not None and link.send_json(
            {"type": "error", "code": code, "message": message})

    def stop(self) -> None:
        """Makes :meth:`run` return (from any thread): it closes the
        connection, and a wait between attempts ends at once."""
        self._stopping = True
        self._stopped.set()
        link = self._link
        if link is not None:
            link.close()

    # -- the loop -----------------------------------------------------------

    def run(self, address: str, reconnect: bool = True, retry_interval: float = 0.5) -> None:
        """Connects to seatkeeper at ``address`` and serves until :meth:`stop`.

        Waits for the server to listen, reconnects after a lost connection
        (if ``reconnect``), and backs off while another engine is connected.
        :meth:`stop` ends a wait between attempts at once.
        """
        retry = Reconnect(address, reconnect, retry_interval)
        while not self._stopping:
            try:
                sock = _connect(address)
            except OSError as e:
                self._wait(retry.connect_failed(e))
                continue
            retry.connected()
            try:
                self._serve(sock)
            except CONNECTION_ENDED as e:
                hold = retry.connection_ended(e, self._stopping)
                if hold is not None:
                    self._wait(hold)
            finally:
                sock.close()
            delay = retry.next_delay(self._stopping)
            if delay is None:
                break
            self._wait(delay)

    def _wait(self, delay: float) -> None:
        """``time.sleep(delay)``, ended early by :meth:`stop`. A delay
        ``time.sleep`` refuses (negative, NaN) raises its error still:
        ``Event.wait`` would take it as 0 and run would spin."""
        if not delay >= 0:
            time.sleep(delay)
        self._stopped.wait(delay)

    def _serve(self, sock: Any) -> None:
        link = _Link(sock)
        self._link = link
        reader = sock.makefile("rb")
        try:
            link.send_json(_wire.engine_hello(self, self._warm))
            while True:
                length, version, ftype = PREFIX.unpack(_read_exact(reader, 6))
                if version != PROTOCOL_VERSION:
                    raise ProtocolError(f"unsupported protocol version {version}")
                body = _read_exact(reader, length - 2) if length > 2 else b""
                if ftype != FRAME_JSON:
                    log.warning("ignoring frame of type %d", ftype)
                    continue
                self._dispatch(link, _wire.decode_json(body))
        finally:
            link.close()
            self._link = None
            for session in list(link.sessions.values()):
                self._end_session(link, session, "disconnected")
            reader.close()

    def _dispatch(self, link: _Link, msg: Dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "welcome":
            link.max_frame_bytes = msg.get("max_frame_bytes", MAX_FRAME_BYTES)
            self.on_connect(msg)
        elif kind == "session_start":
            self._start_session(link, msg)
        elif kind in ("params", "keyframe", "session_end", "session_detached",
                      "session_resumed", "progress"):
            session = link.sessions.get(msg.get("session_id"))  # type: ignore[arg-type]
            if session is None:
                return  # ended on our side already: a late message
            if kind == "params":
                self._call(session, self.on_params, msg.get("params") or {})
            elif kind == "keyframe":
                self._call(session, self.on_keyframe)
            elif kind == "session_detached":
                session._attached.clear()
                self._call(session, self.on_session_detached,
                           int(msg.get("resume_window_ms", 0)))
            elif kind == "session_resumed":
                session._attached.set()
                self._call(session, self.on_session_resumed)
            elif kind == "progress":
                session.progress = Progress.from_msg(msg)
                self._call(session, self.on_progress, session.progress)
            else:
                self._end_session(link, session, msg.get("reason", "closed"))
        elif kind == "error":
            server_error(msg)
        else:
            log.debug("ignoring message of type %r", kind)

    def _start_session(self, link: _Link, msg: Dict[str, Any]) -> None:
        session = Session(link, msg["session_id"], msg["handle"], msg.get("config") or {})
        link.sessions[session.id] = session
        try:
            info = self.on_session_start(session, session.config)
        except SessionRefused as e:
            link.sessions.pop(session.id, None)
            session._end("refused")
            link.send_json({"type": "session_error", "session_id": session.id,
                            "code": e.code, "message": e.message})
            return
        except Exception as e:  # the engine's bug must not take the connection down
            log.exception("on_session_start failed")
            link.sessions.pop(session.id, None)
            session._end("engine_error")
            link.send_json({"type": "session_error", "session_id": session.id,
                            "code": "engine_exception", "message": repr(e)})
            return
        link.send_json({"type": "session_ready", "session_id": session.id, "info": info or {}})

    def _end_session(self, link: _Link, session: Session, reason: str) -> None:
        link.sessions.pop(session.id, None)
        if session._end(reason):
            self._call(session, self.on_session_end, reason)

    def _call(self, session: Session, callback: Any, *args: Any) -> None:
        try:
            callback(session, *args)
        except Exception:
            log.exception("%s failed for session %s", callback.__name__, session.id)
