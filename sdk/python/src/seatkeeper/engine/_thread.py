"""The thread engine SDK: subclass :class:`Engine`, override ``on_*``, call ``run``.

The API of the original single-file SDK (``engines/python/seatkeeper_engine.py``),
kept as it was so existing engines work unchanged, plus the lifecycle
callbacks (``on_session_detached``, ``on_session_resumed``, ``on_progress``)
and payloads of any buffer type (numpy arrays are sent without a copy).

Threading model: :meth:`Engine.run` reads the socket on the calling thread
and calls the ``on_*`` callbacks there, one at a time, in the order the
server sent the messages. Keep callbacks short: a callback that blocks stops
this engine from reading, and a server that cannot write to its engine fails
sessions with ``engine_stalled``. Produce slices on your own threads:
:meth:`Session.send_slice` and every other ``send``/``set`` method are
thread-safe. ``session.ended`` turns true when the session ends; slices sent
after that are dropped and ``send_slice`` returns False.
"""

import logging
import socket
import threading
import time
from typing import Any, Dict, Optional

from .. import _wire
from .._wire import MAX_FRAME_BYTES
from ._events import Progress

log = logging.getLogger("seatkeeper.engine")

_PACK_SLICE = _wire.SLICE.pack
# The length field of a slice frame counts version + type + the 16-byte head.
_SLICE_FIXED = 2 + _wire.SLICE_HEAD_LEN


class Session:
    """One seatkeeper session served by this engine.

    Attributes: ``id`` (the seatkeeper session id), ``handle`` (its number on
    the wire), ``config`` (the client's ``hello.engine`` object), ``reason``
    (why it ended, once it has), ``state`` (free for the engine's use),
    ``detached`` (the client is away, waiting to resume) and ``progress``
    (the newest :class:`Progress`, or None).
    """

    def __init__(self, link: "_Link", session_id: str, handle: int, config: Dict[str, Any]):
        self._link = link
        self.id = session_id
        self.handle = handle
        self.config = config
        self.state: Any = None
        self.reason: Optional[str] = None
        self.progress: Optional[Progress] = None
        self._ended = threading.Event()
        self._attached = threading.Event()
        self._attached.set()

    @property
    def ended(self) -> bool:
        """True once the session is over; stop producing slices then."""
        return self._ended.is_set()

    @property
    def detached(self) -> bool:
        """True while the client's transport is lost and the session waits
        for a resume: produce nothing then (see :meth:`wait_attached`)."""
        return not self._attached.is_set()

    def wait_ended(self, timeout: Optional[float] = None) -> bool:
        """Sleeps up to ``timeout`` seconds, waking early if the session ends.

        Returns True if the session has ended. A pacing loop's sleep.
        """
        return self._ended.wait(timeout)

    def wait_attached(self, timeout: Optional[float] = None) -> bool:
        """Waits while the session is detached (up to ``timeout`` s).

        Returns True when a client is attached and the session goes on,
        False if it ended or the wait timed out.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.ended:
            if self._attached.is_set():
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            # Wake on a resume; poll briefly for the end.
            self._attached.wait(0.05 if left is None else min(0.05, left))
        return False

    def send_slice(self, payload: Any, kind: int, timestamp_us: int, droppable: bool = True,
                   keyframe: bool = False) -> bool:
        """Sends one slice to this session's client.

        ``payload``: any buffer (bytes, bytearray, memoryview, a C-contiguous
        little-endian numpy array: sent without a copy). ``kind``: u16 the
        client interprets (1 = PCM f16 little-endian interleaved).
        ``timestamp_us``: media time in microseconds. ``droppable``: the
        server may drop it when the client falls behind (the newest
        droppable slice wins). ``keyframe``: decodable on its own.

        Returns False (and sends nothing) once the session has ended or the
        connection is down. Blocks only while the socket's buffer is full.
        """
        # The hot path of a fast engine: kept to the few steps the original
        # single-file SDK took (bytes go as they are, other buffers as a view).
        if self._ended.is_set():
            return False
        if type(payload) is bytes:
            n = len(payload)
        else:
            payload = _wire.payload_view(payload)
            n = len(payload)
        link = self._link
        if _SLICE_FIXED + n > link.max_frame_bytes:
            raise ValueError(f"slice of {n} bytes is over the frame limit")
        flags = (_wire.FLAG_DROPPABLE if droppable else 0) | (_wire.FLAG_KEYFRAME if keyframe else 0)
        head = _PACK_SLICE(_SLICE_FIXED + n, _wire.PROTOCOL_VERSION, _wire.FRAME_SLICE,
                           self.handle, kind, flags, 0, timestamp_us)
        return link.send(head, payload)

    def send_stats(self, **fields: Any) -> bool:
        """Reports this session's figures (e.g. ``gen_ms=41.5``); free-form."""
        return self._link.send_json(dict(fields, type="stats", session_id=self.id))

    def fail(self, message: str, code: str = "engine_error") -> None:
        """Gives up this session: its client gets an error and is closed (1011).

        Callable from any thread; ``on_session_end`` is not called for it.
        """
        if self._end(code):
            self._link.sessions.pop(self.id, None)
            self._link.send_json({"type": "error", "session_id": self.id,
                                  "code": code, "message": message})

    def _end(self, reason: str) -> bool:
        if self._ended.is_set():
            return False
        self.reason = reason
        self._ended.set()
        self._attached.set()
        return True


class _Link:
    """One connection: a socket, a write lock, and the session table."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.lock = threading.Lock()
        self.alive = True
        self.max_frame_bytes = MAX_FRAME_BYTES
        self.sessions: Dict[str, Session] = {}

    def send(self, *parts: Any) -> bool:
        with self.lock:
            if not self.alive:
                return False
            try:
                # Head and payload in two sendall calls, the payload straight
                # from the caller's buffer (a gathering sendmsg measured no
                # faster here).
                for part in parts:
                    self.sock.sendall(part)
                return True
            except OSError as e:
                log.warning("write to seatkeeper failed: %s", e)
                self.close()
                return False

    def send_json(self, msg: Dict[str, Any]) -> bool:
        return self.send(_wire.json_frame(msg))

    def close(self) -> None:
        # Called with or without the lock; shutdown wakes the reader.
        self.alive = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _connect(address: str) -> socket.socket:
    """Connects to ``unix:PATH`` or ``tcp:HOST:PORT``."""
    family, addr = _wire.parse_address(address)
    if family == socket.AF_UNIX:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(addr)
        except OSError:
            sock.close()
            raise
        return sock
    sock = socket.create_connection(addr)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_exact(f: Any, n: int) -> bytes:
    data = f.read(n)
    if data is None or len(data) < n:
        raise EOFError
    return data
