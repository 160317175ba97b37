"""Turns bench/run.sh's results.jsonl into the Markdown tables of BENCHMARKS.md, and
draws the chart (throughput and p99 against callers) as plain SVG.

    python3 bench/report.py results.jsonl [--chart chart.svg]

Budgets (issues 6 and 12) are reported as met or missed, never asserted: timings on a
shared machine are noisy, and CI runs the quick mode only to check the bench still works.
"""

import json
import statistics
import sys

from chart import svg_chart

MIB = 1024 * 1024

args = sys.argv[1:]
chart_path = None
if "--chart" in args:
    i = args.index("--chart")
    chart_path = args[i + 1]
    del args[i : i + 2]
rows = [json.loads(line) for line in open(args[0]) if line.strip()]
runs = [r for r in rows if "rps" in r]
loads = [r for r in runs if not r.get("rate")]  # closed loop: capacity
# Open loop: latency at a fixed offered rate; the webhook, and GET /healthz as its floor.
paced = [r for r in runs if r.get("rate") and r.get("method", "POST") == "POST"]
healthz = [r for r in runs if r.get("rate") and r.get("method") == "GET"]
syncs = [r for r in rows if "fsync_label" in r]
sync_notes = [r["fsync_note"] for r in rows if "fsync_note" in r]
starts = [r for r in rows if "startup_ms" in r]
mems = {r["label"]: r for r in rows if "rss_idle_kib" in r}
sizes = [r for r in rows if "size" in r]
meta = next((r for r in rows if "machine" in r), {})
servers = list(dict.fromkeys(r["label"] for r in loads))
baselines = [s for s in servers if not s.startswith("ours")]
NAMES = {
    "ours": "intercom",
    "ours-musl": "intercom, static musl build",
    "flask": "Flask (flask run)",
    "gunicorn": f"Flask + gunicorn ({meta.get('gunicorn_workers', '?')} sync workers)",
}
# Issue 12's budget names the baseline `gunicorn -w4`.
GUNICORN_W4 = meta.get("gunicorn_workers") == "4"


def load(label, mode, c):
    return next((r for r in loads if r["label"] == label and r["mode"] == mode and r["concurrency"] == c), None)


def peak_256(label):
    return max((r["rss_peak_kib"] for r in runs if r["label"] == label and r["concurrency"] == 256), default=0)


def cpu_cell(r):
    fmt = lambda v: "n/a" if v is None else f"{v:.0f}"
    return f"{fmt(r.get('server_cpu_us_per_req'))} / {fmt(r.get('client_cpu_us_per_req'))}"


def voice_at(label, mode, rate):
    return next((r for r in paced if r["label"] == label and r["mode"] == mode and r["rate"] == rate), None)


def per_request(r):
    return f"{(r['fdatasync'] + r['fsync']) / r['requests']:.3f}" if r["requests"] else "n/a"


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


def ratio(a, b):
    if not (a and b):
        return "n/a"
    x = a / b
    return f"{x:.1f}×" if x >= 0.95 else f"{x:.2g}×"


out = []
p = out.append

quick = meta.get("quick") == "1"
p(f"## Results{' (QUICK mode: short loads, for checking the bench works)' if quick else ''}\n")
p(f"- machine: {meta.get('machine')}, {meta.get('cpus')} CPUs, {meta.get('kernel')}; {meta.get('rustc')}; {meta.get('python')}")
p(f"- load average (1/5/15 min) before: {meta.get('load_before')}, after: {meta.get('load_after')}")
fs = meta.get("state_fs") or "?"
ram = fs.split(" ")[0] in ("tmpfs", "ramfs")
p(
    f"- state directories (intercom's history, flushed with fdatasync before each answer): "
    f"`{meta.get('state_dir', '?')}` on **{fs}**"
    + (" — **a RAM filesystem: the flushes cost nothing here, unlike on a Pi**" if ram else " (the real disk)")
)
for probe in (r for r in rows if "disk_probe" in r):
    p(
        f"- one `fdatasync` after a 200-byte append there, {probe['syncs']} in a row {probe['disk_probe']} the loads: "
        f"p50 {probe['p50_ms']:.2f} ms, p90 {probe['p90_ms']:.2f} ms, p99 {probe['p99_ms']:.2f} ms, mean "
        f"{probe['mean_ms']:.2f} ms (one flush per call in single file caps the webhook near "
        f"{1000 / max(probe['mean_ms'], 1e-3):,.0f} calls/s)"
    )
