#!/usr/bin/env bash
# A pseudo-distributed cluster: N ferry nodes on this host, each set apart by
# environment overrides of etc/ferry.conf only (node name, data dir, MQTT,
# admin and cluster ports), joined into one cluster.
#
#   scripts/cluster-local.sh N       start nodes ferry1..ferryN@127.0.0.1, join them
#   scripts/cluster-local.sh stop    stop the nodes this script started
#
# Node i listens for MQTT on 1882 + i, its HTTP admin API on 18082 + i and
# its cluster port on 127.0.0.1:4370 + i; its state and log are in
# cluster-local/ferry<i>/. The binaries come from build/ (scripts/run.sh
# builds it), or from the directory in $BUILD_DIR. Set MQTT_PORT_BASE or
# ADMIN_PORT_BASE to move the ports.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

state=cluster-local
build=${BUILD_DIR:-build}
mqtt_base=${MQTT_PORT_BASE:-1882}
admin_base=${ADMIN_PORT_BASE:-18082}

die() {
  printf 'cluster-local: %s\n' "$*" >&2
  exit 1
}

stop_nodes() {
  local pidfile pid
  for pidfile in "$state"/ferry*/ferryd.pid; do
    [ -e "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill "$pid" 2>/dev/null; then
      # Wait for a clean stop (it says goodbye to its peers).
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      echo "stopped $(basename "$(dirname "$pidfile")") (pid $pid)"
    fi
    rm -f "$pidfile"
  done
}

# ferryd's environment: the overrides of node $1 and no other FERRY_ variable
# (ferryd refuses FERRY_ variables that name no config key).
node_env() {
  local i=$1 dir=$state/ferry$1
  local -a clean=()
  while IFS='=' read -r name _; do
    case $name in FERRY_*) clean+=(-u "$name") ;; esac
  done < <(env)
  echo env "${clean[@]}" \
    FERRY_NODE__NAME="ferry$i@127.0.0.1" \
    FERRY_NODE__DATA_DIR="$dir/data" \
    FERRY_NODE__COOKIE_FILE="$state/cookie" \
    FERRY_LISTENER__TCP__DEFAULT__BIND="127.0.0.1:$((mqtt_base + i))" \
    FERRY_ADMIN__HTTP_BIND="127.0.0.1:$((admin_base + i))" \
    FERRY_CLUSTER__LISTEN="127.0.0.1:$((4370 + i))"
}

start_nodes() {
  local n=$1 i dir
  if [ ! -x "$build/ferryd" ] || [ ! -x "$build/ferryctl" ]; then
    die "no $build/ferryd or $build/ferryctl: build them first (scripts/run.sh, or set BUILD_DIR)"
  fi
  mkdir -p "$state"
  if [ ! -s "$state/cookie" ]; then
    (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$state/cookie")
  fi
  for i in $(seq "$n"); do
    dir=$state/ferry$i
    mkdir -p "$dir"
    [ -e "$dir/ferryd.pid" ] && kill -0 "$(cat "$dir/ferryd.pid")" 2>/dev/null &&
      die "ferry$i is already running (scripts/cluster-local.sh stop first)"
    : >"$dir/ferryd.log"
    # shellcheck disable=SC2046
    $(node_env "$i") "$build/ferryd" -c etc/ferry.conf >>"$dir/ferryd.log" 2>&1 &
    echo $! >"$dir/ferryd.pid"
  done
  for i in $(seq "$n"); do
    dir=$state/ferry$i
    for _ in $(seq 100); do grep -q ' ready node=' "$dir/ferryd.log" && break; sleep 0.1; done
    grep -q ' ready node=' "$dir/ferryd.log" || { tail -n 20 "$dir/ferryd.log" >&2; die "ferry$i did not start"; }
  done
  for i in $(seq 2 "$n"); do
    "$build/ferryctl" --socket "$state/ferry$i/data/ferry.sock" cluster join ferry1@127.0.0.1 >/dev/null ||
      die "ferry$i could not join ferry1 (see $state/ferry$i/ferryd.log)"
  done
  "$build/ferryctl" --socket "$state/ferry1/data/ferry.sock" cluster status
  for i in $(seq "$n"); do
    echo "ferry$i@127.0.0.1: MQTT 127.0.0.1:$((mqtt_base + i)), admin http://127.0.0.1:$((admin_base + i))," \
      "ferryctl --socket $state/ferry$i/data/ferry.sock ..."
  done
}

case ${1:-} in
  stop) stop_nodes ;;
  '' | *[!0-9]* | 0) die "usage: scripts/cluster-local.sh N | stop" ;;
  *) start_nodes "$1" ;;
esac
