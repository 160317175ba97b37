#!/usr/bin/env bash
# shellcheck disable=SC2015  # "cond && pass || fail": pass only echoes and cannot fail
# OpenWrt deployment without a router: a fake root with /etc/openwrt_release, and nothing
# but Debian's BusyBox on PATH (OpenWrt has no bash, coreutils or sudo).
#  1. cross/remote-install.sh under `busybox sh`: binary in /usr/bin, the procd init script,
#     an `intercom` system user, config seeded with its state on flash, keep.d for
#     sysupgrade, enable + restart through /etc/rc.common. A stand-in rc.common sources the
#     real init script and records what it asks procd for (command, respawn, user, env).
#  2. Again as an upgrade: edited config kept, no second user, binary replaced; a binary
#     that does not run and a full flash are refused with the installed binary kept.
#  3. `make deploy PI=root@router` over a real sshd whose PATH holds only BusyBox: OpenWrt
#     detected over ssh, the control URL printed from /usr/bin/intercom.
#
#   tests/system/openwrt.sh        (uses $INTERCOM_BIN, else target/release/intercom; root)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/system/lib.sh
. "$here/lib.sh"
cd "$root"

bin=${INTERCOM_BIN:-${CARGO_TARGET_DIR:-target}/release/intercom}
[ -x "$bin" ] || die "no intercom binary at $bin (cargo build --release)"
command -v busybox >/dev/null || die "busybox missing: run cross/deps.sh system"
[ "$(id -u)" = 0 ] || die "needs root (the installer chowns to the new system user)"

tmp=$(mktemp -d)
chmod 700 "$tmp"
SSHD_PID=''
cleanup() {
  if [ -n "$SSHD_PID" ]; then stop_pid "$SSHD_PID"; fi
  if [ "$FAILS" -ne 0 ]; then
    for f in install1.log install2.log procd.log deploy.log sshd.log; do
      [ -f "$tmp/$f" ] && { echo "--- $f"; tail -n 30 "$tmp/$f"; }
    done
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# ---- a BusyBox-only PATH: the applets a default OpenWrt image has --------------------------
bb=$tmp/bb
mkdir -p "$bb"
applets=$(busybox --list)
for a in sh ash awk basename cat chmod chown cp cut df dirname echo grep head id ln ls mkdir mktemp mv printf readlink rm \
         sed sleep tar touch tr uname wc; do
  grep -qx "$a" <<< "$applets" || die "Debian's busybox has no '$a' applet"
  ln -s "$(command -v busybox)" "$bb/$a"
done
bbsh() { env -i PATH="$bb" HOME=/ "$(command -v busybox)" sh "$@"; }

# ---- the fake router ---------------------------------------------------------------------------
R=$tmp/router
mkdir -p "$R/etc" "$R/lib"
cat > "$R/etc/openwrt_release" <<'EOF'
DISTRIB_ID='OpenWrt'
DISTRIB_RELEASE='23.05.5'
DISTRIB_TARGET='mediatek/filogic'
DISTRIB_ARCH='aarch64_cortex-a53'
DISTRIB_DESCRIPTION='OpenWrt 23.05.5 r24106-10cc5fcd00'
EOF
cat > "$R/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/ash
daemon:*:1:1:daemon:/var:/bin/false
ftp:*:55:55:ftp:/home/ftp:/bin/false
network:*:101:101:network:/var:/bin/false
nobody:*:65534:65534:nobody:/var:/bin/false
ntp:x:123:123:ntp:/var/run/ntp:/bin/false
dnsmasq:x:453:453:dnsmasq:/var/run/dnsmasq:/bin/false
logd:x:514:514:logd:/var/run/logd:/bin/false
ubus:x:81:81:ubus:/var/run/ubus:/bin/false
EOF
cat > "$R/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
network:x:101:
nogroup:x:65534:
ntp:x:123:ntp
dnsmasq:x:453:dnsmasq
logd:x:514:logd
ubus:x:81:ubus
test200:x:200:
EOF
printf 'root:::0:99999:7:::\n' > "$R/etc/shadow"
# Stand-in for /etc/rc.common + procd.sh: sources the real init script, records procd calls.
cat > "$R/etc/rc.common" <<EOF
#!/bin/sh
initscript=\$1 action=\$2
IPKG_INSTROOT="$R"
log="$tmp/procd.log"
procd_open_instance() { echo "open_instance" >> "\$log"; }
procd_set_param() { echo "set \$*" >> "\$log"; }
procd_append_param() { echo "append \$*" >> "\$log"; }
procd_close_instance() { echo "close_instance" >> "\$log"; }
. "\$initscript"
[ "\$USE_PROCD" = 1 ] || { echo "USE_PROCD is not 1" >&2; exit 1; }
name=\$(basename "\$initscript")
case "\$action" in
  enable) mkdir -p "\$IPKG_INSTROOT/etc/rc.d"
          ln -sf "../init.d/\$name" "\$IPKG_INSTROOT/etc/rc.d/S\${START}\$name"
          ln -sf "../init.d/\$name" "\$IPKG_INSTROOT/etc/rc.d/K\${STOP}\$name"
          echo "enable" >> "\$log" ;;
  start|restart) echo "\$action" >> "\$log"; start_service ;;
  *) echo "rc.common stand-in: unsupported action \$action" >&2; exit 1 ;;
