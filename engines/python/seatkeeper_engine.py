"""seatkeeper_engine: the old single-file SDK's name, kept so engines written
against it keep working.

The SDK is now the ``seatkeeper`` package (``pip install ./sdk/python``;
docs/ENGINE.md, "The Python SDK"). This module re-exports its thread API:
``from seatkeeper_engine import Engine, SessionRefused`` is the same as
``from seatkeeper.engine import Engine, SessionRefused``. New code should
import ``seatkeeper.engine``.
"""

import os
import sys

try:
    import seatkeeper.engine as _sdk
except ImportError:  # run from a checkout without `pip install ./sdk/python`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "..", "sdk", "python", "src"))
    import seatkeeper.engine as _sdk

Engine = _sdk.Engine
Session = _sdk.Session
SessionRefused = _sdk.SessionRefused
ProtocolError = _sdk.ProtocolError
FLAG_DROPPABLE = _sdk.FLAG_DROPPABLE
FLAG_KEYFRAME = _sdk.FLAG_KEYFRAME
MAX_FRAME_BYTES = _sdk.MAX_FRAME_BYTES

__all__ = [
    "Engine",
    "Session",
    "SessionRefused",
    "ProtocolError",
    "FLAG_DROPPABLE",
    "FLAG_KEYFRAME",
    "MAX_FRAME_BYTES",
]
