#!/usr/bin/env bash
# Builds the Debian package from a Release build in build-release/ and checks
# it (scripts/check-package.sh). Install it on Debian 12 with
#   apt install ./build-release/ferry_<version>_<arch>.deb
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/common.sh
. scripts/common.sh
ensure_packages "${FERRY_BUILD_PACKAGES[@]}" dpkg-dev
configure build-release -DCMAKE_BUILD_TYPE=Release -DFERRY_BUILD_TESTS=OFF
cmake --build build-release -j2
(cd build-release && cpack -G DEB)
bash scripts/check-package.sh build-release
ls -1 build-release/ferry_*.deb