esac
EOF

template=$tmp/intercom.json.example
write_config "$template" /var/lib/intercom 18080 18081 openwrt-test-token-0123456789abcdef
# stage_dir: what cross/deploy.sh uploads (binary, installer, init script, config template).
stage_dir() {
  local s=$tmp/stage.$1
  mkdir -p "$s"
  cp "$2" "$s/intercom"
  cp cross/remote-install.sh "$s/install.sh"
  cp configs/openwrt/intercom.init "$s/intercom.init"
  cp configs/openwrt/intercom.ntp-hotplug "$s/intercom.ntp-hotplug"
  cp systemd/intercom.service systemd/intercom-tunnel.service systemd/tunnel.env.example "$s/"
  cp "$template" "$s/intercom.json.example"
  echo "$s"
}

# ---- 1. first install under busybox sh ------------------------------------------------------
s=$(stage_dir 1 "$bin")
if bbsh "$s/install.sh" "$s" "$R" > "$tmp/install1.log" 2>&1; then
  pass "remote installer ran under busybox sh with a BusyBox-only PATH"
else
  fail "installer failed under busybox sh"; finish; exit 1
fi
sed 's/^/    | /' "$tmp/install1.log"
grep -q 'OpenWrt detected (OpenWrt 23.05.5' "$tmp/install1.log" && pass "OpenWrt detected from /etc/openwrt_release" || fail "OpenWrt not detected"
cmp -s "$bin" "$R/usr/bin/intercom" && [ -x "$R/usr/bin/intercom" ] && pass "binary installed: /usr/bin/intercom" || fail "binary missing"
cmp -s configs/openwrt/intercom.init "$R/etc/init.d/intercom" && [ "$(stat -c %a "$R/etc/init.d/intercom")" = 755 ] \
  && pass "init script installed: /etc/init.d/intercom (0755)" || fail "init script missing or not 0755"
cmp -s configs/openwrt/intercom.ntp-hotplug "$R/etc/hotplug.d/ntp/25-intercom" && [ "$(stat -c %a "$R/etc/hotplug.d/ntp/25-intercom")" = 755 ] \
  && pass "ntpd hotplug hook installed: /etc/hotplug.d/ntp/25-intercom (0755)" || fail "ntpd hotplug hook missing or not 0755"
