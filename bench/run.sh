#!/usr/bin/env bash
# ferry beside Debian's mosquitto, on this machine, in one command.
#
# Starts a fresh ferryd and a fresh mosquitto (loopback only, configs written
# here) for every scenario and repetition, drives both with ferry-bench,
# alternating which broker goes first, and prints a table of medians and
# ferry ÷ mosquitto ratios.
#
#   bench/run.sh                 ~10 minutes: 3 repetitions
#   bench/run.sh --quick         ~1 minute: 1 repetition, smaller loads
#   options: --reps N  --build DIR (where ferryd and ferry-bench are; default
#            build)  --only a,b  (scenario names)  --out FILE (table copy)
#            --results FILE (write machine, load, command and table into
#            FILE between the markers run.sh leaves there, e.g.
#            bench/RESULTS.md; the rest of FILE is kept)
#            --keep (keep the work directory with every JSON result and log)
#            --nice N (run brokers and ferry-bench at this niceness, e.g. -10
#            on a machine busy with other work, so that the scheduler shares
#            the CPU between the three and not with unrelated jobs)
#   scenarios: fanin_q0 fanin_q1 fanout latency pair_q0_apart pair_q0_same
#              pair_q1_apart pair_q1_same idle connect64 burst retained offline
#              workers1
#
# Needs: ferryd and ferry-bench built (cmake --build build --target ferryd
# ferry-bench), /usr/sbin/mosquitto, jq, python3. Only processes this script
# started are stopped, by their PID.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"

out=""
results=""
command_line="bench/run.sh $*"
script_option() {
  SHIFTS=2
  case "$1" in
    --results) results="$2" ;;
    *) return 1 ;;
  esac
}
parse_options run.sh 25 "$@"
command -v jq >/dev/null || { echo "run.sh: jq is needed" >&2; exit 2; }

if [[ $quick == 1 ]]; then
  : "${reps:=1}"; DUR=3; CONNS=5000; RETAINED=20000; OFFLINE=20000
else
  : "${reps:=3}"; DUR=10; CONNS=18000; RETAINED=100000; OFFLINE=100000
fi
# Each idle client costs ferry-bench one descriptor and the broker one: keep
# both below the open-file limit they inherit from this shell.
NOFILE=$(ulimit -n)
if [[ $NOFILE != unlimited ]] && (( CONNS > NOFILE - 1000 )); then
  CONNS=$(( NOFILE - 1000 ))
  echo "run.sh: ulimit -n is $NOFILE; idle scenario uses $CONNS connections" >&2
fi

WORK="$(mktemp -d /tmp/ferry-bench-run.XXXXXX)"
trap 'stop_all; [[ $keep == 1 ]] && echo "results kept in $WORK" >&2 || rm -rf "$WORK"' EXIT
RESULTS="$WORK/results.tsv"   # scenario  broker  rep  json-file
: > "$RESULTS"

# One ferry-bench run against the running broker; stores its JSON.
#   bench NAME BROKER REP ARGS...
bench() {
  local name="$1" broker="$2" rep="$3"; shift 3
  local port pid
  if [[ $broker == mosquitto ]]; then port=$MOSQ_PORT pid=$MOSQ_PID; else port=$FERRY_PORT pid=$FERRY_PID; fi
  local file="$WORK/$name.$broker.$rep.json"
  local before after t0 t1
  before=$(cpu_busy_ticks); t0=$(date +%s%N)
  $NICE_CMD "$BENCH" "$@" -h 127.0.0.1 -p "$port" --broker-pid "$pid" --json --quiet > "$file" 2> "$file.err" || true
  after=$(cpu_busy_ticks); t1=$(date +%s%N)
  [[ -s "$file" ]] || echo '{}' > "$file"
  # What the whole machine was busy with during the run: beside the broker
  # and ferry-bench, that is everyone else's load (see table.py).
  jq --argjson ticks $(( after - before )) --argjson hz "$(getconf CLK_TCK)" \
    --argjson wall "$(( (t1 - t0) / 1000000 ))" \
    '. + {machine_cpu_s: ($ticks / $hz), wall_s: ($wall / 1000)}' \
    "$file" > "$file.tmp" && mv "$file.tmp" "$file"
}

