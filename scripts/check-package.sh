#!/usr/bin/env bash
# Builds the Debian package from a built tree and checks it without
# installing anything on this machine:
#   - the control fields (name, dependencies, maintainer scripts, conffiles);
#   - the files it holds (dpkg -x into a scratch root);
#   - the maintainer scripts parse (sh -n) and create the ferry user;
#   - the unit passes `systemd-analyze verify` (its ExecStart pointed at the
#     extracted binary);
#   - the extracted ferryd accepts the packaged config and runs with it.
# Usage: scripts/check-package.sh BUILD_DIR   (CTest runs it as Package.Deb)
set -euo pipefail
build=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-package.XXXXXX")
ferryd_pid=
cleanup() {
  if [ -n "$ferryd_pid" ]; then kill "$ferryd_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  printf 'check-package: %s\n' "$*" >&2
  exit 1
}

cpack --config "$build/CPackConfig.cmake" -G DEB -B "$work/out" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log" >&2; fail "cpack failed"; }
deb=$(find "$work/out" -maxdepth 1 -name 'ferry_*.deb' | head -n 1)
[ -n "$deb" ] || fail "cpack made no ferry_*.deb"

field() { dpkg-deb --field "$deb" "$1"; }
[ "$(field Package)" = ferry ] || fail "Package is '$(field Package)'"
for dep in adduser libssl3 libuv1 libsqlite3-0 libinih1; do
  field Depends | grep -q "\b$dep\b" || fail "Depends lacks $dep: $(field Depends)"
done

dpkg-deb -x "$deb" "$work/root"
dpkg-deb -e "$deb" "$work/control"
for f in usr/bin/ferryd usr/bin/ferryctl usr/bin/ferry-bench etc/ferry/ferry.conf \
  lib/systemd/system/ferryd.service usr/share/bash-completion/completions/ferryctl \
  usr/share/doc/ferry/README.md usr/share/doc/ferry/tuning.md \
  usr/share/doc/ferry/examples/haproxy.cfg usr/share/doc/ferry/examples/central.conf; do
  [ -e "$work/root/$f" ] || fail "the package has no /$f"
done
[ -x "$work/root/usr/bin/ferryd" ] || fail "/usr/bin/ferryd is not executable"
grep -qx '/etc/ferry/ferry.conf' "$work/control/conffiles" || fail "ferry.conf is not a conffile"
for s in postinst prerm postrm; do
  [ -x "$work/control/$s" ] || fail "no executable $s"
  sh -n "$work/control/$s" || fail "$s does not parse"
done
grep -q 'adduser --system --group' "$work/control/postinst" || fail "postinst creates no ferry user"

conf="$work/root/etc/ferry/ferry.conf"
grep -qx 'data_dir = /var/lib/ferry' "$conf" || fail "packaged data_dir is not /var/lib/ferry"
"$work/root/usr/bin/ferryd" --version >/dev/null || fail "ferryd --version failed"
"$work/root/usr/bin/ferryd" --check-config -c "$conf" >/dev/null || fail "ferryd rejects the packaged config"

if command -v systemd-analyze >/dev/null 2>&1; then
  mkdir -p "$work/unit"
  sed "s|/usr/bin/ferryd|$work/root/usr/bin/ferryd|g" "$work/root/lib/systemd/system/ferryd.service" \
    >"$work/unit/ferryd.service"
  systemd-analyze verify --man=no "$work/unit/ferryd.service" ||
    fail "systemd-analyze verify refuses ferryd.service"
else
  echo "check-package: systemd-analyze not installed: unit not verified" >&2
fi

# Run the packaged binary with the packaged config, moved to free ports and
# a scratch data_dir, until it is ready; ask it with the packaged ferryctl;
# then stop it.
export FERRY_NODE__DATA_DIR="$work/data" FERRY_LISTENER__TCP__DEFAULT__BIND=127.0.0.1:0 \
  FERRY_ADMIN__HTTP_BIND=127.0.0.1:0
"$work/root/usr/bin/ferryd" -c "$conf" >"$work/ferryd.log" 2>&1 &
ferryd_pid=$!
for _ in $(seq 1 100); do
  grep -q ' ready node=' "$work/ferryd.log" && break
  kill -0 "$ferryd_pid" 2>/dev/null || { cat "$work/ferryd.log" >&2; fail "ferryd exited"; }
  sleep 0.1
done
grep -q ' ready node=' "$work/ferryd.log" || { cat "$work/ferryd.log" >&2; fail "ferryd not ready in 10 s"; }
"$work/root/usr/bin/ferryctl" -c "$conf" status | grep -q 'is started' ||
  fail "the packaged ferryctl cannot reach the packaged node"
kill -TERM "$ferryd_pid"
wait "$ferryd_pid" || { cat "$work/ferryd.log" >&2; fail "ferryd did not exit cleanly"; }
ferryd_pid=

echo "package OK: $(basename "$deb"), $(dpkg-deb -c "$deb" | wc -l) entries, Depends: $(field Depends)"
