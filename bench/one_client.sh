#!/usr/bin/env bash
# What one misbehaving client costs everyone else, ferry beside Debian's
# mosquitto, on this machine.
#
#   bench/one_client.sh           3 repetitions, 10 s per throughput run
#   bench/one_client.sh --quick   1 repetition, 5 s
#   options: as bench/run.sh: --reps N --build DIR --only a,b --out FILE
#            --keep --nice N
#   scenarios:
#     stalled_q0  one publisher at full speed (ferry-bench pubsub, QoS 0) to
#                 a healthy subscriber of bench/slow: alone; beside a second
#                 healthy subscriber; beside a stalled subscriber of the same
#                 topic (it subscribes and never reads again,
#                 bench/raw_clients.py). The healthy subscriber's delivered
#                 rate in each run, and what the broker dropped for the
#                 stalled one
#     stalled_q1  the same at QoS 1 (publisher and every subscription)
#     partial     1,000 clients each send 21 bytes of a PUBLISH declaring
#                 1 MB and keep the connection open; then 1,000 clients send
#                 200 KB each of such a PUBLISH: the broker's RSS before,
#                 while they are held, and after they closed
#
# Needs what bench/run.sh needs. Only processes this script started are
# stopped, by their PID.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"

out=""
command_line="bench/one_client.sh $*"
script_option() { return 1; }
parse_options one_client.sh 22 "$@"
if [[ $quick == 1 ]]; then : "${reps:=1}"; DUR=5; else : "${reps:=3}"; DUR=10; fi

WORK="$(mktemp -d /tmp/ferry-one-client.XXXXXX)"
STALLED_PID=""
trap 'stop_stalled; stop_all; [[ $keep == 1 ]] && echo "results kept in $WORK" >&2 || rm -rf "$WORK"' EXIT
ROWS="$WORK/rows.tsv"  # scenario broker rep key value
: > "$ROWS"
row() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >> "$ROWS"; }

start() {
  if [[ $1 == mosquitto ]]; then start_mosquitto "$WORK/mosq"; PORT=$MOSQ_PORT PID=$MOSQ_PID
  else start_ferry "$WORK/ferry" 2; PORT=$FERRY_PORT PID=$FERRY_PID; fi
}
stop() { if [[ $1 == mosquitto ]]; then stop_pid "$MOSQ_PID"; MOSQ_PID=""; else stop_pid "$FERRY_PID"; FERRY_PID=""; fi; }

# A subscriber of bench/slow at QoS $1 that never reads (see raw_clients.py).
start_stalled() {
  python3 "$here/raw_clients.py" stalled "$PORT" bench/slow "$1" > "$WORK/stalled.out" &
  STALLED_PID=$!
  wait_until 10 grep -q ready "$WORK/stalled.out" || { echo "stalled subscriber did not start" >&2; exit 1; }
}
stop_stalled() { [[ -z "$STALLED_PID" ]] || stop_pid "$STALLED_PID"; STALLED_PID=""; }

# ferry's counter of messages dropped for `reason` (empty for mosquitto).
ferry_dropped() {
  local admin
  admin=$(grep -o 'admin.http=[^ ]*' "$WORK/ferry/ferry.log" | head -1 | sed 's/.*=//')
  local v
  v=$(curl -s "http://$admin/metrics" | sed -n "s/^ferry_messages_dropped_total{reason=\"$1\"} //p")
  echo "${v:-0}"
}

