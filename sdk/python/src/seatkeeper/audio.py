"""``pcm_f16le`` on numpy: the demo engine's audio format (kind 1).

Interleaved little-endian IEEE half floats, ``channels`` per frame. numpy
is imported when a function here is first called (``pip install
'seatkeeper[numpy]'``), never by importing the package.
"""

from typing import Any

__all__ = ["to_pcm_f16le", "from_pcm_f16le", "f16le_to_s16le"]

KIND_PCM_F16 = 1


def _np() -> Any:
    try:
        import numpy
    except ImportError:
        raise ImportError("seatkeeper.audio needs numpy: pip install 'seatkeeper[numpy]'") from None
    return numpy


def to_pcm_f16le(samples: Any) -> Any:
    """Float samples, shape (frames,) or (frames, channels), to a C-contiguous
    ``<f2`` array ready for ``session.send`` (which sends it without a copy).

    An array already ``<f2`` and C-contiguous is returned as is (no copy).
    """
    np = _np()
    out = np.asarray(samples)
    if out.dtype != np.dtype("<f2") or not out.flags.c_contiguous:
        out = np.ascontiguousarray(out, dtype="<f2")
    return out


def from_pcm_f16le(payload: Any, channels: int) -> Any:
    """A slice's payload as a (frames, channels) ``float16`` array: a view of
    the payload, no copy."""
    np = _np()
    flat = np.frombuffer(payload, dtype="<f2")
    if flat.size % channels:
        raise ValueError(f"{flat.size} samples do not divide into {channels} channels")
    return flat.reshape(-1, channels)


def f16le_to_s16le(payload: Any) -> bytes:
    """``pcm_f16le`` bytes to 16-bit signed PCM bytes (what a WAV file holds)."""
    np = _np()
    f = np.frombuffer(payload, dtype="<f2").astype(np.float32)
    return (np.clip(f, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()
