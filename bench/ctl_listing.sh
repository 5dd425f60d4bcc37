#!/usr/bin/env bash
# What listing many clients costs: times ferryctl's listings of N persistent
# sessions (one subscription each) and reads the node's peak memory before
# and after, to show that a listing streams instead of building its answer
# in memory.
#
#   bench/ctl_listing.sh                 100000 sessions, 2 workers
#   options: --clients N  --workers N  --build DIR (default build)
#
# Needs: ferryd and ferryctl built, python3, GNU time (/usr/bin/time). Only
# the ferryd this script started is stopped, by its PID.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

clients=100000
workers=2
build="${FERRY_BUILD:-$here/../build}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --clients) clients="$2"; shift ;;
    --workers) workers="$2"; shift ;;
    --build) build="$2"; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
FERRYD="$build/ferryd"
ctl="$build/ferryctl"
[[ -x $FERRYD && -x $ctl ]] || { echo "build ferryd and ferryctl in $build first" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "needs GNU time (/usr/bin/time)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/ferry-ctl-bench.XXXXXX")"
trap 'stop_all; rm -rf "$work"' EXIT
start_ferry "$work/ferry" "$workers"

echo "creating $clients persistent sessions with one subscription each ..."
python3 - "$FERRY_PORT" "$clients" <<'PY'
import socket, struct, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
def length(n):
    out = b''
    while True:
        d, n = n % 128, n // 128
        out += bytes([d | (0x80 if n else 0)])
        if not n:
            return out
def string(b):
    return struct.pack('>H', len(b)) + b
for i in range(n):
    head = string(b'MQTT') + bytes([4, 0]) + struct.pack('>H', 60)  # clean session 0
    body = head + string(b'bench-%07d' % i)
    c = socket.create_connection(('127.0.0.1', port))
    c.sendall(bytes([0x10]) + length(len(body)) + body)
    c.recv(4)
    sub = struct.pack('>H', 1) + string(b'bench/%d' % i) + bytes([1])
    c.sendall(bytes([0x82]) + length(len(sub)) + sub)
    c.recv(5)
    c.sendall(b'\xe0\x00')
    c.close()
PY

peak() { sed -n 's/^VmHWM:[[:space:]]*//p' "/proc/$FERRY_PID/status"; }
echo "ferryd peak RSS before the listings: $(peak)"
conf="$work/ferry/ferry.conf"
for cmd in "clients list --json" "clients list" "subscriptions list" "routes list" \
  "clients list --connected"; do
  # shellcheck disable=SC2086 # the command's words
  /usr/bin/time -f "%e s, ferryctl max RSS %M KB: ferryctl $cmd" \
    "$ctl" -c "$conf" $cmd 2>&1 >"$work/out" | tail -n 1
  echo "  $(wc -l <"$work/out") lines"
done
echo "ferryd peak RSS after the listings:  $(peak)"
