#!/usr/bin/env bash
# `make bench`: speed, memory, start time and size of intercom, side by side with a Flask
# baseline under the same load. Loopback only; every wait and every load is bounded.
#
#   bench/run.sh                 full run (about 4-6 minutes on 2 cores, plus the build)
#   QUICK=1 bench/run.sh         quick run for CI (short loads, fewer concurrencies)
#
# The servers' state directories (intercom's durable history, state_dir/events.jsonl, which
# is flushed with fdatasync before each call is answered) live under BENCH_OUT, on the
# real filesystem as on a Pi: not in /tmp, which is tmpfs on many machines and would make
# every flush free. The report names the filesystem.
#
# Two kinds of load, both with signed webhooks:
#   - closed loop (capacity): CONCURRENCY clients, each sends as soon as it has its answer;
#   - open loop (latency at a given load): RATE_CLIENTS clients send RATES requests/s in
#     all on a fixed schedule, latency counted from when each request was due; on intercom
#     also GET /healthz at HEALTHZ_RATES the same way, the floor a call is compared with.
# Then, on intercom, the fdatasync/fsync calls per answered request at FSYNC_CONCURRENCY
# keep-alive callers, counted by strace attached to the server during separate loads
# (strace slows every syscall, so those loads are not timed). Without strace (or when it
# cannot attach) the report says so and the bench goes on.
#
# Knobs (environment): QUICK, CONCURRENCY ("1 16 64 256"), RATES ("500 2000"),
# RATE_CLIENTS (64), HEALTHZ_RATES ("2000"), FSYNC_CONCURRENCY ("1 64 256"), FSYNC_DURATION
# (s per counted load), STRACE (the strace to use), GUNICORN_WORKERS (4, as the budget's baseline), DURATION (s per load),
# WARMUP (s, not measured), MODES ("close keepalive"), BASELINES ("flask gunicorn", or ""
# to skip the baseline), BENCH_BIN (an intercom binary to measure instead of building
# one), LOG_LEVEL (intercom's, default warn), BENCH_OUT (results dir, default
# target/bench; the servers' state directories go there too), BENCH_CHART (where the
# full run also writes the chart; default bench/chart.svg, none in quick mode), BENCH_MUSL_BIN (a static musl intercom, measured too when it exists; default: the one
# bench/build-musl-host.sh builds).
#
# Needs: cargo, python3 with venv (python3-venv on Debian), curl; PyPI for the baseline.
# Writes $BENCH_OUT/results.jsonl (one JSON object per measurement), $BENCH_OUT/report.md (the
# tables, also printed) and $BENCH_OUT/chart.svg (throughput and p99 against callers). Timings are reported, never asserted: the exit status says only
# whether the bench itself worked (servers started, answers were right, no load errors
# on intercom).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

QUICK=${QUICK:-}
if [ -n "$QUICK" ] && [ "$QUICK" != 0 ]; then
  quick=1
  : "${CONCURRENCY:=64 256}" "${DURATION:=1}" "${WARMUP:=0.2}" "${STARTUPS:=1}" "${RATES=2000}"
  : "${FSYNC_DURATION:=1}" "${BENCH_CHART=}" "${PROBE_SYNCS:=100}"
  pause=0.2
else
  quick=0
  : "${CONCURRENCY:=1 16 64 256}" "${DURATION:=5}" "${WARMUP:=1}" "${STARTUPS:=5}" "${RATES=500 2000}"
  : "${FSYNC_DURATION:=3}" "${BENCH_CHART=$root/bench/chart.svg}" "${PROBE_SYNCS:=300}"
  pause=1
fi
: "${STRACE:=strace}" "${MODES:=close keepalive}" "${RATE_CLIENTS:=64}" "${HEALTHZ_RATES=2000}" "${FSYNC_CONCURRENCY=1 64 256}"
BASELINES=${BASELINES-flask gunicorn}
: "${LOG_LEVEL:=warn}"
: "${BENCH_OUT:=$root/target/bench}"

AUTH_TOKEN=bench-auth-token-0123456789abcdef
CONTROL_TOKEN=bench-token-0123456789abcdef
PUBLIC_URL=http://bench.example
INTERCOM=+15558889999
RESIDENT=+15552223333
STRANGER=+15550001111
# A server that is not answering /healthz by then has failed to start.
START_TIMEOUT=20
# Issue 12's budget is against `gunicorn -w4`: what a Pi 4's four cores suggest, and close
# to gunicorn's rule of thumb for sync workers (2 x cores + 1 = 5 on this 2-core machine).
: "${GUNICORN_WORKERS:=4}"

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