[ ! -e "$R/etc/systemd" ] && [ ! -e "$R/usr/local" ] && pass "no systemd units, nothing in /usr/local" || fail "systemd files installed on OpenWrt"
[ ! -e "$s" ] && pass "stage directory removed" || fail "stage directory left behind"
user=$(grep '^intercom:' "$R/etc/passwd" || true)
# 200 is taken by a group in the fake /etc/group: the first free id is 201.
[ "$user" = "intercom:x:201:201:intercom:/var/run/intercom:/bin/false" ] && pass "system user: $user" || fail "user line: '$user'"
grep -qx 'intercom:x:201:' "$R/etc/group" && pass "group intercom (201)" || fail "no group intercom"
grep -q '^intercom:\*:' "$R/etc/shadow" && pass "shadow entry locked (*)" || fail "no shadow entry"
cfg=$R/etc/intercom/intercom.json
[ "$(stat -c '%a %u:%g' "$cfg")" = "640 0:201" ] && pass "config 0640 root:intercom" || fail "config mode/owner $(stat -c '%a %u:%g' "$cfg")"
if out=$("$R/usr/bin/intercom" check-config --config "$cfg" 2>&1) && echo "$out" | grep -q '/etc/intercom/state'; then
  pass "seeded config is valid, state_dir on flash: $(echo "$out" | grep -o '[^ ]*/etc/intercom/state[^ ]*' | head -n1)"
else
  fail "seeded config: $out"
fi
[ "$(stat -c '%a %u:%g' "$R/etc/intercom/state")" = "700 201:201" ] && pass "state dir /etc/intercom/state 0700 intercom" \
  || fail "state dir $(stat -c '%a %u:%g' "$R/etc/intercom/state")"
[ "$(cat "$R/lib/upgrade/keep.d/intercom")" = /etc/intercom/ ] && pass "sysupgrade keeps /etc/intercom (keep.d)" || fail "no keep.d entry"
[ "$(readlink "$R/etc/rc.d/S95intercom")" = ../init.d/intercom ] && [ -L "$R/etc/rc.d/K10intercom" ] \
  && pass "enabled: /etc/rc.d/S95intercom, K10intercom" || fail "not enabled"
procd=$(cat "$tmp/procd.log")
expect_contains "procd command: serve with the config" "$procd" "set command /usr/bin/intercom serve --config /etc/intercom/intercom.json"
expect_contains "procd respawn" "$procd" "set respawn 3600 5 5"
expect_contains "procd runs it as the intercom user" "$procd" "set user intercom"
expect_contains "restarted after install" "$procd" "restart"

# ---- 2. upgrade: config edited, secrets file, binary damaged ------------------------------------
sed -i 's/+15552223333/+15550004242/' "$cfg"
cfg_sum=$(sha256sum < "$cfg")
printf 'INTERCOM_CONTROL_TOKEN=from-env-file-0123456789\nPATH=/evil\n# comment\n' > "$R/etc/intercom/intercom.env"
printf '#!/bin/sh\necho old-broken-intercom\n' > "$R/usr/bin/intercom"
: > "$tmp/procd.log"
s=$(stage_dir 2 "$bin")
if bbsh "$s/install.sh" "$s" "$R" > "$tmp/install2.log" 2>&1; then pass "second run (upgrade) under busybox sh"
else fail "upgrade failed"; sed 's/^/    | /' "$tmp/install2.log"; fi
[ "$(sha256sum < "$cfg")" = "$cfg_sum" ] && grep -q "kept existing" "$tmp/install2.log" && pass "edited config kept" || fail "config overwritten"
[ "$(grep -c '^intercom:' "$R/etc/passwd")" = 1 ] && [ "$(grep -c '^intercom:' "$R/etc/group")" = 1 ] \
  && pass "no second user or group" || fail "user/group duplicated"
cmp -s "$bin" "$R/usr/bin/intercom" && pass "binary replaced" || fail "binary not replaced"
procd=$(cat "$tmp/procd.log")
expect_contains "INTERCOM_* from intercom.env passed to procd" "$procd" "append env INTERCOM_CONTROL_TOKEN=from-env-file-0123456789"
if [[ "$procd" == *PATH=/evil* ]]; then fail "non-INTERCOM_ line passed as env"; else pass "other env-file lines ignored"; fi

