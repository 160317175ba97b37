#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2016  # "cond && pass || fail": pass only echoes; '${Version}' is dpkg-query's, not ours
# The host .deb (`make deb TARGET=host`) with the real dpkg under a real systemd:
#  - contents: binary, units with ExecStart=/usr/bin, the conffile, docs; lintian: no errors;
#  - systemd-nspawn boots this machine's / (tmpfs root; /usr as an overlay whose writes land
#    in a temp dir; a copy of dpkg's database) with a fresh /etc and its own network;
#  - dpkg -i: the config is still the template, so postinst enables intercom.service but
#    does not start it, and prints check-config's refusal (by key) and the next step;
#    the admin fills in the config and starts it, the webhook answers;
#  - the admin edits the conffile; dpkg -i of a newer version: config kept without a prompt,
#    service restarted (new PID), the webhook answers with the edited config;
#  - dpkg -r: service stopped and disabled, config and /var/lib/intercom kept;
#    dpkg -i again: enabled and started with the kept config and token;
#  - dpkg -P: config and state gone.
#
#   tests/system/deb.sh            (uses $INTERCOM_BIN, else target/release/intercom; root)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/system/lib.sh
. "$here/lib.sh"
cd "$root"

bin=${INTERCOM_BIN:-${CARGO_TARGET_DIR:-target}/release/intercom}
[ -x "$bin" ] || die "no intercom binary at $bin (cargo build --release)"
[ "$(id -u)" = 0 ] || die "needs root (systemd-nspawn)"
for tool in systemd-nspawn dpkg-deb lintian; do
  command -v "$tool" >/dev/null || die "$tool missing: run cross/deps.sh system"
done

tmp=$(mktemp -d)
chmod 700 "$tmp"
cleanup() {
  if [ "$FAILS" -ne 0 ] && [ -n "$CT_LEADER" ] && kill -0 "$CT_LEADER" 2>/dev/null; then
    echo "--- journal (intercom)"; in_ct journalctl -u intercom --no-pager 2>&1 | tail -n 30 || true
  fi
  nspawn_stop
  rm -rf "$tmp"
}
trap cleanup EXIT

# ---- build two versions of the package ---------------------------------------------------------
v1=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)
v2=$v1+upgrade1
t0=$(date +%s)
deb1=$(BIN=$bin DEB_OUT=$tmp/v1 DEB_VERSION=$v1 cross/deb.sh host 2> "$tmp/deb1.log" | tail -n1) || { cat "$tmp/deb1.log"; die "cross/deb.sh failed"; }
deb2=$(BIN=$bin DEB_OUT=$tmp/v2 DEB_VERSION=$v2 cross/deb.sh host 2> "$tmp/deb2.log" | tail -n1) || { cat "$tmp/deb2.log"; die "cross/deb.sh failed"; }
arch=$(dpkg --print-architecture)
[ "$(basename "$deb1")" = "intercom_${v1}_$arch.deb" ] && pass "built $(basename "$deb1") and $(basename "$deb2") ($(( $(date +%s) - t0 )) s)" \
  || fail "package name $(basename "$deb1")"

list=$(dpkg-deb -c "$deb1" | awk '{print $6}')
for f in ./usr/bin/intercom ./lib/systemd/system/intercom.service ./lib/systemd/system/intercom-tunnel.service \
         ./etc/intercom/intercom.json ./usr/share/doc/intercom/README.md ./usr/share/doc/intercom/examples/tunnel.env.example \
         ./usr/share/doc/intercom/copyright ./usr/share/doc/intercom/changelog.gz ./usr/share/man/man1/intercom.1.gz; do
  grep -qx -- "$f" <<< "$list" && pass "in the package: ${f#.}" || fail "missing from the package: ${f#.}"
done
[ "$(dpkg-deb -I "$deb1" conffiles)" = /etc/intercom/intercom.json ] && pass "conffile: /etc/intercom/intercom.json" || fail "conffiles: $(dpkg-deb -I "$deb1" conffiles)"
dpkg-deb -x "$deb1" "$tmp/x"
grep -qx 'ExecStart=/usr/bin/intercom serve --config /etc/intercom/intercom.json' "$tmp/x/lib/systemd/system/intercom.service" \
  && pass "ExecStart=/usr/bin/intercom" || fail "ExecStart: $(grep ExecStart "$tmp/x/lib/systemd/system/intercom.service")"
