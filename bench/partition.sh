#!/usr/bin/env bash
# How long a ferry cluster takes to become one again after a network split.
#
# Three nodes, each on a host of its own: network namespaces joined by a
# bridge, as tests/integration/support/netns_segment.h makes them (needs
# root: ip netns, nftables). Node 1 holds ROUTES routes (raw_clients.py
# routes: half exact topics, half wildcards) and SESSIONS offline sessions
# (raw_clients.py sessions). Node 3 is cut off by dropping its frames on
# the bridge (no RST, as a real netsplit) until nodes 1 and 2 list it as
# stopped; then the network returns. Measured: the time from the network's
# return until `ferryctl cluster digest` (members, routes, retained) is the
# same on all three nodes and node 3 lists every member as running.
#
#   bench/partition.sh                   100,000 routes, 10,000 sessions, 3 repetitions
#   bench/partition.sh --quick           10,000 routes, 1,000 sessions, 1 repetition
#   options: --reps N  --build DIR (default build)  --routes N  --sessions N
#            --split S (seconds the split lasts past detection; default 5)
#            --out FILE (default bench/RESULTS-cluster.md between its
#            partition markers; "-" = stdout only)  --keep
#
# Needs: ferryd and ferryctl built, python3, ip, nft; root. Only processes
# this script started are stopped, by their PID.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/RESULTS-cluster.md"
build="$here/../build"
reps=""; quick=0; keep=0; ROUTES=""; SESSIONS=""; SPLIT=5
command_line="${PARTITION_BENCH_COMMAND:-bench/partition.sh $*}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --reps) reps="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --routes) ROUTES="$2"; shift 2 ;;
    --sessions) SESSIONS="$2"; shift 2 ;;
    --split) SPLIT="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "partition.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
if [[ $quick == 1 ]]; then
  : "${reps:=1}"; : "${ROUTES:=10000}"; : "${SESSIONS:=1000}"
else
  : "${reps:=3}"; : "${ROUTES:=100000}"; : "${SESSIONS:=10000}"
fi
FERRYD="$(realpath "$build/ferryd")"; FERRYCTL="$(realpath "$build/ferryctl")"
for bin in "$FERRYD" "$FERRYCTL"; do
  [[ -x "$bin" ]] || { echo "partition.sh: $bin not found; build it first" >&2; exit 2; }
done
for tool in ip nft python3; do
  command -v "$tool" >/dev/null || { echo "partition.sh: $tool is needed" >&2; exit 2; }
done
[[ $(id -u) == 0 ]] || { echo "partition.sh: needs root (network namespaces)" >&2; exit 2; }

# The whole run in a network namespace of its own, so that the bridge and
# its rules vanish with it.
if [[ -z "${PARTITION_BENCH_INNER:-}" ]]; then
  PARTITION_BENCH_INNER=1 PARTITION_BENCH_COMMAND="$command_line" exec unshare -n "$0" --build "$build" --reps "$reps" \
    --routes "$ROUTES" --sessions "$SESSIONS" --split "$SPLIT" --out "$out" \
    $([[ $keep == 1 ]] && echo --keep)
fi

