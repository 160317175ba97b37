#!/usr/bin/env bash
# The shipped units under a REAL systemd (PID 1 in systemd-nspawn), not just analyzed:
#  - a throwaway container: --volatile=yes (tmpfs root, this machine's /usr read-only),
#    --private-network (its own loopback only), /etc from a temp dir holding the units
#    exactly as shipped, configs/production.json as /etc/intercom/intercom.json, and the
#    built binary overlaid at /usr/local/bin/intercom;
#  - intercom.service boots with all its hardening (DynamicUser, StateDirectory,
#    SystemCallFilter, ...), serves /healthz, generates its token in the state dir,
#    `intercom url` works for root, the API opens the window, the webhook unlocks;
#  - SIGKILL -> Restart=on-failure brings it back with the window still open;
#  - Type=notify: active only after READY=1; SIGSTOP (a wedged daemon: no more watchdog
#    pings) -> WatchdogSec= expires, systemd aborts and restarts it;
#  - intercom-tunnel.service (real ssh, its own hardening) connects to a real sshd (the
#    "VPS", run in the container's network namespace, logging in as `daemon`), the forward
#    to the VPS's Unix socket works; SIGKILL -> Restart=always reconnects after RestartSec;
#  - `systemd-analyze security` of the running units.
#
#   tests/system/systemd-boot.sh [INTERCOM_BINARY]     (needs root and systemd-container)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/system/lib.sh
. "$here/lib.sh"
cd "$root"

bin=${1:-${INTERCOM_BIN:-$root/target/release/intercom}}
[ -x "$bin" ] || die "no intercom binary at $bin (cargo build --release)"
[ "$(id -u)" = 0 ] || die "needs root (systemd-nspawn)"
command -v systemd-nspawn >/dev/null || die "systemd-nspawn missing: apt-get install systemd-container (cross/deps.sh system)"
[ -f configs/production.json ] || die "configs/production.json missing"

tmp=$(mktemp -d)
chmod 700 "$tmp"
SSHD_PID=''
# The VPS's /run (others may traverse it) with the tunnel's socket directory, and sshd's
# files where its login user can read authorized_keys.
vps_run=$(mktemp -d)
chmod 755 "$vps_run"
cleanup() {
  if [ -n "$SSHD_PID" ]; then stop_pid "$SSHD_PID"; fi
  if [ "$FAILS" -ne 0 ] && [ -n "$CT_LEADER" ] && kill -0 "$CT_LEADER" 2>/dev/null; then
    echo "--- journal (intercom, intercom-tunnel)"
    in_ct journalctl -u intercom -u intercom-tunnel --no-pager 2>&1 | tail -n 30 || true
  fi
  nspawn_stop
  rm -rf "$tmp" "$vps_run"
}
trap cleanup EXIT

# ---- the container's /etc and /usr/local/bin --------------------------------------------
etc=$tmp/etc
mkdir -p "$etc/intercom" "$etc/systemd/system/multi-user.target.wants" "$tmp/bin"
cp /etc/passwd /etc/group /etc/nsswitch.conf "$etc/"
echo intercom-ct > "$etc/hostname"
: > "$etc/machine-id"
cp "$bin" "$tmp/bin/intercom"
cp systemd/intercom.service systemd/intercom-tunnel.service "$etc/systemd/system/"
ln -s ../intercom.service "$etc/systemd/system/multi-user.target.wants/intercom.service"
install -m 0644 configs/production.json "$etc/intercom/intercom.json"
sed -i "${FILL_TEMPLATE[@]}" "$etc/intercom/intercom.json" # as the admin does (intercom init, or by hand)
wp=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("webhook",{}).get("listen","127.0.0.1:8080").rsplit(":",1)[1])' configs/production.json)
cport=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("control",{}).get("listen","0.0.0.0:8081").rsplit(":",1)[1])' configs/production.json)