p(
    f"- each load: {meta.get('duration')} s measured after {meta.get('warmup')} s warm-up; signed POST /voice "
    f"(17 Twilio parameters, signature checked), the forwarded case (`<Dial>`), every answer checked; "
    f"intercom log_level {meta.get('log_level')}"
)
p(
    f"- {meta.get('date')}; bench {meta.get('bench_s')} s in all (build {meta.get('build_s')} s, "
    f"venv + pip {meta.get('venv_s')} s)\n"
)

for r in (r for r in rows if "baseline_note" in r):
    p(f"**Baselines not run:** {r['baseline_note']}.\n")
p("### Webhook throughput and latency\n")
p("`close`: a new TCP connection per request (as Twilio does; latency includes connect). "
  "`keepalive`: one connection per client, reused. CPU µs/req: user+system time per answered request of the "
  "server (all its processes) and of the load generator, which shares the same cores.\n")
p("| server | mode | conc. | req/s | p50 ms | p99 ms | max ms | errors | CPU µs/req server / client |")
p("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for s in servers:
    for r in (r for r in loads if r["label"] == s):
        errs = str(r["errors"]) + (f" {r['error_kinds']}" if r["errors"] else "")
        cpu = cpu_cell(r)
        p(
            f"| {NAMES.get(s, s)} | {r['mode']} | {r['concurrency']} | {r['rps']:.0f} | {r['p50_ms']:.3f} | "
            f"{r['p99_ms']:.3f} | {r['max_ms']:.1f} | {errs} | {cpu} |"
        )

if paced:
    p("\n### Latency at a fixed offered load (open loop)\n")
    p("The clients together send the offered rate on a fixed schedule; latency counts from when each "
      "request was due, so a server that falls behind is charged for the queueing.\n")
    p("| server | mode | clients | offered req/s | answered req/s | p50 ms | p99 ms | max ms | errors | CPU µs/req server / client |")
    p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in servers:
        for r in (r for r in paced if r["label"] == s):
            errs = str(r["errors"]) + (f" {r['error_kinds']}" if r["errors"] else "")
            cpu = cpu_cell(r)
            p(
                f"| {NAMES.get(s, s)} | {r['mode']} | {r['concurrency']} | {r['rate']:.0f} | {r['rps']:.0f} | "
                f"{r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['max_ms']:.1f} | {errs} | "
                f"{cpu} |"
            )

if healthz:
    p("\n### The floor: GET /healthz under the same open-loop load\n")
    p("Sent right after the webhook load of the same rate and mode, from the same number of clients: "
      "no signature, no history, so the difference is what a call costs on top of HTTP.\n")
    p("| server | mode | clients | offered req/s | answered req/s | p50 ms | p99 ms | max ms | errors | webhook p99 / healthz p99 |")
    p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in healthz:
        v = voice_at(r["label"], r["mode"], r["rate"])
        p(
            f"| {NAMES.get(r['label'], r['label'])} | {r['mode']} | {r['concurrency']} | {r['rate']:.0f} | "
            f"{r['rps']:.0f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['max_ms']:.1f} | {r['errors']} | "
            f"{ratio(v['p99_ms'], r['p99_ms']) if v else 'n/a'} |"
        )

if syncs or sync_notes:
    p("\n### fdatasync + fsync per answered request (intercom, keep-alive)\n")
    p("Counted by `strace -f -c -e trace=fdatasync,fsync` attached to the server during a separate "
      "keep-alive load per row (strace slows every syscall, so these loads are counted, not timed). "
      "Includes the directory fsync when the history file rotates.\n")
    if syncs:
        p("| callers | answered requests | fdatasync | fsync | per request |")
        p("|---:|---:|---:|---:|---:|")
        for r in syncs:
            p(
                f"| {r['concurrency']} | {r['requests']} | {r['fdatasync']} | {r['fsync']} | "
                f"{per_request(r)} |"
            )
    for n in sync_notes:
        p(f"\n**Not counted:** {n}")

p("\n### Memory (RSS from /proc, summed over the server's processes)\n")
p("| server | processes | idle after start | peak during the 256-client loads | after the loads |")
p("|---|---:|---:|---:|---:|")
for s in servers:
    m = mems.get(s, {})
    p(
        f"| {NAMES.get(s, s)} | {m.get('processes', '?')} | {mib(m.get('rss_idle_kib', 0))} | "
        f"{mib(peak_256(s))} | {mib(m.get('rss_after_kib', 0))} |"
    )

p("\n### Start to first answer (spawn → `GET /healthz` answered 200)\n")
p("| server | runs | median ms | min ms | max ms |")
p("|---|---:|---:|---:|---:|")
for s in dict.fromkeys(r["label"] for r in starts):
    t = [r["startup_ms"] for r in starts if r["label"] == s]
    p(f"| {NAMES.get(s, s)} | {len(t)} | {statistics.median(t):.1f} | {min(t):.1f} | {max(t):.1f} |")

p("\n### Binary size (stripped)\n")
p("| target | bytes | MiB | |")
p("|---|---:|---:|---|")
for z in sizes:
    b = z["bytes"]
    p(f"| {z['size']} | {b if b is not None else '—'} | {f'{b / MIB:.2f}' if b else '—'} | {z['file']} |")

if baselines:
    p("\n### Ratios (intercom / baseline)\n")
    p("| baseline | mode | conc. | throughput | p99 latency |")
    p("|---|---|---:|---:|---:|")
    for b in baselines:
        for r in (r for r in loads if r["label"] == "ours"):
            o = load(b, r["mode"], r["concurrency"])
            if o:
                p(
                    f"| {NAMES.get(b, b)} | {r['mode']} | {r['concurrency']} | {ratio(r['rps'], o['rps'])} | "
                    f"{ratio(r['p99_ms'], o['p99_ms'])} |"
                )
    p("")
    if paced:
        p("")
        p("| baseline | mode | offered req/s (64 clients) | answered req/s | p99 latency |")
        p("|---|---|---:|---:|---:|")
    for b in baselines:
        for r in (r for r in paced if r["label"] == "ours"):
            o = next((x for x in paced if x["label"] == b and x["mode"] == r["mode"] and x["rate"] == r["rate"]), None)
            if o:
                p(
                    f"| {NAMES.get(b, b)} | {r['mode']} | {r['rate']:.0f} | "
                    f"{ratio(r['rps'], o['rps'])} | {ratio(r['p99_ms'], o['p99_ms'])} |"
                )
    p("")
    p("| baseline | RSS idle | RSS peak at 256 |")
    p("|---|---:|---:|")
    for b in baselines:
        p(
            f"| {NAMES.get(b, b)} | {ratio(mems.get('ours', {}).get('rss_idle_kib'), mems.get(b, {}).get('rss_idle_kib'))} | "
            f"{ratio(peak_256('ours'), peak_256(b))} |"
        )

def budget(what, figure, ok):
    p(f"| {what} | {figure} | {'met' if ok else ('**missed**' if ok is not None else 'not measured')} |")


p("\n### Budgets (reported, not asserted)\n")
p("| budget | figure | |")
p("|---|---|---|")
gw = f"gunicorn -w{meta.get('gunicorn_workers', '?')}"
o, g = load("ours", "keepalive", 64), load("gunicorn", "keepalive", 64)
budget(
    f"≥ 10× Flask + {gw} throughput, 64 keep-alive callers, durable history"
    + ("" if GUNICORN_W4 else " (**not -w4**: GUNICORN_WORKERS was changed)"),
    f"{o['rps'] / g['rps']:.1f}× ({o['rps']:.0f} vs {g['rps']:.0f} req/s)" if o and g and g["rps"] else "—",
    (o["rps"] >= 10 * g["rps"]) if o and g and g["rps"] else None,
)
for mode in ("keepalive", "close"):
    v = voice_at("ours", mode, 2000.0)
    h = next((r for r in healthz if r["label"] == "ours" and r["mode"] == mode and r["rate"] == 2000.0), None)
    budget(
        f"p99 of a call ≤ 1.5× p99 of /healthz at 2000 req/s from 64 callers ({mode})",
        f"{v['p99_ms']:.3f} ms vs {h['p99_ms']:.3f} ms = {v['p99_ms'] / h['p99_ms']:.2f}×"
        if v and h and h["p99_ms"]
        else "—",
        (v["p99_ms"] <= 1.5 * h["p99_ms"]) if v and h and h["p99_ms"] else None,
    )
for s_, libc in (("ours", "glibc"), ("ours-musl", "musl")):
    m = mems.get(s_)
    pk = peak_256(s_)
    budget(
        f"RSS with 256 callers ≤ 16 MiB ({libc}; judged on the peak during the 256-caller loads)",
        f"peak {mib(pk)}, after the loads {mib(m['rss_after_kib'])}"
        if m and pk
        else ("no 256-caller load" if m else "not run (no build)"),
        (pk <= 16384) if m and pk else None,
    )
host = next((z for z in sizes if z["size"].startswith("host x86_64") and z["bytes"]), None)
budget(
    "stripped x86_64 host binary ≤ 2 MiB",
    f"{host['bytes'] / MIB:.2f} MiB ({host['bytes']} bytes)" if host else "—",
    (host["bytes"] <= 2 * MIB) if host else None,
)
arm = [z for z in sizes if z["size"].startswith("aarch64") and z["bytes"] and "static" in z["file"]]
z = min(arm, key=lambda z: z["bytes"]) if arm else None
budget(
    "static aarch64 binary ≤ 1.6 MiB, TLS included",
    f"{z['bytes'] / MIB:.2f} MiB ({z['bytes']} bytes, {z['size']})" if z else "not built (make cross TARGET=aarch64)",
    (z["bytes"] <= 1.6 * MIB) if z else None,
)
s64 = next((r for r in syncs if r["concurrency"] == 64), None)
budget(
    "fdatasync + fsync per request at 64 callers well under 1 (read as ≤ 0.5)",
    per_request(s64) if s64 else ("; ".join(sync_notes) or "not counted"),
    ((s64["fdatasync"] + s64["fsync"]) <= 0.5 * s64["requests"]) if s64 and s64["requests"] else None,
)

p("\n### Earlier budgets (reported, not asserted)\n")
p("| budget | figure | |")
p("|---|---|---|")
ours = mems.get("ours", {})
for s in (s for s in servers if s.startswith("ours")):
    m = mems.get(s, {})
    budget(f"idle RSS ≤ 4 MiB ({NAMES[s]})", mib(m.get("rss_idle_kib", 0)), m.get("rss_idle_kib", 1e9) <= 4096)
for r in (r for r in paced if r["label"] == "ours" and r["concurrency"] == 64):
    budget(
        f"p99 ≤ 2 ms at 64 concurrent ({r['mode']}, {r['rate']:.0f} req/s offered)",
        f"{r['p99_ms']:.3f} ms",
        r["p99_ms"] <= 2.0,
    )
for b in baselines:
    pairs = [(r, load(b, r["mode"], r["concurrency"])) for r in loads if r["label"] == "ours"]
    pairs = [(r, o) for r, o in pairs if o and o["rps"]]
    if pairs:
        r, o = min(pairs, key=lambda x: x[0]["rps"] / x[1]["rps"])
        worst = r["rps"] / o["rps"]
        budget(
            f"≥ 10× the throughput of {NAMES.get(b, b)}",
            f"{worst:.1f}× at worst ({r['mode']}, {r['concurrency']} clients)",
            worst >= 10,
        )
    ib, pb = mems.get(b, {}).get("rss_idle_kib"), peak_256(b)
    if ib and pb:
        ri, rp = ours.get("rss_idle_kib", 0) / ib, peak_256("ours") / pb
        budget(f"≤ 1/10 of the RSS of {NAMES.get(b, b)}", f"idle {ri:.2f}, at 256 {rp:.2f}", max(ri, rp) <= 0.1)

if chart_path:
    with open(chart_path, "w") as f:
        f.write(svg_chart(loads, servers, NAMES, meta))

errors = sum(r["errors"] for r in runs if r["label"].startswith("ours"))
if errors:
    p(f"\n**intercom answered {errors} requests with errors** (see the table).")
print("\n".join(out))
# The bench itself failed if intercom dropped or refused requests: say so in the exit status.
sys.exit(1 if errors else 0)