WORK="$(mktemp -d /tmp/ferry-bench-partition.XXXXXX)"
PIDS=(); LOADER_PID=""; NS=()
cleanup() {
  local pid ns
  [[ -z "$LOADER_PID" ]] || kill "$LOADER_PID" 2>/dev/null || true
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for ns in "${NS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  [[ $keep == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT

ip link set lo up
ip link add brf type bridge
ip addr add 10.77.0.254/24 dev brf
ip link set brf up
nft add table bridge ferrysplit
nft add chain bridge ferrysplit forward '{ type filter hook forward priority 0; policy accept; }'

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
ctl() { "$FERRYCTL" -c "$WORK/n$1/ferry.conf" "${@:2}"; }

start_node() {
  local i=$1 ip="10.77.0.$1" ns="ferrybench-$$-$1"
  ip netns add "$ns"; NS+=("$ns")
  ip link add "vf$i" type veth peer name eth0 netns "$ns"
  ip link set "vf$i" master brf up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$ip/24" dev eth0
  ip -n "$ns" link set eth0 up
  mkdir -p "$WORK/n$i"
  cat > "$WORK/n$i/ferry.conf" <<EOF
[node]
name = ferry$i@$ip
cookie = bench-cookie
data_dir = $WORK/n$i
[listener.tcp.default]
bind = 0.0.0.0:1883
[cluster]
listen = $ip:437$i
peer_down_after = 2s
[log]
level = warn
EOF
  ip netns exec "$ns" "$FERRYD" -c "$WORK/n$i/ferry.conf" > "$WORK/n$i/ferryd.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do ctl "$i" status >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "partition.sh: node $i did not start:" >&2; cat "$WORK/n$i/ferryd.log" >&2; exit 1
}

all_running() { [[ "$(ctl "$1" cluster status --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["running_nodes"]))')" == 3 ]]; }
stopped_on() { ctl "$1" cluster status --json | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["stopped_nodes"] else 1)'; }
digests_agree() {
  local d1 d2 d3
  d1="$(ctl 1 cluster digest)"; d2="$(ctl 2 cluster digest)"; d3="$(ctl 3 cluster digest)"
  [[ "$d1" == "$d2" && "$d2" == "$d3" ]]
}
wait_for() {
  local seconds=$1; shift
  local deadline=$(( $(now_ms) + seconds * 1000 ))
  until "$@"; do (( $(now_ms) < deadline )) || return 1; sleep 0.1; done
}

for i in 1 2 3; do start_node "$i"; done
ctl 2 cluster join ferry1@10.77.0.1 >/dev/null
ctl 3 cluster join ferry1@10.77.0.1 >/dev/null
wait_for 30 all_running 1
echo "loading $ROUTES routes and $SESSIONS sessions on node 1" >&2
coproc LOADER { ip netns exec "ferrybench-$$-1" python3 "$here/raw_clients.py" routes 1883 "$ROUTES" 10; }
LOADER_PID=$LOADER_PID
read -r ready <&"${LOADER[0]}"
[[ "$ready" == ready ]] || { echo "partition.sh: the route loader failed" >&2; exit 1; }
ip netns exec "ferrybench-$$-1" python3 "$here/raw_clients.py" sessions 1883 "$SESSIONS" >/dev/null
wait_for 120 digests_agree || { echo "partition.sh: the digests never agreed before the split" >&2; exit 1; }

results=()
for rep in $(seq "$reps"); do
  nft add rule bridge ferrysplit forward iifname vf3 drop
  nft add rule bridge ferrysplit forward oifname vf3 drop
  wait_for 30 stopped_on 1 || { echo "partition.sh: the split was not seen" >&2; exit 1; }
  sleep "$SPLIT"
  nft flush chain bridge ferrysplit forward
  t0=$(now_ms)
  wait_for 300 digests_agree || { echo "partition.sh: no agreement within 300 s" >&2; exit 1; }
  wait_for 300 all_running 3
  t1=$(now_ms)
  results+=("$(( t1 - t0 ))")
  echo "rep $rep: every table agrees $(( t1 - t0 )) ms after the network returned" >&2
done

routes_known="$(ctl 3 cluster digest --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["routes"]["count"])')"
sessions_known="$(ctl 1 cluster nodes --json | python3 -c 'import json,sys; print(next(r["sessions"] for r in json.load(sys.stdin) if r["node"].startswith("ferry1@")))')"
text="### Heal time after a split ($(date -u +%Y-%m-%d), $(nproc) cores)

\`$command_line\`: 3 nodes on network namespaces, node 1 with $routes_known routes in the
cluster's table and $sessions_known sessions; node 3 cut off (frames dropped on the
bridge) until the others list it as stopped, then $SPLIT s more; then the network returns.

| repetition | ms from the network's return until every node's \`cluster digest\` agrees and lists 3 running |
| --- | --- |"
for i in "${!results[@]}"; do text+=$'\n'"| $((i + 1)) | ${results[$i]} |"; done
echo "$text"
if [[ "$out" != "-" ]]; then
  python3 - "$out" "$text" <<'PY'
import sys
path, text = sys.argv[1], sys.argv[2]
begin, end = "<!-- partition:begin -->", "<!-- partition:end -->"
doc = open(path).read()
block = begin + "\n" + text + "\n" + end
if begin in doc and end in doc:
    doc = doc[:doc.index(begin)] + block + doc[doc.index(end) + len(end):]
else:
    doc = doc.rstrip("\n") + "\n\n" + block + "\n"
open(path, "w").write(doc)
PY
fi