# The tunnel's files, as docs/tunnel.md tells the user to create them.
sp=2222
install -d -m 2750 -o daemon -g 0 "$vps_run/intercom-tunnel"
sock=$vps_run/intercom-tunnel/intercom.sock
install -d -m 0755 "$vps_run/sshd"
ssh-keygen -q -t ed25519 -N '' -C intercom-tunnel -f "$etc/intercom/tunnel_key"
echo "restrict,port-forwarding $(cat "$etc/intercom/tunnel_key.pub")" > "$vps_run/sshd/authorized_keys"
chmod 0644 "$vps_run/sshd/authorized_keys"
cat > "$etc/intercom/tunnel.env" <<ENV
TUNNEL_HOST=127.0.0.1
TUNNEL_USER=daemon
TUNNEL_SSH_PORT=$sp
TUNNEL_REMOTE_SOCKET=$sock
TUNNEL_LOCAL_PORT=$wp
TUNNEL_KEY=/etc/intercom/tunnel_key
TUNNEL_KNOWN_HOSTS=/etc/intercom/known_hosts
ENV
chmod 0600 "$etc/intercom/tunnel.env"

# ---- boot -----------------------------------------------------------------------------
nspawn_boot "$tmp/console.log" --volatile=yes --bind="$etc:/etc" \
  --overlay="/usr/local/bin:$tmp/bin:/usr/local/bin" \
  || { cat "$tmp/console.log"; die "systemd-nspawn did not start"; }
state=$(wait_unit_ct intercom.service 60)
if [ "$state" = active ]; then
  pass "systemd $(in_ct systemctl --version | head -n1 | cut -d' ' -f2) booted in nspawn; intercom.service active"
else
  fail "intercom.service is '$state'"; finish; exit 1
fi
main=$(in_ct systemctl show -p MainPID --value intercom.service)
echo "running as: $(in_ct ps -o user=,pid=,args= -p "$main")"

if wait_http_ct "http://127.0.0.1:$wp/healthz" 20; then
  pass "webhook listener answers /healthz on 127.0.0.1:$wp"
else
  fail "/healthz not answering"
fi
ls_state=$(in_ct ls -l /var/lib/private/intercom/ 2>&1)
if echo "$ls_state" | grep -q 'control-token' && echo "$ls_state" | grep 'control-token' | grep -q '^-rw-------'; then
  pass "token generated in the StateDirectory, mode 0600, owned by the dynamic user ($(echo "$ls_state" | awk '/control-token/{print $3}'))"
else
  fail "no 0600 control-token in /var/lib/private/intercom: $ls_state"
fi
# `intercom url` prints the page's address and how to pair, never the token; the API's
# client here reads the token as root does.
url=$(in_ct /usr/local/bin/intercom url --config /etc/intercom/intercom.json 2>/dev/null | head -n1 || true)
token=$(in_ct cat /var/lib/private/intercom/control-token 2>/dev/null || true)
if [[ "$url" == "http://"*":$cport/" ]] && [ -n "$token" ]; then pass "intercom url as root: $url (no token in it)"
else fail "intercom url: $url"; fi
base="http://127.0.0.1:$cport"
expect_json "POST /api/open with the generated token" "$(in_net curl -sS --max-time 10 -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' --data '{"minutes":30}' "$base/api/open")" open true
num=$INTERCOM_NUMBER
expect_contains "webhook while open -> Play digits" "$(in_net curl -sS --max-time 10 -X POST --data-urlencode "From=$num" "http://127.0.0.1:$wp/voice")" "<Play digits="

# ---- crash -> Restart=on-failure, state kept ------------------------------------------
in_ct kill -KILL "$main"      # a crash of the main process
sleep 1
if wait_http_ct "http://127.0.0.1:$wp/healthz" 20; then
  pass "SIGKILL -> restarted (NRestarts=$(in_ct systemctl show -p NRestarts --value intercom.service), pid $main -> $(in_ct systemctl show -p MainPID --value intercom.service))"
else
  fail "intercom.service not back after SIGKILL"
fi
expect_json "window still open after the restart" "$(in_net curl -sS --max-time 10 -H "Authorization: Bearer $token" "$base/api/status")" open true

# ---- wedged -> the watchdog restarts it ---------------------------------------------------
wd=$(in_ct systemctl show -p Type -p NotifyAccess -p WatchdogUSec intercom.service | tr '\n' ' ')
if [[ "$wd" == *Type=notify* ]] && [[ "$wd" == *NotifyAccess=main* ]] && [[ "$wd" != *WatchdogUSec=0* ]] && [[ "$wd" != *WatchdogUSec=infinity* ]]; then
  pass "unit: $wd"
else
  fail "unit is not Type=notify with a watchdog: $wd"