command -v curl >/dev/null || die "curl is needed (apt-get install -y curl)"
command -v python3 >/dev/null || die "python3 is needed"
bench_start=$(date +%s)

mkdir -p "$BENCH_OUT"
# On the real filesystem, not /tmp: the history's fdatasync must cost what it costs.
tmp=$(mktemp -d "$BENCH_OUT/run.XXXXXX")
state_fs=$(findmnt -n -o FSTYPE,SOURCE -T "$tmp" 2>/dev/null | tr -s ' ' || true)
[ -n "$state_fs" ] || state_fs=$(stat -f -c %T "$tmp")
case $state_fs in
  tmpfs* | ramfs*) log "WARNING: $tmp is on $state_fs: the history's fdatasync costs nothing there, unlike on a Pi" ;;
esac
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

results=$BENCH_OUT/results.jsonl
: > "$results"
meta() { printf '%s\n' "$1" >> "$results"; }  # one JSON object per line

# ---- build ---------------------------------------------------------------------------
t=$(date +%s)
if [ -n "${BENCH_BIN:-}" ]; then
  BIN=$(realpath "$BENCH_BIN")
  log "measuring $BIN (BENCH_BIN given: not building it)"
  cargo build --release --locked --example loadgen >&2
else
  log "cargo build --release (intercom + examples/loadgen)"
  cargo build --release --locked --bin intercom --example loadgen >&2
  BIN=$root/target/release/intercom
fi
LOADGEN=$root/target/release/examples/loadgen
build_s=$(( $(date +%s) - t ))

# ---- the baseline's throwaway virtualenv -----------------------------------------------
venv_s=0
if [ -n "$BASELINES" ]; then
  t=$(date +%s)
  log "python venv + pip install (bench/baseline/requirements.txt) in $tmp/venv"
  # Without the baseline the bench still measures intercom, and the report says why
  # the side-by-side is missing.
  if ! python3 -m venv "$tmp/venv" >&2; then
    baseline_note="python3 -m venv failed (Debian: apt-get install -y python3-venv)"
  elif ! timeout 300 "$tmp/venv/bin/pip" install -q --disable-pip-version-check \
    -r bench/baseline/requirements.txt >&2; then
    baseline_note="pip install of bench/baseline/requirements.txt failed (no PyPI?)"
  fi
  if [ -n "${baseline_note:-}" ]; then
    log "WARNING: $baseline_note: measuring intercom without the baselines ($BASELINES)"
    meta "{\"baseline_note\":\"$baseline_note; not measured: $BASELINES\"}"
    BASELINES=
  fi
  venv_s=$(( $(date +%s) - t ))
fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# VmRSS (KiB) of a process plus its direct children (gunicorn's workers).
rss_tree() {
  local pid=$1 total=0 c v
  for c in $pid $(ps -o pid= --ppid "$pid" 2>/dev/null); do
    v=$(awk '/^VmRSS:/ {print $2}' "/proc/$c/status" 2>/dev/null || true)
    total=$(( total + ${v:-0} ))
  done
  echo "$total"
}

hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

wait_healthy() {  # PORT PID
  local deadline=$(( $(date +%s) + START_TIMEOUT ))
  until curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$1/healthz"; do
    kill -0 "$2" 2>/dev/null || return 1
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

# ---- how each server is started -----------------------------------------------------------
# Prints the command (one word per line) that runs server NAME on PORT (+ PORT2).
ours_config() {  # PORT PORT2 DIR -> config file path
  cat > "$3/config.json" <<EOF
{"intercom_number": "$INTERCOM", "forward_to": ["$RESIDENT"], "state_dir": "$3/state",
 "log_level": "$LOG_LEVEL",
 "webhook": {"listen": "127.0.0.1:$1", "public_url": "$PUBLIC_URL"},
 "control": {"listen": "127.0.0.1:$2", "token": "$CONTROL_TOKEN"},
 "twilio": {"auth_token": "$AUTH_TOKEN"}}
EOF
  echo "$3/config.json"
}

baseline_env() {  # DIR
  export BASELINE_AUTH_TOKEN=$AUTH_TOKEN BASELINE_PUBLIC_URL=$PUBLIC_URL BASELINE_INTERCOM=$INTERCOM \
    BASELINE_FORWARD_TO=$RESIDENT BASELINE_CONTROL_TOKEN=$CONTROL_TOKEN BASELINE_STATE_FILE=$1/state.json
}

server_cmd() {  # NAME PORT PORT2 DIR
  case "$1" in
    ours) printf '%s\n' "$BIN" serve --config "$(ours_config "$2" "$3" "$4")" ;;
    ours-musl) printf '%s\n' "$BENCH_MUSL_BIN" serve --config "$(ours_config "$2" "$3" "$4")" ;;
    # `flask run`: Werkzeug's threaded server, a thread per connection, request log on.
    flask) printf '%s\n' "$tmp/venv/bin/flask" --app app run --host 127.0.0.1 --port "$2" \
      --no-reload --no-debugger --with-threads ;;
    # gunicorn, sync workers: what Flask's deployment docs show first.
    gunicorn) printf '%s\n' "$tmp/venv/bin/gunicorn" --bind "127.0.0.1:$2" \
      --workers "$GUNICORN_WORKERS" app:app ;;
  esac
}

