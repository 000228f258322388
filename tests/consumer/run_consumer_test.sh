#!/usr/bin/env bash
# Installs a built clusterlock into a temporary prefix, then builds and runs a consumer against it twice: with
# find_package(clusterlock) and with pkg-config; with find_package also a user of the testing kit
# (clusterlock::testing, which starts an etcd). Nothing from the build or source tree may leak into either.
#   run_consumer_test.sh BUILD_DIR CONSUMER_SOURCE_DIR CMAKE CXX GENERATOR [FLAGS]
# FLAGS: compile and link flags the consumer needs besides the package's own (a sanitized build: -fsanitize=...).
set -euo pipefail
build_dir=$1 consumer_dir=$2 cmake=$3 cxx=$4 generator=$5 extra_flags=${6:-}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

source_dir=$(cd "$consumer_dir/../.." && pwd)
build_dir=$(cd "$build_dir" && pwd)

"$cmake" --install "$build_dir" --prefix "$prefix" >"$work/install.log"
for f in include/clusterlock/clusterlock.hpp include/clusterlock/detail/async_run.hpp include/clusterlock/testing.hpp \
         include/clusterlock/testing/etcd_cluster.hpp; do
  [ -f "$prefix/$f" ] || { echo "not installed: $f" >&2; exit 1; }
done
# An installed consumer must need nothing from the source or build tree.
if grep -rlI -e "$source_dir" -e "$build_dir" "$prefix"; then
  echo "the installed files above name the source or build tree" >&2
  exit 1
fi

echo "== find_package(clusterlock)"
"$cmake" -S "$consumer_dir" -B "$work/build" -G "$generator" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS="$extra_flags" \
  -DCMAKE_EXE_LINKER_FLAGS="$extra_flags" >/dev/null
"$cmake" --build "$work/build"
"$work/build/consumer"
"$work/build/testing_consumer"  # clusterlock::testing: starts an etcd, takes a lock, forces it away

echo "== pkg-config clusterlock"
pc=$(find "$prefix" -name clusterlock.pc)
export PKG_CONFIG_PATH=$(dirname "$pc")
# Only the installed tree: the flags must not name the build or source tree.
flags=$(pkg-config --cflags --libs clusterlock)
echo "$flags"
case "$flags" in
  *"$build_dir"* | *"$source_dir"*) echo "pkg-config flags name the source or build tree" >&2; exit 1 ;;
esac
"$cxx" -std=c++20 -O1 $extra_flags "$consumer_dir/consumer.cpp" -o "$work/consumer-pc" $flags
# No rpath from pkg-config: a shared libclusterlock is found through LD_LIBRARY_PATH.
LD_LIBRARY_PATH=$(pkg-config --variable=libdir clusterlock) "$work/consumer-pc"
