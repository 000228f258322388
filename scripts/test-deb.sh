#!/usr/bin/env bash
# Makes the Debian package (cpack -G DEB) of a build, installs it with apt (which checks its Depends), and builds
# and runs tests/consumer against the installed package alone: with find_package(clusterlock) and with pkg-config.
# Then removes the package. Needs root; meant for a throwaway root (scripts/test-trixie.sh runs it in its trixie root).
#   scripts/test-deb.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=$(cd "$1" && pwd)
src=$PWD

work=$(mktemp -d)
cleanup() {
  dpkg -s clusterlock >/dev/null 2>&1 && apt-get purge -y -qq clusterlock >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

rm -f "$build_dir"/clusterlock_*.deb
(cd "$build_dir" && cpack -G DEB >"$work/cpack.log") || { cat "$work/cpack.log"; exit 1; }
deb=$(ls "$build_dir"/clusterlock_*.deb)
echo "== dpkg -I $(basename "$deb")"
dpkg -I "$deb"
dpkg -c "$deb" | awk '{print "    " $6}'
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$deb" >/dev/null

echo "== the installed package: command, man page"
clusterlock --version
test -f /usr/share/man/man1/clusterlock.1.gz
# The source and build trees must play no part below.
echo "== find_package(clusterlock) from /usr"
cmake -S "$src/tests/consumer" -B "$work/consumer" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/consumer"
"$work/consumer/consumer"
echo "== pkg-config clusterlock"
flags=$(pkg-config --cflags --libs clusterlock)
echo "    $flags"
c++ -std=c++20 -Wall -Wextra -Werror "$src/tests/consumer/consumer.cpp" -o "$work/consumer-pc" $flags
"$work/consumer-pc"
echo "== the package installs, and a consumer builds and runs against it"
