"""A seatkeeper client for bots, tests and Python apps (``pip install 'seatkeeper[client]'``).

:class:`Client` connects (``hello``, or ``hello`` with ``resume``), yields
slices (the 20-byte header decoded into :class:`Slice`) and sends the acks
for you, reconnects with backoff and resumes the session with its token.
"""

from .._backoff import Backoff
from ..errors import Busy, ConnectionLost, ProtocolError, ServerError
from ._client import Client
from ._slice import HEADER, Slice, decode_slice

__all__ = ["Client", "Slice", "decode_slice", "HEADER", "Backoff", "Busy", "ConnectionLost",
           "ServerError", "ProtocolError"]
