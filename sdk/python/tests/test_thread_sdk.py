"""The thread SDK, as the example engines and older engines use it."""

import textwrap

import numpy as np

from conftest import PYTHON, REPO, crossings_hz, run_async
from seatkeeper.audio import from_pcm_f16le
from seatkeeper.client import Client


def test_the_sine_engine_on_the_package_serves_a_client(engine_server, spawn):
    server, address = engine_server
    spawn([PYTHON, str(REPO / "engines" / "python" / "sine_engine.py"), address])
    server.wait_ready()

    async def main():
        async with Client(server.url, engine={"freq": 600}) as client:
            assert client.engine["name"] == "sine"
            knobs = {k["name"]: k for k in client.engine["knobs"]}
            assert knobs["freq"]["kind"] == "number" and knobs["freq"]["default"] == 600
            async for s in client.slices():
                hz = crossings_hz(from_pcm_f16le(s.payload, 2)[:, 0], 48000)
                assert 560 < hz < 640, hz
                break

    run_async(main())


def test_an_engine_written_for_the_old_single_file_sdk_still_works(engine_server, spawn, tmp_dir):
    """``from seatkeeper_engine import Engine`` (the shim), numpy payloads
    through ``send_slice``."""
    server, address = engine_server
    script = tmp_dir / "old_engine.py"
    script.write_text(textwrap.dedent(f"""
        import sys, threading
        sys.path.insert(0, {str(REPO / "engines" / "python")!r})
        import numpy as np
        from seatkeeper_engine import Engine, SessionRefused

        class Old(Engine):
            name = "old"
            def on_session_start(self, session, config):
                threading.Thread(target=self.stream, args=(session,), daemon=True).start()
                return {{"name": "old", "kind": 3}}
            def stream(self, session):
                n = 0
                block = np.full(100, 7, dtype="<u2")
                big = np.arange(768 * 1024, dtype="<u4")  # 3 MiB: partial writes
                while session.send_slice(big if n == 2 else block, kind=3, timestamp_us=n,
                                         keyframe=True, droppable=n != 2):
                    n += 1
                    session.wait_ended(0.01)

        Old().run(sys.argv[1])
    """))
    spawn([PYTHON, str(script), address])
    server.wait_ready()

    big = np.arange(768 * 1024, dtype="<u4").tobytes()

    async def main():
        async with Client(server.url) as client:
            assert client.engine == {"name": "old", "kind": 3}
            n, stamps = 0, []
            async for s in client.slices():
                stamps.append(s.timestamp_us)
                want = big if s.timestamp_us == 2 else b"\x07\x00" * 100
                assert s.kind == 3 and bytes(s.payload) == want, s.timestamp_us
                n += 1
                if n == 5:
                    break
            assert 2 in stamps, stamps  # not droppable: it always arrives

    run_async(main())