# Busy clock ticks of all CPUs so far (user, nice, system, irq, softirq, steal).
cpu_busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }

record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$WORK/$1.$2.$3.json" >> "$RESULTS"; }

start() {  # start BROKER [ferry workers] [extra config]
  if [[ $1 == mosquitto ]]; then start_mosquitto "$WORK/mosq" "${3:-}"; else start_ferry "$WORK/ferry" "${2:-2}" "${3:-}"; fi
}
stop() { if [[ $1 == mosquitto ]]; then stop_pid "$MOSQ_PID"; MOSQ_PID=""; else stop_pid "$FERRY_PID"; FERRY_PID=""; fi; }

PUBSUB=(pubsub -i 0 --drain-ms 2000)

scenario_fanin_q0() { start "$2"; bench fanin_q0 "$2" "$1" "${PUBSUB[@]}" -c 100 --sub-clients 1 -t 'bench/in/%i' --sub-topic 'bench/in/+' -q 0 -I 0 -d $DUR --window 100; stop "$2"; record fanin_q0 "$2" "$1"; }
scenario_fanin_q1() { start "$2"; bench fanin_q1 "$2" "$1" "${PUBSUB[@]}" -c 100 --sub-clients 1 -t 'bench/in/%i' --sub-topic 'bench/in/+' -q 1 -I 0 -d $DUR --window 100; stop "$2"; record fanin_q1 "$2" "$1"; }
scenario_fanout() { start "$2"; bench fanout "$2" "$1" "${PUBSUB[@]}" -c 1 --sub-clients 100 -t 'bench/out' -q 0 -I 0 -d $DUR --window 1000; stop "$2"; record fanout "$2" "$1"; }
scenario_latency() { start "$2"; bench latency "$2" "$1" "${PUBSUB[@]}" -c 100 --sub-clients 1 -t 'bench/lat/%i' --sub-topic 'bench/lat/+' -q 0 -I 10 -d $DUR; stop "$2"; record latency "$2" "$1"; }
# One publisher to one subscriber at a steady 10,000 msg/s, 64-byte payloads:
# what one message costs when it crosses from one worker to another, or not.
# With workers = 2, ferryd puts a client on the worker its id hashes to
# (libstdc++'s std::hash): ids lat1-a-0 and lat1-a-0-sub land on different
# workers, lat1-b-0 and lat1-b-0-sub on the same one. mosquitto has one
# thread either way.
pair() {  # pair SCENARIO BROKER REP QOS IDS
  start "$2"
  bench "$1" "$2" "$3" "${PUBSUB[@]}" -c 1 --sub-clients 1 --id "$5" -t bench/pair -q "$4" -I 0.1 -s 64 -d $DUR
  stop "$2"; record "$1" "$2" "$3"
}
scenario_pair_q0_apart() { pair pair_q0_apart "$2" "$1" 0 'lat1-a-%i'; }
scenario_pair_q0_same() { pair pair_q0_same "$2" "$1" 0 'lat1-b-%i'; }
scenario_pair_q1_apart() { pair pair_q1_apart "$2" "$1" 1 'lat1-a-%i'; }
scenario_pair_q1_same() { pair pair_q1_same "$2" "$1" 1 'lat1-b-%i'; }
scenario_idle() {
  start "$2"
  # Three source addresses: one would have more than half of its ephemeral
  # ports in use, and the kernel's port search would slow the connects down.
  bench idle "$2" "$1" conn -c $CONNS -i 0 --max-connecting 32 -k 600 -d 2 --ifaddr 127.0.0.1,127.0.0.2,127.0.0.3
  stop "$2"; record idle "$2" "$1"
}
# The same clients, 256 connecting at once (a reconnect storm after a network
# blip): with 32 at a time the rate is bound by the round trips, not by the
# broker.
scenario_burst() {
  start "$2"
  bench burst "$2" "$1" conn -c $CONNS -i 0 --max-connecting 256 -k 600 -d 2 --ifaddr 127.0.0.1,127.0.0.2,127.0.0.3
  stop "$2"; record burst "$2" "$1"
}
# Clients arriving a few at a time: 64 connecting at once.
scenario_connect64() {
  start "$2"
  bench connect64 "$2" "$1" conn -c $CONNS -i 0 --max-connecting 64 -k 600 -d 2 --ifaddr 127.0.0.1,127.0.0.2,127.0.0.3
  stop "$2"; record connect64 "$2" "$1"
}
scenario_retained() {
  start "$2"
  bench retained_store "$2" "$1" pub -c 10 -i 0 -I 0 -q 1 -r -t 'bench/ret/%i/%s' -L $RETAINED
  bench retained "$2" "$1" sub -c 1 -t 'bench/ret/#' -q 0 -L $RETAINED -d 30 --idle-ms 3000
  stop "$2"; record retained_store "$2" "$1"; record retained "$2" "$1"
}
scenario_offline() {
  local q=$((OFFLINE * 2))
  if [[ $2 == mosquitto ]]; then start mosquitto "" "max_queued_messages $q"; else start ferry 2 "[mqtt]
max_queued_messages = $q"; fi
  local id="bench-offline-$1"
  bench offline_setup "$2" "$1" sub -c 1 --id "$id" -C false -q 1 -t 'bench/offline' --exit-after-subscribe
  bench offline_store "$2" "$1" pub -c 1 -i 0 -I 0 -q 1 -t 'bench/offline' -L $OFFLINE
  bench offline "$2" "$1" sub -c 1 --id "$id" -C false -q 1 -t 'bench/offline' -L $OFFLINE -d 60 --idle-ms 3000
  stop "$2"; record offline_store "$2" "$1"; record offline "$2" "$1"
}
scenario_workers1() {
  if [[ $2 == mosquitto ]]; then return; fi
  start ferry 1; bench workers1 ferry "$1" "${PUBSUB[@]}" -c 100 --sub-clients 1 -t 'bench/in/%i' --sub-topic 'bench/in/+' -q 0 -I 0 -d $DUR --window 100; stop ferry; record workers1 ferry "$1"
}

