"""One side-by-side run's figures, for bench/ab.sh and bench/clients.sh: each
side's CPU over the middle third of the run, per slice delivered after the
first third (the load's settle time, whose slices its latency figures skip).

    python3 bench/steady.py LOAD_JSON HZ SETTLE_S "TICKS_A" "TICKS_B" [key=value ...]

TICKS_A and TICKS_B are "server_utime server_stime load_utime load_stime"
(clock ticks, from /proc/PID/stat) at the start and end of the middle third.
Extra key=value pairs are copied into the JSON line; with `pushed` and `sent`
it adds the share of slices the engine's push wrote, with `rss0`, `rss` (KiB)
and `sessions` the RSS per session.
"""

import json
import sys

load, hz, settle, a, b = sys.argv[1:6]
hz, settle = int(hz), int(settle)
extra = dict(kv.split("=", 1) for kv in sys.argv[6:])
r = json.load(open(load))
d = [int(y) - int(x) for x, y in zip(a.split(), b.split())]
rate = max(r["latency"]["count"] / max(r["elapsed_s"] - settle, 1e-9), 1)
us = lambda t: round(t / hz / settle / rate * 1e6, 2)  # µs per delivered slice
cores = lambda t: round(t / hz / settle, 3)
lat = r["latency"]
n = int(extra.get("sessions", r["sessions"]))
out = dict(extra)
out.update({
    "sessions": n, "ready": r["ready"], "steady_rate": round(rate),
    "delivered_steady": round(rate / (n * 10), 3),
    "p50_ms": (lat["p50_us"] or 0) / 1000, "p99_ms": (lat["p99_us"] or 0) / 1000,
    "server_us": us(d[0] + d[1]), "server_user_us": us(d[0]), "server_sys_us": us(d[1]),
    "client_us": us(d[2] + d[3]), "client_user_us": us(d[2]), "client_sys_us": us(d[3]),
    "server_cores": cores(d[0] + d[1]), "client_cores": cores(d[2] + d[3]),
    "errors": r["errors"], "ended": r["ended_early"],
    # The machine is shared: its load averages (1, 5, 15 min) at the end.
    "loadavg": open("/proc/loadavg").read().split()[:3],
})
if "pushed" in extra and "sent" in extra:
    out["written_by_push_share"] = round(float(extra["pushed"] or 0) / max(float(extra["sent"] or 0), 1), 3)
if "rss0" in extra and "rss" in extra:
    out["rss_per_session_kib"] = round((int(extra["rss"]) - int(extra["rss0"])) / n, 1)
print(json.dumps(out))
