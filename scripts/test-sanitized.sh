#!/usr/bin/env bash
# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer (CMake preset asan: Debug, build-asan/; without
# the benchmarks, which no test runs: scripts/test.sh's build compiles them with warnings as errors).
# Any report fails the run: a leak (LeakSanitizer), a bad access, undefined behaviour. CI runs it after
# scripts/test.sh, which installs what both need (scripts/setup.sh).
#   scripts/test-sanitized.sh              everything
#   scripts/test-sanitized.sh -L unit      extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=${JOBS:-2}
cmake --preset asan
cmake --build build-asan -j "$jobs"

# halt_on_error: stop at the first report (the build also has -fno-sanitize-recover=all);
# detect_stack_use_after_return: also catches frames used after a coroutine or function returned.
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:print_stacktrace=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
ctest --test-dir build-asan --output-on-failure -j "$jobs" "$@"
