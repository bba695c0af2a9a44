"""Slices as the client receives them: the 20-byte header, then the payload."""

import struct
from dataclasses import dataclass

from ..errors import ProtocolError

__all__ = ["Slice", "decode_slice", "HEADER"]

# version u8, flags u8, kind u16, seq u64, timestamp_us u64 (little-endian)
HEADER = struct.Struct("<BBHQQ")
FLAG_DROPPABLE = 1
FLAG_KEYFRAME = 2


@dataclass(frozen=True)
class Slice:
    """One slice: ``seq`` (1, 2, 3 ... per session, continuing across a
    resume), ``kind`` (engine-defined; 1 is ``pcm_f16le``), ``flags``,
    ``timestamp_us`` (media time) and ``payload`` (a memoryview of the
    WebSocket message, no copy)."""

    seq: int
    kind: int
    flags: int
    timestamp_us: int
    payload: memoryview

    @property
    def droppable(self) -> bool:
        return bool(self.flags & FLAG_DROPPABLE)

    @property
    def keyframe(self) -> bool:
        return bool(self.flags & FLAG_KEYFRAME)


def decode_slice(frame: bytes) -> Slice:
    """Decodes one binary WebSocket message; ProtocolError if it is not a slice."""
    if len(frame) < HEADER.size:
        raise ProtocolError(f"binary message of {len(frame)} bytes: shorter than the "
                            f"{HEADER.size}-byte slice header")
    version, flags, kind, seq, ts = HEADER.unpack_from(frame)
    if version != 1:
        raise ProtocolError(f"slice header version {version} (this client speaks 1)")
    return Slice(seq, kind, flags, ts, memoryview(frame)[HEADER.size:])
