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

# fill_template: sed arguments that replace configs/production.json's placeholders (the
# ones `intercom check-config` refuses, config::TEMPLATE_PLACEHOLDERS) with test values,
# as the admin does after installing; but where the admin puts the auth token in
# intercom.env, these tests allow unsigned webhooks by name: they post unsigned ones.
# shellcheck disable=SC2034  # used by deb.sh and systemd-boot.sh, which source this file
FILL_TEMPLATE=(-e "s/+15550100001/$INTERCOM_NUMBER/" -e "s/+15550100002/$FORWARD_TO/" -e 's/+15550100003/+15550001111/'
  -e 's#"https://intercom.example.com"#"https://door.example.net", "allow_unsigned": true#' -e 's/ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx/AC0123456789abcdef0123456789abcdef/')

# write_config FILE STATE_DIR WEBHOOK_PORT CONTROL_PORT TOKEN
# (no auth token: unsigned webhooks, allowed by name, as `webhook` below posts them)
write_config() {
  cat > "$1" <<JSON
{
  "intercom_number": "$INTERCOM_NUMBER",
  "forward_to": ["$FORWARD_TO"],
  "unlock_digits": "$UNLOCK_DIGITS",
  "default_window": "2h",
  "max_window": "12h",
  "state_dir": "$2",
  "webhook": { "listen": "127.0.0.1:$3", "public_url": "http://127.0.0.1:$3", "allow_unsigned": true },
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
# key (DIR/host_key), key-only login for the current user (or $SSHD_LOGIN_USER) through
# DIR/authorized_keys (written by the caller), DIR/known_hosts pinning the host key. Sets
# SSHD_PID.
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
AllowUsers ${SSHD_LOGIN_USER:-$(id -un)}
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

# ---- a real systemd as PID 1 in systemd-nspawn (systemd-boot.sh, deb.sh) --------------------
# nspawn_boot LOG NSPAWN_ARGS...: boot this machine's / in a throwaway container
# (--private-network: its own loopback only) and wait for its systemd. Sets NSPAWN_PID (the
# nspawn process) and CT_LEADER (the container's PID 1, for nsenter).
NSPAWN_PID='' CT_LEADER=''
nspawn_boot() {
  local log=$1 i; shift
  systemd-nspawn -q -D / --private-network --register=no --keep-unit --console=passive "$@" --boot > "$log" 2>&1 &
  NSPAWN_PID=$!
  for ((i = 0; i < 100; i++)); do
    # nspawn's child that runs systemd (earlier children are transient setup processes)
    CT_LEADER=$( (ps -o pid=,comm= --ppid "$NSPAWN_PID" 2>/dev/null || true) | awk '$2 == "systemd" {print $1; exit}')
    [ -n "$CT_LEADER" ] && return 0
    kill -0 "$NSPAWN_PID" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}
in_ct() { nsenter -t "$CT_LEADER" -a "$@"; }          # run inside the container
in_net() { nsenter -t "$CT_LEADER" -n "$@"; }         # host tool, container's network
# wait_http_ct URL SECONDS: like wait_http, inside the container's network
wait_http_ct() {
  local i
  for ((i = 0; i < $2 * 5; i++)); do
    if in_net curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  return 1
}
# wait_unit_ct UNIT SECONDS: until UNIT is active or failed; prints the state.
wait_unit_ct() {
  local state='' i
  for ((i = 0; i < $2 * 2; i++)); do
    state=$(in_ct systemctl is-active "$1" 2>/dev/null || true)
    [ "$state" = active ] || [ "$state" = failed ] && break
    sleep 0.5
  done
  echo "$state"
}
# nspawn_stop: power the container off (bounded), then make sure its PID namespace is gone.
nspawn_stop() {
  if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
    if [ -n "$CT_LEADER" ]; then in_ct systemctl poweroff 2>/dev/null || true; fi
    wait_gone "$NSPAWN_PID" 20 || { kill -KILL "$NSPAWN_PID" 2>/dev/null || true; wait_gone "$NSPAWN_PID" 5 || true; }
  fi
  # The container's PID 1 outlives a killed nspawn: SIGKILL to it ends its whole PID namespace.
  if [ -n "$CT_LEADER" ] && kill -0 "$CT_LEADER" 2>/dev/null; then
    kill -KILL "$CT_LEADER" 2>/dev/null || true; wait_gone "$CT_LEADER" 5 || true
  fi
}
