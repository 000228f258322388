#!/usr/bin/env bash
# Installs everything clusterlock needs to build, test, benchmark and demo, from Debian's packages only.
# Idempotent: packages already present are skipped by apt; safe to run again.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev openssl
  googletest libgtest-dev libgmock-dev
  etcd-server etcd-client
  clang libclang-rt-14-dev
  gnuplot-nox
  procps iproute2 bc curl
)

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
