# shellcheck shell=bash disable=SC2034
# Helpers shared by scripts/run.sh and scripts/test.sh; sourced, not run.

# What building ferryd needs.
FERRY_BUILD_PACKAGES=(
  cmake ninja-build g++ pkg-config
  libuv1-dev libinih-dev libsqlite3-dev libssl-dev libsystemd-dev
  nlohmann-json3-dev libcurl4-openssl-dev libc-ares-dev
)
# What the tests need on top: GoogleTest, the client libraries and tools the
# integration tests talk to ferryd with, the openssl tool (test certificates)
# haproxy and nginx with its stream module (ferry behind a load balancer),
# what builds and checks the
# Debian package (dpkg-dev, systemd-analyze from systemd), clang with its
# sanitizer and libFuzzer runtimes (libclang-rt-14-dev) and symbolizer
# (llvm-14), promtool (prometheus) that checks /metrics, and iproute2 for the
# network namespaces of the admin access and multicast discovery tests; the
# bridge tests run Debian's mosquitto as an upstream; the discovery tests
# run dnsmasq (dnsmasq-base: the program, no service) and etcd (etcd-server,
# with etcdctl from etcd-client) on loopback.
FERRYTEST_PACKAGES=(
  "${FERRY_BUILD_PACKAGES[@]}"
  googletest libgtest-dev
  libpaho-mqttpp-dev libpaho-mqtt-dev libmosquitto-dev mosquitto mosquitto-clients
  openssl haproxy nginx libnginx-mod-stream dpkg-dev systemd
  clang libclang-rt-14-dev llvm-14
  prometheus iproute2
  dnsmasq-base etcd-server etcd-client
)

log() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# Runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "not root and no sudo: cannot run '$*'"
  fi
}

package_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# ensure_packages PKG...: installs those of PKG that are missing, with one
# apt-get update first. Services in new packages (mosquitto's broker,
# haproxy, nginx) are neither started nor enabled: the tests start their own
# processes.
ensure_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    package_installed "$pkg" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 ||
    die "missing packages: ${missing[*]}; this script installs them with apt-get (Debian 12)"
  log "installing missing packages: ${missing[*]}"
  local policy=/usr/sbin/policy-rc.d added_policy=0 rc=0
  if [ ! -e "$policy" ]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
    added_policy=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || rc=$?
  if [ "$rc" -eq 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -q --no-install-recommends "${missing[@]}" || rc=$?
  fi
  if [ "$added_policy" -eq 1 ]; then as_root rm -f "$policy"; fi
  [ "$rc" -eq 0 ] || die "apt-get failed (exit $rc)"
  # Services that come with test packages stay off: tests start their own.
  local service
  for service in mosquitto haproxy nginx etcd; do
    if [[ " ${missing[*]} " == *" $service "* ]] && [ -d /run/systemd/system ]; then
      as_root systemctl disable --now "$service.service" >/dev/null 2>&1 || true
    fi
  done
}

# configure DIR CMAKE_ARGS...: configures build directory DIR with Ninja (a
# directory configured before keeps its generator and compiler).
configure() {
  local dir=$1
  shift
  if [ -f "$dir/CMakeCache.txt" ]; then
    cmake -S . -B "$dir" "$@"
  else
    cmake -S . -B "$dir" -G Ninja "$@"
  fi
}
