#!/usr/bin/env bash
# Sets up (Debian packages), builds and runs every test. What CI runs; what a newcomer runs.
#   scripts/test.sh                 everything
#   BUILD_DIR=build-x scripts/test.sh -L unit    extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

build_dir=${BUILD_DIR:-build}
jobs=${JOBS:-2}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLUSTERLOCK_WARNINGS_AS_ERRORS=ON
cmake --build "$build_dir" -j "$jobs"
# Integration tests start real etcd processes; run one test binary's cases at a time so that
# timing-sensitive fault tests are not starved on a 2-core machine.
ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" "$@"
