#!/usr/bin/env bash
# Build, copy, install and (re)start intercom on a Pi over ssh.  `make deploy PI=host`
#
#   PI=pi@raspberrypi.local   ssh destination (required)
#   ARCH=aarch64|armv7|armv6|host   default: detected with `ssh PI uname -m`
#   SSH_OPTS="-p 2222 -i key"  extra ssh options (word-split)
#   DEPLOY_ROOT=/tmp/fakeroot  remote prefix for every installed path (tests; default empty)
#   DEPLOY_CONFIG=configs/production.json   seeds /etc/intercom/intercom.json the FIRST time only
#   BIN=path/to/intercom       deploy this binary instead of building one
#   LIBC=musl|gnu              for ARM builds (see cross/build.sh)
#
# Remote result (cross/remote-install.sh, POSIX sh + BusyBox tools): /usr/local/bin/intercom
# (replaced atomically, after it ran --version on the Pi), /etc/systemd/system/intercom{,-tunnel}.service,
# examples in /usr/local/share/intercom/, the man page in /usr/local/share/man/man1/,
# /etc/intercom/intercom.json only if it does not exist yet. Then systemctl daemon-reload,
# enable + restart intercom (and the tunnel once /etc/intercom/tunnel.env exists), and the
# next step is printed: fill in the config, pair a phone. State in /var/lib/intercom is
# never touched. Re-running upgrades in place. Needs root on the Pi, or passwordless sudo.
# On OpenWrt (/etc/openwrt_release, e.g. PI=root@router) it installs /usr/bin/intercom and
# the procd init script configs/openwrt/intercom.init instead of systemd units (root, no sudo).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

die() { echo "deploy: $*" >&2; exit 1; }
pi=${PI:-}
[ -n "$pi" ] || die "set PI=user@host (e.g. make deploy PI=pi@raspberrypi.local)"
read -r -a ssh_opts <<< "${SSH_OPTS:-}"
# shellcheck disable=SC2029 # remote commands are built (and quoted) here on purpose
ssh_pi() { ssh "${ssh_opts[@]}" "$pi" "$@"; }
deploy_root=${DEPLOY_ROOT:-}
config=${DEPLOY_CONFIG:-configs/production.json}

arch=${ARCH:-}
if [ -z "$arch" ]; then
  machine=$(ssh_pi uname -m) || die "cannot reach $pi over ssh"
  case "$machine" in
    aarch64|arm64) arch=aarch64 ;;
    armv7l|armv8l) arch=armv7 ;;
    armv6l) arch=armv6 ;;
    "$(uname -m)") arch=host ;;
    *) die "$pi is '$machine': no build for it (set ARCH=)" ;;
  esac
  echo "deploy: $pi is $machine -> ARCH=$arch"
fi

if [ -n "${BIN:-}" ]; then
  bin=$BIN
elif [ "$arch" = host ]; then
  cargo build --release --locked
  bin=${CARGO_TARGET_DIR:-target}/release/intercom
else
  bin=$(cross/build.sh "$arch" | tail -n1)
fi
[ -x "$bin" ] || die "no binary at $bin"
[ -f "$config" ] || die "no config template $config (set DEPLOY_CONFIG=)"
echo "deploy: $bin ($(stat -c %s "$bin") bytes) -> $pi${deploy_root:+ (root $deploy_root)}"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$bin" "$stage/intercom"
cp systemd/intercom.service systemd/intercom-tunnel.service systemd/tunnel.env.example "$stage/"
cp "$config" "$stage/intercom.json.example"
cp cross/remote-install.sh "$stage/install.sh"
cp configs/openwrt/intercom.init "$stage/intercom.init"
cp configs/openwrt/intercom.ntp-hotplug "$stage/intercom.ntp-hotplug"
cp docs/intercom.1 "$stage/intercom.1"

q_root=$(printf '%q' "$deploy_root")
# One connection: upload the staged files and run the installer.
tar -C "$stage" -cf - . | ssh_pi "s=\$(mktemp -d) && tar -C \"\$s\" -xf - && sh \"\$s/install.sh\" \"\$s\" $q_root"

# The installer printed the next step on the Pi (fill in the config, pair a phone).
echo "deploy: done; the steps left are above, to run on the Pi: ssh -t $pi"
