"""The engine protocol's framing (docs/ENGINE.md, "Framing") and payloads.

Shared by the thread and the asyncio engine SDKs: frame heads, the address
syntax, and :func:`payload_view`, which turns any buffer into the bytes the
wire carries without copying it.
"""

import json
import socket
import struct
import sys
from typing import Any, Dict, Tuple

PROTOCOL_VERSION = 1
FRAME_JSON = 1
FRAME_SLICE = 2
FLAG_DROPPABLE = 1
FLAG_KEYFRAME = 2
# The server's default limit on the length field (version + type + body).
MAX_FRAME_BYTES = 16 * 1024 * 1024

# length u32, version u8, type u8
PREFIX = struct.Struct("<IBB")
# prefix, then handle u32, kind u16, flags u8, reserved u8, timestamp_us u64
SLICE = struct.Struct("<IBBIHBBQ")
SLICE_HEAD_LEN = 16
# Bytes of a slice frame before its payload (prefix + head).
SLICE_OVERHEAD = PREFIX.size + SLICE_HEAD_LEN

_LITTLE = sys.byteorder == "little"


def payload_view(payload: Any) -> memoryview:
    """A flat byte view of ``payload``, sharing its memory (no copy).

    Accepts anything with the buffer protocol: ``bytes``, ``bytearray``,
    ``memoryview``, ``array.array``, numpy arrays. The wire carries raw
    bytes, so a multi-byte element type must be little-endian (every
    seatkeeper format is) and the buffer must be C-contiguous; a numpy
    array that is neither (a big-endian dtype, a strided slice, a
    transposed array) is refused with a message saying how to fix it,
    rather than silently copied. numpy itself is never imported here.
    """
    if isinstance(payload, bytes):
        return memoryview(payload)
    dtype = getattr(payload, "dtype", None)
    if dtype is not None:
        order = getattr(dtype, "byteorder", "=")
        if order == ">" or (order == "=" and not _LITTLE):
            raise TypeError(f"payload dtype {dtype} is big-endian: the wire is little-endian "
                            "(use arr.astype(arr.dtype.newbyteorder('<')))")
        if getattr(dtype, "hasobject", False):
            raise TypeError("payload dtype holds Python objects, not bytes")
    try:
        view = memoryview(payload)
    except TypeError:
        raise TypeError(f"payload must be a bytes-like object (buffer protocol), "
                        f"not {type(payload).__name__}") from None
    if not view.c_contiguous:
        raise ValueError("payload is not C-contiguous (a strided or transposed array): "
                         "pass np.ascontiguousarray(arr)")
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def json_frame(msg: Dict[str, Any]) -> bytes:
    body = json.dumps(msg, separators=(",", ":")).encode()
    return PREFIX.pack(2 + len(body), PROTOCOL_VERSION, FRAME_JSON) + body


def engine_hello(engine: Any, warm: bool) -> Dict[str, Any]:
    """An engine's ``hello``, from its ``name``, ``version``, ``capabilities``
    and ``max_sessions`` (left out when None)."""
    hello: Dict[str, Any] = {"type": "hello", "name": engine.name, "version": engine.version,
                             "capabilities": engine.capabilities, "warm": warm}
    if engine.max_sessions is not None:
        hello["max_sessions"] = engine.max_sessions
    return hello


def slice_head(handle: int, kind: int, timestamp_us: int, droppable: bool,
               keyframe: bool, n: int) -> bytes:
    flags = (FLAG_DROPPABLE if droppable else 0) | (FLAG_KEYFRAME if keyframe else 0)
    return SLICE.pack(2 + SLICE_HEAD_LEN + n, PROTOCOL_VERSION, FRAME_SLICE,
                      handle, kind, flags, 0, timestamp_us)


def parse_address(address: str) -> Tuple[int, Any]:
    """``unix:PATH`` or ``tcp:HOST:PORT`` -> (address family, sockaddr)."""
    scheme, _, rest = address.partition(":")
    if scheme == "unix" and rest:
        return socket.AF_UNIX, rest
    if scheme == "tcp" and ":" in rest:
        host, _, port = rest.rpartition(":")
        host = host.strip("[]")
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            return family, (host, int(port))
        except ValueError:
            pass
    raise ValueError(f"bad address {address!r}: use unix:PATH or tcp:HOST:PORT")


def decode_json(body: bytes) -> Dict[str, Any]:
    from .errors import ProtocolError

    try:
        msg = json.loads(body)
    except ValueError as e:
        raise ProtocolError(f"a JSON frame that does not parse: {e}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("a JSON frame that is not an object")
    return msg
