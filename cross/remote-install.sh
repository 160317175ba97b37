#!/bin/sh
# Runs on the Pi or router (copied there by cross/deploy.sh):  sh remote-install.sh STAGE_DIR DEPLOY_ROOT
#
# POSIX sh and BusyBox tools only (OpenWrt has no bash, no coreutils, no sudo):
# tests/system/openwrt.sh runs it under Debian's `busybox sh` with nothing but BusyBox
# applets on PATH. DEPLOY_ROOT (tests) prefixes every path it writes.
#
# systemd (a Pi): /usr/local/bin/intercom, units in /etc/systemd/system, examples in
#   /usr/local/share/intercom, the man page in /usr/local/share/man/man1,
#   daemon-reload + enable + restart (and the tunnel once
#   /etc/intercom/tunnel.env exists). Root or passwordless sudo. A config that
#   `intercom check-config` refuses (the untouched template) is not (re)started: the
#   refusal and the next step are printed instead.
# OpenWrt (/etc/openwrt_release): /usr/bin/intercom, the procd init script as
#   /etc/init.d/intercom, an `intercom` system user, state in /etc/intercom/state (flash;
#   /var is RAM there), /lib/upgrade/keep.d/intercom so sysupgrade keeps /etc/intercom,
#   then enable + restart through /etc/rc.common. Root only (OpenWrt has no sudo).
# Both: the binary must run here (--version) before it replaces the old one (rename); the
# config is seeded from the template only when /etc/intercom/intercom.json does not exist.
# Last, the next step: fill in the config, or pair a phone (never a URL with the token).
set -eu
s=$1 R=$2

die() { echo "deploy: $*" >&2; exit 1; }

# install_binary DIR: try the new binary on this machine first (wrong architecture -> abort,
# the old one stays), then replace atomically (rename), which works while the old one runs.
install_binary() {
  $SUDO mkdir -p "$R$1"
  $SUDO cp "$s/intercom" "$R$1/.intercom.new"
  $SUDO chmod 0755 "$R$1/.intercom.new"
  if ! version=$("$R$1/.intercom.new" --version 2>&1); then
    $SUDO rm -f "$R$1/.intercom.new"
    die "the new binary does not run here: $version"
  fi
  $SUDO mv -f "$R$1/.intercom.new" "$R$1/intercom"
  echo "installed $R$1/intercom ($version)"
}

# ---- OpenWrt ---------------------------------------------------------------------------
# Lowest free id in a passwd/group-style file: system ids, away from OpenWrt's own
# (ubus 81, network 101, ntp 123, dnsmasq 453, logd 514).
OPENWRT_FIRST_ID=200
OPENWRT_LAST_ID=999
free_id() {
  id=$OPENWRT_FIRST_ID
  while [ "$id" -le "$OPENWRT_LAST_ID" ]; do
    if ! cut -d: -f3 "$R/etc/passwd" "$R/etc/group" 2>/dev/null | grep -qx "$id"; then
      echo "$id"; return 0
    fi
    id=$((id + 1))
  done
  return 1
}