if grep -rn /usr/local "$tmp/x/lib/systemd/system/"; then fail "units still mention /usr/local"; else pass "no /usr/local in the units"; fi
t0=$(date +%s)
lint=$(lintian --tag-display-limit 0 "$deb1" 2>&1 | grep -v 'running with root privileges' || true)
if grep -q '^E:' <<< "$lint"; then fail "lintian errors:"; echo "$lint"
else pass "lintian: no errors ($(grep -c '^W:' <<< "$lint" || true) warnings, $(( $(date +%s) - t0 )) s)"; [ -z "$lint" ] || printf '    | %s\n' "$lint"; fi

# ---- boot a throwaway systemd --------------------------------------------------------------------
etc=$tmp/etc
mkdir -p "$etc/systemd/system" "$tmp/debs"
cp /etc/passwd /etc/group /etc/shadow /etc/nsswitch.conf "$etc/"
cp -r /etc/dpkg "$etc/dpkg"
echo intercom-deb > "$etc/hostname"
: > "$etc/machine-id"
cp "$deb1" "$deb2" "$tmp/debs/"
# --volatile=yes (tmpfs root, this machine's /usr), with /usr as an overlay whose writes land
# in $tmp and a copy of dpkg's database: dpkg really installs, and nothing outlives the test.
mkdir -p "$tmp/usr"
cp -a /var/lib/dpkg "$tmp/dpkg"
nspawn_boot "$tmp/console.log" --volatile=yes --bind="$etc:/etc" --bind-ro="$tmp/debs:/debs" \
  --overlay="/usr:$tmp/usr:/usr" --bind="$tmp/dpkg:/var/lib/dpkg" \
  || { cat "$tmp/console.log"; die "systemd-nspawn did not start"; }
for ((i = 0; i < 60; i++)); do
  st=$(in_ct systemctl is-system-running 2>/dev/null || true)
  case "$st" in running|degraded) break ;; esac
  sleep 0.5
done
pass "systemd booted in nspawn ($st)"
# Docker-derived images ship a policy-rc.d that forbids starting services; a Pi has none.
in_ct rm -f /usr/sbin/policy-rc.d
ct_dpkg() { in_ct env DEBIAN_FRONTEND=noninteractive dpkg "$@" < /dev/null; }
num=$INTERCOM_NUMBER
wp=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["webhook"]["listen"].rsplit(":",1)[1])' configs/production.json)
call() { in_net curl -sS --max-time 10 -X POST --data-urlencode "From=$num" "http://127.0.0.1:$wp/voice"; }

# ---- install ------------------------------------------------------------------------------
if ct_dpkg -i "/debs/$(basename "$deb1")" > "$tmp/dpkg1.log" 2>&1; then pass "dpkg -i $(basename "$deb1")"
else cat "$tmp/dpkg1.log"; fail "dpkg -i failed"; finish; exit 1; fi
st=$(in_ct systemctl is-active intercom.service 2>/dev/null || true)
[ "$st" = inactive ] && pass "postinst did not start the unconfigured service" || fail "intercom.service is '$st' after installing the template"
for key in intercom_number webhook.public_url twilio.account_sid; do
  grep -q "\`$key\`: still the template's placeholder" "$tmp/dpkg1.log" || fail "postinst did not name $key"
done
grep -q "next: run 'sudo intercom init'" "$tmp/dpkg1.log" && grep -q "sudo systemctl start intercom" "$tmp/dpkg1.log" \
  && pass "postinst printed the refused keys and the next step" || { cat "$tmp/dpkg1.log"; fail "postinst message"; }
in_ct sed -i "${FILL_TEMPLATE[@]}" /etc/intercom/intercom.json
in_ct /usr/bin/intercom check-config --config /etc/intercom/intercom.json > /dev/null && pass "filled-in config passes check-config" || fail "filled-in config refused"
in_ct systemctl start intercom.service
st=$(wait_unit_ct intercom.service 30)
[ "$st" = active ] && pass "started by the admin once configured" || fail "intercom.service is '$st' after the admin's start"
[ "$(in_ct systemctl is-enabled intercom.service 2>&1)" = enabled ] && pass "intercom.service enabled" || fail "not enabled"
[ "$(in_ct systemctl is-enabled intercom-tunnel.service 2>&1)" = disabled ] && pass "tunnel unit installed, not enabled (needs tunnel.env)" \
  || fail "tunnel unit: $(in_ct systemctl is-enabled intercom-tunnel.service 2>&1)"
