#!/usr/bin/env bash
# The reverse tunnel, end to end, on loopback:
#  - a real OpenSSH sshd on a free 127.0.0.1 port plays the VPS (own temp host key, temp
#    authorized_keys restricted like the VPS setup in docs/install-and-tunnel.md, GatewayPorts no);
#  - `intercom serve` runs on a free port;
#  - the ssh command is EXTRACTED from systemd/intercom-tunnel.service's ExecStart with the
#    variables of a temp tunnel.env substituted (tests/system/unit-exec.py), not retyped;
#  - a webhook sent to the VPS side (127.0.0.1:REMOTE) reaches intercom and gets TwiML;
#  - a second tunnel while the port is taken exits at once (ExitOnForwardFailure=yes);
#  - ssh is killed, restarted the way Restart=always + RestartSec= would, and the forward
#    comes back.
#
#   tests/system/tunnel.sh [INTERCOM_BINARY]   (default $INTERCOM_BIN or target/release/intercom)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/system/lib.sh
. "$here/lib.sh"

unit="$root/systemd/intercom-tunnel.service"
bin=${1:-${INTERCOM_BIN:-$root/target/release/intercom}}
[ -x "$bin" ] || die "no intercom binary at $bin (cargo build --release)"
for tool in /usr/sbin/sshd ssh ssh-keygen curl python3; do
  command -v "$tool" >/dev/null || die "$tool missing: run cross/deps.sh system"
done

tmp=$(mktemp -d)
chmod 700 "$tmp"
sshd_pid='' server_pid='' loop_pid=''
cleanup() {
  if [ -n "$loop_pid" ]; then kill "$loop_pid" 2>/dev/null || true; wait_gone "$loop_pid" 5 || true; fi
  if [ -f "$tmp/ssh.pid" ]; then stop_pid "$(cat "$tmp/ssh.pid")"; fi
  if [ -n "$server_pid" ]; then stop_pid "$server_pid"; fi
  if [ -n "$sshd_pid" ]; then stop_pid "$sshd_pid"; fi
  if [ "$FAILS" -ne 0 ]; then
    for f in sshd.log serve.log ssh.log; do
      [ -f "$tmp/$f" ] && { echo "--- $f"; tail -n 20 "$tmp/$f"; }
    done
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# ---- the "VPS": sshd on loopback -------------------------------------------------------
sp=$(free_port); rp=$(free_port); wp=$(free_port); cp=$(free_port)
ssh-keygen -q -t ed25519 -N '' -C intercom-tunnel -f "$tmp/tunnel_key"
# The restrictions docs/install-and-tunnel.md gives the VPS: only this remote forward, nothing else.
echo "restrict,port-forwarding,permitlisten=\"127.0.0.1:$rp\" $(cat "$tmp/tunnel_key.pub")" > "$tmp/authorized_keys"
user=$(id -un)
if start_sshd "$tmp" "$sp" "AllowTcpForwarding remote
GatewayPorts no
PermitListen 127.0.0.1:$rp
PermitTTY no
ForceCommand /usr/sbin/nologin
ClientAliveInterval 15
ClientAliveCountMax 3"; then
  sshd_pid=$SSHD_PID; pass "VPS sshd listening on 127.0.0.1:$sp"
else
  sshd_pid=${SSHD_PID:-}; die "sshd did not start"
fi

# ---- intercom ------------------------------------------------------------------------
mkdir -p "$tmp/state"
write_config "$tmp/intercom.json" "$tmp/state" "$wp" "$cp" "tunnel-test-token"
"$bin" serve --config "$tmp/intercom.json" > "$tmp/serve.log" 2>&1 &
server_pid=$!
if wait_http "http://127.0.0.1:$wp/healthz" 20; then pass "intercom serving webhook on 127.0.0.1:$wp"
else die "intercom did not start"; fi

# ---- the tunnel, as the unit runs it -----------------------------------------------------
cat > "$tmp/tunnel.env" <<ENV
# test copy of /etc/intercom/tunnel.env
TUNNEL_HOST=127.0.0.1
TUNNEL_USER=$user
TUNNEL_SSH_PORT=$sp
TUNNEL_REMOTE_PORT=$rp
TUNNEL_LOCAL_PORT=$wp
TUNNEL_KEY=$tmp/tunnel_key
TUNNEL_KNOWN_HOSTS=$tmp/known_hosts
ENV
mapfile -d '' cmd < <(python3 "$here/unit-exec.py" "$unit" "$tmp/tunnel.env")
[ "${#cmd[@]}" -gt 3 ] || die "could not extract ExecStart from $unit"
echo "unit command: ${cmd[*]}"
restart_sec=$(python3 "$here/unit-exec.py" "$unit" "$tmp/tunnel.env" RestartSec)
case "$restart_sec" in
  *ms) die "RestartSec in ms not handled" ;;
  *s) restart_sec=${restart_sec%s} ;;
