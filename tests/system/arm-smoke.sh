#!/usr/bin/env bash
# Smoke test of a cross-built ARM intercom under qemu-user (binfmt need not be registered):
# real temp config + state dir, `serve`, /healthz, a webhook from the intercom number
# (-> <Dial>), open the window through the control API (Bearer token from the config),
# webhook again (-> <Play digits=...>), close, stop the server.
#
#   tests/system/arm-smoke.sh TARGET [BINARY]
#   TARGET = aarch64 | armv7 | armv6 | a Rust triple; BINARY defaults to the one
#   cross/build.sh produced for it (LIBC=musl|gnu picks which, default musl).
#   RUNNER=env tests/system/arm-smoke.sh host target/release/intercom   smoke-tests a host build.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
TEST_NAME="arm-smoke ${1:-?}"
# shellcheck source=tests/system/lib.sh
. "$here/lib.sh"

print_path=0
if [ "${1:-}" = --path ]; then print_path=1; shift; fi   # --path TARGET: print the default binary path
target=${1:?usage: arm-smoke.sh [--path] TARGET [BINARY]}
libc=${LIBC:-musl}
case "$target" in
  aarch64|arm64) triple="aarch64-unknown-linux-$libc" ;;
  armv7) triple="armv7-unknown-linux-${libc}eabihf" ;;
  armv6) triple="arm-unknown-linux-${libc}eabi" ;;            # soft-float ARMv6 (see cross/build.sh)
  host) triple=host ;;
  *) triple=$target ;;
esac
case "$triple" in
  aarch64-*) runner=(qemu-aarch64) ;;
  armv7-*) runner=(qemu-arm -cpu cortex-a7) ;;      # Pi 2 class CPU
  arm-*) runner=(qemu-arm -cpu arm1176) ;;          # Pi Zero / Pi 1 CPU
  host) runner=(env) ;;
  *) die "unknown target $target" ;;
esac
# RUNNER="env" (or another emulator command) overrides, e.g. to smoke-test a host binary.
if [ -n "${RUNNER:-}" ]; then read -r -a runner <<< "$RUNNER"; fi
bin=${2:-${CARGO_TARGET_DIR:-$root/target/cross}/$triple/release/intercom}
if [ "$print_path" = 1 ]; then echo "$bin"; exit 0; fi
[ -x "$bin" ] || die "no binary $bin (build it: make cross TARGET=$target)"
command -v "${runner[0]}" >/dev/null || die "${runner[0]} missing (apt-get install qemu-user)"

echo "binary: $bin"
echo "size: $(stat -c %s "$bin") bytes ($(file -b "$bin" 2>/dev/null | cut -d, -f1-2))"

tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then stop_pid "$pid"; fi
  if [ "$FAILS" -ne 0 ] && [ -f "$tmp/serve.log" ]; then echo "--- server log"; tail -n 30 "$tmp/serve.log"; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

if out=$("${runner[@]}" "$bin" --version 2>&1) && [[ "$out" =~ [0-9]+\.[0-9]+ ]]; then
  pass "--version under ${runner[0]}: $out"
else
  fail "--version under ${runner[0]} printed no version: '$out'"
fi

wp=$(free_port); cp=$(free_port)
token="smoke-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
mkdir -p "$tmp/state"
write_config "$tmp/intercom.json" "$tmp/state" "$wp" "$cp" "$token"

start=$(date +%s%N)
"${runner[@]}" "$bin" serve --config "$tmp/intercom.json" > "$tmp/serve.log" 2>&1 &
pid=$!
if wait_http "http://127.0.0.1:$wp/healthz" 30; then
  pass "serve up, /healthz 200 after $(( ($(date +%s%N) - start) / 1000000 )) ms"
else
  fail "serve did not answer /healthz within 30 s"; finish; exit 1
fi

expect_contains "webhook, window closed -> Dial" "$(webhook "http://127.0.0.1:$wp/voice")" "<Dial"
expect_contains "webhook from a stranger -> Reject" "$(webhook "http://127.0.0.1:$wp/" "+15550000000")" "<Reject"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST -H 'Authorization: Bearer wrong' \
  -H 'Content-Type: application/json' --data '{"minutes":5}' "http://127.0.0.1:$cp/api/open")
if [ "$code" = 401 ]; then pass "open with a wrong token -> 401"; else fail "open with a wrong token -> $code"; fi
expect_json "POST /api/open -> open" "$(api POST "http://127.0.0.1:$cp/api/open" "$token" '{"minutes":5}')" open true
expect_contains "webhook, window open -> Play digits" "$(webhook "http://127.0.0.1:$wp/voice")" "<Play digits=\"$UNLOCK_DIGITS\""
expect_json "GET /api/status -> open" "$(api GET "http://127.0.0.1:$cp/api/status" "$token")" open true
expect_json "POST /api/close -> closed" "$(api POST "http://127.0.0.1:$cp/api/close" "$token")" open false
expect_contains "webhook after close -> Dial" "$(webhook "http://127.0.0.1:$wp/voice")" "<Dial"
# The CLI (its HTTP client -> control API, and simulate) under the same emulator.
cli() { "${runner[@]}" "$bin" "$@" --config "$tmp/intercom.json" 2>&1; }
expect_contains "CLI open 5m" "$(cli open 5m)" "open until"
expect_contains "CLI simulate while open -> Play digits" "$(cli simulate --from "$INTERCOM_NUMBER")" "<Play digits="
expect_contains "CLI close -> closed" "$(cli close)" "closed"
expect_contains "CLI url -> control URL" "$(cli url)" "http://127.0.0.1:$cp/"
if compgen -G "$tmp/state/state.json" >/dev/null; then pass "state written to the state dir"; else fail "no state.json in state dir"; fi

stop_pid "$pid"
if wait_gone "$pid" 1; then pass "server stopped on SIGTERM"; else fail "server still running"; fi
pid=
finish
