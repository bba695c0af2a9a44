"""seatkeeper_engine: write a seatkeeper engine in Python (standard library only).

seatkeeper fronts real-time sessions (seats, dead clients, flow control,
resume); an engine only makes slices. The engine connects to the socket
seatkeeper listens on (``seatkeeper serve --engine unix:PATH``), says hello,
and from then on serves sessions. The protocol is docs/ENGINE.md; this module
speaks it for you.

Write an engine by subclassing :class:`Engine`::

    import threading, time
    from seatkeeper_engine import Engine, SessionRefused

    class Noise(Engine):
        name = "noise"
        version = "1.0"

        def on_session_start(self, session, config):
            # Quick: start your own thread and return the session's
            # description, which the client receives as ready.engine.
            threading.Thread(target=self.stream, args=(session,), daemon=True).start()
            return {"name": self.name, "kind": 7, "knobs": []}

        def stream(self, session):
            n = 0
            while not session.ended:
                if not session.send_slice(make_payload(), kind=7, timestamp_us=n * 100_000):
                    break
                n += 1
                session.wait_ended(0.1)

        def on_params(self, session, params):   # the client's knobs
            ...

        def on_session_end(self, session, reason):  # 'bye', 'evicted', ...
            ...

    Noise().run("unix:/run/seatkeeper/engine.sock")

Threading model: :meth:`Engine.run` reads the socket on the calling thread
and calls the ``on_*`` callbacks there, one at a time, in the order the
server sent the messages. Keep callbacks short: a callback that blocks stops
this engine from reading, and a server that cannot write to its engine fails
sessions with ``engine_stalled``. Produce slices on your own threads:
:meth:`Session.send_slice` and every other ``send``/``set`` method are
thread-safe. A session's ``ended`` turns true when it ends (``session_end``
from the server, a lost connection, or :meth:`Session.fail`); stop producing
then. Slices sent for an ended session are dropped, and ``send_slice``
returns False.

If seatkeeper is not listening yet, ``run`` retries until it is; if the
connection drops, every session ends with reason ``disconnected`` and
``run`` reconnects (unless ``reconnect=False``).
"""

import json
import logging
import socket
import struct
import threading
import time

__all__ = [
    "Engine",
    "Session",
    "SessionRefused",
    "ProtocolError",
    "FLAG_DROPPABLE",
    "FLAG_KEYFRAME",
    "MAX_FRAME_BYTES",
]

PROTOCOL_VERSION = 1
FRAME_JSON = 1
FRAME_SLICE = 2
FLAG_DROPPABLE = 1
FLAG_KEYFRAME = 2
# The server's default limit on the length field (version + type + body).
MAX_FRAME_BYTES = 16 * 1024 * 1024

# length u32, version u8, type u8
_PREFIX = struct.Struct("<IBB")
# prefix, then handle u32, kind u16, flags u8, reserved u8, timestamp_us u64
_SLICE = struct.Struct("<IBBIHBBQ")
_SLICE_HEAD_LEN = 16

log = logging.getLogger("seatkeeper_engine")


class ProtocolError(Exception):
    """The server sent something this SDK does not understand."""


class SessionRefused(Exception):
    """Raise from :meth:`Engine.on_session_start` to refuse a session.

    The client gets an ``error`` (code ``engine_error``) with ``message``.
    """

    def __init__(self, message, code="refused"):
        super().__init__(message)
        self.code = code
        self.message = message


class _EngineBusy(Exception):
    pass


