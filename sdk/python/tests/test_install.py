"""pip install into a fresh virtualenv, then the asyncio example engine
serving a real client through the release binary, all from that venv."""

import json
import os
import subprocess
import sys
import venv

from conftest import REPO


def test_pip_install_into_a_fresh_venv_then_serve_a_session(engine_server, spawn, tmp_dir):
    server, address = engine_server
    env_dir = tmp_dir / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = str(env_dir / "bin" / "python")
    pip = subprocess.run([py, "-m", "pip", "install", "-q", f"{REPO / 'sdk' / 'python'}[numpy,client]"],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    # From outside the checkout, so nothing but the installed package is found.
    where = subprocess.run([py, "-c", "import seatkeeper, seatkeeper.engine, seatkeeper.client, os; "
                            "d = os.path.dirname(seatkeeper.__file__); "
                            "print(d, os.path.exists(os.path.join(d, 'py.typed')))"],
                           capture_output=True, text=True, cwd=tmp_dir, timeout=60)
    assert where.returncode == 0, where.stderr
    path, typed = where.stdout.split()
    assert path.startswith(str(env_dir)) and typed == "True", where.stdout

    env = dict(os.environ, PYTHONPATH="")
    spawn([py, str(REPO / "examples" / "asyncio_numpy_engine.py"), address], cwd=tmp_dir, env=env)
    server.wait_ready()
    out = tmp_dir / "rec.wav"
    rec = subprocess.run([py, str(REPO / "examples" / "record_wav.py"), server.url, str(out),
                          "--seconds", "0.5"], capture_output=True, text=True, cwd=tmp_dir,
                         env=env, timeout=60)
    assert rec.returncode == 0, rec.stderr
    summary = json.loads(rec.stdout.strip().splitlines()[-1])
    assert summary["frames"] == 24000 and summary["slices"] >= 5, summary
    assert sys.executable != py
