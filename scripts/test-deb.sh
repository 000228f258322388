#!/usr/bin/env bash
# Installs the Debian package with apt (which resolves its Depends), and builds and runs tests/consumer against the
# installed package alone: with find_package(clusterlock) and with pkg-config. Then removes the package. Needs root;
# meant for a throwaway root (scripts/test-trixie.sh runs it in a fresh trixie root).
#   scripts/test-deb.sh BUILD_DIR                  makes the package first (cpack -G DEB in BUILD_DIR)
#   scripts/test-deb.sh [--fresh] PACKAGE.deb      a package made before
# --fresh: the root must not have Boost's or OpenSSL's headers before the install, so that the package's Depends
# alone must bring them (and the consumer build proves they do).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
fresh=0
if [ "${1:-}" = --fresh ]; then fresh=1; shift; fi
(($# == 1)) || { echo "usage: test-deb.sh BUILD_DIR | [--fresh] PACKAGE.deb" >&2; exit 2; }

work=$(mktemp -d)
cleanup() {
  dpkg -s clusterlock >/dev/null 2>&1 && apt-get purge -y -qq clusterlock >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

if [ -d "$1" ]; then
  build_dir=$(cd "$1" && pwd)
  rm -f "$build_dir"/clusterlock_*.deb
  (cd "$build_dir" && cpack -G DEB >"$work/cpack.log") || { cat "$work/cpack.log"; exit 1; }
  deb=$(ls "$build_dir"/clusterlock_*.deb)
else
  deb=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
fi
echo "== dpkg -I $(basename "$deb")"
dpkg -I "$deb"
dpkg -c "$deb" | awk '{print "    " $6}'

installed() { dpkg-query -W -f='${db:Status-Abbrev} ${binary:Package}\n' | awk '$1 == "ii" {print $2}' | sort; }
if ((fresh)); then
  present=$(installed | grep -E '^(libboost|libssl-dev)' || true)
  [ -z "$present" ] || { echo "test-deb.sh --fresh: already installed, so the Depends are not tested:" $present >&2; exit 1; }
fi
installed >"$work/before"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$deb" >"$work/apt.log" 2>&1 ||
  { cat "$work/apt.log"; exit 1; }
installed >"$work/after"
echo "== apt installed, for the package: $(comm -13 "$work/before" "$work/after" | wc -l) packages"
comm -13 "$work/before" "$work/after" | tr '\n' ' ' | fold -s -w 116 | sed 's/^/    /'
echo

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
