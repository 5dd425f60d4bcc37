#!/usr/bin/env bash
# The edge-to-central deployment of etc/examples/edge-central/ on one host,
# with loopback addresses and without TLS or passwords: three central nodes
# in one cluster (static discovery) behind HAProxy, and an edge node whose
# bridge forwards sensor/# to them through HAProxy and pulls down its
# commands.
#
#   scripts/edge-central.sh up     start it all (needs haproxy; build/ first)
#   scripts/edge-central.sh down   stop what this script started
#
#   central<i>@127.0.0.1   MQTT 127.0.0.1:1890+i, admin http 127.0.0.1:18090+i,
#                          PROXY listener for HAProxy 127.0.0.1:1900+i,
#                          cluster port 127.0.0.1:4390+i
#   HAProxy                127.0.0.1:1900 (the central site's address)
#   edge1@127.0.0.1        MQTT 127.0.0.1:1889, admin http 127.0.0.1:18089
#
# State, configs and logs are in edge-central-local/. The binaries come
# from build/ (scripts/run.sh builds it), or from the directory in
# $BUILD_DIR.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

state=edge-central-local
build=${BUILD_DIR:-build}

die() {
  printf 'edge-central: %s\n' "$*" >&2
  exit 1
}

# Stops the process whose pid is in $1 (if it runs) and waits for it.
stop_pid() {
  local pidfile=$1 pid
  [ -e "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    echo "stopped $(basename "$(dirname "$pidfile")") (pid $pid)"
  fi
  rm -f "$pidfile"
}

down() {
  # The edge first (its queue keeps what it could not send), then the
  # balancer, then the central nodes.
  stop_pid "$state/edge1/ferryd.pid"
  stop_pid "$state/haproxy/haproxy.pid"
  local i
  for i in 1 2 3; do stop_pid "$state/central$i/ferryd.pid"; done
}

# ferryd -c $2, logging to $1/ferryd.log, with no FERRY_ variable of the
# caller's (ferryd refuses those that name no config key).
start_node() {
  local dir=$1 config=$2
  local -a clean=()
  while IFS='=' read -r name _; do
    case $name in FERRY_*) clean+=(-u "$name") ;; esac
  done < <(env)
  [ -e "$dir/ferryd.pid" ] && kill -0 "$(cat "$dir/ferryd.pid")" 2>/dev/null &&
    die "$(basename "$dir") is already running (scripts/edge-central.sh down first)"
  : >"$dir/ferryd.log"
  env "${clean[@]}" "$build/ferryd" -c "$config" >>"$dir/ferryd.log" 2>&1 &
  echo $! >"$dir/ferryd.pid"
}

wait_ready() {
  local dir=$1
  for _ in $(seq 100); do grep -q ' ready node=' "$dir/ferryd.log" && return 0; sleep 0.1; done
  tail -n 20 "$dir/ferryd.log" >&2
  die "$(basename "$dir") did not start"
}

central_config() {
  local i=$1 dir=$2
  cat <<EOF
[node]
name = central$i@127.0.0.1
data_dir = $dir/data
cookie_file = $state/cookie

[listener.tcp.default]
bind = 127.0.0.1:$((1890 + i))

[listener.tcp.lb]
bind = 127.0.0.1:$((1900 + i))
proxy_protocol = true

[admin]
http_bind = 127.0.0.1:$((18090 + i))

[cluster]
name = central
discovery = static
listen = 127.0.0.1:$((4390 + i))

[cluster.static]
seeds = central1@127.0.0.1:4391, central2@127.0.0.1:4392, central3@127.0.0.1:4393
EOF
}

edge_config() {
  local dir=$1
  cat <<EOF
[node]
name = edge1@127.0.0.1
data_dir = $dir/data

[listener.tcp.default]
bind = 127.0.0.1:1889

[admin]
http_bind = 127.0.0.1:18089

[bridge.central]
address = 127.0.0.1:1900
remote_prefix = site/\${node}/
forward = sensor/# 1, alarm/# 1
subscribe = cmd/# 1
clean_start = false
session_expiry = 86400
reconnect_max = 5s
EOF
}

