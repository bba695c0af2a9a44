#!/usr/bin/env python3
"""Draws bench/results/*.png and writes summary.md from results.json."""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PEERS = ["seatkeeper", "py-websockets", "py-websockets+watchdog", "tokio-tungstenite"]
COLORS = {"seatkeeper": "#1b7f3b", "py-websockets": "#c0392b",
          "py-websockets+watchdog": "#e67e22", "tokio-tungstenite": "#2c3e50"}


def fmt(x, unit="", nd=2):
    if x is None:
        return "—"
    return f"{x:.{nd}f}{unit}"


def release_plot(res, out):
    scen = [s for s in ("frozen", "tunnel", "blackhole") if res.get(s, {}).get("peers")]
    if not scen:
        return
    timeout = res["config"]["timeout_s"]
    fig, axes = plt.subplots(1, len(scen), figsize=(5 * len(scen), 4.5), sharey=True)
    axes = [axes] if len(scen) == 1 else axes
    for ax, s in zip(axes, scen):
        for i, row in enumerate(res[s]["peers"]):
            ts = row["release_s"]
            got = [t for t in ts if t is not None]
            miss = len(ts) - len(got)
            x = [i + 0.15 * ((j % 7) - 3) / 3 for j in range(len(got))]
            ax.scatter(x, got, s=14, color=COLORS[row["peer"]], alpha=0.8)
            if got:
                ax.boxplot([got], positions=[i], widths=0.5, showfliers=False)
            if miss:
                ax.scatter([i] * 1, [timeout], marker="x", s=60, color=COLORS[row["peer"]])
                ax.annotate(f"{miss} never\n(> {timeout:.0f} s)", (i, timeout),
                            textcoords="offset points", xytext=(0, -28), ha="center", fontsize=8)
        ax.axhline(res["config"]["grace_s"], ls="--", color="grey", lw=0.8)
        ax.set_xticks(range(len(res[s]["peers"])))
        ax.set_xticklabels([r["peer"].replace("+", "+\n") for r in res[s]["peers"]], fontsize=8)
        ax.set_title(f"{s}: seat release after the fault")
        ax.set_yscale("log")
        ax.set_ylim(1, timeout * 1.6)
    axes[0].set_ylabel("seconds (log); dashed: grace window")
    fig.tight_layout()
    fig.savefig(out / "release.png", dpi=110)
    plt.close(fig)


def throughput_plot(res, out):
    t = res.get("throughput")
    if not t or "slices_1mib" not in t:
        return
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    names = ["raw TCP"] + [r["peer"] for r in t["slices_1mib"]]
    vals = [t["raw_tcp_mb_per_s"]] + [r["mb_per_s"] for r in t["slices_1mib"]]
    a1.bar(range(len(vals)), vals, color=["#7f8c8d"] + [COLORS[r["peer"]] for r in t["slices_1mib"]])
    a1.set_xticks(range(len(vals)))
    a1.set_xticklabels([n.replace("+", "+\n") for n in names], fontsize=8)
    a1.set_ylabel("MB/s, one session, 1 MiB slices")
    for i, v in enumerate(vals):
        a1.annotate(f"{v:.0f}", (i, v), ha="center", va="bottom", fontsize=8)
    rows = t["slices_4kib"]
    vals = [r["slices_per_s"] for r in rows]
    a2.bar(range(len(vals)), vals, color=[COLORS[r["peer"]] for r in rows])
    a2.axhline(100_000, ls="--", color="grey", lw=0.8)
    a2.set_xticks(range(len(vals)))
    a2.set_xticklabels([r["peer"].replace("+", "+\n") for r in rows], fontsize=8)
    a2.set_ylabel("slices/s, one session, 4 KiB slices (asked 200k/s)")
    for i, v in enumerate(vals):
        a2.annotate(f"{v/1000:.0f}k", (i, v), ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "throughput.png", dpi=110)
    plt.close(fig)


def latency_plot(res, out):
    keys = [k for k in ("latency_1", "latency_100") if res.get(k, {}).get("rows")]
    if not keys:
        return
    fig, axes = plt.subplots(1, len(keys), figsize=(5.5 * len(keys), 4.2))
    axes = [axes] if len(keys) == 1 else axes
    for ax, k in zip(axes, keys):
        rows = res[k]["rows"]
        x = range(len(rows))
        p50 = [(r["p50_us"] or 0) / 1000 for r in rows]
        p99 = [(r["p99_us"] or 0) / 1000 for r in rows]
        ax.bar([i - 0.2 for i in x], p50, width=0.4, label="p50", color="#95a5a6")
        ax.bar([i + 0.2 for i in x], p99, width=0.4, label="p99",
               color=[COLORS[r["peer"]] for r in rows])
        ax.set_xticks(list(x))
        ax.set_xticklabels([r["peer"].replace("+", "+\n") for r in rows], fontsize=8)
        ax.set_ylabel("delivery latency, ms")
        ax.set_title(f"{res[k]['sessions']} session(s), {res[k]['engine']}")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=110)
    plt.close(fig)


