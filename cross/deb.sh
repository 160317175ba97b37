#!/usr/bin/env bash
# Build a Debian package of intercom with dpkg-deb (no debhelper, no source package: the
# binary is static, so there is nothing to resolve).  `make deb TARGET=...`
#
#   cross/deb.sh TARGET       TARGET = aarch64 | armv7 | armv6 | host
#   BIN=path                  package this binary instead of building one (cross/build.sh)
#   DEB_VERSION=0.1.0+1       package version (default: Cargo.toml's version)
#   DEB_OUT=dir               output directory (default target/deb/TARGET)
#   DEB_MAINTAINER="Name <mail>"
#
# Prints the .deb path on the last line of stdout. Debian architectures: aarch64 -> arm64,
# armv7 -> armhf, host -> this machine's; armv6 -> armhf as well, because the static ARMv6
# binary runs on every armhf system, and Raspberry Pi OS on a Pi Zero / Pi 1 *is* armhf
# (an "armel" package would not install there).
#
# Contents: /usr/bin/intercom (and its man page, docs/intercom.1), both units in /lib/systemd/system (ExecStart /usr/bin),
# /etc/intercom/intercom.json (conffile, from configs/production.json), README, tunnel and
# config examples, copyright and changelog under /usr/share/doc/intercom. Maintainer
# scripts: packaging/debian/ (enable+start on install, restart on upgrade, stop on remove,
# purge removes config and state).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

die() { echo "cross/deb.sh: $*" >&2; exit 1; }
target=${1:-${TARGET:-}}
case "$target" in
  aarch64|arm64) target=aarch64; arch=arm64 ;;
  armv7|armhf) target=armv7; arch=armhf ;;
  armv6|armel) target=armv6; arch=armhf ;;
  host|"") target=host; arch=$(dpkg --print-architecture) ;;
  *) die "unknown TARGET '$target' (aarch64, armv7, armv6 or host)" ;;
esac
command -v dpkg-deb >/dev/null || die "dpkg-deb missing: apt-get install dpkg-dev (cross/deps.sh)"

