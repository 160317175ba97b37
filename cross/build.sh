#!/usr/bin/env bash
# Build a stripped, static `intercom` for a Raspberry Pi (or the host).
#
#   cross/build.sh TARGET        TARGET = aarch64 | armv7 | armv6 | host | a full Rust triple
#   LIBC=musl|gnu cross/build.sh aarch64     (default musl; gnu = static glibc)
#
# Prints the binary path on the last line of stdout (scripts use `| tail -n1`), and its
# size and build time on stderr.
#
# Two routes, chosen per target:
#  1. rustup route (anyone with internet): `rustc --print target-libdir --target T` holds a
#     libstd, i.e. `rustup target add T` was done. Plain `cargo build --release --target T`;
#     linker / runner / crt-static come from .cargo/config.toml.
#  2. Debian route (machines where rustup cannot download targets, like our CI): Debian's
#     rustc-web 1.96 + rust-web-src (matching std source), RUSTC_BOOTSTRAP=1 and
#     -Zbuild-std=std. For musl, Debian has no Rust musl sysroot, so this script assembles
#     one under target/cross/sysroot/: musl-dev and LLVM libunwind debs for the target
#     architecture fetched with a private apt state (no foreign dpkg architecture is added)
#     and unpacked with dpkg-deb -x, a gcc wrapper using musl's specs file, and a tiny C
#     shim for the one glibc symbol (__fprintf_chk) that Debian's libunwind.a references.
#     ARMv6 is impossible on this route: Debian has no ARMv6 libc (armhf is ARMv7).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

die() { echo "cross/build.sh: $*" >&2; exit 1; }

arg=${1:-${TARGET:-}}
[ -n "$arg" ] || die "usage: cross/build.sh aarch64|armv7|armv6|host|<rust triple>"
libc=${LIBC:-musl}
case "$libc" in musl|gnu) ;; *) die "LIBC must be musl or gnu, not '$libc'" ;; esac

case "$arg" in
  aarch64|arm64) triple="aarch64-unknown-linux-$libc" ;;
  armv7|armv7l|armhf) triple="armv7-unknown-linux-${libc}eabihf" ;;
  armv6|armv6l|arm) triple="arm-unknown-linux-${libc}eabihf" ;;
  host|x86_64) triple=host ;;
  *-*-*) triple="$arg" ;;
  *) die "unknown target '$arg' (aarch64, armv7, armv6, host or a Rust triple)" ;;
esac

start=$(date +%s)

report() {
  local bin=$1 size
  size=$(stat -c %s "$bin")
  echo "built $triple in $(( $(date +%s) - start ))s: $bin ($size bytes, $(awk "BEGIN{printf \"%.2f\", $size/1048576}") MiB)" >&2
  if command -v file >/dev/null; then file -b "$bin" >&2; fi
  echo "$bin"
}

if [ "$triple" = host ]; then
  cargo build --release --locked >&2
  report "${CARGO_TARGET_DIR:-$root/target}/release/intercom"
  exit 0
fi
# Cross builds get their own target dir: another rustc (Debian's) and -Zbuild-std.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/cross}"

# Upper-case triple with _ for cargo's / cc's environment variable names.
tenv=$(echo "$triple" | tr 'a-z-' 'A-Z_')
tcc=$(echo "$triple" | tr '-' '_')

case "$triple" in
  aarch64-*) gnuprefix=aarch64-linux-gnu; debarch=arm64; muslarch=aarch64-linux-musl ;;
  armv7-*|thumbv7neon-*) gnuprefix=arm-linux-gnueabihf; debarch=armhf; muslarch=arm-linux-musleabihf ;;
  arm-*) gnuprefix=arm-linux-gnueabihf; debarch=; muslarch= ;;
  *) gnuprefix=; debarch=; muslarch= ;;
esac

has_rustup_std() {
  local dir
  dir=$(rustc --print target-libdir --target "$triple" 2>/dev/null) || return 1
  compgen -G "$dir/libstd-*.rlib" >/dev/null
}

bin="$CARGO_TARGET_DIR/$triple/release/intercom"

if has_rustup_std; then
  echo "route: rustup target $triple is installed -> plain cargo build" >&2
  cargo build --release --locked --target "$triple" >&2
  report "$bin"
  exit 0
fi