# One healthy subscriber's delivered rate (messages received over the -d
# seconds of publishing): alone, beside a second healthy
# subscriber (pair: ferry-bench's two subscribers, half their rate), or
# beside a stalled one.
#   stalled_run SCENARIO BROKER REP QOS alone|pair|stalled
stalled_run() {
  local s="$1" b="$2" rep="$3" q="$4" mode="$5" file="$WORK/$1.$2.$3.$5.json" subs=1
  start "$b"
  [[ $mode == stalled ]] && start_stalled "$q"
  [[ $mode == pair ]] && subs=2
  $NICE_CMD "$BENCH" pubsub -h 127.0.0.1 -p "$PORT" --broker-pid "$PID" -c 1 --sub-clients $subs \
    -t bench/slow -q "$q" -I 0 -d "$DUR" --window 1000 --drain-ms 2000 --json --quiet \
    > "$file" 2> "$file.err" || true
  # Over the whole publishing time: ferry-bench's recv_rate spans the first
  # to the last message received, which hides a publisher that stopped.
  row "$s" "$b" "$rep" "rate_$mode" "$(jq -r "(.received // empty) / $subs / $DUR" "$file")"
  if [[ $mode == stalled && $b == ferry ]]; then
    row "$s" "$b" "$rep" dropped "$(( $(ferry_dropped slow_client) + $(ferry_dropped queue_wait) ))"
  fi
  stop_stalled
  stop "$b"
}

scenario_stalled() {  # scenario_stalled NAME QOS REP BROKER
  local mode
  for mode in alone pair stalled; do stalled_run "$1" "$4" "$3" "$2" "$mode"; done
}
scenario_stalled_q0() { scenario_stalled stalled_q0 0 "$@"; }
scenario_stalled_q1() { scenario_stalled stalled_q1 1 "$@"; }

scenario_partial() {  # REP BROKER
  local rep="$1" b="$2" json
  for load in "1000 14" "1000 204800"; do
    start "$b"
    json=$(python3 "$here/raw_clients.py" partial "$PORT" "$PID" $load)
    local tag="partial_$(cut -d' ' -f2 <<< "$load")"
    for k in rss_before_kb rss_held_kb rss_after_kb closed_by_broker clients bytes_each; do
      row "$tag" "$b" "$rep" "$k" "$(jq -r ".$k" <<< "$json")"
    done
    stop "$b"
  done
}

SCENARIOS=(stalled_q0 stalled_q1 partial)
started=$(date +%s)
run_one() { "scenario_$1" "$3" "$2"; }
run_reps run_one

python3 - "$ROWS" "$reps" "$command_line" <<'PY' | tee ${out:+"$out"}
import statistics, sys
from collections import defaultdict
rows, reps, command = sys.argv[1], sys.argv[2], sys.argv[3]
v = defaultdict(list)
for line in open(rows):
    s, b, _rep, k, val = line.rstrip("\n").split("\t")
    if val not in ("", "null"):
        v[(s, b, k)].append(float(val))
med = lambda s, b, k: statistics.median(v[(s, b, k)]) if v[(s, b, k)] else None
num = lambda x, unit="": "—" if x is None else f"{x:,.0f}{unit}"
print(f"`{command}`: {reps} repetition(s), medians; ferryd workers = 2, mosquitto 2.0.11.\n")
print("| QoS | broker | healthy subscriber: alone | beside a healthy one | beside a stalled one "
      "| stalled ÷ healthy neighbour | dropped for the stalled one |")
print("|---|---|---|---|---|---|---|")
for s, label in (("stalled_q0", "0"), ("stalled_q1", "1")):
    for b in ("ferry", "mosquitto"):
        alone, pair, stalled = (med(s, b, "rate_" + m) for m in ("alone", "pair", "stalled"))
        if alone is None and stalled is None:
            continue
        change = "—" if not pair or stalled is None else f"{100 * (stalled - pair) / pair:+.1f}%"
        print(f"| {label} | {b} | {num(alone, ' msg/s')} | {num(pair, ' msg/s')} | "
              f"{num(stalled, ' msg/s')} | {change} | "
              f"{num(med(s, b, 'dropped')) if b == 'ferry' else 'not reported'} |")
print()
print("| partial packets | broker | RSS before | RSS while held | RSS after close | connections closed by the broker |")
print("|---|---|---|---|---|---|")
for s in ("partial_14", "partial_204800"):
    for b in ("ferry", "mosquitto"):
        if med(s, b, "clients") is None:
            continue
        what = f"{num(med(s, b, 'clients'))} × {num(med(s, b, 'bytes_each'))} B of a declared 1 MB PUBLISH"
        mb = lambda k: "—" if med(s, b, k) is None else f"{med(s, b, k) / 1024:,.1f} MB"
        print(f"| {what} | {b} | {mb('rss_before_kb')} | {mb('rss_held_kb')} | {mb('rss_after_kb')} | "
              f"{num(med(s, b, 'closed_by_broker'))} |")
PY