SCENARIOS=(fanin_q0 fanin_q1 fanout latency pair_q0_apart pair_q0_same pair_q1_apart pair_q1_same
  idle connect64 burst retained offline workers1)
started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
run_one() { "scenario_$1" "$3" "$2"; }
run_reps run_one

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

table_args=("$RESULTS" --reps "$reps" --mode "$([[ $quick == 1 ]] && echo quick || echo full)"
  --elapsed "$(( $(date +%s) - started ))")
python3 "$here/table.py" "${table_args[@]}" | tee ${out:+"$out"}
if [[ -n "$results" ]]; then
  {
    echo "Run $(date -u '+%Y-%m-%d %H:%M UTC'), ferry $(git -C "$here/.." describe --always --dirty 2>/dev/null || echo '?')."
    echo
    echo "Command: \`$command_line\`"
    echo
    echo "Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores" \
      "($(lscpu | sed -n 's/^Hypervisor vendor: *//p' | head -1) guest)," \
      "$(free -g | awk '/^Mem:/{print $2}') GB RAM, Linux $(uname -r), ulimit -n $NOFILE;" \
      "$("$MOSQUITTO" -h 2>/dev/null | head -1 | sed 's/ (build.*//')."
    echo
    echo "Load average (1, 5, 15 min) before the run: $load_before; after: $load_after."
  } > "$WORK/header.md"
  python3 "$here/table.py" "${table_args[@]}" --header "$WORK/header.md" --splice "$results"
  echo "run.sh: wrote the results into $results" >&2
fi
