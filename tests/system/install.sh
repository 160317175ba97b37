#!/usr/bin/env bash
# `make install PREFIX=/usr DESTDIR=tmp` (packagers): the binary, both units with ExecStart
# and Documentation moved to PREFIX, the examples; the installed unit still verifies.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/system/lib.sh
. "$here/lib.sh"
cd "$root"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
d=$tmp/pkg
if make --no-print-directory install PREFIX=/usr "DESTDIR=$d" ${INTERCOM_BIN:+"BIN=$INTERCOM_BIN"} > "$tmp/install.log" 2>&1; then
  pass "make install PREFIX=/usr DESTDIR=..."
else
  cat "$tmp/install.log"; die "make install failed"
fi
for f in usr/bin/intercom usr/lib/systemd/system/intercom.service usr/lib/systemd/system/intercom-tunnel.service \
         usr/share/intercom/tunnel.env.example usr/share/intercom/production.json.example \
         usr/share/man/man1/intercom.1 usr/share/doc/intercom/docs/config.md; do
  if [ -f "$d/$f" ]; then pass "installed /$f"; else fail "missing /$f"; fi
done
if [ -x "$d/usr/bin/intercom" ] && "$d/usr/bin/intercom" --version >/dev/null; then pass "installed binary runs"; else fail "installed binary does not run"; fi
unit=$d/usr/lib/systemd/system/intercom.service
if grep -qx 'ExecStart=/usr/bin/intercom serve --config /etc/intercom/intercom.json' "$unit"; then
  pass "ExecStart points at PREFIX/bin"
else
  fail "ExecStart: $(grep '^ExecStart' "$unit")"
fi
if grep -q '/usr/local' "$unit"; then fail "unit still mentions /usr/local"; else pass "no /usr/local left in the unit"; fi
sed "s#^ExecStart=/usr/bin/intercom #ExecStart=$d/usr/bin/intercom #" "$unit" > "$tmp/intercom.service"
if out=$(systemd-analyze verify "$tmp/intercom.service" 2>&1) && [ -z "$out" ]; then
  pass "installed unit verifies"
else
  fail "installed unit: $out"
fi
finish
