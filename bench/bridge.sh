#!/usr/bin/env bash
# Bridges: ferry beside mosquitto's own bridge, on this machine, in one run.
#
# For every scenario and repetition it starts fresh brokers (loopback only,
# configs written here), bridged A -> B (one hop) or A -> B -> C (chain),
# publishes on A with ferry-bench and receives on the last node with a second
# ferry-bench, alternating which broker goes first. Throughput is what the
# subscriber receives per second (first to last message); latency is
# end-to-end, from the publisher's send to the subscriber, measured at a
# light load so that it is the brokers' and not a queue's.
#
#   bench/bridge.sh                 ~6 minutes: 3 repetitions
#   bench/bridge.sh --quick         ~2 minutes: 1 repetition, smaller loads
#   options: --reps N  --build DIR (ferryd and ferry-bench; default build)
#            --only a,b (scenarios)  --out FILE (default bench/RESULTS-bridge.md;
#            "-" = stdout only)  --keep (keep the work directory)
#            --nice N (brokers and ferry-bench at this niceness)
#            --workers N (ferryd workers per node; default 1: two or three
#            nodes share this machine's cores, as mosquitto's single thread does)
#
# Scenarios: hop_q0, hop_q1, chain_q1 (throughput), hop_latency,
# chain_latency (QoS 1, 1000 msg/s), queue_store (ferry-queue-bench: the
# queue's segmented log beside an SQLite table), and edge to central
# (ferry only: mosquitto has no cluster): central_q1 and central_latency,
# an edge node bridged through HAProxy to a three-node ferry cluster, the
# subscriber on a cluster node, beside hop_q1 and hop_latency (edge to one
# node). ferry's bridges run with their default
# durable queue (queue_sync = write: every message goes through the queue
# file); mosquitto's with persistence off, as bench/run.sh runs it.
#
# Needs: ferryd, ferryctl, ferry-bench and ferry-queue-bench built (cmake
# --build build --target ferryd ferryctl ferry-bench ferry-queue-bench),
# /usr/sbin/mosquitto, haproxy, python3. Only processes this script
# started are stopped, by their PID.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"

out="$here/RESULTS-bridge.md"
script_option() {
  SHIFTS=2
  case "$1" in
    --workers) WORKERS="$2" ;;
    *) return 1 ;;
  esac
}
parse_options bridge.sh 29 "$@"
command -v python3 >/dev/null || { echo "bridge.sh: python3 is needed" >&2; exit 2; }

if [[ $quick == 1 ]]; then
  : "${reps:=1}"; COUNT=50000; LAT_S=3
else
  : "${reps:=3}"; COUNT=200000; LAT_S=8
fi
PUBS=10           # publishing clients on A
INFLIGHT=64       # unacknowledged QoS 1 publishes per publishing client
WINDOW=256        # in-flight window of each bridge and of the subscriber
WORKERS=${WORKERS:-1}

FERRYCTL="$build/ferryctl"
WORK="$(mktemp -d /tmp/ferry-bench-bridge.XXXXXX)"
PIDS=()
cleanup() {
  local p
  # FERRY_PID and MOSQ_PID too: a broker that failed to start is not in
  # PIDS yet.
  for p in "${PIDS[@]}" "$FERRY_PID" "$MOSQ_PID"; do stop_pid "$p"; done
  PIDS=()
  FERRY_PID=""
  MOSQ_PID=""
}
trap 'cleanup; [[ $keep == 1 ]] && echo "results kept in $WORK" >&2 || rm -rf "$WORK"' EXIT
RESULTS="$WORK/results.tsv"  # scenario broker rep json
: > "$RESULTS"

# start_ferry_node DIR NAME EXTRA_INI: sets NODE_PID, NODE_PORT.
start_ferry_node() {
  start_ferry "$1" "$WORKERS" "[mqtt]
max_inflight = $WINDOW
max_queued_messages = 0
${3:-}" "$2"
  NODE_PID=$FERRY_PID
  NODE_PORT=$FERRY_PORT
  PIDS+=("$NODE_PID")
}

# start_mosquitto_node DIR [BRIDGE_TO_PORT]: sets NODE_PID, NODE_PORT.
start_mosquitto_node() {
  local to="${2:-}" extra="max_queued_messages 0
max_inflight_messages $WINDOW"
  if [[ -n "$to" ]]; then
    extra+="
connection next
address 127.0.0.1:$to
topic bench/# out 1
cleansession true
restart_timeout 1"
  fi
  start_mosquitto "$1" "$extra"
  NODE_PID=$MOSQ_PID
  NODE_PORT=$MOSQ_PORT
  PIDS+=("$NODE_PID")
}