haproxy_config() {
  local i
  cat <<EOF
global
    maxconn 4000

defaults
    mode tcp
    timeout connect 2s
    timeout client 10m
    timeout server 10m
    option redispatch
    retries 3

frontend edge_sites
    bind 127.0.0.1:1900
    default_backend central

backend central
    balance leastconn
    option httpchk GET /api/v1/health
    http-check expect status 200
EOF
  for i in 1 2 3; do
    echo "    server central$i 127.0.0.1:$((1900 + i)) send-proxy-v2 check port $((18090 + i)) inter 1s fall 1 rise 1"
  done
}

up() {
  if [ ! -x "$build/ferryd" ] || [ ! -x "$build/ferryctl" ]; then
    die "no $build/ferryd or $build/ferryctl: build them first (scripts/run.sh, or set BUILD_DIR)"
  fi
  command -v haproxy >/dev/null 2>&1 || die "no haproxy: apt-get install haproxy"
  mkdir -p "$state"
  if [ ! -s "$state/cookie" ]; then
    (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$state/cookie")
  fi
  local i dir
  for i in 1 2 3; do
    dir=$state/central$i
    mkdir -p "$dir/data"
    central_config "$i" "$dir" >"$dir/ferry.conf"
    start_node "$dir" "$dir/ferry.conf"
  done
  for i in 1 2 3; do wait_ready "$state/central$i"; done
  # Static discovery joins them by themselves.
  local status=""
  for _ in $(seq 150); do
    status=$("$build/ferryctl" --socket "$state/central1/data/ferry.sock" cluster status 2>/dev/null || true)
    case $status in *central1*central2*central3*) break ;; esac
    sleep 0.2
  done
  case $status in *central1*central2*central3*) ;; *) die "the central nodes did not form a cluster: $status" ;; esac
  echo "$status"

  dir=$state/haproxy
  mkdir -p "$dir"
  [ -e "$dir/haproxy.pid" ] && kill -0 "$(cat "$dir/haproxy.pid")" 2>/dev/null &&
    die "haproxy is already running (scripts/edge-central.sh down first)"
  haproxy_config >"$dir/haproxy.cfg"
  haproxy -db -f "$dir/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
  echo $! >"$dir/haproxy.pid"
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/1900) 2>/dev/null && break; sleep 0.1; done
  (exec 3<>/dev/tcp/127.0.0.1/1900) 2>/dev/null || { cat "$dir/haproxy.log" >&2; die "haproxy did not start"; }

  dir=$state/edge1
  mkdir -p "$dir/data"
  edge_config "$dir" >"$dir/ferry.conf"
  start_node "$dir" "$dir/ferry.conf"
  wait_ready "$dir"
  local bridge=""
  for _ in $(seq 100); do
    bridge=$("$build/ferryctl" --socket "$dir/data/ferry.sock" bridges list 2>/dev/null || true)
    case $bridge in *"connected to"*) break ;; esac
    sleep 0.2
  done
  echo "$bridge"
  case $bridge in *"connected to"*) ;; *) die "the edge's bridge did not connect (see $dir/ferryd.log)" ;; esac
  cat <<EOF
central1..3@127.0.0.1: MQTT 127.0.0.1:1891..1893, ferryctl --socket $state/central<i>/data/ferry.sock ...
edge1@127.0.0.1: MQTT 127.0.0.1:1889, ferryctl --socket $state/edge1/data/ferry.sock ...
Try:
  mosquitto_sub -p 1892 -t 'site/#' -v                  # at the centre, on central2
  mosquitto_pub -p 1889 -t sensor/line1/temp -m 21.5 -q 1  # at the edge
  mosquitto_pub -p 1893 -t site/edge1@127.0.0.1/cmd/fan -m on -q 1  # a command for the edge
EOF
}

case ${1:-} in
  up) up ;;
  down) down ;;
  *) die "usage: scripts/edge-central.sh up | down" ;;
esac
