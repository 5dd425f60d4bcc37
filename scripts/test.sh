#!/usr/bin/env bash
# The whole test run, as CI does it (.ci/run):
#   werror  g++, -Werror, all tests (ctest -j2)                  in build-test/
#   asan    clang, -Werror, ASan + UBSan, asserts on, all tests  in build-asan/
#   fuzz    clang, libFuzzer: every fuzz target (tests/fuzz/fuzz_*.cpp), each over a
#           copy of its seed corpus tests/fuzz/corpus/<target without fuzz_>, for
#           an equal share of FERRYTEST_FUZZ_SECONDS
# Every stage runs even if an earlier one failed; the exit status is non-zero
# if any failed.
#
# Knobs: FERRYTEST_SKIP_ASAN=1, FERRYTEST_SKIP_FUZZ=1, FERRYTEST_FUZZ_SECONDS
# (default 60: the total over all fuzz targets).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/common.sh
. scripts/common.sh

FUZZ_SECONDS=${FERRYTEST_FUZZ_SECONDS:-60}
[[ "$FUZZ_SECONDS" =~ ^[1-9][0-9]*$ ]] || die "FERRYTEST_FUZZ_SECONDS must be a positive integer"

# The fuzz stage's scratch directory (copies of the seed corpora), removed
# however the script ends.
FUZZ_TMP=""
cleanup() { [ -z "$FUZZ_TMP" ] || rm -rf "$FUZZ_TMP"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

TESTS_PASSED=0
TESTS_FAILED=0
TESTS_COUNTED=1  # 0 once a ctest run ended without its closing line
SUMMARY=()
FAILED_STAGES=0
STAGE_DETAIL=""

# run_ctest DIR: all tests of DIR, two at a time; adds to the totals.
run_ctest() {
  local dir=$1 out rc line failed total
  out="$dir/ctest-output.log"
  ctest --test-dir "$dir" --output-on-failure -j2 --timeout 300 --no-tests=error 2>&1 |
    tee "$out"
  rc=${PIPESTATUS[0]}
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$out" | tail -n 1 || true)
  if [ -n "$line" ]; then
    failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
    TESTS_PASSED=$((TESTS_PASSED + total - failed))
    TESTS_FAILED=$((TESTS_FAILED + failed))
    STAGE_DETAIL="$((total - failed)) passed, $failed failed"
  else
    TESTS_COUNTED=0
    STAGE_DETAIL="ctest gave no result line"
  fi
  return "$rc"
}

stage_werror() {
  CC=gcc CXX=g++ configure build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DFERRY_BUILD_TESTS=ON -DFERRY_WERROR=ON -DFERRY_SANITIZE=OFF -DFERRY_FUZZ=OFF || return
  cmake --build build-test || {
    STAGE_DETAIL="build failed"
    TESTS_COUNTED=0
    return 1
  }
  run_ctest build-test
}

stage_asan() {
  local -x ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  local -x UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  if [ -x /usr/bin/llvm-symbolizer-14 ]; then
    local -x ASAN_SYMBOLIZER_PATH=/usr/bin/llvm-symbolizer-14
  fi
  # Debug keeps assert() on; -O1 keeps the sanitized tests quick.
  CC=clang CXX=clang++ configure build-asan -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_FLAGS_DEBUG="-g -O1" -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" \
    -DFERRY_BUILD_TESTS=ON -DFERRY_WERROR=ON -DFERRY_SANITIZE=ON -DFERRY_FUZZ=OFF || return
  cmake --build build-asan || {
    STAGE_DETAIL="build failed"
    TESTS_COUNTED=0
    return 1
  }
  run_ctest build-asan
}

# fuzz_one TARGET SECONDS: runs build-fuzz's TARGET over a copy of its seed
# corpus (under $FUZZ_TMP); on failure prints the end of its log and the
# inputs that failed. Sets FUZZ_RUNS (inputs run) or FUZZ_FAILED (what to
# report); every failure sets FUZZ_FAILED.
fuzz_one() {
  local target=$1 seconds=$2 bin corpus artifacts out rc=0
  FUZZ_RUNS="" FUZZ_FAILED=""
  bin=$(find build-fuzz -type f -name "$target" -perm -u+x | head -n 1)
  [ -n "$bin" ] || {
    FUZZ_FAILED="no $target binary under build-fuzz/"
    return 1
  }
  corpus=$FUZZ_TMP/$target
  if ! { mkdir "$corpus" && cp -R "tests/fuzz/corpus/${target#fuzz_}/." "$corpus"/; }; then
    rm -rf "$corpus"
    FUZZ_FAILED="$target: cannot copy tests/fuzz/corpus/${target#fuzz_} to $corpus"
    return 1
  fi
  artifacts=build-fuzz/artifacts/$target
  mkdir -p "$artifacts"
  out=build-fuzz/$target.log
  log "fuzzing for ${seconds} s: $bin"
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" >"$out" 2>&1 || rc=$?
  rm -rf "$corpus"
  FUZZ_RUNS=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$out" | tail -n 1)
  if [ "$rc" -eq 0 ]; then
    tail -n 15 "$out"
    return 0
  fi
  tail -n 200 "$out"
  local f
  for f in "$artifacts"/*; do
    [ -f "$f" ] || continue
    log "input that failed $target: $f ($(wc -c <"$f") bytes):"
    od -An -tx1 -v "$f" | head -n 64
  done
  FUZZ_FAILED="$target failed (exit $rc); inputs in $artifacts/"
  return "$rc"
}

# Every fuzz target (one per tests/fuzz/fuzz_*.cpp), each for its share of
# FUZZ_SECONDS (at least 1 s).
stage_fuzz() {
  local -x UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  if [ -x /usr/bin/llvm-symbolizer-14 ]; then
    local -x ASAN_SYMBOLIZER_PATH=/usr/bin/llvm-symbolizer-14
  fi
  if [ ! -f tests/fuzz/CMakeLists.txt ]; then
    STAGE_DETAIL="tests/fuzz/CMakeLists.txt is missing"
    log "$STAGE_DETAIL: the fuzz targets cannot be built"
    return 1
  fi
  local targets=() src t
  for src in tests/fuzz/fuzz_*.cpp; do
    [ -f "$src" ] || continue
    t=$(basename "$src" .cpp)
    if [ ! -d "tests/fuzz/corpus/${t#fuzz_}" ]; then
      STAGE_DETAIL="tests/fuzz/corpus/${t#fuzz_} is missing"
      log "$STAGE_DETAIL: no seed corpus for $t (python3 tests/fuzz/make_corpus.py writes it)"
      return 1
    fi
    targets+=("$t")
  done
  if [ "${#targets[@]}" -eq 0 ]; then
    STAGE_DETAIL="no tests/fuzz/fuzz_*.cpp"
    return 1
  fi
  CC=clang CXX=clang++ configure build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DFERRY_FUZZ=ON -DFERRY_BUILD_TESTS=OFF -DFERRY_SANITIZE=OFF || return
  cmake --build build-fuzz --target "${targets[@]}" || {
    STAGE_DETAIL="build failed"
    return 1
  }
  rm -rf build-fuzz/artifacts
  FUZZ_TMP=$(mktemp -d "${TMPDIR:-/tmp}/ferry-fuzz-corpus.XXXXXX") || {
    STAGE_DETAIL="cannot create a directory for the corpora"
    return 1
  }
  local share=$((FUZZ_SECONDS / ${#targets[@]})) rc=0 ran=() failed=()
  [ "$share" -ge 1 ] || share=1
  for t in "${targets[@]}"; do
    if fuzz_one "$t" "$share"; then
      ran+=("$t ${FUZZ_RUNS:-?}")
    else
      rc=1
      failed+=("${FUZZ_FAILED:-$t failed}")
    fi
  done
  cleanup
  FUZZ_TMP=""
  local joined
  if [ "$rc" -eq 0 ]; then
    joined=$(printf '%s, ' "${ran[@]}")
    STAGE_DETAIL="${joined%, } inputs, no crash"
    return 0
  fi
  joined=$(printf '%s; ' "${failed[@]}")
  STAGE_DETAIL="${joined%; }"
  return 1
}

# stage NAME SKIP_VARIABLE FUNCTION: runs FUNCTION unless $SKIP_VARIABLE is 1.
stage() {
  local name=$1 skip_var=$2 fn=$3 start rc=0
  if [ -n "$skip_var" ] && [ "${!skip_var:-0}" = 1 ]; then
    SUMMARY+=("$(printf '%-8s SKIP  (%s=1)' "$name" "$skip_var")")
    return
  fi
  log "stage $name"
  STAGE_DETAIL=""
  start=$SECONDS
  "$fn" || rc=$?
  local verdict=PASS
  if [ "$rc" -ne 0 ]; then
    verdict=FAIL
    FAILED_STAGES=$((FAILED_STAGES + 1))
  fi
  SUMMARY+=("$(printf '%-8s %s  %s (%d s)' "$name" "$verdict" "$STAGE_DETAIL" $((SECONDS - start)))")
}

ensure_packages "${FERRYTEST_PACKAGES[@]}"
stage werror "" stage_werror
stage asan FERRYTEST_SKIP_ASAN stage_asan
stage fuzz FERRYTEST_SKIP_FUZZ stage_fuzz

echo
echo "==> summary"
for line in "${SUMMARY[@]}"; do echo "  $line"; done
if [ "$TESTS_COUNTED" -eq 1 ]; then
  echo "ctest: $TESTS_PASSED passed, $TESTS_FAILED failed"
fi
if [ "$FAILED_STAGES" -ne 0 ]; then
  echo "$FAILED_STAGES stage(s) failed"
  exit 1
fi
