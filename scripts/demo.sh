#!/usr/bin/env bash
# The live demo: a throwaway local etcd, three contenders for one lock, a crash and a clean hand-off.
# Everything it starts is stopped on the way out.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Setting up (Debian packages) and building the example contender"
bash scripts/setup.sh >/dev/null
# scripts/test.sh's arguments: the same build directory configured otherwise would be rebuilt whole by each.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCLUSTERLOCK_WARNINGS_AS_ERRORS=ON \
  -DCLUSTERLOCK_BUILD_TESTS=ON -DCLUSTERLOCK_BUILD_BENCHMARKS=ON -DCMAKE_UNITY_BUILD=ON >/dev/null
cmake --build build --target leader_election -j 2 >/dev/null
bin=build/examples/leader_election

work=$(mktemp -d)
declare -A pid
etcd_pid=
# SIGKILLs a process of ours and waits until it is gone. Disowned first: bash would print its "Killed" job message.
kill_quietly() {
  disown "$1" 2>/dev/null || true
  kill -9 "$1" 2>/dev/null || return 0
  while kill -0 "$1" 2>/dev/null; do sleep 0.01; done
}
cleanup() {
  for p in "${pid[@]}" $etcd_pid; do kill_quietly "$p"; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    ss -ltn | grep -q ":$p " || { echo "$p"; return; }
  done
}
client_port=$(free_port)
peer_port=$(free_port)
endpoint=http://127.0.0.1:$client_port
export ETCDCTL_API=3

say "Starting a throwaway etcd on $endpoint"
etcd --data-dir "$work/etcd" --listen-client-urls "$endpoint" --advertise-client-urls "$endpoint" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "default=http://127.0.0.1:$peer_port" --log-level error >"$work/etcd.log" 2>&1 &
etcd_pid=$!
for _ in $(seq 100); do etcdctl --endpoints "$endpoint" endpoint health >/dev/null 2>&1 && break; sleep 0.1; done

ttl=3
say "Starting three contenders (alpha, beta, gamma) for the lock 'demo-lock', lease TTL ${ttl}s"
for name in alpha beta gamma; do
  "$bin" "$endpoint" demo-lock "$name" "$ttl" >"$work/$name.log" 2>&1 &
  pid[$name]=$!
  sleep 0.3  # only so the queue order is easy to follow: alpha, beta, gamma
done

# Waits until one of the logs shows an ACQUIRED after line counts taken before; echoes the name.
wait_acquired() {
  for _ in $(seq 200); do
    for name in "$@"; do
      if grep -q "ACQUIRED" "$work/$name.log" 2>/dev/null; then echo "$name"; return; fi
    done
    sleep 0.05
  done
  echo none
}
holder=$(wait_acquired alpha beta gamma)
cat "$work"/{alpha,beta,gamma}.log | sort | sed 's/^/    /'
say "The lock's keys in etcd (etcd's own lock recipe: NAME/<lease id>, oldest key holds the lock)"
etcdctl --endpoints "$endpoint" get --prefix demo-lock/ | paste - - | sed 's/^/    /'

say "Crash: SIGKILL the holder ($holder). No goodbye: the others wait for its lease to expire (<= ${ttl}s)"
start=$(date +%s.%N)
kill_quietly "${pid[$holder]}"
unset "pid[$holder]"
for name in "${!pid[@]}"; do wc -l <"$work/$name.log" >"$work/$name.mark"; done
next=none
for _ in $(seq 200); do
  for name in "${!pid[@]}"; do
    if tail -n +"$(( $(cat "$work/$name.mark") + 1 ))" "$work/$name.log" | grep -q ACQUIRED; then next=$name; break 2; fi
  done
  sleep 0.05
done
end=$(date +%s.%N)
for name in "${!pid[@]}"; do tail -n +"$(( $(cat "$work/$name.mark") + 1 ))" "$work/$name.log"; done | sort | sed 's/^/    /'
printf '    -> %s took over %.1f s after the crash (the fencing token went up)\n' "$next" "$(echo "$end - $start" | bc)"

say "Clean hand-off: SIGTERM the new holder ($next); it deletes its key and the last one takes over at once"
last=
for name in "${!pid[@]}"; do [ "$name" != "$next" ] && last=$name; done
wc -l <"$work/$last.log" >"$work/$last.mark"
start=$(date +%s.%N)
kill -TERM "${pid[$next]}"
for _ in $(seq 200); do
  tail -n +"$(( $(cat "$work/$last.mark") + 1 ))" "$work/$last.log" | grep -q ACQUIRED && break
  sleep 0.01
done
end=$(date +%s.%N)
wait "${pid[$next]}" 2>/dev/null || true
unset "pid[$next]"
tail -n 3 "$work/$next.log" | sed 's/^/    /'
tail -n +"$(( $(cat "$work/$last.mark") + 1 ))" "$work/$last.log" | sed 's/^/    /'
printf '    -> %s took over %.0f ms after the SIGTERM\n' "$last" "$(echo "($end - $start) * 1000" | bc)"

say "Done: stopping the last contender and etcd, removing the temp dir"
