# Shared helpers for tests/system/*.sh (sourced, not run). Loopback only, bounded waits.
# shellcheck shell=bash

TEST_NAME=${TEST_NAME:-$(basename "$0" .sh)}
FAILS=0
PASSES=0
pass() { PASSES=$((PASSES + 1)); echo "PASS: $*"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL: $*"; }
die() { echo "FAIL: $*"; echo "$TEST_NAME: FAIL"; exit 1; }
finish() {
  echo "$TEST_NAME: $PASSES passed, $FAILS failed"
  [ "$FAILS" -eq 0 ]
}

# A free TCP port on 127.0.0.1 (the kernel picks it; a tiny race is acceptable in tests).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL SECONDS: poll until URL answers 2xx; bounded.
wait_http() {
  local url=$1 secs=${2:-20} i
  for ((i = 0; i < secs * 5; i++)); do
    if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  return 1
}

# wait_gone PID SECONDS: wait until PID exits; bounded. Returns 1 if still alive.
wait_gone() {
  local pid=$1 secs=${2:-10} i
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

# stop_pid PID: TERM, bounded wait, then KILL.
stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  wait_gone "$pid" 5 || { kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" 5 || true; }
}

INTERCOM_NUMBER="+15558889999"
FORWARD_TO="+15552223333"
UNLOCK_DIGITS="ww9"

# write_config FILE STATE_DIR WEBHOOK_PORT CONTROL_PORT TOKEN
write_config() {
  cat > "$1" <<JSON
{
  "intercom_number": "$INTERCOM_NUMBER",
  "forward_to": ["$FORWARD_TO"],
  "unlock_digits": "$UNLOCK_DIGITS",
  "default_window": "2h",
  "max_window": "12h",
  "state_dir": "$2",
  "webhook": { "listen": "127.0.0.1:$3", "public_url": "http://127.0.0.1:$3" },
  "control": { "listen": "127.0.0.1:$4", "token": "$5" },
  "log_level": "info"
}
JSON
}

# webhook URL [FROM]: POST a Twilio-style voice webhook, print the body.
webhook() {
  curl -sS --max-time 10 -X POST \
    --data-urlencode "From=${2:-$INTERCOM_NUMBER}" \
    --data-urlencode "To=+15550001111" \
    --data-urlencode "CallSid=CA$(date +%s%N)" \
    --data-urlencode "Direction=inbound" \
    "$1"
}

# api METHOD URL TOKEN [JSON]: call the control API, print the body.
api() {
  local args=(-sS --max-time 10 -X "$1" -H "Authorization: Bearer $3")
  if [ -n "${4:-}" ]; then args+=(-H 'Content-Type: application/json' --data "$4"); fi
  curl "${args[@]}" "$2"
}

# expect_contains WHAT HAYSTACK NEEDLE
expect_contains() {
  if [[ "$2" == *"$3"* ]]; then pass "$1"; else fail "$1: expected '$3' in: $2"; fi
}

# expect_json WHAT BODY KEY JSON_VALUE: BODY is a JSON object whose KEY equals JSON_VALUE.
expect_json() {
  if python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1]).get(sys.argv[2]) == json.loads(sys.argv[3]) else 1)' \
      "$2" "$3" "$4" 2>/dev/null; then
    pass "$1"
  else
    fail "$1: expected \"$3\": $4 in: $2"
  fi
}

# start_sshd DIR PORT [EXTRA_CONFIG]: a real OpenSSH sshd on 127.0.0.1:PORT with its own host
# key (DIR/host_key), key-only login for the current user through DIR/authorized_keys
# (written by the caller), DIR/known_hosts pinning the host key. Sets SSHD_PID.
start_sshd() {
  local dir=$1 port=$2 extra=${3:-} i
  ssh-keygen -q -t ed25519 -N '' -C test-sshd-host -f "$dir/host_key"
  echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/host_key.pub")" > "$dir/known_hosts"
  cat > "$dir/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowUsers $(id -un)
X11Forwarding no
$extra
CONF
  mkdir -p /run/sshd
  /usr/sbin/sshd -t -f "$dir/sshd_config" || return 1
  /usr/sbin/sshd -D -e -f "$dir/sshd_config" > "$dir/sshd.log" 2>&1 &
  SSHD_PID=$!
  for ((i = 0; i < 100; i++)); do
    if ssh-keyscan -T 2 -p "$port" 127.0.0.1 >/dev/null 2>&1; then return 0; fi
    kill -0 "$SSHD_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