esac
[[ "$restart_sec" =~ ^[0-9]+$ ]] || die "RestartSec '$restart_sec' not understood"

# Restart=always, as systemd does it: run, wait RestartSec after any exit, run again.
# Bounded: at most 6 starts. The current ssh pid is kept in ssh.pid.
(
  trap 'kill "$(cat "$tmp/ssh.pid" 2>/dev/null)" 2>/dev/null; exit 0' TERM
  for ((n = 1; n <= 6; n++)); do
    echo "start $n" >> "$tmp/starts"
    "${cmd[@]}" >> "$tmp/ssh.log" 2>&1 &
    echo $! > "$tmp/ssh.pid"
    wait $! || true
    sleep "$restart_sec" & wait $!
  done
) 2>> "$tmp/loop.log" &
loop_pid=$!

if wait_http "http://127.0.0.1:$rp/healthz" 20; then
  pass "forward up: VPS 127.0.0.1:$rp -> intercom 127.0.0.1:$wp"
else
  fail "forward did not come up within 20 s"; finish; exit 1
fi
twiml=$(webhook "http://127.0.0.1:$rp/voice")
expect_contains "webhook through the tunnel gets TwiML" "$twiml" "<Response"
expect_contains "webhook through the tunnel -> Dial" "$twiml" "<Dial"

# ExitOnForwardFailure: a second tunnel for the same port must give up at once, not linger.
t0=$(date +%s)
if timeout 20 "${cmd[@]}" > "$tmp/second.log" 2>&1; then
  fail "a second tunnel for a taken port exited 0"
else
  rc=$?
  if [ "$rc" = 124 ]; then fail "second tunnel still running after 20 s (ExitOnForwardFailure?)"
  else pass "second tunnel exits at once ($((${EPOCHSECONDS:-$(date +%s)} - t0)) s, rc $rc): $(grep -m1 -i 'forward' "$tmp/second.log" || true)"; fi
fi

# Crash: kill ssh; the forward disappears; the supervisor restarts it after RestartSec.
old=$(cat "$tmp/ssh.pid")
kill -KILL "$old"
gone=0
for ((i = 0; i < 50; i++)); do
  if ! curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$rp/healthz" 2>/dev/null; then gone=1; break; fi
  sleep 0.1
done
if [ "$gone" = 1 ]; then pass "killed ssh $old: forward is down"; else fail "forward still up after killing ssh"; fi
t0=$(date +%s)
if wait_http "http://127.0.0.1:$rp/healthz" $((restart_sec + 30)); then
  new=$(cat "$tmp/ssh.pid")
  pass "forward back after $(( $(date +%s) - t0 )) s (RestartSec=${restart_sec}s), ssh pid $old -> $new"
  expect_contains "webhook through the restarted tunnel -> TwiML" "$(webhook "http://127.0.0.1:$rp/voice")" "<Dial"
else
  fail "forward did not come back within $((restart_sec + 30)) s"
fi
echo "tunnel starts: $(wc -l < "$tmp/starts")"
finish