# ---- Debian route ---------------------------------------------------------------------
if [ -z "$debarch" ]; then
  die "no Rust standard library for $triple: run 'rustup target add $triple' (needs internet).
  Debian cannot link this target here (ARMv6 needs an ARMv6 libc; Debian's armhf is ARMv7).
  Alternatives: 'cross build --release --target $triple' (Docker/Podman), see 'Cross-compiling on your own machine' in the README."
fi
if ! [ -x /usr/bin/rustc ] || ! [ -x /usr/bin/cargo ] || ! [ -d /usr/lib/rustlib/src/rust/library ]; then
  die "no rustup target $triple and no Debian rustc-web/cargo-web/rust-web-src: run cross/deps.sh (or 'rustup target add $triple')"
fi
command -v "$gnuprefix-gcc" >/dev/null || die "$gnuprefix-gcc missing: run cross/deps.sh"

echo "route: Debian rustc-web $(/usr/bin/rustc --version | cut -d' ' -f2) + -Zbuild-std for $triple" >&2
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
extra_flags=()

if [ "$libc" = musl ]; then
  sysroot="$CARGO_TARGET_DIR/sysroot/$triple"
  if [ ! -f "$sysroot/.ready" ]; then
    echo "assembling musl sysroot in $sysroot" >&2
    rm -rf "$sysroot"; mkdir -p "$sysroot"
    apt_dir="$CARGO_TARGET_DIR/sysroot/apt"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"
    echo "deb [arch=arm64,armhf] http://deb.debian.org/debian bookworm main" > "$apt_dir/sources.list"
    apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
      -o APT::Architectures::=arm64 -o APT::Architectures::=armhf
      -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
      -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
      -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
    if ! compgen -G "$apt_dir/lists/*_Packages*" >/dev/null; then
      apt-get "${apt_opts[@]}" -qq update >&2
    fi
    (cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" -qq download "musl-dev:$debarch" "libunwind-14-dev:$debarch" >&2)
    for deb in "$apt_dir"/debs/musl-dev_*_"$debarch".deb "$apt_dir"/debs/libunwind-14-dev_*_"$debarch".deb; do
      dpkg-deb -x "$deb" "$sysroot"
    done
    # gcc wrapper: Debian's musl specs with /usr paths moved into our sysroot.
    sed "s#/usr/#$sysroot/usr/#g" "$sysroot/usr/lib/$muslarch/musl-gcc.specs" > "$sysroot/musl-gcc.specs"
    cat > "$sysroot/musl-gcc" <<WRAP
#!/bin/sh
exec $gnuprefix-gcc "\$@" -specs "$sysroot/musl-gcc.specs"
WRAP
    chmod +x "$sysroot/musl-gcc"
    # LLVM libunwind (what Rust's musl std expects), plus a shim for glibc's __fprintf_chk.
    mkdir -p "$sysroot/unwind"
    cp "$sysroot/usr/lib/llvm-14/lib/libunwind.a" "$sysroot/unwind/libunwind.a"
    cat > "$sysroot/unwind/fprintf_chk.c" <<'SHIM'
#include <stdarg.h>
#include <stdio.h>
int __fprintf_chk(FILE *f, int flag, const char *fmt, ...)
{ va_list ap; va_start(ap, fmt); int r = vfprintf(f, fmt, ap); va_end(ap); (void)flag; return r; }
SHIM
    "$sysroot/musl-gcc" -O2 -c "$sysroot/unwind/fprintf_chk.c" -o "$sysroot/unwind/fprintf_chk.o"
    "$gnuprefix-ar" rcs "$sysroot/unwind/libunwind.a" "$sysroot/unwind/fprintf_chk.o"
    touch "$sysroot/.ready"
  fi
  export "CARGO_TARGET_${tenv}_LINKER=$sysroot/musl-gcc"
  export "CC_${tcc}=$sysroot/musl-gcc" "AR_${tcc}=$gnuprefix-ar"
  extra_flags=(-C link-self-contained=no -L "native=$sysroot/unwind")
fi

# Append (not replace) the portable rustflags from .cargo/config.toml.
flags_toml=$(printf '"%s",' "${extra_flags[@]}")
# std without its `backtrace` feature (cargo's default adds it): the symbolizer (gimli,
# addr2line, miniz_oxide, object) has nothing to read in a stripped release binary, whose
# backtraces print <unknown> frames anyway. A panic still prints its message and
# file:line, and still unwinds (panic-unwind kept). About 100 KiB (see BENCHMARKS.md).
: "${STD_FEATURES:=panic-unwind}"
/usr/bin/cargo build --release --locked --target "$triple" -Zbuild-std=std \
  -Zbuild-std-features="$STD_FEATURES" \
  ${extra_flags[0]+--config "target.$triple.rustflags=[${flags_toml%,}]"} >&2
report "$bin"
