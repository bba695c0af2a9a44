"""examples/record_wav.py records a session to a WAV file."""

import json
import subprocess
import wave

import numpy as np

from conftest import PYTHON, REPO, crossings_hz


def test_record_wav_writes_the_sessions_audio(engine_server, spawn, tmp_dir):
    server, address = engine_server
    spawn([PYTHON, str(REPO / "engines" / "python" / "sine_engine.py"), address])
    server.wait_ready()
    out = tmp_dir / "out.wav"
    done = subprocess.run(
        [PYTHON, str(REPO / "examples" / "record_wav.py"), server.url, str(out),
         "--seconds", "1", "--engine", json.dumps({"freq": 880})],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["frames"] == 48000 and summary["slices"] >= 10, summary
    with wave.open(str(out)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == \
            (2, 2, 48000, 48000)
        pcm = np.frombuffer(w.readframes(48000), dtype="<i2").reshape(-1, 2)
    assert pcm.std() > 1000  # audible, not silence
    assert 840 < crossings_hz(pcm[:, 0], 48000) < 920
