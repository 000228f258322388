#!/usr/bin/env bash
# Builds the benchmarks (Release), runs every measurement against a throwaway etcd it starts itself (one member,
# fsync on), and draws the plots. About 8 minutes on a 2-core machine, build included. See docs/benchmarks.md.
#
#   scripts/bench.sh                 everything; writes docs/benchmarks/*.csv, *.png, results.md and rewrites the
#                                    results section of docs/benchmarks.md
#   scripts/bench.sh --only 2,4      some measurements (1 command hand-off, 2 library hand-off, 3 crash fail-over,
#                                    4 acquire+release cycles, 5 idle holder, 6 scale, 7 many waiters,
#                                    8 semaphore admission)
#   scripts/bench.sh --quick         fewer trials and shorter windows, into build-bench/quick (docs untouched)
#   OUT_DIR=/tmp/b scripts/bench.sh  results elsewhere (docs untouched)
#   SKIP_SETUP=1, BUILD_DIR=..., JOBS=...
set -euo pipefail
cd "$(dirname "$0")/.."

[ "${SKIP_SETUP:-0}" = 1 ] || bash scripts/setup.sh

build_dir=${BUILD_DIR:-build-bench}
jobs=${JOBS:-2}
quick=0
for a in "$@"; do [ "$a" = --quick ] && quick=1; done
if [ -n "${OUT_DIR:-}" ]; then
  out_dir=$OUT_DIR
elif [ "$quick" = 1 ]; then
  out_dir=$build_dir/quick
else
  out_dir=docs/benchmarks
fi
doc_args=()
[ "$out_dir" = docs/benchmarks ] && doc_args=(--doc docs/benchmarks.md)

# CMake's Release flags (-O3): what a user's Release build does. CI runs `--quick` on it: a coroutine lambda that
# outlived its object once crashed there only (issue 12). The configure arguments are scripts/test.sh's, so that
# CI's `BUILD_DIR=build` reuses that build (other arguments would rebuild all of it) and builds only the benchmarks.
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCLUSTERLOCK_WARNINGS_AS_ERRORS=ON \
  -DCLUSTERLOCK_BUILD_TESTS=ON -DCLUSTERLOCK_BUILD_BENCHMARKS=ON -DCMAKE_UNITY_BUILD=ON >/dev/null
# The driver depends on its helper programs and, when it is part of the build, the clusterlock command.
cmake --build "$build_dir" -j "$jobs" --target clusterlock_bench

# etcd's own recipe, the second anchor: Go's concurrency.Mutex from Debian's golang-etcd-server-dev (GOPATH mode).
GOPATH=/usr/share/gocode GO111MODULE=off GOCACHE="$PWD/$build_dir/go-cache" \
  go build -o "$build_dir/go_recipe" benchmarks/go_recipe/main.go

status=0
"$build_dir/benchmarks/clusterlock_bench" --go "$build_dir/go_recipe" --out "$out_dir" "${doc_args[@]}" "$@" ||
  status=$?
gnuplot -e "dir='$out_dir'" benchmarks/plots.gp
echo "bench.sh: results in $out_dir (exit $status)"
exit "$status"
