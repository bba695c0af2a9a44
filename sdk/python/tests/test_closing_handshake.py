"""A third-party client (the `websockets` package, as many Python apps use)
meets the RFC 6455 closing handshake: its close is answered with the same
code, and a message the server refuses comes back as a readable close code,
not a reset."""

import asyncio
import json

import websockets

from conftest import run_async, wait_for


def test_a_websockets_client_closing_1000_reads_1000_back(serve):
    server = serve()

    async def main():
        async with websockets.connect(server.url) as ws:
            await ws.send(json.dumps({"type": "hello", "client_id": "py-websockets"}))
            ready = json.loads(await ws.recv())
            assert ready["type"] == "ready"
            await ws.close(1000, "done")
            # The server's close frame came back with our code.
            assert ws.protocol.close_rcvd is not None, "no close frame from the server"
            assert ws.protocol.close_rcvd.code == 1000
            assert ws.close_code == 1000

    run_async(main())
    wait_for(lambda: server.get("/sessions")["lockHeld"] is False, "seat released", server)


def test_an_oversize_message_reads_1009_while_still_writing(serve):
    server = serve("--seats", "2")

    async def main():
        async with websockets.connect(server.url, max_size=None) as ws:
            await ws.send(json.dumps({"type": "hello"}))
            assert json.loads(await ws.recv())["type"] == "ready"
            try:
                await ws.send("x" * (2 << 20))
                await asyncio.wait_for(ws.wait_closed(), 10)
            except websockets.ConnectionClosed:
                pass
            assert ws.protocol.close_rcvd is not None, "reset instead of a close frame"
            assert ws.protocol.close_rcvd.code == 1009

    run_async(main())
    wait_for(lambda: server.get("/sessions")["seats"]["held"] == 0, "no seat held", server)
