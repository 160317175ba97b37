"""The bench's chart as plain SVG (no plotting library): throughput and p99 latency
against the number of callers, intercom beside the Flask baselines, one column per
connection mode. Drawn by bench/report.py from the bench's own results.jsonl.

Both value axes are logarithmic (intercom and Flask differ by one to two orders of
magnitude); the callers axis is categorical (1, 16, 64, 256 are the loads that ran).
"""

import math
from html import escape

COLORS = {"ours": "#1f6fd1", "ours-musl": "#17a2b8", "flask": "#8a8a8a", "gunicorn": "#e8750c"}
OTHER_COLORS = ["#6a3d9a", "#33a02c", "#b15928"]
MODES = [("keepalive", "keep-alive connections"), ("close", "new connection per request")]
METRICS = [("rps", "answered req/s (log scale)"), ("p99_ms", "p99 latency, ms (log scale)")]

# Layout, in SVG user units (pixels at 100 %).
PANEL_W, PANEL_H = 360, 220
LEFT, TOP, GAP_X, GAP_Y = 70, 92, 80, 70
WIDTH = LEFT + 2 * PANEL_W + GAP_X + 30
HEIGHT = TOP + 2 * PANEL_H + GAP_Y + 70


def _tick_label(v):
    if v >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


def _panel(out, x0, y0, rows, servers, colors, metric, axis_label, title, callers):
    out.append(f'<text x="{x0 + PANEL_W / 2}" y="{y0 - 10}" text-anchor="middle" class="t">{escape(title)}</text>')
    vals = [r[metric] for r in rows if r[metric] > 0]
    if not vals or not callers:
        out.append(f'<text x="{x0 + PANEL_W / 2}" y="{y0 + PANEL_H / 2}" text-anchor="middle">no data</text>')
        return
    lo, hi = math.floor(math.log10(min(vals))), math.ceil(math.log10(max(vals)))
    if hi == lo:
        hi += 1

    def y(v):
        return y0 + PANEL_H - (math.log10(v) - lo) / (hi - lo) * PANEL_H

    def x(c):
        return x0 + (callers.index(c) + 0.5) * PANEL_W / len(callers)

    out.append(f'<rect x="{x0}" y="{y0}" width="{PANEL_W}" height="{PANEL_H}" class="frame"/>')
    # Decades, and 2 and 5 between them when the axis spans few decades.
    steps = (1, 2, 5) if hi - lo <= 2 else (1,)
    for e in range(lo, hi + 1):
        for m in steps:
            v = m * 10**e
            if e == hi and m > 1:
                break
            cls = "grid" if m == 1 else "minor"
            out.append(f'<line x1="{x0}" x2="{x0 + PANEL_W}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="{cls}"/>')
            out.append(f'<text x="{x0 - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{_tick_label(v)}</text>')
    for c in callers:
        out.append(f'<text x="{x(c):.1f}" y="{y0 + PANEL_H + 16}" text-anchor="middle">{c}</text>')
    out.append(f'<text x="{x0 + PANEL_W / 2}" y="{y0 + PANEL_H + 34}" text-anchor="middle" class="a">callers</text>')
    out.append(
        f'<text transform="translate({x0 - 48},{y0 + PANEL_H / 2}) rotate(-90)" text-anchor="middle" '
        f'class="a">{escape(axis_label)}</text>'
    )
    for s in servers:
        pts = sorted((callers.index(r["concurrency"]), r) for r in rows if r["label"] == s and r[metric] > 0)
        if not pts:
            continue
        xy = [(x(r["concurrency"]), y(r[metric])) for _, r in pts]
        path = " ".join(f"{a:.1f},{b:.1f}" for a, b in xy)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colors[s]}" stroke-width="2.2"/>')
        for (a, b), (_, r) in zip(xy, pts):
            out.append(
                f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3.5" fill="{colors[s]}">'
                f"<title>{escape(s)} {r['mode']} {r['concurrency']} callers: {r[metric]:g}</title></circle>"
            )


def svg_chart(loads, servers, names, meta):
    """loads: the closed-loop rows of results.jsonl; servers: labels in legend order."""
    colors = {}
    for i, s in enumerate(servers):
        colors[s] = COLORS.get(s, OTHER_COLORS[i % len(OTHER_COLORS)])
    callers = sorted({r["concurrency"] for r in loads})
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        "<style>.t{font-weight:bold;font-size:13px}.a{fill:#444}.frame{fill:none;stroke:#999}"
        ".grid{stroke:#ccc}.minor{stroke:#eee}.h{font-size:15px;font-weight:bold}</style>",
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{LEFT}" y="24" class="h">intercom vs Flask: POST /voice (signed webhook, durable history), closed loop</text>',
    ]
    # Legend.
    lx = LEFT
    for s in servers:
        label = names.get(s, s)
        out.append(f'<line x1="{lx}" x2="{lx + 22}" y1="48" y2="48" stroke="{colors[s]}" stroke-width="3"/>')
        out.append(f'<text x="{lx + 28}" y="52">{escape(label)}</text>')
        lx += 40 + 6.6 * len(label)
    for row, (metric, axis_label) in enumerate(METRICS):
        for col, (mode, title) in enumerate(MODES):
            rows = [r for r in loads if r["mode"] == mode]
            x0 = LEFT + col * (PANEL_W + GAP_X)
            y0 = TOP + row * (PANEL_H + GAP_Y)
            what = "throughput" if metric == "rps" else "p99 latency"
            _panel(out, x0, y0, rows, servers, colors, metric, axis_label, f"{what}, {title}", callers)
    quick = " — QUICK mode (short loads)" if meta.get("quick") == "1" else ""
    note = (
        f"make bench, {meta.get('date', '?')}: {meta.get('machine', '?')}, {meta.get('cpus', '?')} CPUs, "
        f"state_dir on {meta.get('state_fs', '?')}; {meta.get('duration', '?')} s per load{quick}"
    )
    out.append(f'<text x="{LEFT}" y="{HEIGHT - 14}" class="a">{escape(note)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
