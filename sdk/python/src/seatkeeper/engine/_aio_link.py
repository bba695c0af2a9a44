"""The asyncio SDK's connection: a socket, an outbox, and one writer task.

Sends never copy a payload: ``send`` appends the frame head and a view of
the caller's buffer to the outbox, and the writer hands the whole outbox to
the kernel with gathering ``sendmsg`` calls (up to 1,024 buffers a call), so
a burst of small slices costs one syscall instead of two per slice (the
thread SDK's cost) and a big numpy array is read straight from its memory.
The outbox is bounded (``high_water`` bytes, ``max_items`` buffers): a
sender that finds it full waits, and that wait is the backpressure.
"""

import asyncio
import logging
import socket
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple

from .. import _wire
from ..errors import QueueFull, SessionClosed

log = logging.getLogger("seatkeeper.engine")

# Linux's IOV_MAX; sendmsg refuses more buffers than this in one call.
_IOV_MAX = 1024
# About what a socket's send buffer takes at once: offering sendmsg more
# buffers than it can take costs a buffer lookup each, for nothing.
_CHUNK_BYTES = 256 * 1024


class AioLink:
    """One connection to the server, owned by the event loop's thread."""

    def __init__(self, sock: socket.socket, high_water: int = 1 << 20,
                 max_items: int = 8192) -> None:
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.alive = True
        self.max_frame_bytes = _wire.MAX_FRAME_BYTES
        self.sessions: Dict[str, Any] = {}
        self.high_water = high_water
        self.max_items = max_items
        self._outbox: List[Any] = []
        self._outbox_bytes = 0
        self.queued_total = 0
        self.written_total = 0
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._flush_waiters: Deque[Tuple[int, "asyncio.Future[None]"]] = deque()
        self._sendmsg = getattr(sock, "sendmsg", None)

    # -- queueing -----------------------------------------------------------

    def full(self) -> bool:
        return self._outbox_bytes >= self.high_water or len(self._outbox) >= self.max_items

    def push(self, head: bytes, view: Optional[memoryview]) -> None:
        outbox = self._outbox
        outbox.append(head)
        n = len(head)
        if view is not None and len(view):
            outbox.append(view)
            n += len(view)
        self._outbox_bytes += n
        self.queued_total += n
        if self.full():
            self._space.clear()
        self._wake.set()

    def push_json(self, msg: Dict[str, Any]) -> bool:
        if not self.alive:
            return False
        self.push(_wire.json_frame(msg), None)
        return True

    async def wait_space(self, timeout: Optional[float]) -> None:
        """Waits until the outbox has room; QueueFull after ``timeout`` s."""
        if timeout is None:
            await self._space.wait()
        else:
            try:
                await asyncio.wait_for(self._space.wait(), timeout)
            except asyncio.TimeoutError:
                raise QueueFull(f"the send buffer stayed full for {timeout} s "
                                "(the server is not reading this engine fast enough)") from None
        if not self.alive:
            raise SessionClosed("disconnected")

    async def flush(self) -> None:
        """Waits until everything queued so far is written to the socket."""
        target = self.queued_total
        if self.written_total >= target or not self.alive:
            return
        fut = self.loop.create_future()
        self._flush_waiters.append((target, fut))
        await fut
        if not self.alive and self.written_total < target:
            raise SessionClosed("disconnected")

    # -- the writer task ----------------------------------------------------

    async def writer(self) -> None:
        try:
            while self.alive:
                if not self._outbox:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                batch, self._outbox = self._outbox, []
                size, self._outbox_bytes = self._outbox_bytes, 0
                self._space.set()
                await self._write_all(batch)
                self.written_total += size
                waiters = self._flush_waiters
                while waiters and waiters[0][0] <= self.written_total:
                    fut = waiters.popleft()[1]
                    if not fut.done():
                        fut.set_result(None)
        except OSError as e:
            if self.alive:
                log.warning("write to seatkeeper failed: %s", e)
        finally:
            self.close()

    async def _write_all(self, bufs: List[Any]) -> None:
        sock = self.sock
        while bufs:
            k = total = 0
            for buf in bufs:
                total += len(buf)
                k += 1
                if total >= _CHUNK_BYTES or k == _IOV_MAX:
                    break
            chunk = bufs[:k]
            try:
                if self._sendmsg is not None:
                    n = self._sendmsg(chunk)
                else:
                    n = sock.send(b"".join(chunk))
            except (BlockingIOError, InterruptedError):
                await self._writable()
                continue
            j = 0
            while j < len(chunk) and n >= len(chunk[j]):
                n -= len(chunk[j])
                j += 1
            del bufs[:j]
            if n:
                bufs[0] = memoryview(bufs[0])[n:]

    async def _writable(self) -> None:
        fut = self.loop.create_future()
        fd = self.sock.fileno()
        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        self.loop.add_writer(fd, wake)
        try:
            await fut
        finally:
            self.loop.remove_writer(fd)

    # -- reading ------------------------------------------------------------

    async def frames(self):  # type: ignore[no-untyped-def]
        """Yields (frame type, body) until the server closes the socket."""
        buf = bytearray()
        loop = self.loop
        while True:
            data = await loop.sock_recv(self.sock, 65536)
            if not data:
                raise EOFError
            buf += data
            while len(buf) >= 6:
                length, version, ftype = _wire.PREFIX.unpack_from(buf)
                if length < 2 or length > self.max_frame_bytes:
                    from ..errors import ProtocolError
                    raise ProtocolError(f"frame length {length} out of range")
                if version != _wire.PROTOCOL_VERSION:
                    from ..errors import ProtocolError
                    raise ProtocolError(f"unsupported protocol version {version}")
                if len(buf) < 4 + length:
                    break
                body = bytes(buf[6:4 + length])
                del buf[:4 + length]
                yield ftype, body

    def close(self) -> None:
        if not self.alive:
            return
        self.alive = False
        # Wake everyone who waits on this link: senders, flushers, the reader.
        self._space.set()
        self._wake.set()
        for _, fut in self._flush_waiters:
            if not fut.done():
                fut.set_result(None)
        self._flush_waiters.clear()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
