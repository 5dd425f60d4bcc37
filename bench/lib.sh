# Broker start and stop for bench/run.sh. Sourced, not run.
#
# start_ferry DIR WORKERS [EXTRA_INI] [NAME]  sets FERRY_PID, FERRY_PORT
#                                             (node NAME@127.0.0.1, default bench)
# start_mosquitto DIR [EXTRA_CONF_LINES]   sets MOSQ_PID, MOSQ_PORT
# stop_pid PID                             SIGTERM, then SIGKILL after 10 s
# stop_all                                 stops whatever of the two is running
# set_nice N SCRIPT                        sets NICE_CMD to run at niceness N
# run_reps RUN                             RUN SCENARIO BROKER REP for every
#                                          repetition, scenario and broker
#
# Both brokers listen on 127.0.0.1 only. ferryd binds port 0 and reports the
# port it got on its ready line; mosquitto gets a port found free just before.

FERRY_PID=""; FERRY_PORT=""; MOSQ_PID=""; MOSQ_PORT=""; NICE_CMD="${NICE_CMD:-}"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_until SECONDS COMMAND...: polls COMMAND every 50 ms until it succeeds.
wait_until() {
  local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
  until "$@"; do
    (( $(date +%s%N) < deadline )) || return 1
    sleep 0.05
  done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# True while PID runs (a child that exited but was not yet reaped is a
# zombie, which kill -0 still finds).
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $st != Z* ]]; }
gone() { ! alive "$1"; }

# set_nice N SCRIPT: NICE_CMD runs at niceness N if this machine lets us
# (else a warning naming SCRIPT, and the default niceness).
set_nice() {
  local n="$1" script="$2"
  NICE_CMD=""
  [[ -n "$n" ]] || return 0
  if nice -n "$n" true 2>/dev/null && [[ "$(nice -n "$n" nice)" == "$n" ]]; then
    NICE_CMD="nice -n $n"
  else
    echo "$script: cannot run at niceness $n here; running at the default" >&2
  fi
}

# The options bench/run.sh and bench/bridge.sh share. common_option ARGS...
# takes the first option of ARGS if it is one of them (setting quick, reps,
# build, only, out, keep or NICE) and sets SHIFTS to the words it used;
# returns 1 for any other option.
common_option() {
  SHIFTS=1
  case "$1" in
    --quick) quick=1 ;;
    --reps) reps="$2"; SHIFTS=2 ;;
    --build) build="$2"; SHIFTS=2 ;;
    --only) only="$2"; SHIFTS=2 ;;
    --out) out="$2"; SHIFTS=2 ;;
    --keep) keep=1 ;;
    --nice) NICE="$2"; SHIFTS=2 ;;
    *) return 1 ;;
  esac
}

# parse_options SCRIPT HELP_LAST_LINE ARGS...: the shared options
# (common_option), then the script's own through its script_option function
# (same contract as common_option); --help prints the script's header
# comment (lines 2 to HELP_LAST_LINE). Then finds the binaries and sets the
# niceness. The caller sets `here` and `out`'s default first.
parse_options() {
  local script="$1" help_last="$2"; shift 2
  quick=0; reps=""; build="${FERRY_BUILD:-$here/../build}"; only=""; keep=0
  while [[ $# -gt 0 ]]; do
    if common_option "$@" || script_option "$@"; then shift "$SHIFTS"; continue; fi
    case "$1" in
      -h|--help) sed -n "2,${help_last}p" "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
      *) echo "$script: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
  done
  require_binaries "$script"
  set_nice "${NICE:-}" "$script"
}

# require_binaries SCRIPT: FERRYD, BENCH and MOSQUITTO from $build (and
# $MOSQUITTO), or a message naming SCRIPT and exit 2 if one is missing.
require_binaries() {
  FERRYD="$build/ferryd"
  BENCH="$build/ferry-bench"
  MOSQUITTO="${MOSQUITTO:-/usr/sbin/mosquitto}"
  local bin
  for bin in "$FERRYD" "$BENCH" "$MOSQUITTO"; do
    [[ -x "$bin" ]] || { echo "$1: $bin not found; build with: cmake --build $build --target ferryd ferry-bench" >&2; exit 2; }
  done
}

start_ferry() {
  local dir="$1" workers="$2" extra="${3:-}" name="${4:-bench}"
  rm -rf "$dir"; mkdir -p "$dir/data"
  cat > "$dir/ferry.conf" <<EOF
[node]
name = $name@127.0.0.1
data_dir = $dir/data
workers = $workers
[log]
level = info
[listener.tcp.default]
bind = 127.0.0.1:0
[sys]
interval = 0
[admin]
http_bind = 127.0.0.1:0
$extra
EOF
  $NICE_CMD "$FERRYD" -c "$dir/ferry.conf" 2> "$dir/ferry.log" &
  FERRY_PID=$!
  if ! wait_until 10 grep -q ' ready node=' "$dir/ferry.log"; then
    echo "ferryd did not start; its log:" >&2; cat "$dir/ferry.log" >&2; return 1
  fi
  FERRY_PORT=$(grep -o 'tcp.default=[^ ]*' "$dir/ferry.log" | head -1 | sed 's/.*://')
}

start_mosquitto() {
  local dir="$1" extra="${2:-}"
  rm -rf "$dir"; mkdir -p "$dir"
  MOSQ_PORT=$(free_port)
  # Defaults, except: loopback listener, anonymous clients, no persistence,
  # and TCP_NODELAY like ferryd (mosquitto's default Nagle adds up to 40 ms
  # to QoS 0 latency, which would measure Nagle, not the broker).
  {
    echo "listener $MOSQ_PORT 127.0.0.1"
    echo "allow_anonymous true"
    echo "persistence false"
    echo "set_tcp_nodelay true"
    if [[ "$extra" != *max_queued_messages* ]]; then echo "max_queued_messages 1000"; fi
    [[ -n "$extra" ]] && echo "$extra"
    echo "log_dest stderr"
    echo "log_type error"
    echo "log_type warning"
  } > "$dir/mosquitto.conf"
  $NICE_CMD "$MOSQUITTO" -c "$dir/mosquitto.conf" 2> "$dir/mosquitto.log" &
  MOSQ_PID=$!
  if ! wait_until 10 port_open "$MOSQ_PORT"; then
    echo "mosquitto did not start; its log:" >&2; cat "$dir/mosquitto.log" >&2; return 1
  fi
}

stop_pid() {
  local pid="$1"
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  if ! wait_until 10 gone "$pid"; then
    echo "process $pid ignored SIGTERM for 10 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

stop_all() {
  stop_pid "$FERRY_PID"; FERRY_PID=""
  stop_pid "$MOSQ_PID"; MOSQ_PID=""
}

# wanted SCENARIO: true if --only names it (or there was no --only).
wanted() { [[ -z "$only" || ",$only," == *",$1,"* ]]; }

# run_reps RUN: for each of $reps repetitions, each wanted scenario of
# SCENARIOS and each broker, calls RUN SCENARIO BROKER REP, alternating
# which broker goes first so that neither always runs on a warmer or quieter
# machine. Progress goes to stderr, timed from $started.
run_reps() {
  local run="$1" rep s b order
  for rep in $(seq 1 "$reps"); do
    if (( rep % 2 == 1 )); then order=(ferry mosquitto); else order=(mosquitto ferry); fi
    for s in "${SCENARIOS[@]}"; do
      wanted "$s" || continue
      for b in "${order[@]}"; do
        echo "[$(( $(date +%s) - started ))s] rep $rep/$reps $s $b" >&2
        "$run" "$s" "$b" "$rep"
      done
    done
  done
}
