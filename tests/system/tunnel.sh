#!/usr/bin/env bash
# The reverse tunnel, end to end, on loopback:
#  - a real OpenSSH sshd on a free 127.0.0.1 port plays the VPS (own temp host key, temp
#    authorized_keys restricted like docs/tunnel.md's VPS setup: Unix-socket forwarding
#    only, StreamLocalBindUnlink yes, StreamLocalBindMask 0117);
#  - the VPS side is a Unix socket in a directory of the tunnel's user, mode 2750, group
#    of the proxy (a uid/gid pair of its own here), as docs/tunnel.md sets it up;
#  - `intercom serve` runs on a free port;
#  - the ssh command is EXTRACTED from systemd/intercom-tunnel.service's ExecStart with the
#    variables of a temp tunnel.env substituted (tests/system/unit-exec.py), not retyped;
#  - a webhook sent to the VPS side (the socket, as the proxy's user) reaches intercom and
#    gets TwiML;
#  - a squatter running as another user cannot see, connect to or bind the socket, also
#    while the tunnel is down, and never gets a request;
#  - a second tunnel takes the socket over at once (a stale socket never keeps the Pi
#    out); ssh is killed, restarted the way Restart=always + RestartSec= would, and the
#    forward comes back while the squatter keeps trying, and after it leaves.
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
for tool in /usr/sbin/sshd ssh ssh-keygen curl python3 setpriv; do
  command -v "$tool" >/dev/null || die "$tool missing: run cross/deps.sh system"
done

tmp=$(mktemp -d)
chmod 700 "$tmp"
sshd_pid='' server_pid='' loop_pid='' squat_pid=''
# The VPS's /run: others may traverse it, as /run allows (unlike $tmp, mode 0700).
vps_run=$(mktemp -d)
chmod 755 "$vps_run"
cleanup() {
  if [ -n "$squat_pid" ]; then stop_pid "$squat_pid"; fi
  if [ -n "$loop_pid" ]; then kill "$loop_pid" 2>/dev/null || true; wait_gone "$loop_pid" 5 || true; fi
  if [ -f "$tmp/ssh.pid" ]; then stop_pid "$(cat "$tmp/ssh.pid")"; fi
  if [ -n "$server_pid" ]; then stop_pid "$server_pid"; fi
  if [ -n "$sshd_pid" ]; then stop_pid "$sshd_pid"; fi
  if [ "$FAILS" -ne 0 ]; then
    for f in "$vps_run/sshd/sshd.log" "$tmp/serve.log" "$tmp/ssh.log" "$tmp/second.log" "$tmp/squatter.log"; do
      [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }
    done
  fi
  rm -rf "$tmp" "$vps_run"
}
trap cleanup EXIT

# ---- the "VPS": sshd on loopback -------------------------------------------------------
sp=$(free_port); wp=$(free_port); cp=$(free_port)
# Users of the VPS: the proxy (Caddy) and a squatter, each with uid and gid of its own.
proxy_uid=65532 proxy_gid=65533 squatter=65534
as_proxy() { setpriv --reuid="$proxy_uid" --regid="$proxy_gid" --clear-groups -- "$@"; }
as_squatter() { setpriv --reuid="$squatter" --regid="$squatter" --clear-groups -- "$@"; }
# The tunnel's login user on the VPS: a system account that is neither root (sshd refuses
# Unix-socket forwarding to root) nor the proxy nor the squatter.
user=daemon
# The socket's directory: the tunnel user's, group of the proxy, 2750: only they can
# enter, and the socket sshd makes there gets the proxy's group.
sock_dir="$vps_run/intercom-tunnel"
install -d -m 2750 -o "$user" -g "$proxy_gid" "$sock_dir"
sock="$sock_dir/intercom.sock"
# sshd reads authorized_keys as the login user: a directory it can enter.
vps="$vps_run/sshd"
install -d -m 0755 "$vps"
ssh-keygen -q -t ed25519 -N '' -C intercom-tunnel -f "$tmp/tunnel_key"
# The restrictions docs/tunnel.md gives the VPS: only remote forwarding, nothing else.
echo "restrict,port-forwarding $(cat "$tmp/tunnel_key.pub")" > "$vps/authorized_keys"
chmod 0644 "$vps/authorized_keys"
if SSHD_LOGIN_USER=$user start_sshd "$vps" "$sp" "AllowTcpForwarding remote
AllowStreamLocalForwarding remote
StreamLocalBindUnlink yes
StreamLocalBindMask 0117
GatewayPorts no
PermitListen none
PermitOpen none
PermitTTY no
ForceCommand /usr/sbin/nologin
ClientAliveInterval 15
ClientAliveCountMax 3"; then
  sshd_pid=$SSHD_PID; pass "VPS sshd listening on 127.0.0.1:$sp"