# chain BROKER HOPS: starts HOPS+1 bridged nodes, the last first; sets
# FIRST_PORT (publishers) and LAST_PORT (subscriber).
chain() {
  local broker="$1" hops="$2" i to="" name
  for (( i = hops; i >= 0; i-- )); do
    name="n$i"
    if [[ $broker == ferry ]]; then
      local extra=""
      if [[ -n "$to" ]]; then
        extra="[bridge.next]
address = 127.0.0.1:$to
forward = bench/# 1
max_inflight = $WINDOW
reconnect_min = 100ms"
      fi
      start_ferry_node "$WORK/$broker.$name" "$name" "$extra"
    else
      start_mosquitto_node "$WORK/$broker.$name" "$to"
    fi
    to=$NODE_PORT
    [[ $i == "$hops" ]] && LAST_PORT=$NODE_PORT
  done
  FIRST_PORT=$NODE_PORT
  probe_chain
}

# Waits until a probe message published on FIRST_PORT reaches LAST_PORT:
# the bridges are up.
probe_chain() {
  local probe="$WORK/probe.json"
  $NICE_CMD "$BENCH" sub -h 127.0.0.1 -p "$LAST_PORT" -c 1 -t 'bench/probe' -q 1 -L 1 -d 20 --json --quiet > "$probe" 2>/dev/null &
  local sub=$!
  sleep 0.2
  local tries=0
  while alive "$sub" && (( tries++ < 100 )); do
    "$BENCH" pub -h 127.0.0.1 -p "$FIRST_PORT" -c 1 -t 'bench/probe' -q 1 -L 1 -s 32 --quiet > /dev/null 2>&1 || true
    sleep 0.2
  done
  wait "$sub" 2>/dev/null || true
}

# central: a three-node ferry cluster behind HAProxy (round robin, PROXY v2,
# health checks) and an edge node bridged to HAProxy; sets FIRST_PORT (the
# edge) and LAST_PORT (a cluster node other than the one the bridge is
# connected to: every message crosses the cluster).
central() {
  export FERRY_NODE__COOKIE="bench-$$-$RANDOM"
  local i target="" lb=() admin=() mqtt=() dir
  for i in 1 2 3; do
    dir="$WORK/central$i"
    start_ferry_node "$dir" "central$i" "[cluster]
listen = 127.0.0.1:0
[listener.tcp.lb]
bind = 127.0.0.1:0
proxy_protocol = true"
    lb+=("$(grep -o 'tcp.lb=[^ ]*' "$dir/ferry.log" | head -1 | sed 's/.*://')")
    admin+=("$(grep -o 'admin.http=[^ ]*' "$dir/ferry.log" | head -1 | sed 's/.*://')")
    mqtt+=("$NODE_PORT")
    [[ $i == 2 ]] && LAST_PORT=$NODE_PORT
    if [[ $i == 1 ]]; then
      target="central1@127.0.0.1:$(grep -o ' cluster=[^ ]*' "$dir/ferry.log" | head -1 | sed 's/.*://')"
    else
      "$FERRYCTL" --socket "$dir/data/ferry.sock" cluster join "$target" > /dev/null
    fi
  done
  unset FERRY_NODE__COOKIE
  wait_until 20 bash -c "[[ \$('$FERRYCTL' --socket '$WORK/central1/data/ferry.sock' cluster status) == *central3@* ]]"
  local port; port=$(free_port)
  {
    printf 'global\n  maxconn 4000\ndefaults\n  mode tcp\n  timeout connect 2s\n'
    printf '  timeout client 10m\n  timeout server 10m\nfrontend central\n'
    printf '  bind 127.0.0.1:%s\n  default_backend nodes\nbackend nodes\n  balance roundrobin\n' "$port"
    printf '  option httpchk GET /api/v1/health\n  http-check expect status 200\n'
    for i in 0 1 2; do
      printf '  server c%s 127.0.0.1:%s send-proxy-v2 check port %s inter 1s\n' "$i" "${lb[$i]}" "${admin[$i]}"
    done
  } > "$WORK/haproxy.cfg"
  $NICE_CMD haproxy -db -f "$WORK/haproxy.cfg" > "$WORK/haproxy.log" 2>&1 &
  PIDS+=("$!")
  wait_until 10 port_open "$port"
  start_ferry_node "$WORK/edge" edge "[bridge.central]
address = 127.0.0.1:$port
forward = bench/# 1
max_inflight = $WINDOW
reconnect_min = 100ms"
  FIRST_PORT=$NODE_PORT
  probe_chain
  local up
  up=$("$FERRYCTL" --socket "$WORK/edge/data/ferry.sock" --json bridges show central | jq -r .upstream_node)
  for i in 1 2 3; do
    if [[ "central$i@127.0.0.1" != "$up" ]]; then LAST_PORT=${mqtt[$((i - 1))]}; break; fi
  done
}

