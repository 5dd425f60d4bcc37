#!/usr/bin/env bash
# A ferry cluster beside one ferry node and Debian's mosquitto, on this
# machine, in one run.
#
# Forwarding: 100 publishers on node 1 of a two-node cluster, one subscriber
# on node 2 (every message crosses the cluster link), against the same load
# on one ferry node and on one mosquitto (publishers and subscriber on the
# same broker). Fresh brokers for every scenario and repetition, loopback
# only, configs written here; the order of the three alternates.
#
# Route table: node 2 holds ROUTES routes (half exact topics, half
# five-level wildcards, from raw_clients.py routes); node 1 joins it. The
# time until node 1 knows them all, node 1's RSS before and after (bytes per
# route), and node 1's publish rate to a local subscriber with and without
# the remote routes in its table (a lookup walks both).
#
#   bench/cluster.sh                 ~5 minutes: 3 repetitions, 1M routes
#   bench/cluster.sh --quick         ~1 minute: 1 repetition, 100,000 routes
#   options: --reps N  --build DIR (ferryd, ferryctl, ferry-bench; default
#            build)  --only a,b (scenarios)  --out FILE (default
#            bench/RESULTS-cluster.md between its markers; "-" = stdout
#            only)  --keep  --nice N  --routes N (route table size)
#            --workers N (ferryd workers per node; default 1: two nodes
#            share this machine's cores, as mosquitto's single thread does)
#   scenarios: cross_q0 cross_q1 routes takeover connect
#
# Takeover: a client with a persistent session on node 1 has TAKEOVER_COUNT
# (1,000) QoS 1 messages queued while it is away, then reconnects to the
# other node (and back, each round): the time from its CONNECT to its
# CONNACK and to the last message (raw_clients.py takeover), p50 and p99
# over the rounds; beside the same reconnect to the same node on one ferry
# node and on mosquitto (a resume without a move).
#
# Connect: CONNS new clients (clean start) connect, 64 handshakes at a time
# in all; on a three-node cluster a third of them to each node (every
# CONNECT locks its client id on a quorum and asks the peers for its
# session), beside all of them to one ferry node and to mosquitto.
#
# Needs: ferryd, ferryctl and ferry-bench built (cmake --build build),
# /usr/sbin/mosquitto, jq, python3. Only processes this script started are
# stopped, by their PID.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"

out="$here/RESULTS-cluster.md"
ROUTES=""
WORKERS=1
command_line="bench/cluster.sh $*"
script_option() {
  SHIFTS=2
  case "$1" in
    --routes) ROUTES="$2" ;;
    --workers) WORKERS="$2" ;;
    *) return 1 ;;
  esac
}
parse_options cluster.sh 41 "$@"
command -v jq >/dev/null || { echo "cluster.sh: jq is needed" >&2; exit 2; }
FERRYCTL="$build/ferryctl"
[[ -x "$FERRYCTL" ]] || { echo "cluster.sh: $FERRYCTL not found" >&2; exit 2; }

if [[ $quick == 1 ]]; then
  : "${reps:=1}"; DUR=3; : "${ROUTES:=100000}"
else
  : "${reps:=3}"; DUR=10; : "${ROUTES:=1000000}"
fi

WORK="$(mktemp -d /tmp/ferry-bench-cluster.XXXXXX)"
PIDS=()
LOADER_PID=""
cleanup() {
  local p
  [[ -n "$LOADER_PID" ]] && { kill "$LOADER_PID" 2>/dev/null || true; wait "$LOADER_PID" 2>/dev/null || true; }
  for p in "${PIDS[@]}" "$FERRY_PID" "$MOSQ_PID"; do stop_pid "$p"; done
  PIDS=(); FERRY_PID=""; MOSQ_PID=""
}
trap 'cleanup; [[ $keep == 1 ]] && echo "results kept in $WORK" >&2 || rm -rf "$WORK"' EXIT
RESULTS="$WORK/results.tsv"  # scenario broker rep json
: > "$RESULTS"