else
  sshd_pid=${SSHD_PID:-}; die "sshd did not start"
fi
# Through the socket, as the proxy does it (curl as the proxy's user).
sock_up() { as_proxy curl -fsS -o /dev/null --max-time 2 --unix-socket "$sock" http://intercom/healthz 2>/dev/null; }
wait_sock() {
  local i
  for ((i = 0; i < $1 * 5; i++)); do sock_up && return 0; sleep 0.2; done
  return 1
}
sock_webhook() {
  as_proxy curl -sS --max-time 10 --unix-socket "$sock" -X POST --data-urlencode "From=$INTERCOM_NUMBER" \
    --data-urlencode "To=+15550001111" --data-urlencode "CallSid=CA$(date +%s%N)" http://intercom/voice
}

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
TUNNEL_REMOTE_SOCKET=$sock
TUNNEL_LOCAL_PORT=$wp
TUNNEL_KEY=$tmp/tunnel_key
TUNNEL_KNOWN_HOSTS=$vps/known_hosts
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

if wait_sock 20; then
  pass "forward up: VPS $sock -> intercom 127.0.0.1:$wp"
else
  fail "forward did not come up within 20 s"; finish; exit 1
fi
twiml=$(sock_webhook)
expect_contains "webhook through the tunnel gets TwiML" "$twiml" "<Response"
expect_contains "webhook through the tunnel -> Dial" "$twiml" "<Dial"
mode=$(stat -c '%a %g' "$sock")
if [ "$mode" = "660 $proxy_gid" ]; then pass "socket mode 0660, group of the proxy"; else fail "socket mode/group: $mode"; fi

# The squatter: another user on the VPS. It cannot list the directory, reach the socket,
# or put a socket of its own there.
squat_try() {
  as_squatter /usr/bin/python3 - "$sock" "$@" <<'PY'
import os, socket, sys
path, what = sys.argv[1], sys.argv[2]
try:
    if what == "list":
        os.listdir(os.path.dirname(path))
    elif what == "connect":
        socket.socket(socket.AF_UNIX).connect(path)
    elif what == "bind":
        s = socket.socket(socket.AF_UNIX)
        s.bind(path + (".squat" if len(sys.argv) > 3 else ""))
        s.listen(8)
    print("ALLOWED")
except PermissionError as e:
    print("EACCES", e)
except OSError as e:
    print("OSERROR", e)
PY
}
for what in list connect bind; do
  r=$(squat_try "$what")
  case "$r" in EACCES*) pass "squatter cannot $what the socket's directory: $r" ;; *) fail "squatter $what: $r" ;; esac
done
r=$(squat_try bind new)
case "$r" in EACCES*) pass "squatter cannot make a socket of its own there: $r" ;; *) fail "squatter new socket: $r" ;; esac

