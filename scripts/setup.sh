#!/usr/bin/env bash
# Installs everything clusterlock needs to build, test, benchmark and demo, from Debian's packages only.
# Idempotent: packages already present are skipped by apt; safe to run again.
set -euo pipefail

# Debian 12 (bookworm) and 13 (trixie) name Boost and clang's runtime differently; the rest is the same.
# Both are supported and tested (CI: scripts/test.sh here, scripts/test-trixie.sh in a trixie root).
release=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
case "$release" in
  bookworm)  # Boost 1.81 (its default, 1.74, lacks Boost.URL), GCC 12, etcd 3.4
    per_release=(libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev)
    fuzz=(clang libclang-rt-14-dev) ;;
  trixie)    # Boost 1.83, GCC 14, etcd 3.5
    per_release=(libboost-dev libboost-json-dev libboost-url-dev)
    fuzz=(clang libclang-rt-19-dev) ;;
  *)
    echo "setup.sh: Debian 12 (bookworm) or 13 (trixie) expected, this is '${release:-unknown}' (/etc/os-release)" >&2
    exit 1 ;;
esac

packages=(
  build-essential cmake ninja-build pkg-config
  "${per_release[@]}"
  libssl-dev openssl
  googletest libgtest-dev libgmock-dev
  etcd-server etcd-client
  gnuplot-nox
  procps iproute2 bc curl
  go-md2man  # the command's man page, from docs/cli.md
  file  # cpack -G DEB: finding the binaries whose libraries the package depends on
  prometheus  # its promtool checks the metrics the library writes (tests: prometheus_format)
  libfaketime  # the chaos test's clock faults: a contender with a lying clock (LD_PRELOAD libfaketimeMT.so.1)
)
# The fuzzers (scripts/fuzz-smoke.sh) need clang; CLUSTERLOCK_SETUP_FUZZ=0 leaves it out.
[ "${CLUSTERLOCK_SETUP_FUZZ:-1}" = 0 ] || packages+=("${fuzz[@]}")
# The benchmarks' second anchor, etcd's Go recipe (scripts/bench.sh builds it); CLUSTERLOCK_SETUP_GO=0 leaves it out.
[ "${CLUSTERLOCK_SETUP_GO:-1}" = 0 ] || packages+=(golang-go golang-etcd-server-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# etcd-server's package starts a system etcd on :2379; our tests and demos start their own on free ports,
# so a system one only wastes a core (and would confuse the demo's default endpoint).
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
  systemctl stop etcd || true
fi
# Likewise the prometheus package's server (:9090): the tests need only its promtool.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  systemctl stop prometheus || true
fi