# A binary that does not run here (wrong architecture): refused, installed one kept.
printf '#!/bin/sh\necho "cannot execute binary file: Exec format error" >&2\nexit 126\n' > "$tmp/wrong"
chmod +x "$tmp/wrong"
s=$(stage_dir 3 "$tmp/wrong")
if bbsh "$s/install.sh" "$s" "$R" > "$tmp/install3.log" 2>&1; then fail "a binary that does not run was installed"
else
  cmp -s "$bin" "$R/usr/bin/intercom" && [ ! -e "$R/usr/bin/.intercom.new" ] && grep -q 'does not run here' "$tmp/install3.log" \
    && pass "non-running binary refused, installed one kept" || fail "wrong binary handling: $(cat "$tmp/install3.log")"
fi
# A full overlay (df reports 100 KiB free): refused before copying anything.
printf '#!/bin/sh\necho "Filesystem 1K-blocks Used Available Use%% Mounted on"\necho "overlayfs 3000 2900 100 97%% /overlay"\n' > "$tmp/df"
chmod +x "$tmp/df"
mv "$bb/df" "$bb/df.real"; cp "$tmp/df" "$bb/df"
s=$(stage_dir 4 "$bin")
if bbsh "$s/install.sh" "$s" "$R" > "$tmp/install4.log" 2>&1; then fail "installed with a full flash"
else
  grep -q 'not enough flash' "$tmp/install4.log" && cmp -s "$bin" "$R/usr/bin/intercom" \
    && pass "full flash: $(grep -o 'not enough flash[^(]*' "$tmp/install4.log")" || fail "full flash: $(cat "$tmp/install4.log")"
fi
rm "$bb/df"; mv "$bb/df.real" "$bb/df"

# ---- 3. make deploy PI=root@router over ssh, BusyBox-only PATH on the router -------------------
rm -rf "$R/usr/bin/intercom" "$R/etc/intercom" "$R/etc/init.d" "$R/etc/rc.d"
ssh-keygen -q -t ed25519 -N '' -C openwrt-test -f "$tmp/key"
cp "$tmp/key.pub" "$tmp/authorized_keys"
sp=$(free_port)
start_sshd "$tmp" "$sp" "SetEnv PATH=$bb" || die "sshd did not start"
ssh_opts="-p $sp -i $tmp/key -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$tmp/known_hosts"
remote_tar=$(read -r -a o <<< "$ssh_opts"; ssh "${o[@]}" "$(id -un)@127.0.0.1" 'readlink "$(command -v tar)"' 2>/dev/null)
[ "$remote_tar" = "$(command -v busybox)" ] && pass "router PATH: tar is BusyBox" || fail "router tar is $remote_tar"
t0=$(date +%s)
if make --no-print-directory deploy "PI=$(id -un)@127.0.0.1" "SSH_OPTS=$ssh_opts" "DEPLOY_ROOT=$R" \
     "DEPLOY_CONFIG=$template" "BIN=$bin" > "$tmp/deploy.log" 2>&1; then
  pass "make deploy to the OpenWrt fake root ($(( $(date +%s) - t0 )) s)"
else
  fail "make deploy failed"; finish; exit 1
fi
sed 's/^/    | /' "$tmp/deploy.log" | tail -n 8
grep -q "ARCH=host" "$tmp/deploy.log" && grep -q 'OpenWrt detected' "$tmp/deploy.log" && pass "arch and OpenWrt detected over ssh" || fail "detection"
cmp -s "$bin" "$R/usr/bin/intercom" && [ -x "$R/etc/init.d/intercom" ] && pass "deployed /usr/bin/intercom and /etc/init.d/intercom" || fail "deploy result"
grep -q 'next: pair each phone: intercom pair' "$tmp/deploy.log" && pass "deploy names the next step: intercom pair (no sudo)" || fail "no pairing step"
if grep -q 'openwrt-test-token' "$tmp/deploy.log"; then fail "deploy printed the control token"; else pass "no control token in the output"; fi
finish
