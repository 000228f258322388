#!/usr/bin/env bash
# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer (CMake preset asan: Debug, build-asan/; without
# the benchmarks, which no test runs: scripts/test.sh's build compiles them with warnings as errors).
# Any report fails the run: a leak (LeakSanitizer), a bad access, undefined behaviour. CI runs it after
# scripts/test.sh, which installs what both need (scripts/setup.sh).
#   scripts/test-sanitized.sh              every test but two that only compile and install (below)
#   scripts/test-sanitized.sh -L unit      other ctest arguments instead of that selection (none left out)
# Left out by default, to keep CI under 30 minutes: the doc blocks (-L docs) and the consumer install (-L
# consumer). Both compile code against the library rather than run it, and scripts/test.sh runs them.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=${JOBS:-2}
if (($# == 0)); then set -- -LE 'docs|consumer'; fi
cmake --preset asan
cmake --build build-asan -j "$jobs"

# halt_on_error: stop at the first report (the build also has -fno-sanitize-recover=all);
# detect_stack_use_after_return: also catches frames used after a coroutine or function returned.
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:print_stacktrace=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
ctest --test-dir build-asan --output-on-failure -j "$jobs" "$@"