# One measured run: subscriber on LAST_PORT, publishers on FIRST_PORT.
#   measure NAME BROKER REP QOS PUB_ARGS...
measure() {
  local name="$1" broker="$2" rep="$3" qos="$4"; shift 4
  local file="$WORK/$name.$broker.$rep.json"
  $NICE_CMD "$BENCH" sub -h 127.0.0.1 -p "$LAST_PORT" -c 1 -t 'bench/#' -q "$qos" \
    -L "$EXPECT" --idle-ms 5000 -d 600 --json --quiet > "$file" 2> "$file.err" &
  local sub=$!
  sleep 0.3
  $NICE_CMD "$BENCH" pub -h 127.0.0.1 -p "$FIRST_PORT" -q "$qos" "$@" --json --quiet \
    > "$file.pub" 2> "$file.pub.err" || true
  wait "$sub" || true
  [[ -s "$file" ]] || echo '{}' > "$file"
  printf '%s\t%s\t%s\t%s\n' "$name" "$broker" "$rep" "$file" >> "$RESULTS"
}

run_scenario() {
  local s="$1" broker="$2" rep="$3"
  case "$s" in
    hop_q0|hop_q1|chain_q1)
      local hops=1 qos=1
      [[ $s == chain_q1 ]] && hops=2
      [[ $s == hop_q0 ]] && qos=0
      chain "$broker" "$hops"
      EXPECT=$COUNT
      measure "$s" "$broker" "$rep" "$qos" -c $PUBS -i 0 -I 0 -F $INFLIGHT -t 'bench/%i' -s 64 -L "$COUNT"
      ;;
    hop_latency|chain_latency)
      local hops=1
      [[ $s == chain_latency ]] && hops=2
      chain "$broker" "$hops"
      EXPECT=$(( PUBS * 100 * LAT_S ))
      measure "$s" "$broker" "$rep" 1 -c $PUBS -i 0 -I 10 -t 'bench/%i' -s 64 -L "$EXPECT"
      ;;
    central_q1|central_latency)
      [[ $broker == ferry ]] || return 0  # mosquitto has no cluster
      central
      if [[ $s == central_q1 ]]; then
        EXPECT=$COUNT
        measure "$s" "$broker" "$rep" 1 -c $PUBS -i 0 -I 0 -F $INFLIGHT -t 'bench/%i' -s 64 -L "$COUNT"
      else
        EXPECT=$(( PUBS * 100 * LAT_S ))
        measure "$s" "$broker" "$rep" 1 -c $PUBS -i 0 -I 10 -t 'bench/%i' -s 64 -L "$EXPECT"
      fi
      ;;
  esac
  cleanup
}

SCENARIOS=(hop_q0 hop_q1 chain_q1 hop_latency chain_latency central_q1 central_latency)
started=$(date +%s)
# The queue's store first: the segmented log beside an SQLite table.
queue_table=""
if wanted queue_store && [[ -x "$build/ferry-queue-bench" ]]; then
  echo "[0s] queue store: log beside SQLite" >&2
  queue_rows=$($NICE_CMD "$build/ferry-queue-bench" --messages "$COUNT" --dir "$WORK" | tail -n +2)
  queue_table=$(python3 "$here/queue_table.py" <<< "$queue_rows")
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
run_reps run_scenario
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