# A reconnect while sshd still holds the old session takes the socket over at once (a stale
# socket never keeps the Pi out), and the old session ending later leaves the new one's
# socket alone.
# sshd's main process has one child per session: a session ended when they are fewer.
sessions() { pgrep -c -P "$sshd_pid" || true; }
wait_end() { # wait_end COUNT: until fewer than COUNT sessions are left; bounded
  local i
  for ((i = 0; i < 100; i++)); do [ "$(sessions)" -lt "$1" ] && return 0; sleep 0.1; done
  return 1
}
# Which socket is on the path: its inode and change time (tmpfs reuses inode numbers).
sock_id() { stat -c '%i %z' "$sock" 2>/dev/null || true; }
wait_new_inode() { # wait_new_inode ID: until the socket is another one and serves; bounded
  local i
  for ((i = 0; i < 100; i++)); do
    [ "$(sock_id)" != "$1" ] && sock_up && return 0
    sleep 0.1
  done
  return 1
}
inode=$(sock_id)
timeout 120 "${cmd[@]}" > "$tmp/second.log" 2>&1 &
second=$!
if wait_new_inode "$inode"; then pass "a second tunnel takes the socket over (StreamLocalBindUnlink) and serves"
else fail "second tunnel did not take over: $(cat "$tmp/second.log")"; fi
n=$(sessions)
old=$(cat "$tmp/ssh.pid")
kill -KILL "$old"
if wait_end "$n" && sock_up; then pass "the old session ($old) ended; the new one's socket still serves"
else fail "the old session's end took the forward down (or was not seen)"; fi
# The supervisor restarts its ssh, which takes the socket back; then the second one ends.
inode=$(sock_id)
if wait_new_inode "$inode" || { sleep "$restart_sec"; wait_new_inode "$inode"; }; then
  pass "the restarted unit's ssh took the socket back"
else fail "the restarted tunnel did not take the socket back"; fi
n=$(sessions)
stop_pid "$second"
if wait_end "$n" && sock_up; then pass "the second session ended; the unit's socket still serves"
else fail "the second session's end took the forward down"; fi

# The squatter keeps trying to take the socket in a loop while the tunnel is down, and
# counts what it got: a bind, or a connection on any socket it made.
as_squatter /usr/bin/python3 - "$sock" > "$tmp/squatter.log" 2>&1 <<'PY' &
import socket, sys, time
path = sys.argv[1]
tries = denied = 0
while True:
    tries += 1
    try:
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.listen(8)
        s.settimeout(0.1)
        print("BOUND", flush=True)
        try:
            s.accept()
            print("GOT A REQUEST", flush=True)
        except OSError:
            pass
    except PermissionError:
        denied += 1
    if tries % 20 == 0:
        print("tries", tries, "denied", denied, flush=True)
    time.sleep(0.05)
PY
squat_pid=$!

# Crash: kill ssh; the forward disappears; the supervisor restarts it after RestartSec.
old=$(cat "$tmp/ssh.pid")
kill -KILL "$old"
gone=0
for ((i = 0; i < 50; i++)); do
  if ! sock_up; then gone=1; break; fi
  sleep 0.1
done
if [ "$gone" = 1 ]; then pass "killed ssh $old: forward is down"; else fail "forward still up after killing ssh"; fi
t0=$(date +%s)
if wait_sock $((restart_sec + 30)); then
  new=$(cat "$tmp/ssh.pid")
  pass "forward back after $(( $(date +%s) - t0 )) s (RestartSec=${restart_sec}s) with the squatter trying, ssh pid $old -> $new"
  expect_contains "webhook through the restarted tunnel -> TwiML" "$(sock_webhook)" "<Dial"
else
  fail "forward did not come back within $((restart_sec + 30)) s"
fi
if grep -q "BOUND\|GOT A REQUEST" "$tmp/squatter.log"; then
  fail "the squatter took the socket: $(cat "$tmp/squatter.log")"
elif grep -q "denied" "$tmp/squatter.log"; then
  pass "the squatter was refused every time: $(tail -n 1 "$tmp/squatter.log")"
else
  fail "the squatter did not run: $(cat "$tmp/squatter.log")"
fi

# The squatter leaves; the tunnel goes down and up once more and still comes back.
stop_pid "$squat_pid"; squat_pid=''
old=$(cat "$tmp/ssh.pid")
kill -KILL "$old"
for ((i = 0; i < 50; i++)); do sock_up || break; sleep 0.1; done
if wait_sock $((restart_sec + 30)); then
  pass "after the squatter left: forward back again, ssh pid $old -> $(cat "$tmp/ssh.pid")"
else
  fail "forward did not come back after the squatter left"
fi
echo "tunnel starts: $(wc -l < "$tmp/starts")"
finish
