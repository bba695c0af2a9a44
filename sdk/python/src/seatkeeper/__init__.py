"""seatkeeper: the Python SDK for the seatkeeper real-time session server.

- :mod:`seatkeeper.engine`: write an engine (threads or asyncio).
- :mod:`seatkeeper.client`: a WebSocket client for bots, tests and apps
  (``pip install 'seatkeeper[client]'``).
- :mod:`seatkeeper.audio`: ``pcm_f16le`` helpers on numpy
  (``pip install 'seatkeeper[numpy]'``).

Submodules are imported on demand, so ``import seatkeeper.engine`` needs
nothing beyond the standard library.
"""

__version__ = "0.2.0"
