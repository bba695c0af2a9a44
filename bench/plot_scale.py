"""Plots how the server's cost grows with sessions (bench/scale.sh output)."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

rows = [json.loads(l) for l in open(sys.argv[1]) if '"sessions"' in l]
n = [r["sessions"] for r in rows]
fig, ax = plt.subplots(1, 3, figsize=(13, 3.8))
ax[0].plot(n, [r["rss_per_session_kib"] for r in rows], "o-")
ax[0].axhline(50, color="grey", ls="--", lw=1, label="goal 50 KiB")
ax[0].set(title="RSS per session (KiB)", xscale="log", xlabel="sessions")
ax[0].legend()
ax[1].plot(n, [r["server_cpu_pct"] for r in rows], "o-", label="server CPU %")
ax[1].plot(n, [r["watchdog_sweep_cpu_ms"] for r in rows], "s-", label="sweep CPU ms")
ax[1].set(title="CPU (10 slices/s of 1 KiB each)", xscale="log", xlabel="sessions")
ax[1].legend()
ax[2].plot(n, [r["latency_p50_ms"] for r in rows], "o-", label="p50")
ax[2].plot(n, [r["latency_p99_ms"] for r in rows], "s-", label="p99")
ax[2].set(title="slice delivery latency (ms)", xscale="log", xlabel="sessions")
ax[2].set_yscale("symlog", linthresh=1)
ax[2].legend()
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
print("wrote", sys.argv[2])