fi
wedged=$(in_ct systemctl show -p MainPID --value intercom.service)
restarts=$(in_ct systemctl show -p NRestarts --value intercom.service)
in_ct kill -STOP "$wedged"     # alive, holding its ports, answering nothing: only the watchdog notices
t0=$(date +%s)
back=
for ((i = 0; i < 120; i++)); do
  now=$(in_ct systemctl show -p MainPID --value intercom.service 2>/dev/null || true)
  if [ -n "$now" ] && [ "$now" != 0 ] && [ "$now" != "$wedged" ] && wait_http_ct "http://127.0.0.1:$wp/healthz" 1; then back=$now; break; fi
  sleep 0.5
done
if [ -n "$back" ]; then
  pass "SIGSTOP -> watchdog restart after $(( $(date +%s) - t0 )) s (pid $wedged -> $back, NRestarts $restarts -> $(in_ct systemctl show -p NRestarts --value intercom.service))"
else
  fail "a stopped intercom was not restarted by the watchdog"
fi
# The journal may take a moment to have the line (bounded: 10 tries a second apart).
saw_timeout=no
for _ in 1 2 3 4 5 6 7 8 9 10; do
  if in_ct journalctl -u intercom --no-pager 2>/dev/null | grep -qi 'watchdog timeout'; then saw_timeout=yes; break; fi
  sleep 1
done
if [ "$saw_timeout" = yes ]; then
  pass "journal: systemd saw the watchdog timeout"
else
  fail "no watchdog timeout in the journal"
fi
expect_json "window still open after the watchdog restart" "$(in_net curl -sS --max-time 10 -H "Authorization: Bearer $token" "$base/api/status")" open true

# ---- the tunnel unit against a real sshd ("VPS") in the container's network -----------------
vps=$vps_run/sshd
if in_net bash -c "$(declare -f start_sshd); SSHD_LOGIN_USER=daemon start_sshd '$vps' $sp 'AllowTcpForwarding remote
AllowStreamLocalForwarding remote
StreamLocalBindUnlink yes
StreamLocalBindMask 0117
GatewayPorts no
PermitListen none
PermitOpen none
PermitTTY no
ForceCommand /usr/sbin/nologin
ClientAliveInterval 15
ClientAliveCountMax 3'; echo \$SSHD_PID > '$vps/pid'; wait \$SSHD_PID" > "$vps/run.log" 2>&1 &
then :; fi
for ((i = 0; i < 100; i++)); do [ -s "$vps/pid" ] && break; sleep 0.1; done
SSHD_PID=$(cat "$vps/pid" 2>/dev/null || true)
if [ -n "$SSHD_PID" ]; then pass "VPS sshd in the container network on 127.0.0.1:$sp"
else fail "sshd did not start"; cat "$vps/run.log"; finish; exit 1; fi
cp "$vps/known_hosts" "$etc/intercom/known_hosts"
# The proxy's side: the socket (a file on this machine, whatever the network namespace).
wait_sock() {
  local i
  for ((i = 0; i < $1 * 5; i++)); do
    curl -fsS -o /dev/null --max-time 2 --unix-socket "$sock" http://intercom/healthz 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}
in_ct systemctl start intercom-tunnel.service
if wait_sock 30; then
  pass "intercom-tunnel.service: forward up (VPS $sock -> Pi 127.0.0.1:$wp)"
else
  fail "tunnel forward not up: $(in_ct systemctl is-active intercom-tunnel.service)"
fi
expect_contains "webhook through the tunnel unit -> TwiML" "$(curl -sS --max-time 10 --unix-socket "$sock" -X POST --data-urlencode "From=$num" "http://intercom/voice")" "<Response"
old=$(in_ct systemctl show -p MainPID --value intercom-tunnel.service)
in_ct kill -KILL "$old"       # ssh dies
t0=$(date +%s)
sleep 1
if wait_sock 40; then
  pass "tunnel SIGKILL -> Restart=always reconnected after $(( $(date +%s) - t0 )) s (NRestarts=$(in_ct systemctl show -p NRestarts --value intercom-tunnel.service), ssh pid $old -> $(in_ct systemctl show -p MainPID --value intercom-tunnel.service))"
else
  fail "tunnel did not come back"
fi

for u in intercom.service intercom-tunnel.service; do
  echo "running $u: $(in_ct systemd-analyze security "$u" --no-pager 2>&1 | grep 'Overall exposure' | sed 's/.*: //')"
done
finish
