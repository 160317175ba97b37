#!/usr/bin/env bash
# Idempotent installation of the Debian packages the ship/cross/system-test parts need.
#
#   cross/deps.sh            everything (cross toolchains, qemu, sshd, systemd-analyze, shellcheck)
#   cross/deps.sh system     only what tests/system needs without cross builds
#
# Safe to run repeatedly: packages already installed are skipped, and `apt-get update`
# runs only when something is missing. Never adds a foreign dpkg architecture (adding
# armhf breaks `apt-get update` on the mirrors used here); single foreign debs that the
# musl route needs are fetched by cross/build.sh with a private apt state instead.
set -euo pipefail

what=${1:-all}

system_pkgs=(openssh-server openssh-client systemd systemd-container make python3 python3-venv curl file shellcheck chromium
  busybox                                    # tests/system/openwrt.sh: the OpenWrt installer under BusyBox sh
  dpkg-dev lintian                           # make deb: dpkg-deb, dpkg-shlibdeps (host build); lintian in tests/system/deb.sh
  strace                                     # make bench: fdatasync/fsync per request
  tzdata                                     # src/rules/schedule.rs: DST tests against the real Europe/Berlin zone

  tmux                                       # tests/it/init_tmux.rs: `intercom init` typed into a real terminal
  mosquitto mosquitto-clients                # tests/it/mqtt.rs: a real broker, and mosquitto_sub/pub as Home Assistant
  faketime                                   # tests/it/clock.rs, tests/browser: libfaketime steps the server's wall clock
)
cross_pkgs=(
  rustc-web cargo-web rust-web-src          # Debian's rustc 1.96 + matching std source for -Zbuild-std
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross
  gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
  gcc-arm-linux-gnueabi binutils-arm-linux-gnueabi  # armv6: armel (ARMv5TE) gcc, musl + libgcc_eh from it
  qemu-user                                  # qemu-aarch64 / qemu-arm (no binfmt needed)
  file                                       # cross/deb.sh: whether the binary is static
  binutils-aarch64-linux-gnu binutils-arm-linux-gnueabihf
)

case "$what" in
  all) pkgs=("${system_pkgs[@]}" "${cross_pkgs[@]}") ;;
  system) pkgs=("${system_pkgs[@]}") ;;
  cross) pkgs=("${cross_pkgs[@]}") ;;
  *) echo "usage: $0 [all|system|cross]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#pkgs[@]} packages already installed"
  exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi

echo "deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "deps: done"