class Session:
    """One seatkeeper session served by this engine.

    Attributes: ``id`` (the seatkeeper session id), ``handle`` (its number on
    the wire), ``config`` (the client's ``hello.engine`` object), ``reason``
    (why it ended, once it has), and ``state``, free for the engine's use.
    """

    def __init__(self, link, session_id, handle, config):
        self._link = link
        self.id = session_id
        self.handle = handle
        self.config = config
        self.state = None
        self.reason = None
        self._ended = threading.Event()

    @property
    def ended(self):
        """True once the session is over; stop producing slices then."""
        return self._ended.is_set()

    def wait_ended(self, timeout=None):
        """Sleeps up to ``timeout`` seconds, waking early if the session ends.

        Returns True if the session has ended. A pacing loop's sleep.
        """
        return self._ended.wait(timeout)

    def send_slice(self, payload, kind, timestamp_us, droppable=True, keyframe=False):
        """Sends one slice to this session's client.

        ``payload``: bytes-like, the slice's content. ``kind``: u16 the client
        interprets (1 = PCM f16 little-endian interleaved). ``timestamp_us``:
        media time in microseconds. ``droppable``: the server may drop it when
        the client falls behind (the newest droppable slice wins); send
        non-droppable slices sparingly. ``keyframe``: decodable on its own.

        Returns False (and sends nothing) once the session has ended or the
        connection is down. Blocks only while the socket's buffer is full.
        """
        if self.ended:
            return False
        flags = (FLAG_DROPPABLE if droppable else 0) | (FLAG_KEYFRAME if keyframe else 0)
        n = len(payload)
        if 2 + _SLICE_HEAD_LEN + n > self._link.max_frame_bytes:
            raise ValueError(f"slice of {n} bytes is over the frame limit")
        head = _SLICE.pack(2 + _SLICE_HEAD_LEN + n, PROTOCOL_VERSION, FRAME_SLICE,
                           self.handle, kind, flags, 0, timestamp_us)
        return self._link.send(head, payload)

    def send_stats(self, **fields):
        """Reports this session's figures (e.g. ``gen_ms=41.5``); free-form."""
        return self._link.send_json(dict(fields, type="stats", session_id=self.id))

    def fail(self, message, code="engine_error"):
        """Gives up this session: its client gets an error and is closed (1011).

        Callable from any thread; ``on_session_end`` is not called for it.
        """
        if self._end(code):
            self._link.sessions.pop(self.id, None)
            self._link.send_json({"type": "error", "session_id": self.id,
                                  "code": code, "message": message})

    def _end(self, reason):
        if self._ended.is_set():
            return False
        self.reason = reason
        self._ended.set()
        return True


