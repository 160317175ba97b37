#!/usr/bin/env bash
# Static checks of the shipped systemd units with the real systemd-analyze (no running
# systemd needed: `verify` and `security --offline=yes` work in a container too).
#
#   tests/system/systemd-check.sh [BINARY]
#
# `systemd-analyze verify` insists that ExecStart's program exists. On a build/CI machine
# /usr/local/bin/intercom is not installed (and must not be), and `verify --root=DIR`
# would need a whole systemd unit tree inside DIR. So the unit is copied to a temp dir
# with ExecStart's path rewritten to a real built intercom binary (BINARY, else
# $INTERCOM_BIN, else target/release/intercom, else any cross build, else a fresh
# `cargo build --release`). Nothing else in the unit is changed.
#
# Pass: both units verify cleanly; intercom.service exposure <= 2.0; the tunnel <= 4.9.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
fail=0 npass=0 nfail=0
pass() { npass=$((npass + 1)); echo "PASS: $*"; }
failed() { nfail=$((nfail + 1)); echo "FAIL: $*"; fail=1; }

if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze missing: installing the systemd package"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd
fi
echo "using $(systemd-analyze --version | head -n1); PID 1 is $(cat /proc/1/comm) (not needed)"

bin=${1:-${INTERCOM_BIN:-}}
if [ -z "$bin" ]; then
  for c in target/release/intercom target/cross/release/intercom target/cross/*/release/intercom; do
    if [ -x "$c" ]; then bin=$c; break; fi
  done
fi
if [ -z "$bin" ]; then
  echo "no built intercom found: cargo build --release"
  cargo build --release
  bin=target/release/intercom
fi
bin=$(readlink -f "$bin")
[ -x "$bin" ] || { echo "FAIL: $bin is not an executable"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s#^ExecStart=/usr/local/bin/intercom #ExecStart=$bin #" systemd/intercom.service > "$tmp/intercom.service"
grep -q "^ExecStart=$bin serve --config /etc/intercom/intercom.json$" "$tmp/intercom.service" \
  || failed "intercom.service ExecStart is not '/usr/local/bin/intercom serve --config /etc/intercom/intercom.json'"
cp systemd/intercom-tunnel.service "$tmp/"

for unit in intercom.service intercom-tunnel.service; do
  if out=$(systemd-analyze verify "$tmp/$unit" 2>&1) && [ -z "$out" ]; then
    pass "systemd-analyze verify $unit: clean"
  else
    failed "systemd-analyze verify $unit:"; printf '    %s\n' "$out"
  fi
done

# Exposure score: systemd's 0.0 (locked down) .. 10.0 (unprotected).
check_score() { # unit max
  local unit=$1 max=$2 line score
  line=$(systemd-analyze security --offline=yes "systemd/$unit" 2>&1 | grep 'Overall exposure level' || true)
  score=$(echo "$line" | sed -n 's/.*: \([0-9.]*\) .*/\1/p')
  if [ -z "$score" ]; then failed "security $unit: no score ($line)"; return; fi
  echo "exposure $unit: ${line#*: }"
  if awk "BEGIN{exit !($score <= $max)}"; then
    pass "systemd-analyze security $unit: $score <= $max"
  else
    failed "systemd-analyze security $unit: $score > $max"
    systemd-analyze security --offline=yes "systemd/$unit" 2>&1 | grep '✗' | head -20
  fi
}
check_score intercom.service 2.0
check_score intercom-tunnel.service 4.9

# Readiness and the watchdog (src/system/watchdog.rs sends READY=1 and WATCHDOG=1).
if grep -q '^Type=notify$' systemd/intercom.service && grep -q '^NotifyAccess=main$' systemd/intercom.service \
  && grep -q '^WatchdogSec=[1-9]' systemd/intercom.service; then
  pass "intercom.service: Type=notify, NotifyAccess=main, $(grep '^WatchdogSec=' systemd/intercom.service)"
else
  failed "intercom.service must be Type=notify with NotifyAccess=main and a WatchdogSec="
fi

# The tunnel's restart policy must never give up.
if grep -q '^Restart=always$' systemd/intercom-tunnel.service \
  && grep -q '^StartLimitIntervalSec=0$' systemd/intercom-tunnel.service; then
  pass "tunnel restarts forever (Restart=always, StartLimitIntervalSec=0)"
else
  failed "tunnel restart policy"
fi

echo "systemd-check: $npass passed, $nfail failed"
exit "$fail"
