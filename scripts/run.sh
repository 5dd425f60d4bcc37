#!/usr/bin/env bash
# Installs what is missing, builds a Release ferryd (and ferryctl, to manage
# it) in build/, and runs ferryd with etc/ferry.conf. Arguments are passed on
# to ferryd.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/common.sh
. scripts/common.sh

ensure_packages "${FERRY_BUILD_PACKAGES[@]}"
log "building ferryd and ferryctl (Release) in build/"
configure build -DCMAKE_BUILD_TYPE=Release -DFERRY_BUILD_TESTS=OFF -DFERRY_FUZZ=OFF
cmake --build build --target ferryd ferryctl
log "starting: build/ferryd -c etc/ferry.conf $*"
exec build/ferryd -c etc/ferry.conf "$@"