wait_http_ct "http://127.0.0.1:$wp/healthz" 20 || fail "/healthz not answering"
expect_contains "webhook after install -> Dial" "$(call)" "<Dial"
pid1=$(in_ct systemctl show -p MainPID --value intercom.service)
token1=$(in_ct cat /var/lib/intercom/control-token 2>/dev/null || true)
[ -n "$token1" ] && pass "control token generated in /var/lib/intercom" || fail "no generated token"

# ---- the admin edits the conffile; upgrade -----------------------------------------------------
in_ct sed -i "s/$FORWARD_TO/+15550004242/" /etc/intercom/intercom.json
sum=$(in_ct sha256sum /etc/intercom/intercom.json)
if ct_dpkg -i "/debs/$(basename "$deb2")" > "$tmp/dpkg2.log" 2>&1; then pass "dpkg -i $(basename "$deb2") (upgrade, no conffile prompt)"
else cat "$tmp/dpkg2.log"; fail "upgrade failed"; finish; exit 1; fi
[ "$(in_ct dpkg-query -W -f '${Version}' intercom)" = "$v2" ] && pass "installed version $v2" || fail "version after upgrade"
[ "$(in_ct sha256sum /etc/intercom/intercom.json)" = "$sum" ] && pass "edited conffile kept" || fail "conffile replaced"
st=$(wait_unit_ct intercom.service 30)
pid2=$(in_ct systemctl show -p MainPID --value intercom.service)
[ "$st" = active ] && [ "$pid2" != "$pid1" ] && [ "$pid2" != 0 ] && pass "restarted on upgrade (pid $pid1 -> $pid2)" \
  || fail "not restarted: $st, pid $pid1 -> $pid2"
wait_http_ct "http://127.0.0.1:$wp/healthz" 20 || fail "/healthz not answering after the upgrade"
expect_contains "webhook after upgrade -> Dial to the edited number" "$(call)" "+15550004242"

# ---- remove, reinstall, purge -----------------------------------------------------------------
if ct_dpkg -r intercom > "$tmp/dpkg3.log" 2>&1; then pass "dpkg -r intercom"; else cat "$tmp/dpkg3.log"; fail "remove failed"; fi
st=$(in_ct systemctl is-active intercom.service 2>/dev/null || true)
[ "$st" != active ] && ! in_ct kill -0 "$pid2" 2>/dev/null && pass "service stopped on remove ($st)" || fail "still running after remove"
in_ct test ! -e /usr/bin/intercom -a ! -e /lib/systemd/system/intercom.service && pass "binary and units removed" || fail "files left after remove"
[ "$(in_ct sha256sum /etc/intercom/intercom.json 2>/dev/null)" = "$sum" ] && pass "config kept on remove" || fail "config gone on remove"
[ "$(in_ct cat /var/lib/intercom/control-token 2>/dev/null)" = "$token1" ] && pass "state kept on remove" || fail "state gone on remove"
if ct_dpkg -i "/debs/$(basename "$deb2")" > "$tmp/dpkg4.log" 2>&1 && [ "$(wait_unit_ct intercom.service 30)" = active ] \
   && wait_http_ct "http://127.0.0.1:$wp/healthz" 20 && [[ "$(call)" == *+15550004242* ]] \
   && [ "$(in_ct cat /var/lib/intercom/control-token)" = "$token1" ]; then
  pass "reinstall after remove: started again with the kept config and token"
else
  fail "reinstall after remove"
fi
if ct_dpkg -P intercom > "$tmp/dpkg5.log" 2>&1; then pass "dpkg -P intercom"; else cat "$tmp/dpkg5.log"; fail "purge failed"; fi
in_ct test ! -e /etc/intercom && pass "purge: /etc/intercom gone" || fail "purge left $(in_ct ls -A /etc/intercom)"
in_ct test ! -e /var/lib/intercom -a ! -e /var/lib/private/intercom && pass "purge: state gone" || fail "purge left the state"
[ "$(in_ct dpkg-query -W -f '${db:Status-Status}' intercom 2>/dev/null || echo not-installed)" != installed ] \
  && pass "dpkg: not installed" || fail "dpkg still lists intercom"
finish
