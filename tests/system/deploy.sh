#!/usr/bin/env bash
# shellcheck disable=SC2015  # "cond && pass || fail": pass only echoes and cannot fail
# `make deploy` end to end against a real sshd on loopback playing the Pi:
#  - root logs in with a temp key; every installed path goes under a fake root
#    (DEPLOY_ROOT), and a `systemctl` stand-in that records its arguments comes first on
#    the remote PATH (sshd SetEnv), so nothing on this machine is installed or started;
#  - first deploy: binary, units, examples and the config land; systemctl got
#    daemon-reload / enable, but no restart: the config is still the template, so the
#    deploy prints check-config's refusal by key and the next steps (`intercom init`,
#    `intercom pair`), never the control token; the man page lands;
#  - the "user" fills in the config and state exists; the binary is damaged; second
#    deploy: config and state kept, binary replaced, service restarted.
#
#   tests/system/deploy.sh          (uses $INTERCOM_BIN if set, else `make deploy` builds)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/system/lib.sh
. "$here/lib.sh"
cd "$root"

for tool in /usr/sbin/sshd ssh ssh-keygen python3 make sha256sum; do
  command -v "$tool" >/dev/null || die "$tool missing: run cross/deps.sh system"
done

tmp=$(mktemp -d)
chmod 700 "$tmp"
SSHD_PID=''
cleanup() {
  if [ -n "$SSHD_PID" ]; then stop_pid "$SSHD_PID"; fi
  if [ "$FAILS" -ne 0 ]; then
    for f in deploy1.log deploy2.log sshd.log systemctl.log; do
      [ -f "$tmp/$f" ] && { echo "--- $f"; tail -n 30 "$tmp/$f"; }
    done
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

fake=$tmp/root
mkdir -p "$fake" "$tmp/fakebin"
cat > "$tmp/fakebin/systemctl" <<STUB
#!/bin/sh
# test stand-in: record, succeed
echo "\$*" >> "$tmp/systemctl.log"
STUB
chmod +x "$tmp/fakebin/systemctl"

ssh-keygen -q -t ed25519 -N '' -C deploy-test -f "$tmp/key"
cp "$tmp/key.pub" "$tmp/authorized_keys"
sp=$(free_port)
if start_sshd "$tmp" "$sp" "SetEnv PATH=$tmp/fakebin:/usr/local/bin:/usr/bin:/bin"; then
  pass "Pi sshd listening on 127.0.0.1:$sp"
else
  die "sshd did not start"
fi
ssh_opts="-p $sp -i $tmp/key -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$tmp/known_hosts"
# The remote PATH really finds the stand-in first:
remote_systemctl=$(read -r -a o <<< "$ssh_opts"; ssh "${o[@]}" "$(id -un)@127.0.0.1" 'command -v systemctl')
if [ "$remote_systemctl" = "$tmp/fakebin/systemctl" ]; then pass "remote PATH finds the systemctl stand-in"
else die "remote systemctl is $remote_systemctl, not the stand-in"; fi

# The config template: configs/production.json once it exists in the repo, else a placeholder.
if [ -f configs/production.json ]; then
  config=configs/production.json
else
  config=$tmp/production.json
  wp=$(free_port); cp=$(free_port)
  write_config "$config" /var/lib/intercom "$wp" "$cp" placeholder-token
  echo "note: configs/production.json not in the repo yet, using a placeholder template"
fi

make_args=(deploy "PI=$(id -un)@127.0.0.1" ARCH=host "SSH_OPTS=$ssh_opts" "DEPLOY_ROOT=$fake" "DEPLOY_CONFIG=$config")
if [ -n "${INTERCOM_BIN:-}" ]; then make_args+=("BIN=$INTERCOM_BIN"); fi
built=${INTERCOM_BIN:-${CARGO_TARGET_DIR:-target}/release/intercom}

# ---- first deploy ------------------------------------------------------------------------
t0=$(date +%s)
if make --no-print-directory "${make_args[@]}" > "$tmp/deploy1.log" 2>&1; then
  pass "first make deploy ($(( $(date +%s) - t0 )) s)"
else
  fail "first make deploy failed"; finish; exit 1
fi
sed 's/^/    | /' "$tmp/deploy1.log" | tail -n 12

[ -x "$fake/usr/local/bin/intercom" ] && cmp -s "$built" "$fake/usr/local/bin/intercom" \
  && pass "binary installed: /usr/local/bin/intercom" || fail "binary missing or different"
for u in intercom.service intercom-tunnel.service; do
  cmp -s "systemd/$u" "$fake/etc/systemd/system/$u" && pass "unit installed: /etc/systemd/system/$u" || fail "unit $u missing"
done
cmp -s "$config" "$fake/etc/intercom/intercom.json" && pass "config seeded from the template" || fail "config not installed"
[ -f "$fake/usr/local/share/intercom/tunnel.env.example" ] && pass "tunnel.env.example installed" || fail "no tunnel.env.example"
cmp -s docs/intercom.1 "$fake/usr/local/share/man/man1/intercom.1" && pass "man page installed: /usr/local/share/man/man1/intercom.1" || fail "no man page"
[ ! -e "$fake/etc/intercom/tunnel.env" ] && pass "no tunnel.env created (the user writes it)" || fail "tunnel.env created"

expected="daemon-reload
enable intercom.service"
got=$(cat "$tmp/systemctl.log" 2>/dev/null || true)
if [ "$got" = "$expected" ]; then pass "untouched template: enabled, not started ($(echo "$got" | paste -sd, -))"
else fail "systemctl calls with the template were: $(echo "$got" | paste -sd, -)"; fi
if grep -q "\`forward_to\`: still the template's placeholder" "$tmp/deploy1.log" && grep -q "sudo intercom init" "$tmp/deploy1.log"; then
  pass "deploy printed the template's unfilled keys and the next step"
else
  fail "no refusal or next step in the deploy output"
fi
expected="$expected
restart intercom.service"
# The way in for a phone is pairing: the closing message says how, and shows no token.
grep -q "sudo intercom pair" "$tmp/deploy1.log" && pass "deploy names the next step after init: intercom pair" || fail "no pairing step"
if grep -q '#t=' "$tmp/deploy1.log"; then fail "deploy printed a URL with the control token"; else pass "no control token in the output"; fi

# ---- the user edits the config, the daemon has state; the binary gets damaged -------------
python3 - "$fake/etc/intercom/intercom.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["intercom_number"] = "+15550004242"
c["forward_to"] = ["+15552223333"]
c.setdefault("webhook", {})["public_url"] = "https://door.example.net"
c["twilio"] = {"account_sid": "AC0123456789abcdef0123456789abcdef", "number": "+15550001111"}
c.setdefault("control", {})["token"] = "edited-token-4242-abcdefghijkl"
json.dump(c, open(p, "w"), indent=2)
PY
mkdir -p "$fake/var/lib/intercom"
echo '{"version":1,"open_until":null}' > "$fake/var/lib/intercom/state.json"
cfg_sum=$(sha256sum < "$fake/etc/intercom/intercom.json")
state_sum=$(sha256sum < "$fake/var/lib/intercom/state.json")
printf '#!/bin/sh\necho old-broken-intercom\n' > "$fake/usr/local/bin/intercom"
: > "$tmp/systemctl.log"

# ---- second deploy (upgrade in place), ARCH detected over ssh this time ----------------------
make_args2=()
for a in "${make_args[@]}"; do [ "$a" = ARCH=host ] || make_args2+=("$a"); done
t0=$(date +%s)
if make --no-print-directory "${make_args2[@]}" > "$tmp/deploy2.log" 2>&1; then
  pass "second make deploy ($(( $(date +%s) - t0 )) s)"
else
  fail "second make deploy failed"; finish; exit 1
fi
[ "$(sha256sum < "$fake/etc/intercom/intercom.json")" = "$cfg_sum" ] \
  && pass "edited config NOT overwritten" || fail "config was overwritten"
grep -q "kept existing" "$tmp/deploy2.log" && pass "deploy says it kept the config" || fail "no 'kept existing' message"
grep -q "running; next: pair each phone: 'sudo intercom pair" "$tmp/deploy2.log" && pass "a filled-in config: deploy says to pair a phone" \
  || fail "no pairing step after the upgrade"
if grep -q "edited-token-4242" "$tmp/deploy2.log"; then fail "deploy printed the control token"; else pass "no control token in the output"; fi
[ "$(sha256sum < "$fake/var/lib/intercom/state.json")" = "$state_sum" ] \
  && pass "state untouched" || fail "state changed"
cmp -s "$built" "$fake/usr/local/bin/intercom" && pass "binary replaced by the new build" || fail "binary not replaced"
got=$(cat "$tmp/systemctl.log" 2>/dev/null || true)
if [ "$got" = "$expected" ]; then pass "systemctl calls again: $(echo "$got" | paste -sd, -)"
else fail "second systemctl calls were: $(echo "$got" | paste -sd, -)"; fi
grep -q "is $(uname -m) -> ARCH=host" "$tmp/deploy2.log" && pass "ARCH detected over ssh: $(uname -m) -> host" \
  || fail "ARCH not detected"
leftover=$(find "$fake" -name '.intercom.new' | wc -l)
[ "$leftover" = 0 ] && pass "no temp files left behind" || fail "temp binary left behind"

# ---- a binary for the wrong architecture is refused, the installed one stays ----------------
arm=$(find "${CARGO_TARGET_DIR:-target}/cross" -path '*/release/intercom' -perm -u+x 2>/dev/null | head -n1 || true)
if [ -n "$arm" ] && [ "$(uname -m)" = x86_64 ]; then
  before=$(sha256sum < "$fake/usr/local/bin/intercom")
  if make --no-print-directory "${make_args[@]}" "BIN=$arm" > "$tmp/deploy3.log" 2>&1; then
    fail "deploying an ARM binary to an x86_64 host succeeded"
  else
    [ "$(sha256sum < "$fake/usr/local/bin/intercom")" = "$before" ] \
      && pass "wrong-architecture binary refused, installed binary kept" || fail "wrong binary replaced the good one"
  fi
fi
finish
