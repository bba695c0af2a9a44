"""SVG plots of the scale curve (bench/curve.sh output), seatkeeper against
the plain tokio-tungstenite peer (and floor-peer, where a run has it): CPU
per delivered slice, RSS per session, delivered fraction and lateness, each
against sessions (log scale).

    python3 bench/plot_curve.py [bench/results/curve.json [out.svg]]

Standard library only: the SVG is written by hand, so nothing is installed.
Where a file holds several runs of one (server, sessions), the last wins.
"""

import json
import math
import sys
from html import escape

SRC = sys.argv[1] if len(sys.argv) > 1 else "bench/results/curve.json"
OUT = sys.argv[2] if len(sys.argv) > 2 else SRC.rsplit(".", 1)[0] + ".svg"

COLORS = {"seatkeeper": "#1f77b4", "tt-peer": "#d62728", "floor-peer": "#2ca02c"}
LABELS = {
    "seatkeeper": "seatkeeper",
    "tt-peer": "plain tokio-tungstenite",
    "floor-peer": "the floor (floor-peer)",
}

rows = {}
for line in open(SRC):
    line = line.strip()
    if line.startswith("{"):
        r = json.loads(line)
        rows[(r["server"], r["sessions"])] = r
servers = [s for s in COLORS if any(k[0] == s for k in rows)]
sizes = sorted({k[1] for k in rows})

# (title, [(field, dash)], y log scale, y goal line)
PANELS = [
    ("server CPU per delivered slice (µs)", [("cpu_us_per_slice", "")], False, None),
    ("RSS per session (KiB)", [("rss_per_session_kib", "")], False, (16, "goal 16 KiB")),
    ("delivered fraction", [("delivered", "")], False, (0.99, "goal 0.99")),
    ("lateness (ms): p50 dashed, p99 solid",
     [("p50_late_ms", "5,4"), ("p99_late_ms", "")], True, (50, "goal p99 50 ms")),
]
W, H = 430, 290  # one panel
ML, MR, MT, MB = 62, 16, 34, 44


def nice_max(v):
    if v <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * e:
            return m * e
    return 10 * e


def panel(ox, oy, title, fields, ylog, goal):
    out = [f'<g transform="translate({ox},{oy})">']
    pw, ph = W - ML - MR, H - MT - MB
    xs = [math.log10(n) for n in sizes]
    x0, x1 = min(xs) - 0.1, max(xs) + 0.1
    vals = [rows[(s, n)].get(f) for s in servers for n in sizes for f, _ in fields
            if (s, n) in rows]
    vals = [v for v in vals if v is not None]
    if goal:
        vals.append(goal[0])
    if ylog:
        lo = 0.01
        y0, y1 = math.log10(lo), math.log10(nice_max(max(vals + [1])))
        fy = lambda v: ph - (math.log10(max(v, lo)) - y0) / (y1 - y0) * ph  # noqa: E731
        ticks = [10 ** e for e in range(int(y0), int(y1) + 1)]
    else:
        # A fraction tops out at 1.
        top = 1.0 if max(vals) <= 1 else nice_max(max(vals) * 1.05)
        fy = lambda v: ph - v / top * ph  # noqa: E731
        ticks = [top * i / 5 for i in range(6)]
    fx = lambda n: (math.log10(n) - x0) / (x1 - x0) * pw  # noqa: E731
    out.append(f'<text x="{W / 2}" y="20" text-anchor="middle" font-weight="bold">{escape(title)}</text>')
    out.append(f'<g transform="translate({ML},{MT})">')
    out.append(f'<rect width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
    for t in ticks:
        y = fy(t)
        lab = f"{t:g}" if not ylog or t > lo else f"≤{lo:g}"
        out.append(f'<line x1="0" x2="{pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="-6" y="{y + 4:.1f}" text-anchor="end" font-size="11">{lab}</text>')
    for n in sizes:
        x = fx(n)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{ph}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{ph + 16}" text-anchor="middle" font-size="11">{n:,}</text>')
    out.append(f'<text x="{pw / 2}" y="{ph + 34}" text-anchor="middle" font-size="11">sessions (10 slices/s × 1 KiB each)</text>')
    if goal:
        y = fy(goal[0])
        out.append(f'<line x1="0" x2="{pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#2ca02c" stroke-dasharray="2,3"/>')
        out.append(f'<text x="{pw - 4}" y="{y - 4:.1f}" text-anchor="end" font-size="10" fill="#2ca02c">{escape(goal[1])}</text>')
    for s in servers:
        for f, dash in fields:
            pts = [(fx(n), fy(rows[(s, n)][f])) for n in sizes
                   if (s, n) in rows and rows[(s, n)].get(f) is not None]
            d = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            da = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(f'<polyline points="{d}" fill="none" stroke="{COLORS[s]}" stroke-width="2"{da}/>')
            for x, y in pts:
                out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{COLORS[s]}"/>')
    out.append("</g></g>")
    return out


svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{2 * H + 30}" '
       'font-family="sans-serif" font-size="12">',
       f'<rect width="{2 * W}" height="{2 * H + 30}" fill="white"/>']
for i, (title, fields, ylog, goal) in enumerate(PANELS):
    svg += panel((i % 2) * W, (i // 2) * H, title, fields, ylog, goal)
lx = 20
for s in servers:
    y = 2 * H + 16
    svg.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{y - 4}" y2="{y - 4}" stroke="{COLORS[s]}" stroke-width="3"/>')
    svg.append(f'<text x="{lx + 30}" y="{y}">{escape(LABELS[s])}</text>')
    lx += 230
svg.append(f'<text x="{2 * W - 10}" y="{2 * H + 16}" text-anchor="end" font-size="10" fill="#666">{escape(SRC)}</text>')
svg.append("</svg>")
open(OUT, "w").write("\n".join(svg) + "\n")
print("wrote", OUT)
