#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, with clang: ASan + UBSan + libFuzzer) and runs each for a short while from
# its seed corpus (fuzz/corpus/<target>, which includes the inputs of every bug found so far). A crash, a leak or
# a broken invariant fails the run and leaves the input in build-fuzz/artifacts/.
#   scripts/fuzz-smoke.sh                      each target for 25 s
#   FUZZ_SECONDS=600 scripts/fuzz-smoke.sh     a longer run
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-25}
build=build-fuzz
cmake -S fuzz -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="${FUZZ_CXX:-clang++}" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build" -j "${JOBS:-2}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$build/artifacts"
for target in codec line_splitter lock_machine; do
  echo "== fuzz_$target: $seconds s"
  mkdir -p "$work/$target"
  # New inputs go to a scratch corpus; the seeds in fuzz/corpus are only read.
  if ! "$build/fuzz_$target" -max_total_time="$seconds" -print_final_stats=1 -print_pcs=0 -print_funcs=0 \
      -artifact_prefix="$build/artifacts/$target-" "$work/$target" "fuzz/corpus/$target" >"$work/$target.log" 2>&1; then
    tail -n 60 "$work/$target.log"
    echo "fuzz_$target failed; the input is in $build/artifacts/" >&2
    exit 1
  fi
  grep -E '^#[0-9]+ +DONE|^stat::number_of_executed_units' "$work/$target.log" || true
done