# Every node this script starts shares one cookie (an environment override:
# lib.sh writes [node] itself).
export FERRY_NODE__COOKIE="bench-$$-$RANDOM"
# start_node DIR NAME [EXTRA_INI]: a ferry node with a cluster port; EXTRA_INI
# goes on in its [mqtt] section (start a section of its own for others); sets
# NODE_PID, NODE_PORT, NODE_CLUSTER (name@127.0.0.1:port).
start_node() {
  start_ferry "$1" "$WORKERS" "[cluster]
listen = 127.0.0.1:0
[mqtt]
max_subscriptions_per_client = 0
${3:-}" "$2"
  NODE_PID=$FERRY_PID; NODE_PORT=$FERRY_PORT; FERRY_PID=""
  NODE_CLUSTER="$2@127.0.0.1:$(grep -o ' cluster=[^ ]*' "$1/ferry.log" | head -1 | sed 's/.*://')"
  PIDS+=("$NODE_PID")
}
ctl() { "$FERRYCTL" --socket "$1/data/ferry.sock" "${@:2}"; }

# A two-node cluster: PUB_PORT on node 1, SUB_PORT on node 2; N1, N2 dirs.
start_cluster() {
  N1="$WORK/n1"; N2="$WORK/n2"
  start_node "$N1" n1; PUB_PORT=$NODE_PORT; N1_PID=$NODE_PID; local target=$NODE_CLUSTER
  start_node "$N2" n2; SUB_PORT=$NODE_PORT
  ctl "$N2" cluster join "$target" > /dev/null
}
stop_brokers() { cleanup; }

bench() {  # bench NAME BROKER REP ARGS... (ARGS include -p and --broker-pid)
  local file="$WORK/$1.$2.$3.json"
  $NICE_CMD "$BENCH" "${@:4}" -h 127.0.0.1 --json --quiet > "$file" 2> "$file.err" || true
  [[ -s "$file" ]] || echo '{}' > "$file"
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$file" >> "$RESULTS"
}

# 100 publishers, one subscriber; on the cluster the subscriber is on node 2.
cross() {  # cross SCENARIO BROKER REP QOS
  local args=(pubsub -i 0 --drain-ms 2000 -c 100 --sub-clients 1 -t 'bench/in/%i'
    --sub-topic 'bench/in/+' -q "$4" -I 0 -d "$DUR" --window 100)
  case "$2" in
    cluster)
      start_cluster
      # node 1 has the subscriber's route once a probe gets through.
      wait_until 10 bash -c "'$FERRYCTL' --socket '$N1/data/ferry.sock' --json cluster nodes | jq -e '.[] | select(.node == \"n2@127.0.0.1\") | .state == \"running\"' > /dev/null"
      bench "$1" cluster "$3" "${args[@]}" -p "$PUB_PORT" --sub-port "$SUB_PORT" --broker-pid "$N1_PID" ;;
    ferry)
      start_node "$WORK/one" one
      bench "$1" ferry "$3" "${args[@]}" -p "$NODE_PORT" --broker-pid "$NODE_PID" ;;
    mosquitto)
      start_mosquitto "$WORK/mosq"
      bench "$1" mosquitto "$3" "${args[@]}" -p "$MOSQ_PORT" --broker-pid "$MOSQ_PID" ;;
  esac
  stop_brokers
}

rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
settled_rss_kb() {  # RSS once it held still for a second
  local pid=$1 last now i
  last=$(rss_kb "$pid")
  for i in $(seq 60); do sleep 1; now=$(rss_kb "$pid"); [[ $now == "$last" ]] && break; last=$now; done
  echo "$last"
}
routes_of() {  # routes_of DIR NODE: the routes NODE has as DIR's node knows them
  ctl "$1" --json cluster nodes | jq -r --arg n "$2" '.[] | select(.node == $n) | .routes'
}

# Publish rate on node 1 to one local subscriber (a topic no remote route
# matches, so the lookup is all that the remote table costs).
local_rate() {  # local_rate NAME REP
  bench "$1" cluster "$2" pubsub -i 0 --drain-ms 2000 -c 10 --sub-clients 1 -t 'local/%i' \
    --sub-topic 'local/+' -q 0 -I 0 -d "$DUR" --window 100 -p "$PUB_PORT" --broker-pid "$N1_PID"
}

