#!/usr/bin/env bash
# What makes the binary large: the stripped sizes by section, and, when cargo-bloat is
# installed (`cargo install cargo-bloat`; optional), the .text per crate and the largest
# functions of the host release build. BENCHMARKS.md ("Binary size") has the figures.
#
#   bench/size.sh            host build (a release build with symbols in target/bloat)
#   N=40 bench/size.sh       more functions
#
# The ARM binaries are measured as `make cross` leaves them (target/cross/...), by section
# only: cargo-bloat needs symbols, and those builds are stripped.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
: "${N:=25}"

sections() {  # BINARY [SIZE-TOOL]
  local tool=${2:-size}
  command -v "$tool" >/dev/null || tool=size
  echo "-- $1: $(stat -c %s "$1") bytes; largest sections:"
  "$tool" -A "$1" | awk 'NR > 2 && $2 > 4096 {printf "   %-20s %9d\n", $1, $2}' | sort -k2 -n -r
}

cargo build --release --locked --bin intercom >&2
stripped=$(mktemp)
trap 'rm -f "$stripped"' EXIT
strip -o "$stripped" target/release/intercom
sections "$stripped"
for b in target/cross/*/release/intercom; do
  [ -f "$b" ] || continue
  case $b in
    *aarch64*) sections "$b" aarch64-linux-gnu-size ;;
    *arm*) sections "$b" arm-linux-gnueabihf-size ;;
  esac
done

if cargo bloat --version >/dev/null 2>&1; then
  # Symbols are needed, so a release build without `strip`, in its own target dir.
  export CARGO_PROFILE_RELEASE_STRIP=false CARGO_TARGET_DIR=$root/target/bloat
  echo "-- .text by crate (cargo bloat --crates; estimates)"
  cargo bloat --release --locked --bin intercom --crates -n 20 2>/dev/null
  echo "-- largest functions"
  cargo bloat --release --locked --bin intercom -n "$N" 2>/dev/null
else
  echo "-- cargo-bloat is not installed (optional: cargo install cargo-bloat): no per-crate breakdown"
fi
