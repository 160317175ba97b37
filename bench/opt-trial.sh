#!/usr/bin/env bash
# The opt-level trial recorded in BENCHMARKS.md: builds the release binary with each
# opt-level (profile otherwise as in Cargo.toml: LTO, one codegen unit, strip, unwind),
# then measures each ROUNDS times, interleaved so machine load hits all alike.
#
#   bench/opt-trial.sh                  LEVELS="s z 3" ROUNDS=3
#
# Each measurement is a short bench/run.sh on intercom alone: 64 clients closed loop
# (close and keep-alive) and 64 clients at 2000 req/s. Prints size, req/s, p99 and
# server CPU per request (medians over the rounds). About 2 minutes per level to build,
# plus about 40 s per level and round.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
: "${LEVELS:=s z 3}" "${ROUNDS:=3}"
out=$root/target/bench/opt-trial
mkdir -p "$out"

for o in $LEVELS; do
  echo "== building opt-level=$o (target/opt-$o)" >&2
  CARGO_PROFILE_RELEASE_OPT_LEVEL=$o CARGO_TARGET_DIR=$root/target/opt-$o \
    cargo build --release --locked --bin intercom >&2
done
for r in $(seq "$ROUNDS"); do
  for o in $LEVELS; do
    echo "== round $r, opt-level=$o" >&2
    BENCH_BIN=$root/target/opt-$o/release/intercom BENCH_MUSL_BIN=/nonexistent BASELINES="" CONCURRENCY=64 RATES=2000 STARTUPS=3 \
      DURATION=${DURATION:-4} WARMUP=1 BENCH_OUT=$out/$o-$r bench/run.sh > /dev/null
  done
done

python3 - "$out" $LEVELS <<'EOF'
import json, os, statistics, sys
out, levels = sys.argv[1], sys.argv[2:]
print("| opt-level | stripped host bytes | mode | req/s | p99 ms | server CPU µs/req | start ms |")
print("|---|---:|---|---:|---:|---:|---:|")
for o in levels:
    runs = []
    for d in sorted(x for x in os.listdir(out) if x.startswith(o + "-")):
        runs += [json.loads(l) for l in open(os.path.join(out, d, "results.jsonl"))]
    size = next(r["bytes"] for r in runs if r.get("size", "").startswith("host"))
    start = statistics.median(r["startup_ms"] for r in runs if "startup_ms" in r)
    for mode, rate in (("close", 0), ("keepalive", 0), ("close", 2000), ("keepalive", 2000)):
        rs = [r for r in runs if r.get("mode") == mode and r.get("rate", 0) == rate]
        med = lambda k: statistics.median(r[k] for r in rs)
        label = f"{mode}, {'2000 req/s' if rate else 'closed loop'}"
        print(f"| {o} | {size} | {label} | {med('rps'):.0f} | {med('p99_ms'):.3f} | "
              f"{med('server_cpu_us_per_req'):.0f} | {start:.1f} |")
EOF