scenario_routes() {
  [[ $2 == cluster ]] || return 0
  N1="$WORK/n1"; N2="$WORK/n2"
  start_node "$N2" n2; SUB_PORT=$NODE_PORT; local target=$NODE_CLUSTER N2_PID=$NODE_PID
  local t0 t1 loaded
  t0=$(date +%s%N)
  # The loader keeps its clients connected while its standard input is open.
  coproc LOADER { exec python3 "$here/raw_clients.py" routes "$SUB_PORT" "$ROUTES" 100; }
  LOADER_PID=$LOADER_PID
  read -r loaded <&"${LOADER[0]}"
  t1=$(date +%s%N)
  local subscribe_s; subscribe_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", (b-a)/1e9}')
  local n2_rss; n2_rss=$(settled_rss_kb "$N2_PID")
  start_node "$N1" n1; PUB_PORT=$NODE_PORT; N1_PID=$NODE_PID
  local_rate routes_local_before "$1"
  local before; before=$(settled_rss_kb "$N1_PID")
  t0=$(date +%s%N)
  ctl "$N1" cluster join "$target" > /dev/null
  wait_until 300 bash -c "[[ \$('$FERRYCTL' --socket '$N1/data/ferry.sock' --json cluster nodes | jq -r '.[] | select(.node == \"n2@127.0.0.1\") | .routes') == $ROUTES ]]" \
    || echo "cluster.sh: node 1 did not get all $ROUTES routes" >&2
  t1=$(date +%s%N)
  local after; after=$(settled_rss_kb "$N1_PID")
  local_rate routes_local_after "$1"
  jq -n --argjson routes "$ROUTES" --argjson join_ns "$((t1 - t0))" --argjson before "$before" \
    --argjson after "$after" --argjson n2 "$n2_rss" --arg subscribe_s "$subscribe_s" \
    --argjson known "$(routes_of "$N1" n2@127.0.0.1)" \
    '{routes: $routes, known: $known, join_s: ($join_ns / 1e9), rss_before_kb: $before,
      rss_after_kb: $after, bytes_per_route: ((($after - $before) * 1024) / $routes),
      origin_rss_kb: $n2, subscribe_s: ($subscribe_s | tonumber)}' > "$WORK/routes.$1.json"
  printf '%s\t%s\t%s\t%s\n' routes cluster "$1" "$WORK/routes.$1.json" >> "$RESULTS"
  eval "exec ${LOADER[1]}>&-"
  wait "$LOADER_PID" 2>/dev/null || true
  LOADER_PID=""
  stop_brokers
}
TAKEOVER_COUNT=1000
scenario_takeover() {
  local rounds=$(( quick == 1 ? 10 : 30 )) a b pub file="$WORK/takeover.$2.$1.json"
  local queue="max_queued_messages = 10000"  # in start_node's [mqtt]
  case "$2" in
    cluster)
      N1="$WORK/n1"; N2="$WORK/n2"
      start_node "$N1" n1 "$queue"; a=$NODE_PORT; local target=$NODE_CLUSTER
      start_node "$N2" n2 "$queue"; b=$NODE_PORT
      ctl "$N2" cluster join "$target" > /dev/null
      pub=$a ;;
    ferry)
      start_node "$WORK/one" one "$queue"; a=$NODE_PORT; b=$a; pub=$a ;;
    mosquitto)
      start_mosquitto "$WORK/mosq" "max_queued_messages 10000"; a=$MOSQ_PORT; b=$a; pub=$a ;;
  esac
  $NICE_CMD python3 "$here/raw_clients.py" takeover "$a" "$b" "$pub" "$TAKEOVER_COUNT" "$rounds" \
    > "$file" 2> "$file.err" || echo '{}' > "$file"
  printf '%s\t%s\t%s\t%s\n' takeover "$2" "$1" "$file" >> "$RESULTS"
  stop_brokers
}