start_server() {  # NAME -> sets SERVER_PID PORT CONTROL_PORT SERVER_DIR
  local name=$1 dir cmd
  dir=$(mktemp -d "$tmp/$name.XXXX")
  PORT=$(free_port)
  CONTROL_PORT=$PORT
  case "$name" in ours*) CONTROL_PORT=$(free_port) ;; esac
  mapfile -t cmd < <(server_cmd "$name" "$PORT" "$CONTROL_PORT" "$dir")
  baseline_env "$dir"
  (cd "$root/bench/baseline" && exec "${cmd[@]}") 2> "$dir/stderr.log" > "$dir/stdout.log" &
  SERVER_PID=$!
  SERVER_DIR=$dir
  pids+=("$SERVER_PID")
  wait_healthy "$PORT" "$SERVER_PID" || { tail -n 20 "$dir/stderr.log" >&2; die "$name did not start"; }
}

stop_server() {  # PID
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

loadgen() {  # ARGS... (signed webhooks to $PORT)
  "$LOADGEN" run --addr "127.0.0.1:$PORT" --auth-token "$AUTH_TOKEN" --public-url "$PUBLIC_URL" \
    --path /voice "$@"
}

window() {  # open|close
  local body='{}'
  [ "$1" = open ] && body='{"minutes": 60}'
  curl -fsS -o /dev/null --max-time 5 -H "Authorization: Bearer $CONTROL_TOKEN" \
    -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$CONTROL_PORT/api/$1" \
    || die "could not $1 the window"
}

# The same decision rule on both: five signed requests per case, each answer checked.
verify() {  # NAME
  local name=$1 out
  check() {  # WHAT FROM EXPECT [extra loadgen args]
    out=$(loadgen --mode close -c 1 -n 5 -d 5 --label "$name" --from "$2" --expect "$3" "${@:4}" 2>/dev/null)
    grep -q '"errors":0' <<<"$out" && grep -q '"ok":5' <<<"$out" \
      || die "$name: $1: expected $3 in every answer, got $out"
  }
  check "stranger" "$STRANGER" "<Reject/>"
  check "intercom, window closed" "$INTERCOM" "<Dial"
  window open
  check "intercom, window open" "$INTERCOM" '<Play digits="ww9"/>'
  check "stranger, window open" "$STRANGER" "<Reject/>"
  window close
  check "intercom, window closed again" "$INTERCOM" "<Dial"
  out=$("$LOADGEN" run --addr "127.0.0.1:$PORT" --auth-token wrong-token --public-url "$PUBLIC_URL" \
    --mode close -c 1 -n 3 -d 5 2>/dev/null)
  grep -q '"status 403":3' <<<"$out" || die "$name: a bad signature was not refused with 403: $out"
  log "$name: reject / dial / play / 403 on a bad signature: all as expected"
}

# What one fdatasync of a small append costs on the state directory's filesystem right now
# (the history pays one per call until it commits in groups): the context for every
# figure, since other writers on a shared disk make it swing by 10x.
disk_probe() {  # WHEN
  python3 - "$tmp" "$1" "$PROBE_SYNCS" >> "$results" <<'PY'
import json, os, sys, time
path, t = os.path.join(sys.argv[1], "fdatasync-probe"), []
with open(path, "wb") as f:
    for _ in range(int(sys.argv[3])):
        f.write(b"x" * 200)
        f.flush()
        start = time.perf_counter()
        os.fdatasync(f.fileno())
        t.append(time.perf_counter() - start)
os.unlink(path)
t.sort()
ms = lambda q: round(t[min(len(t) - 1, int(q * len(t)))] * 1000, 3)
print(json.dumps({"disk_probe": sys.argv[2], "syncs": len(t), "p50_ms": ms(0.5), "p90_ms": ms(0.9),
                  "p99_ms": ms(0.99), "mean_ms": round(sum(t) / len(t) * 1000, 3)}))
PY
}

# fdatasync + fsync calls per answered request: strace attached to the running server
# (all its threads, and the connection threads it starts) for one keep-alive load per
# FSYNC_CONCURRENCY. strace stops the server at every syscall, so these loads are only
# counted, never timed.
count_syncs() {  # NAME
  local name=$1 c out spid tracer json note
  if ! command -v "$STRACE" >/dev/null; then
    meta '{"fsync_note":"strace is not installed (cross/deps.sh installs it): fdatasync/fsync per request not counted"}'
    log "strace missing: fdatasync/fsync per request not counted"
    return 0
  fi
  for c in $FSYNC_CONCURRENCY; do
    out=$SERVER_DIR/strace.$c
    "$STRACE" -f -c -e trace=fdatasync,fsync -o "$out" -p "$SERVER_PID" 2> "$out.log" &
    spid=$!
    tracer=0
    for _ in $(seq 100); do  # 5 s at most to attach
      tracer=$(awk '/^TracerPid:/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0)
      [ "${tracer:-0}" != 0 ] && break
      kill -0 "$spid" 2>/dev/null || break
      sleep 0.05
    done
    if [ "${tracer:-0}" = 0 ]; then
      kill -INT "$spid" 2>/dev/null || true
      wait "$spid" 2>/dev/null || true
      note=$(head -c 300 "$out.log" | tr '\n' ' ' | tr -dc '[:alnum:] .:,()/_-')
      meta "{\"fsync_note\":\"strace could not attach to the server: $note\"}"
      log "strace could not attach: $note"
      return 0
    fi
    json=$(loadgen --mode keepalive -c "$c" -d "$FSYNC_DURATION" --expect "<Dial" --label "$name")
    # Every request loadgen sent was answered before it returned, so the count is complete.
    kill -INT "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    python3 - "$out" "$json" "$name" "$c" >> "$results" <<'PY'
import json, sys
counts = {"fdatasync": 0, "fsync": 0}
for line in open(sys.argv[1]):
    f = line.split()
    if f and f[-1] in counts:
        counts[f[-1]] = int(f[3])
load = json.loads(sys.argv[2])
print(json.dumps({"fsync_label": sys.argv[3], "concurrency": int(sys.argv[4]),
                  "requests": load["ok"] + load["errors"], "errors": load["errors"], **counts,
                  "tool": "strace -f -c, attached"}))
PY
    log "$name c=$c: $(tail -n1 "$results")"
    sleep "$pause"
  done
}

# ---- measurements ------------------------------------------------------------------------
servers=(ours)
# The static musl build (bench/build-musl-host.sh), when there is one: the Pi's libc and
# allocator, measured natively.
: "${BENCH_MUSL_BIN:=$root/target/bench-musl/x86_64-unknown-linux-musl/release/intercom}"
[ -x "$BENCH_MUSL_BIN" ] && servers+=(ours-musl)
servers+=($BASELINES)
log "load: servers=${servers[*]} modes=$MODES concurrency=$CONCURRENCY rates=$RATES (x$RATE_CLIENTS clients) duration=${DURATION}s warmup=${WARMUP}s"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
disk_probe before

for name in "${servers[@]}"; do
  # Start to first answer, on fresh processes.
  for _ in $(seq "$STARTUPS"); do
    dir=$(mktemp -d "$tmp/start.XXXX")
    p=$(free_port); p2=$(free_port)
    mapfile -t cmd < <(server_cmd "$name" "$p" "$p2" "$dir")
    baseline_env "$dir"
    (cd "$root/bench/baseline" && "$LOADGEN" startup --addr "127.0.0.1:$p" --timeout "$START_TIMEOUT" \
      --label "$name" -- "${cmd[@]}") >> "$results"
  done

  start_server "$name"
  sleep "$pause"
  idle=$(rss_tree "$SERVER_PID")
  verify "$name"
  for mode in $MODES; do
    for c in $CONCURRENCY; do
      loadgen --mode "$mode" -c "$c" -d "$DURATION" --warmup "$WARMUP" --expect "<Dial" \
        --watch-pid "$SERVER_PID" --label "$name" >> "$results"
      sleep "$pause"
    done
    for rate in $RATES; do
      loadgen --mode "$mode" -c "$RATE_CLIENTS" --rate "$rate" -d "$DURATION" --warmup "$WARMUP" \
        --expect "<Dial" --watch-pid "$SERVER_PID" --label "$name" >> "$results"
      sleep "$pause"
      # The floor under the same load, right after: a GET that touches neither the
      # signature nor the history.
      case " $HEALTHZ_RATES " in *" $rate "*) [[ $name == ours* ]] || continue ;; *) continue ;; esac
      loadgen --mode "$mode" -c "$RATE_CLIENTS" --rate "$rate" -d "$DURATION" --warmup "$WARMUP" \
        --method GET --path /healthz --expect ok --watch-pid "$SERVER_PID" --label "$name" >> "$results"
      sleep "$pause"
    done
  done
  sleep "$pause"
  after=$(rss_tree "$SERVER_PID")
  peak=$(hwm "$SERVER_PID")
  nproc_tree=$(( 1 + $( (ps -o pid= --ppid "$SERVER_PID" || true) | wc -l) ))
  meta "{\"label\":\"$name\",\"rss_idle_kib\":$idle,\"rss_after_kib\":$after,\"hwm_main_kib\":$peak,\"processes\":$nproc_tree}"
  [ "$name" = ours ] && count_syncs "$name"
  stop_server "$SERVER_PID"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
