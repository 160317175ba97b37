#!/usr/bin/env bash
# Builds intercom for x86_64-unknown-linux-musl: the same libc and allocator (musl's
# mallocng) as the static ARM binaries a Pi runs, but native, so its memory and speed
# can be measured here without an emulator's overhead:
#
#   bench/build-musl-host.sh && make bench     # make bench then measures it beside the glibc build
#
# Route: Debian's rustc-web + rust-web-src with -Zbuild-std (rustup cannot download a
# musl target on machines without internet), musl-gcc as the linker, LLVM's libunwind for
# panic = "unwind", plus a shim for the one glibc symbol (__fprintf_chk) that Debian's
# libunwind.a references. Needs: apt-get install -y rustc-web cargo-web rust-web-src
# musl-tools libunwind-14-dev. About 3-6 minutes on 2 cores.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
triple=x86_64-unknown-linux-musl
export CARGO_TARGET_DIR=$root/target/bench-musl
for f in /usr/bin/rustc /usr/bin/cargo /usr/bin/musl-gcc /usr/lib/llvm-14/lib/libunwind.a; do
  [ -e "$f" ] || { echo "build-musl-host: $f missing (apt-get install -y rustc-web cargo-web rust-web-src musl-tools libunwind-14-dev)" >&2; exit 1; }
done
unwind=$CARGO_TARGET_DIR/unwind
mkdir -p "$unwind"
cp /usr/lib/llvm-14/lib/libunwind.a "$unwind/libunwind.a"
cat > "$unwind/fprintf_chk.c" <<'SHIM'
#include <stdarg.h>
#include <stdio.h>
int __fprintf_chk(FILE *f, int flag, const char *fmt, ...)
{ va_list ap; va_start(ap, fmt); int r = vfprintf(f, fmt, ap); va_end(ap); (void)flag; return r; }
SHIM
musl-gcc -O2 -c "$unwind/fprintf_chk.c" -o "$unwind/fprintf_chk.o"
ar rcs "$unwind/libunwind.a" "$unwind/fprintf_chk.o"

export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER=musl-gcc CC_x86_64_unknown_linux_musl=musl-gcc
# The same std as cross/build.sh's ARM binaries: without the backtrace symbolizer.
/usr/bin/cargo build --release --locked --target "$triple" -Zbuild-std=std \
  -Zbuild-std-features="${STD_FEATURES:-panic-unwind}" --bin intercom \
  --config "target.$triple.rustflags=[\"-C\",\"target-feature=+crt-static\",\"-C\",\"link-self-contained=no\",\"-L\",\"native=$unwind\"]" >&2
bin=$CARGO_TARGET_DIR/$triple/release/intercom
echo "built $bin ($(stat -c %s "$bin") bytes)" >&2
echo "$bin"