CONNS=$(( $(ulimit -n) - 200 ))
(( CONNS > 6000 )) && CONNS=6000
scenario_connect() {
  local args=(conn -i 0 -k 600 -d 2 --ifaddr 127.0.0.1,127.0.0.2,127.0.0.3)
  case "$2" in
    cluster)
      local ports=() dirs=() i target pids=() files=()
      for i in 1 2 3; do
        start_node "$WORK/c$i" "c$i"; ports+=("$NODE_PORT"); dirs+=("$WORK/c$i")
        [[ $i == 1 ]] && target=$NODE_CLUSTER || ctl "$WORK/c$i" cluster join "$target" > /dev/null
      done
      wait_until 20 bash -c "[[ \$('$FERRYCTL' --socket '$WORK/c1/data/ferry.sock' cluster status) == *c3@* ]]"
      for i in 0 1 2; do
        files+=("$WORK/connect.cluster.$1.$i.json")
        $NICE_CMD "$BENCH" "${args[@]}" -c $((CONNS / 3)) --max-connecting 21 -n $((i * CONNS)) \
          -p "${ports[$i]}" -h 127.0.0.1 --json --quiet > "${files[$i]}" 2> "${files[$i]}.err" &
        pids+=($!)
      done
      for i in 0 1 2; do wait "${pids[$i]}" || true; done
      # One figure for the three: every CONNACK over the longest of the three.
      jq -s '{connected: (map(.connected // 0) | add),
              connect_s: (map(.connect_s // 0) | max)} |
             . + {connect_rate: (if .connect_s > 0 then .connected / .connect_s else 0 end)}' \
        "${files[@]}" > "$WORK/connect.cluster.$1.json"
      printf '%s\t%s\t%s\t%s\n' connect cluster "$1" "$WORK/connect.cluster.$1.json" >> "$RESULTS" ;;
    ferry)
      start_node "$WORK/one" one
      bench connect ferry "$1" "${args[@]}" -c "$CONNS" --max-connecting 64 -p "$NODE_PORT" \
        --broker-pid "$NODE_PID" ;;
    mosquitto)
      start_mosquitto "$WORK/mosq"
      bench connect mosquitto "$1" "${args[@]}" -c "$CONNS" --max-connecting 64 -p "$MOSQ_PORT" \
        --broker-pid "$MOSQ_PID" ;;
  esac
  stop_brokers
}

scenario_cross_q0() { cross cross_q0 "$2" "$1" 0; }
scenario_cross_q1() { cross cross_q1 "$2" "$1" 1; }

SCENARIOS=(cross_q0 cross_q1 routes takeover connect)
started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq 1 "$reps"); do
  case $((rep % 3)) in
    1) order=(cluster ferry mosquitto) ;;
    2) order=(mosquitto cluster ferry) ;;
    0) order=(ferry mosquitto cluster) ;;
  esac
  for s in "${SCENARIOS[@]}"; do
    wanted "$s" || continue
    for b in "${order[@]}"; do
      [[ $s == routes && $b != cluster ]] && continue
      echo "[$(( $(date +%s) - started ))s] rep $rep/$reps $s $b" >&2
      "scenario_$s" "$rep" "$b"
    done
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

table="$WORK/table.md"
python3 - "$RESULTS" > "$table" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    scenario, broker, rep, path = line.rstrip("\n").split("\t")
    try:
        rows.setdefault(scenario, {}).setdefault(broker, []).append(json.load(open(path)))
    except (OSError, ValueError):
        pass
def med(runs, key):
    vals = [r[key] for r in runs if isinstance(r.get(key), (int, float)) and r[key] >= 0]
    return statistics.median(vals) if vals else None
def fmt(v, spec="{:,.0f}"):
    return "-" if v is None else spec.format(v)
names = {"cross_q0": "100 pub on node 1 -> 1 sub on node 2, QoS 0",
         "cross_q1": "100 pub on node 1 -> 1 sub on node 2, QoS 1"}
