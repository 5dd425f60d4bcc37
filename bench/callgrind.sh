#!/usr/bin/env bash
# Instruction counts of ferryd for one load, measured with callgrind: a
# figure that does not depend on what else the machine is doing, for judging
# one optimisation before and after on a shared machine.
#
#   bench/callgrind.sh SCENARIO [--build DIR] [--workers N] [--keep]
#
# Scenarios (small loads: ferryd runs ~50x slower under valgrind):
#   fanin_q0   10 publishers -> 1 subscriber, QoS 0, 100,000 messages
#   fanin_q1   the same at QoS 1
#   fanout     1 publisher -> 20 subscribers, QoS 0, 10,000 messages
#   connect    2,000 clients connect and stay idle
#   retained   10,000 retained messages stored, then one `#` subscribe
#
# Counting starts once ferryd is ready (callgrind_control -z) and stops when
# the load is done (callgrind_control -d), so start-up and shutdown are left
# out. Prints ferryd's instructions (Ir) in all and per unit of work
# (delivered message or connection), and keeps the callgrind file for
# callgrind_annotate (--keep keeps the whole work directory).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"

scenario="${1:-}"
[[ -n "$scenario" && "$scenario" != -* ]] || { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
shift
build="${FERRY_BUILD:-$here/../build}"
workers=1
keep=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift ;;
    --workers) workers="$2"; shift ;;
    --keep) keep=1 ;;
    *) echo "callgrind.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
FERRYD="$build/ferryd"
BENCH="$build/ferry-bench"
for bin in "$FERRYD" "$BENCH"; do
  [[ -x "$bin" ]] || { echo "callgrind.sh: $bin not found" >&2; exit 2; }
done
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is needed" >&2; exit 2; }

WORK="$(mktemp -d /tmp/ferry-callgrind.XXXXXX)"
trap 'stop_all; [[ $keep == 1 ]] && echo "kept $WORK" >&2 || rm -rf "$WORK"' EXIT

# ferryd under callgrind, started like start_ferry does it.
mkdir -p "$WORK/data"
cat > "$WORK/ferry.conf" <<EOF
[node]
name = bench@127.0.0.1
data_dir = $WORK/data
workers = $workers
[listener.tcp.default]
bind = 127.0.0.1:0
[sys]
interval = 0
EOF
valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" \
  "$FERRYD" -c "$WORK/ferry.conf" 2> "$WORK/ferry.log" &
FERRY_PID=$!
if ! wait_until 120 grep -q ' ready node=' "$WORK/ferry.log"; then
  echo "ferryd did not start under valgrind; its log:" >&2; cat "$WORK/ferry.log" >&2; exit 1
fi
FERRY_PORT=$(grep -o 'tcp.default=[^ ]*' "$WORK/ferry.log" | head -1 | sed 's/.*://')
callgrind_control -z "$FERRY_PID" >/dev/null 2>&1

run() { "$BENCH" "$@" -h 127.0.0.1 -p "$FERRY_PORT" --json --quiet; }
case "$scenario" in
  fanin_q0|fanin_q1)
    q=${scenario#fanin_q}
    out=$(run pubsub -i 0 -c 10 --sub-clients 1 -t 'cg/in/%i' --sub-topic 'cg/in/+' -q "$q" \
      -I 0 -L 100000 --window 100 --drain-ms 10000)
    units=$(jq .received <<<"$out"); unit=message ;;
  fanout)
    out=$(run pubsub -i 0 -c 1 --sub-clients 20 -t 'cg/out' -q 0 -I 0 -L 10000 --window 200 \
      --drain-ms 10000)
    units=$(jq .received <<<"$out"); unit=message ;;
  connect)
    out=$(run conn -c 2000 -i 0 --max-connecting 32 -d 0.5)
    units=$(jq .connected <<<"$out"); unit=connection ;;
  retained)
    run pub -c 10 -i 0 -I 0 -q 1 -r -t 'cg/ret/%i/%s' -L 10000 >/dev/null
    out=$(run sub -c 1 -t 'cg/ret/#' -q 0 -L 10000 -d 120 --idle-ms 5000)
    units=$(jq .received <<<"$out"); unit=message ;;
  *) echo "callgrind.sh: unknown scenario '$scenario'" >&2; exit 2 ;;
esac
callgrind_control -d "$FERRY_PID" >/dev/null 2>&1
stop_pid "$FERRY_PID"; FERRY_PID=""

# The dump taken by -d is the one whose totals cover the load alone.
dump=$(ls -t "$WORK"/callgrind.out.*.* 2>/dev/null | tail -n 1)
[[ -n "$dump" ]] || { echo "callgrind.sh: no dump found" >&2; exit 1; }
ir=$(grep -E '^(summary|totals):' "$dump" | head -n 1 | awk '{print $2}')
echo "scenario $scenario, workers $workers: $units ${unit}s"
echo "ferryd Ir: $ir"
if [[ "$units" =~ ^[0-9]+$ && "$units" -gt 0 ]]; then
  echo "ferryd Ir per $unit: $(( ir / units ))"
fi
cp "$dump" "/tmp/callgrind.$scenario.out"
echo "annotate: callgrind_annotate /tmp/callgrind.$scenario.out | head -40"