def summary(res, out):
    L = []
    c = res.get("config", {})
    L.append(f"Grace window {c.get('grace_s')} s and sampling {c.get('interval_ms')} ms "
             f"(seatkeeper and the Python watchdog); {c.get('runs')} dead clients per "
             f"scenario and peer; waits capped at {c.get('timeout_s')} s.\n")
    L.append("### Time to release a dead client's seat (s, from the fault)\n")
    L.append("| scenario | peer | released | min | median | max |")
    L.append("|---|---|---|---|---|---|")
    for s in ("frozen", "tunnel", "blackhole"):
        for r in res.get(s, {}).get("peers", []):
            L.append(f"| {s} | {r['peer']} | {r['released']}/{r['runs']} | {fmt(r['min'])} | "
                     f"{fmt(r['median'])} | {fmt(r['max'])} |")
        if res.get(s, {}).get("skipped"):
            L.append(f"| {s} | — | skipped: {res[s]['skipped']} | | | |")
    live = res.get("live", {})
    if live.get("rows"):
        L.append(f"\n### False reaps among live clients over {live['observe_s']:.0f} s (3× grace)\n")
        L.append("| peer | paused | slow-link | backpressured |")
        L.append("|---|---|---|---|")
        for p in PEERS:
            cells = []
            for s in ("paused", "slow-link", "backpressured"):
                r = next((r for r in live["rows"] if r["peer"] == p and r["scenario"] == s), None)
                cells.append(f"{r['false_reaps']}/{r['clients']}" if r else "—")
            L.append(f"| {p} | " + " | ".join(cells) + " |")
    t = res.get("throughput", {})
    if t.get("slices_1mib"):
        L.append(f"\n### One session's throughput (raw TCP on loopback: {t['raw_tcp_mb_per_s']:.0f} MB/s)\n")
        L.append("| peer | MB/s (1 MiB slices) | ratio to raw TCP | slices/s (4 KiB, asked 200k/s) | engine produced (4 KiB) |")
        L.append("|---|---|---|---|---|")
        for big, small in zip(t["slices_1mib"], t["slices_4kib"]):
            L.append(f"| {big['peer']} | {fmt(big['mb_per_s'], nd=0)} | {fmt(big['ratio_to_raw'])} | "
                     f"{fmt(small['slices_per_s'], nd=0)} | "
                     f"{fmt(small.get('engine_hz'), '/s', 0)} |")
    for k in ("latency_1", "latency_100"):
        d = res.get(k, {})
        if not d.get("rows"):
            continue
        L.append(f"\n### Delivery latency, {d['sessions']} session(s) of {d['engine']} for 10 s\n")
        L.append("| peer | slices/s | p50 ms | p99 ms | max ms | dropped | ended early | watchdog µs/socket/sample |")
        L.append("|---|---|---|---|---|---|---|---|")
        for r in d["rows"]:
            w = r.get("watchdog_s_per_sample")
            L.append(f"| {r['peer']} | {r['slices_per_s']:.0f} | {fmt((r['p50_us'] or 0)/1000)} | "
                     f"{fmt((r['p99_us'] or 0)/1000)} | {fmt(r['max_us']/1000)} | {r['dropped']} | "
                     f"{r['ended_early'] or '—'} | {fmt(w * 1e6 if w else None)} |")
    rs = res.get("resume", {})
    if rs:
        L.append("\n### Time to first slice (ms): fresh session vs resume (100 each)\n")
        L.append("| peer | what | median | p99 | max |")
        L.append("|---|---|---|---|---|")
        for r in rs.get("fresh", []):
            f = r["fresh"]
            L.append(f"| {r['peer']} | fresh: connect, hello, first slice | {fmt(f.get('median_ms'))} | "
                     f"{fmt(f.get('p99_ms'))} | {fmt(f.get('max_ms'))} |")
        r = rs.get("seatkeeper_resume", {})
        L.append(f"| seatkeeper | resume after RST: connect, hello+token, first slice "
                 f"({r.get('resumed')}/{r.get('n')} resumed, {r.get('keyframe_first')} keyframe first) | "
                 f"{fmt(r.get('median_ms'))} | {fmt(r.get('p99_ms'))} | {fmt(r.get('max_ms'))} |")
        rr = r.get("ready", {})
        L.append(f"| seatkeeper | resume after RST: connect, hello+token, `ready` (resumed) | "
                 f"{fmt(rr.get('median_ms'))} | {fmt(rr.get('p99_ms'))} | {fmt(rr.get('max_ms'))} |")
    (out / "summary.md").write_text("\n".join(L) + "\n")


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results")
    res = json.loads((out / "results.json").read_text())
    release_plot(res, out)
    throughput_plot(res, out)
    latency_plot(res, out)
    summary(res, out)
    print((out / "summary.md").read_text())


if __name__ == "__main__":
    main()
