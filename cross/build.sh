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
#     ARMv6 (Pi Zero / Pi 1) is `arm-unknown-linux-musleabi` (ARMv6, soft-float ABI): it
#     links against Debian's armel packages (ARMv5TE code, which an ARMv6 CPU runs):
#     gcc-arm-linux-gnueabi as the driver, musl-dev:armel, and, since Debian has no LLVM
#     libunwind for armel, the cross gcc's own libgcc_eh.a (the ARM EHABI unwinder) as
#     libunwind.a. Static, so it also runs on the hard-float Raspberry Pi OS.
#     (The hard-float `arm-unknown-linux-musleabihf` stays rustup-only: Debian's armhf is ARMv7.)
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
  armv6|armv6l|arm|armel) triple="arm-unknown-linux-${libc}eabi" ;;
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
  arm-*eabihf) gnuprefix=arm-linux-gnueabihf; debarch=; muslarch= ;;
  arm-*eabi|armv5te-*eabi) gnuprefix=arm-linux-gnueabi; debarch=armel; muslarch=arm-linux-musleabi ;;
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
  Debian cannot link this target here (hard-float ARMv6 needs an ARMv6 hard-float libc; Debian's armhf is ARMv7;
  for a Pi Zero / Pi 1 use TARGET=armv6, i.e. the soft-float arm-unknown-linux-musleabi, which Debian's armel can link).
  Alternatives: 'cross build --release --target $triple' (Docker/Podman), see 'Cross-compiling on your own machine' in docs/install-and-tunnel.md."
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
    echo "deb [arch=arm64,armhf,armel] http://deb.debian.org/debian bookworm main" > "$apt_dir/sources.list"
    apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
      -o APT::Architectures::=arm64 -o APT::Architectures::=armhf -o APT::Architectures::=armel
      -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
      -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
      -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
    # (Re-)read the index when this architecture's is missing (an older state had no armel).
    if ! compgen -G "$apt_dir/lists/*binary-${debarch}_Packages*" >/dev/null; then
      apt-get "${apt_opts[@]}" -qq update >&2
    fi
    # Debian builds no LLVM libunwind for armel: there the cross gcc's libgcc_eh.a serves.
    debs=("musl-dev:$debarch")
    if [ "$debarch" != armel ]; then debs+=("libunwind-14-dev:$debarch"); fi
    (cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" -qq download "${debs[@]}" >&2)
    for d in "${debs[@]}"; do
      deb=$(compgen -G "$apt_dir/debs/${d%%:*}_*_$debarch.deb" | sort -V | tail -n1)
      dpkg-deb -x "$deb" "$sysroot"
    done
    # gcc wrapper: Debian's musl specs with /usr paths moved into our sysroot.
    sed "s#/usr/#$sysroot/usr/#g" "$sysroot/usr/lib/$muslarch/musl-gcc.specs" > "$sysroot/musl-gcc.specs"
    cat > "$sysroot/musl-gcc" <<WRAP
#!/bin/sh
exec $gnuprefix-gcc "\$@" -specs "$sysroot/musl-gcc.specs"
WRAP
    chmod +x "$sysroot/musl-gcc"
    mkdir -p "$sysroot/unwind"
    if [ "$debarch" = armel ]; then
      # Rust's musl std links `-lunwind`; on ARM it only needs the EHABI entry points
      # (_Unwind_RaiseException, _Unwind_VRS_*, __aeabi_unwind_cpp_pr*), which gcc's
      # libgcc_eh.a has. It finds the unwind tables through __exidx_start/__exidx_end (its
      # glibc hook __gnu_Unwind_Find_exidx is a weak reference), so musl needs no shim.
      cp "$("$gnuprefix-gcc" -print-file-name=libgcc_eh.a)" "$sysroot/unwind/libunwind.a"
    else
      # LLVM libunwind (what Rust's musl std expects), plus a shim for glibc's __fprintf_chk.
      cp "$sysroot/usr/lib/llvm-14/lib/libunwind.a" "$sysroot/unwind/libunwind.a"
      cat > "$sysroot/unwind/fprintf_chk.c" <<'SHIM'
#include <stdarg.h>
#include <stdio.h>
int __fprintf_chk(FILE *f, int flag, const char *fmt, ...)
{ va_list ap; va_start(ap, fmt); int r = vfprintf(f, fmt, ap); va_end(ap); (void)flag; return r; }
SHIM
      "$sysroot/musl-gcc" -O2 -c "$sysroot/unwind/fprintf_chk.c" -o "$sysroot/unwind/fprintf_chk.o"
      "$gnuprefix-ar" rcs "$sysroot/unwind/libunwind.a" "$sysroot/unwind/fprintf_chk.o"
    fi
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