table=$(python3 - "$RESULTS" <<'PY'
import json, statistics, sys
from collections import defaultdict
runs = defaultdict(list)
for line in open(sys.argv[1]):
    s, b, _rep, f = line.rstrip("\n").split("\t")
    try:
        runs[(s, b)].append(json.load(open(f)))
    except (OSError, ValueError):
        runs[(s, b)].append({})
def med(s, b, fn):
    vals = []
    for r in runs.get((s, b), []):
        try:
            v = fn(r)
            if v is not None and v >= 0: vals.append(v)
        except (KeyError, TypeError):
            pass
    return statistics.median(vals) if vals else None
def fmt(v, unit=""):
    return "-" if v is None else (f"{v:,.0f}{unit}" if unit != " ms" else f"{v:.2f} ms")
def ratio(a, b):
    return "-" if a is None or b in (None, 0) else f"{a / b:.2f}x"
print("| scenario | ferry | mosquitto | ferry / mosquitto | lost (ferry / mosquitto) |")
print("| --- | ---: | ---: | ---: | --- |")
names = {"hop_q0": "one hop, QoS 0, msg/s", "hop_q1": "one hop, QoS 1, msg/s",
         "chain_q1": "two hops (A->B->C), QoS 1, msg/s"}
for s, title in names.items():
    if not any(k[0] == s for k in runs): continue
    f = med(s, "ferry", lambda r: r["recv_rate"])
    m = med(s, "mosquitto", lambda r: r["recv_rate"])
    lf = med(s, "ferry", lambda r: r["lost"])
    lm = med(s, "mosquitto", lambda r: r["lost"])
    print(f"| {title} | {fmt(f)} | {fmt(m)} | {ratio(f, m)} | {fmt(lf)} / {fmt(lm)} |")
for s, title in {"hop_latency": "one hop", "chain_latency": "two hops"}.items():
    if not any(k[0] == s for k in runs): continue
    for p, key in (("p50", "latency_p50_ns"), ("p99", "latency_p99_ns")):
        f = med(s, "ferry", lambda r: r[key] / 1e6)
        m = med(s, "mosquitto", lambda r: r[key] / 1e6)
        print(f"| {title}, QoS 1 at 1000 msg/s, latency {p} | {fmt(f, ' ms')} | {fmt(m, ' ms')} | {ratio(f, m)} | |")
if any(k[0].startswith("central") for k in runs):
    print()
    print("Edge to central (ferry only): the edge's bridge to one node, beside the same bridge")
    print("through HAProxy to a three-node cluster, the subscriber on a cluster node other than")
    print("the one the bridge is connected to (every message crosses the cluster).")
    print()
    print("| edge to central, QoS 1 | to one node | through HAProxy to a 3-node cluster | cluster / one node |")
    print("| --- | ---: | ---: | ---: |")
    f = med("hop_q1", "ferry", lambda r: r["recv_rate"])
    c = med("central_q1", "ferry", lambda r: r["recv_rate"])
    print(f"| throughput, msg/s | {fmt(f)} | {fmt(c)} | {ratio(c, f)} |")
    for p, key in (("p50", "latency_p50_ns"), ("p99", "latency_p99_ns")):
        f = med("hop_latency", "ferry", lambda r: r[key] / 1e6)
        c = med("central_latency", "ferry", lambda r: r[key] / 1e6)
        print(f"| latency {p} at 1000 msg/s | {fmt(f, ' ms')} | {fmt(c, ' ms')} | {ratio(c, f)} |")
PY
)

elapsed=$(( $(date +%s) - started ))
report=$(cat <<EOF
# Bridge benchmark: ferry beside mosquitto

Produced by \`bench/bridge.sh$([[ $quick == 1 ]] && echo " --quick")\` on $(date -u +%Y-%m-%d) in ${elapsed} s:
$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load average
$load_before before and $load_after after (the machine is shared), $reps repetition(s), medians.
ferryd $("$FERRYD" --version | cut -d' ' -f2) ($(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo unknown)), $("$MOSQUITTO" -h 2>/dev/null | head -1).

Throughput: $PUBS publishers on the first node send $COUNT messages of 64 bytes
as fast as their QoS 1 windows ($INFLIGHT each) allow; one subscriber on the last
node receives them; the rate is the subscriber's, first message to last.
Latency: the same $PUBS publishers at 100 msg/s each. ferry: bridges with their
durable queue (\`queue_sync = write\`), $WORKERS worker(s) per node; mosquitto: its
\`connection\` bridge, persistence off. Both: in-flight window $WINDOW.

$table
EOF
)
if [[ -n "$queue_table" ]]; then
  report+=$(cat <<EOF


The bridge queue's store on this machine's disk (\`ferry-queue-bench --messages $COUNT\`,
64-byte payloads in groups of 256, each group also marking the previous one
done): the segmented log ferry uses beside an SQLite table (WAL;
synchronous=NORMAL for write, FULL for fsync) doing the same.

$queue_table
EOF
)
fi
echo "$report"
if [[ "$out" != "-" ]]; then
  if [[ -f "$out" ]] && grep -q '^## Notes' "$out"; then
    # Keep the hand-written notes below the figures.
    notes=$(sed -n '/^## Notes/,$p' "$out")
    printf '%s\n\n%s\n' "$report" "$notes" > "$out"
  else
    printf '%s\n' "$report" > "$out"
  fi
  echo "written to $out" >&2
fi
