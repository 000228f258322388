#!/usr/bin/env bash
# Sets up (Debian packages), builds (Release, warnings as errors) and runs every test. What CI runs; what a newcomer
# runs.
#   scripts/test.sh                 everything
#   BUILD_DIR=build-x scripts/test.sh -L unit    extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

build_dir=${BUILD_DIR:-build}
jobs=${JOBS:-2}
# Release (CMake's -O3 -DNDEBUG), what a user's Release build does: an -O3-only crash once hid from -O2 (issue 12).
# The same arguments as scripts/bench.sh's, with the benchmarks, so that `BUILD_DIR=build scripts/bench.sh` (CI)
# reuses this build and builds only the benchmark programs; the sanitized suite is the Debug build.
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCLUSTERLOCK_WARNINGS_AS_ERRORS=ON \
  -DCLUSTERLOCK_BUILD_TESTS=ON -DCLUSTERLOCK_BUILD_BENCHMARKS=ON -DCMAKE_UNITY_BUILD=ON
cmake --build "$build_dir" -j "$jobs"
# Integration tests start real etcd processes; run one test binary's cases at a time so that
# timing-sensitive fault tests are not starved on a 2-core machine.
ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" "$@"