openwrt() {
  [ "$(id -u)" = 0 ] || [ -n "$R" ] || die "log in as root: OpenWrt has no sudo"
  SUDO=
  # The binary and flash: say so clearly instead of failing half-way on a full overlay.
  need_kb=$(( $(wc -c < "$s/intercom") / 1024 + 64 ))
  mkdir -p "$R/usr/bin"
  free_kb=$(df -k "$R/usr/bin" | awk 'NR == 2 { print $4 }')
  if [ -n "$free_kb" ] && [ "$free_kb" -lt "$need_kb" ]; then
    die "not enough flash: the binary needs ${need_kb} KiB in /usr/bin, ${free_kb} KiB free (see docs/install-and-tunnel.md: which routers qualify)"
  fi
  install_binary /usr/bin

  # A system user for the daemon, the way OpenWrt's own packages add theirs (user_add).
  if grep -q '^intercom:' "$R/etc/passwd" 2>/dev/null; then
    uid=$(grep '^intercom:' "$R/etc/passwd" | cut -d: -f3)
    gid=$(grep '^intercom:' "$R/etc/passwd" | cut -d: -f4)
  else
    uid=$(free_id) || die "no free user id in $OPENWRT_FIRST_ID..$OPENWRT_LAST_ID"
    gid=$uid
    grep -q '^intercom:' "$R/etc/group" 2>/dev/null || echo "intercom:x:$gid:" >> "$R/etc/group"
    echo "intercom:x:$uid:$gid:intercom:/var/run/intercom:/bin/false" >> "$R/etc/passwd"
    if [ -f "$R/etc/shadow" ]; then echo "intercom:*:0:0:99999:7:::" >> "$R/etc/shadow"; fi
    echo "created user intercom ($uid:$gid)"
  fi

  mkdir -p "$R/etc/init.d" "$R/etc/intercom/state" "$R/usr/share/intercom" "$R/lib/upgrade/keep.d"
  cp "$s/intercom.init" "$R/etc/init.d/.intercom.new"
  chmod 0755 "$R/etc/init.d/.intercom.new"
  mv -f "$R/etc/init.d/.intercom.new" "$R/etc/init.d/intercom"
  # BusyBox ntpd's hotplug hook: tells intercom the clock is synchronized (docs/clock.md).
  mkdir -p "$R/etc/hotplug.d/ntp"
  cp "$s/intercom.ntp-hotplug" "$R/etc/hotplug.d/ntp/.25-intercom.new"
  chmod 0755 "$R/etc/hotplug.d/ntp/.25-intercom.new"
  mv -f "$R/etc/hotplug.d/ntp/.25-intercom.new" "$R/etc/hotplug.d/ntp/25-intercom"
  cp "$s/intercom.json.example" "$R/usr/share/intercom/intercom.json.example"
  echo "/etc/intercom/" > "$R/lib/upgrade/keep.d/intercom"
  if [ -e "$R/etc/intercom/intercom.json" ]; then
    echo "kept existing $R/etc/intercom/intercom.json"
  else
    # /var is RAM on OpenWrt: keep the state (and a generated token) on flash instead.
    sed 's#"state_dir": *"[^"]*"#"state_dir": "/etc/intercom/state"#' "$s/intercom.json.example" \
      > "$R/etc/intercom/.intercom.json.new"
    # Readable by the daemon's group only: it may hold tokens.
    chown "0:$gid" "$R/etc/intercom/.intercom.json.new"
    chmod 0640 "$R/etc/intercom/.intercom.json.new"
    mv -f "$R/etc/intercom/.intercom.json.new" "$R/etc/intercom/intercom.json"
    echo "installed $R/etc/intercom/intercom.json from the template (state_dir /etc/intercom/state): EDIT IT, then: /etc/init.d/intercom restart"
  fi
  chown "$uid:$gid" "$R/etc/intercom/state"
  chmod 0700 "$R/etc/intercom/state"
  # What `/etc/init.d/intercom enable` runs (its #! line); works under DEPLOY_ROOT too.
  sh "$R/etc/rc.common" "$R/etc/init.d/intercom" enable
  sh "$R/etc/rc.common" "$R/etc/init.d/intercom" restart
  echo "OpenWrt: /etc/init.d/intercom enabled and (re)started; logs: logread -e intercom"
  echo "intercom: next: pair each phone: intercom pair \"Anna's phone\", then open the link it prints on that phone"
}

# ---- systemd ---------------------------------------------------------------------------
systemd() {
  SUDO=
  if [ "$(id -u)" != 0 ] && [ -z "$R" ]; then
    SUDO="sudo -n"   # no tty here: fail at once if sudo wants a password
    $SUDO true || die "$(id -un) needs root or passwordless sudo on this machine"
  fi
  $SUDO install -d -m 0755 "$R/usr/local/bin" "$R/etc/systemd/system" "$R/etc/intercom" "$R/usr/local/share/intercom" \
    "$R/usr/local/share/man/man1"
  install_binary /usr/local/bin
  for u in intercom.service intercom-tunnel.service; do
    $SUDO install -m 0644 "$s/$u" "$R/etc/systemd/system/$u"
  done
  $SUDO install -m 0644 "$s/tunnel.env.example" "$s/intercom.json.example" "$R/usr/local/share/intercom/"
  $SUDO install -m 0644 "$s/intercom.1" "$R/usr/local/share/man/man1/intercom.1"
  if [ -e "$R/etc/intercom/intercom.json" ]; then
    echo "kept existing $R/etc/intercom/intercom.json"
  else
    # 0644: the service's DynamicUser must read it. Put secrets in /etc/intercom/intercom.env (0600).
    $SUDO install -m 0644 "$s/intercom.json.example" "$R/etc/intercom/intercom.json"
    echo "installed $R/etc/intercom/intercom.json from the template"
  fi
  $SUDO systemctl daemon-reload
  $SUDO systemctl enable intercom.service
  # It would refuse to start, and every real call would be rejected meanwhile.
  pair="pair each phone: 'sudo intercom pair \"Anna's phone\"', then open the link it prints on that phone"
  if refusal=$($SUDO "$R/usr/local/bin/intercom" check-config --config "$R/etc/intercom/intercom.json" 2>&1 >/dev/null); then
    $SUDO systemctl restart intercom.service
    echo "intercom: running; next: $pair"
  else
    echo "intercom: $R/etc/intercom/intercom.json is not ready, so the service was not (re)started:"
    printf '%s\n' "$refusal" | sed 's/^/  /'
    echo "intercom: next: on the Pi run 'sudo intercom init' (it asks for each value), then 'sudo systemctl restart intercom',"
    echo "  then $pair"
  fi
  if [ -e "$R/etc/intercom/tunnel.env" ]; then
    $SUDO systemctl enable intercom-tunnel.service
    $SUDO systemctl restart intercom-tunnel.service
  else
    echo "tunnel not configured yet: see docs/tunnel.md, and the example /usr/local/share/intercom/tunnel.env.example"
  fi
}

if [ -f "$R/etc/openwrt_release" ]; then
  echo "OpenWrt detected ($(grep DISTRIB_DESCRIPTION "$R/etc/openwrt_release" | cut -d= -f2- | tr -d "'\""))"
  openwrt
else
  systemd
fi
rm -rf "$s"