class _Link:
    """One connection: a socket, a write lock, and the session table."""

    def __init__(self, sock):
        self.sock = sock
        self.lock = threading.Lock()
        self.alive = True
        self.max_frame_bytes = MAX_FRAME_BYTES
        self.sessions = {}

    def send(self, *parts):
        with self.lock:
            if not self.alive:
                return False
            try:
                for part in parts:
                    self.sock.sendall(part)
                return True
            except OSError as e:
                log.warning("write to seatkeeper failed: %s", e)
                self.close()
                return False

    def send_json(self, msg):
        body = json.dumps(msg, separators=(",", ":")).encode()
        return self.send(_PREFIX.pack(2 + len(body), PROTOCOL_VERSION, FRAME_JSON) + body)

    def close(self):
        # Called with or without the lock; shutdown wakes the reader.
        self.alive = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _connect(address):
    """Connects to ``unix:PATH`` or ``tcp:HOST:PORT``."""
    scheme, _, rest = address.partition(":")
    if scheme == "unix" and rest:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(rest)
        except OSError:
            sock.close()
            raise
        return sock
    if scheme == "tcp" and ":" in rest:
        host, _, port = rest.rpartition(":")
        sock = socket.create_connection((host.strip("[]"), int(port)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise ValueError(f"bad address {address!r}: use unix:PATH or tcp:HOST:PORT")


def _read_exact(f, n):
    data = f.read(n)
    if data is None or len(data) < n:
        raise EOFError
    return data


class Engine:
    """Base class of an engine: override the ``on_*`` callbacks, call :meth:`run`.

    Class attributes sent in the hello: ``name``, ``version``,
    ``capabilities`` (a free-form dict, e.g. ``{"kinds": [1]}``) and
    ``max_sessions`` (None: as many as the server allows).
    """

    name = "engine"
    version = "0"
    capabilities = {}
    max_sessions = None

    def __init__(self, warm=True):
        self._warm = warm
        self._link = None
        self._stopping = False

    # -- callbacks (run on the reader thread; keep them short) --------------

    def on_connect(self, welcome):
        """Connected; ``welcome`` holds the server's limits."""

    def on_session_start(self, session, config):
        """A session starts. Return its description (a dict) for the
        client's ``ready.engine``, or raise :class:`SessionRefused`."""
        return {"name": self.name, "version": self.version}

    def on_params(self, session, params):
        """The client sent knobs (a dict without ``type``)."""

    def on_keyframe(self, session):
        """The client (re)attached: make the next slice a keyframe."""

    def on_session_end(self, session, reason):
        """The session is over: ``bye``, ``reaped:send_stall``, ``evicted``,
        ``expired``, ``shutdown``, ``closed``, ... or ``disconnected``."""

    # -- controls (thread-safe) ---------------------------------------------

    def set_warm(self, warm=True):
        """Says whether this engine can take sessions now (e.g. model loaded)."""
        self._warm = warm
        link = self._link
        if link is not None:
            link.send_json({"type": "warm", "warm": warm})

    def send_stats(self, **fields):
        """Reports engine-wide figures (free-form: ``gpu_util=0.8``)."""
        link = self._link
        return link is not None and link.send_json(dict(fields, type="stats"))

    def report_error(self, code, message):
        """Reports an engine-wide problem; the server logs it."""
        link = self._link
        return link is not None and link.send_json(
            {"type": "error", "code": code, "message": message})

    def stop(self):
        """Makes :meth:`run` return (from any thread)."""
        self._stopping = True
        link = self._link
        if link is not None:
            link.close()

    # -- the loop -----------------------------------------------------------

    def run(self, address, reconnect=True, retry_interval=0.5):
        """Connects to seatkeeper at ``address`` and serves until :meth:`stop`.

        Waits for the server to listen, reconnects after a lost connection
        (if ``reconnect``), and backs off while another engine is connected.
        """
        waiting_logged = False
        while not self._stopping:
            try:
                sock = _connect(address)
            except (OSError, ValueError) as e:
                if isinstance(e, ValueError):
                    raise
                if not waiting_logged:
                    log.info("waiting for seatkeeper at %s (%s)", address, e)
                    waiting_logged = True
                time.sleep(retry_interval)
                continue
            waiting_logged = False
            log.info("connected to seatkeeper at %s", address)
            try:
                self._serve(sock)
            except _EngineBusy:
                time.sleep(max(retry_interval, 1.0))
            except (EOFError, OSError) as e:
                if not self._stopping:
                    log.warning("connection to seatkeeper lost: %s", e or "closed")
            except (ProtocolError, ValueError) as e:
                log.error("dropping the connection: %s", e)
            finally:
                sock.close()
            if not reconnect:
                break
            if not self._stopping:
                time.sleep(retry_interval)

    def _serve(self, sock):
        link = _Link(sock)
        self._link = link
        reader = sock.makefile("rb")
        try:
            hello = {"type": "hello", "name": self.name, "version": self.version,
                     "capabilities": self.capabilities, "warm": self._warm}
            if self.max_sessions is not None:
                hello["max_sessions"] = self.max_sessions
            link.send_json(hello)
            while True:
                length, version, ftype = _PREFIX.unpack(_read_exact(reader, 6))
                if version != PROTOCOL_VERSION:
                    raise ProtocolError(f"unsupported protocol version {version}")
                body = _read_exact(reader, length - 2) if length > 2 else b""
                if ftype != FRAME_JSON:
                    log.warning("ignoring frame of type %d", ftype)
                    continue
                msg = json.loads(body)
                if not isinstance(msg, dict):
                    raise ProtocolError("a JSON frame that is not an object")
                self._dispatch(link, msg)
        finally:
            link.close()
            self._link = None
            for session in list(link.sessions.values()):
                self._end_session(link, session, "disconnected")
            reader.close()

    def _dispatch(self, link, msg):
        kind = msg.get("type")
        if kind == "welcome":
            link.max_frame_bytes = msg.get("max_frame_bytes", MAX_FRAME_BYTES)
            self.on_connect(msg)
        elif kind == "session_start":
            self._start_session(link, msg)
        elif kind in ("params", "keyframe", "session_end"):
            session = link.sessions.get(msg.get("session_id"))
            if session is None:
                return  # ended on our side already: a late message
            if kind == "params":
                self._call(session, self.on_params, msg.get("params") or {})
            elif kind == "keyframe":
                self._call(session, self.on_keyframe)
            else:
                self._end_session(link, session, msg.get("reason", "closed"))
        elif kind == "error":
            if msg.get("code") == "engine_busy":
                log.warning("seatkeeper refused this engine: %s", msg.get("message"))
                raise _EngineBusy()
            log.warning("seatkeeper error %s: %s", msg.get("code"), msg.get("message"))
        else:
            log.debug("ignoring message of type %r", kind)

    def _start_session(self, link, msg):
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

    def _end_session(self, link, session, reason):
        link.sessions.pop(session.id, None)
        if session._end(reason):
            self._call(session, self.on_session_end, reason)

    def _call(self, session, callback, *args):
        try:
            callback(session, *args)
        except Exception:
            log.exception("%s failed for session %s", callback.__name__, session.id)