disk_probe after

# ---- sizes ---------------------------------------------------------------------------------
size_of() { stat -c %s "$1"; }
# No program interpreter in the ELF program headers = statically linked.
linkage() {
  if readelf -l "$1" 2>/dev/null | grep -q 'program interpreter'; then echo dynamic; else echo static; fi
}
stripped=$tmp/intercom.stripped
cp "$BIN" "$stripped" && strip "$stripped"
meta "{\"size\":\"host $(uname -m)\",\"bytes\":$(size_of "$stripped"),\"file\":\"$(linkage "$BIN") (glibc), release profile\"}"
for arch in aarch64 armv7 armv6; do
  case $arch in
    aarch64) triples="aarch64-unknown-linux-musl aarch64-unknown-linux-gnu" ;;
    armv7) triples="armv7-unknown-linux-musleabihf armv7-unknown-linux-gnueabihf" ;;
    armv6) triples="arm-unknown-linux-musleabihf arm-unknown-linux-gnueabihf" ;;
  esac
  found=0
  for triple in $triples; do
    for b in "target/cross/$triple/release/intercom" "target/$triple/release/intercom"; do
      [ -f "$b" ] || continue
      found=1
      s=$tmp/$triple.stripped
      cp "$b" "$s"
      # The release profile strips already; a cross strip, when there is one, makes sure.
      for st in aarch64-linux-gnu-strip arm-linux-gnueabihf-strip llvm-strip; do
        command -v "$st" >/dev/null && "$st" "$s" 2>/dev/null && break
      done
      meta "{\"size\":\"$triple\",\"bytes\":$(size_of "$s"),\"file\":\"$(linkage "$b"), built $(date -u -r "$b" +%Y-%m-%dT%H:%MZ)\"}"
      break
    done
  done
  [ $found = 1 ] || meta "{\"size\":\"$arch\",\"bytes\":null,\"file\":\"not built (run make cross TARGET=$arch)\"}"