version=${DEB_VERSION:-$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)}
[[ "$version" =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || die "bad package version '$version'"
maintainer=${DEB_MAINTAINER:-intercom maintainers <intercom@example.org>}
out=${DEB_OUT:-$root/target/deb/$target}

bin=${BIN:-}
if [ -z "$bin" ]; then bin=$(cross/build.sh "$target" | tail -n1); fi
[ -x "$bin" ] || die "no binary at $bin"

pkg=$(mktemp -d)
trap 'rm -rf "$pkg" "$pkg.shlibs"' EXIT
chmod 0755 "$pkg"
umask 022
doc=$pkg/usr/share/doc/intercom
install -d "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/lib/systemd/system" "$pkg/etc/intercom" "$doc/examples"
install -m 0755 "$bin" "$pkg/usr/bin/intercom"
for u in intercom.service intercom-tunnel.service; do
  sed -e 's#/usr/local/bin/intercom#/usr/bin/intercom#g' \
      -e 's#/usr/local/share/doc/intercom#/usr/share/doc/intercom#g' \
      -e 's#/usr/local/share/intercom#/usr/share/doc/intercom/examples#g' \
      -e 's#make deploy / make install#the intercom .deb#' \
      "systemd/$u" > "$pkg/lib/systemd/system/$u"
  chmod 0644 "$pkg/lib/systemd/system/$u"
  if grep -n '/usr/local' "$pkg/lib/systemd/system/$u" >&2; then die "$u still points into /usr/local"; fi
done
install -d "$pkg/usr/share/man/man1"
gzip -9n < docs/intercom.1 > "$pkg/usr/share/man/man1/intercom.1.gz"
chmod 0644 "$pkg/usr/share/man/man1/intercom.1.gz"
install -m 0644 configs/production.json "$pkg/etc/intercom/intercom.json"
install -m 0644 README.md "$doc/README.md"
install -d "$doc/docs"
install -m 0644 docs/*.md "$doc/docs/"
install -m 0644 systemd/tunnel.env.example "$doc/examples/tunnel.env.example"
install -m 0644 configs/production.json "$doc/examples/intercom.json"
year=$(git log -1 --format=%cd --date=format:%Y 2>/dev/null || date +%Y)
cat > "$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: intercom
Comment: Built from the intercom repository with cross/deb.sh. The binary statically
 links Rust crates (see Cargo.lock) under MIT and/or Apache-2.0 or compatible licenses,
 and musl libc (MIT) on ARM.

Files: *
Copyright: $year intercom contributors
License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy of this
 software and associated documentation files (the "Software"), to deal in the Software
 without restriction, including without limitation the rights to use, copy, modify,
 merge, publish, distribute, sublicense, and/or sell copies of the Software, and to
 permit persons to whom the Software is furnished to do so, subject to the following
 conditions:
 .
 The above copyright notice and this permission notice shall be included in all copies
 or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
 INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A
 PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT
 HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF
 CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR
 THE USE OR OTHER DEALINGS IN THE SOFTWARE.
EOF
chmod 0644 "$doc/copyright"
# A native package's changelog (policy 12.7); the date is the last commit's, so rebuilding
# the same commit gives the same file.
when=$(git log -1 --format=%cD 2>/dev/null || date -R)
printf 'intercom (%s) unstable; urgency=medium\n\n  * Built from %s.\n\n -- %s  %s\n' \
  "$version" "$(git describe --always --dirty 2>/dev/null || echo 'the source tree')" "$maintainer" "$when" \
  | gzip -9n > "$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"
depends=
if file -b "$bin" | grep -Eq 'statically linked|static-pie linked'; then
  # The ARM builds are static on purpose (one file, no libc dependency): tell lintian.
  install -d "$pkg/usr/share/lintian/overrides"
  printf 'intercom: statically-linked-binary [usr/bin/intercom]\n' > "$pkg/usr/share/lintian/overrides/intercom"
  chmod 0644 "$pkg/usr/share/lintian/overrides/intercom"
else
  # A host build links glibc dynamically: let dpkg-shlibdeps name the libraries.
  mkdir -p "$pkg.shlibs/debian"
  printf 'Source: intercom\n\nPackage: intercom\nArchitecture: any\n' > "$pkg.shlibs/debian/control"
  depends=$(cd "$pkg.shlibs" && dpkg-shlibdeps -O -e"$pkg/usr/bin/intercom" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
  rm -rf "$pkg.shlibs"
  [ -n "$depends" ] || die "dpkg-shlibdeps found no dependencies for the dynamic binary $bin"
  # build.rs packs relocations as RELR when it links against glibc >= 2.36; dpkg-shlibdeps
  # sees only the symbols (2.34) and not the loader feature the binary needs.
  if readelf -V "$bin" 2>/dev/null | grep -q GLIBC_ABI_DT_RELR; then
    depends=$(printf '%s' "$depends" | sed -E 's/libc6 \(>= [0-9.]+\)/libc6 (>= 2.36)/')
  fi
fi

for s in postinst prerm postrm; do install -m 0755 "packaging/debian/$s" "$pkg/DEBIAN/$s"; done
echo /etc/intercom/intercom.json > "$pkg/DEBIAN/conffiles"
(cd "$pkg" && find usr lib -type f -print0 | sort -z | xargs -0 md5sum) > "$pkg/DEBIAN/md5sums"
cat > "$pkg/DEBIAN/control" <<EOF
Package: intercom
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
${depends:+Depends: $depends
}Recommends: ca-certificates
Section: net
Priority: optional
Description: Twilio building-intercom door opener
 intercom answers Twilio's voice webhook for a building intercom: during an
 open window it plays the door-unlock tones, otherwise it forwards the call to
 the resident's phone, and it rejects callers that are not the intercom. A
 control page and API on the LAN open and close the window.
 .
 Set it up with "intercom init" (or edit /etc/intercom/intercom.json), start
 it with "systemctl start intercom", then pair each phone with "intercom pair".
EOF
chmod 0644 "$pkg/DEBIAN/control" "$pkg/DEBIAN/conffiles" "$pkg/DEBIAN/md5sums"

mkdir -p "$out"
deb=$out/intercom_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >&2
echo "built $deb ($(stat -c %s "$deb") bytes, $target binary $(stat -c %s "$bin") bytes)" >&2
echo "$deb"