print("| scenario | ferry cluster msg/s | ferry one node msg/s | mosquitto msg/s | cluster / mosquitto | lost (cluster) | dup (cluster) | p50 / p99 ms (cluster) |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for s in ("cross_q0", "cross_q1"):
    if s not in rows:
        continue
    b = rows[s]
    c, f, m = (med(b.get(k, []), "recv_rate") for k in ("cluster", "ferry", "mosquitto"))
    ratio = "-" if not c or not m else f"{c / m:.2f}x"
    lost = sum(r.get("lost", 0) or 0 for r in b.get("cluster", []))
    dup = sum(r.get("duplicates", 0) or 0 for r in b.get("cluster", []))
    p50, p99 = med(b.get("cluster", []), "latency_p50_ns"), med(b.get("cluster", []), "latency_p99_ns")
    lat = "-" if p50 is None else f"{p50 / 1e6:.2f} / {p99 / 1e6:.2f}"
    print(f"| {names[s]} | {fmt(c)} | {fmt(f)} | {fmt(m)} | {ratio} | {lost} | {dup} | {lat} |")
if "takeover" in rows:
    t = rows["takeover"]
    print()
    print("| a session with 1,000 queued QoS 1 messages reconnects | CONNECT to CONNACK p50 ms | CONNECT to the last message p50 / p99 / max ms | missing | repeated |")
    print("| --- | ---: | ---: | ---: | ---: |")
    label = {"cluster": "ferry cluster: to the other node (takeover)",
             "ferry": "ferry one node: to the same node", "mosquitto": "mosquitto: to the same node"}
    for b in ("cluster", "ferry", "mosquitto"):
        runs = t.get(b, [])
        if not runs:
            continue
        print(f"| {label[b]} | {fmt(med(runs, 'connack_p50_ms'), '{:.1f}')} "
              f"| {fmt(med(runs, 'p50_ms'), '{:.1f}')} / {fmt(med(runs, 'p99_ms'), '{:.1f}')} / "
              f"{fmt(max((r.get('max_ms', 0) for r in runs), default=None), '{:.1f}')} "
              f"| {sum(r.get('missing', 0) for r in runs)} | {sum(r.get('repeated', 0) for r in runs)} |")
if "connect" in rows:
    c = rows["connect"]
    rate = {b: med(c.get(b, []), "connect_rate") for b in ("cluster", "ferry", "mosquitto")}
    print()
    print("| new clients connecting, 64 at a time | ferry cluster (3 nodes) conn/s | ferry one node conn/s | mosquitto conn/s | cluster / one node | cluster / mosquitto |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    r1 = "-" if not rate["cluster"] or not rate["ferry"] else f"{rate['cluster'] / rate['ferry']:.2f}x"
    r2 = "-" if not rate["cluster"] or not rate["mosquitto"] else f"{rate['cluster'] / rate['mosquitto']:.2f}x"
    print(f"| {fmt(med(c.get('ferry', []), 'connected'))} clients | {fmt(rate['cluster'])} | {fmt(rate['ferry'])} | {fmt(rate['mosquitto'])} | {r1} | {r2} |")
if "routes" in rows:
    r = rows["routes"]["cluster"]
    print()
    print("| routes | known on node 1 | join until known, s | node 1 RSS before / after, MB | bytes per route | origin RSS, MB | node 1 local msg/s without / with them |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    before = med(rows.get("routes_local_before", {}).get("cluster", []), "recv_rate")
    after = med(rows.get("routes_local_after", {}).get("cluster", []), "recv_rate")
    print(f"| {fmt(med(r, 'routes'))} | {fmt(med(r, 'known'))} | {fmt(med(r, 'join_s'), '{:.1f}')} "
          f"| {fmt(med(r, 'rss_before_kb') / 1024, '{:.0f}')} / {fmt(med(r, 'rss_after_kb') / 1024, '{:.0f}')} "
          f"| {fmt(med(r, 'bytes_per_route'))} | {fmt(med(r, 'origin_rss_kb') / 1024, '{:.0f}')} "
          f"| {fmt(before)} / {fmt(after)} |")
PY
cat "$table"
if [[ "$out" != "-" ]]; then
  {
    echo "<!-- cluster.sh results: begin -->"
    echo "Run $(date -u '+%Y-%m-%d %H:%M UTC'), ferry $(git -C "$here/.." describe --always --dirty 2>/dev/null || echo '?'), $(( $(date +%s) - started )) s."
    echo
    echo "Command: \`$command_line\` (medians of $reps repetitions; ferryd workers = $WORKERS per node)"
    echo
    echo "Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores," \
      "$(free -g | awk '/^Mem:/{print $2}') GB RAM, Linux $(uname -r);" \
      "$("$MOSQUITTO" -h 2>/dev/null | head -1 | sed 's/ (build.*//')."
    echo
    echo "Load average (1, 5, 15 min) before the run: $load_before; after: $load_after."
    echo
    cat "$table"
    echo "<!-- cluster.sh results: end -->"
  } > "$WORK/block.md"
  if [[ -f "$out" ]] && grep -q 'cluster.sh results: begin' "$out"; then
    python3 - "$out" "$WORK/block.md" <<'PY'
import sys
path, block = sys.argv[1], open(sys.argv[2]).read()
text = open(path).read()
a = text.index("<!-- cluster.sh results: begin -->")
b = text.index("<!-- cluster.sh results: end -->") + len("<!-- cluster.sh results: end -->\n")
open(path, "w").write(text[:a] + block + text[b:])
PY
  else
    cat "$WORK/block.md" >> "$out"
  fi
  echo "cluster.sh: wrote the results into $out" >&2
fi