done

cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
meta "$(python3 -c 'import json,sys; print(json.dumps(dict(zip(["machine","cpus","kernel","rustc","python","load_before","load_after","quick","duration","warmup","build_s","venv_s","bench_s","log_level","gunicorn_workers","date","state_fs","state_dir"], sys.argv[1:]))))' \
  "$cpu" "$(nproc)" "$(uname -sr)" "$(rustc --version)" "$(python3 --version 2>&1)" "$load_before" "$load_after" \
  "$quick" "$DURATION" "$WARMUP" "$build_s" "$venv_s" "$(( $(date +%s) - bench_start ))" "$LOG_LEVEL" \
  "$GUNICORN_WORKERS" "$(date -u +%Y-%m-%dT%H:%MZ)" "$state_fs" "${tmp#"$root"/}")"

status=0
python3 bench/report.py "$results" --chart "$BENCH_OUT/chart.svg" | tee "$BENCH_OUT/report.md" || status=$?
if [ -n "$BENCH_CHART" ]; then
  cp "$BENCH_OUT/chart.svg" "$BENCH_CHART"
  log "chart: $BENCH_CHART (linked from BENCHMARKS.md)"
fi
log "results: $results, tables: $BENCH_OUT/report.md, chart: $BENCH_OUT/chart.svg ($(( $(date +%s) - bench_start ))s in all)"
exit "$status"
