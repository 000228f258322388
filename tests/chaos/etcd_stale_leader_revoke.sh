#!/usr/bin/env bash
# Reproduces etcd issue 15247 with etcd and etcdctl alone (no clusterlock): a raft leader frozen longer than a
# lease's TTL revokes that lease when it resumes, although a client kept renewing it all along through another
# member (whose keepalives the new leader answered). Fixed upstream by etcd PR 16822 (3.4 backport: PR 17465);
# Debian bookworm's etcd 3.4.23 has the bug. The chaos test meets it after stop_leader (docs/chaos.md).
#
# Each round: 3 members; lease (TTL 3 s) with a key, renewed every 0.3 s through a follower; the leader SIGSTOPped
# for 4 s, then SIGCONTed. Prints the renewals around the freeze, and whether the key survived.
#   tests/chaos/etcd_stale_leader_revoke.sh [rounds]        (default 10; ports 23791-3 and 23891-3)
set -u
rounds=${1:-10}
dir=$(mktemp -d /tmp/etcd-15247-XXXXXX)
export ETCDCTL_API=3
client=(23791 23792 23793)
peer=(23891 23892 23893)
initial="m0=http://127.0.0.1:${peer[0]},m1=http://127.0.0.1:${peer[1]},m2=http://127.0.0.1:${peer[2]}"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null; kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
for i in 0 1 2; do
  etcd --name m$i --data-dir "$dir/m$i" --listen-client-urls http://127.0.0.1:${client[$i]} \
    --advertise-client-urls http://127.0.0.1:${client[$i]} --listen-peer-urls http://127.0.0.1:${peer[$i]} \
    --initial-advertise-peer-urls http://127.0.0.1:${peer[$i]} --initial-cluster "$initial" \
    --initial-cluster-state new --initial-cluster-token "t$$" --heartbeat-interval 50 --election-timeout 500 \
    --log-level error > "$dir/m$i.log" 2>&1 &
  pids+=($!)
done
sleep 3
at() { etcdctl --endpoints=http://127.0.0.1:${client[$1]} --command-timeout=1s "${@:2}"; }
gone=0
for round in $(seq 1 "$rounds"); do
  leader=-1
  for i in 0 1 2; do
    at $i endpoint status -w json 2>/dev/null |
      python3 -c 'import json,sys; s=json.load(sys.stdin)[0]["Status"]; sys.exit(s["leader"]!=s["header"]["member_id"])' &&
      leader=$i
  done
  follower=$(((leader + 1) % 3))
  id=$(at $follower lease grant 3 | awk '{print $2}')
  at $follower put "k$round" v --lease="$id" > /dev/null
  (while true; do
     echo "$(date +%s.%N) $(timeout 2 etcdctl --endpoints=http://127.0.0.1:${client[$follower]} --command-timeout=1s \
       lease keep-alive --once "$id" 2>&1 | tr '\n' ' ')"
     sleep 0.3
   done) > "$dir/renewals" 2>&1 &
  renewer=$!
  sleep 1
  stopped=$(date +%s.%N); kill -STOP "${pids[$leader]}"; sleep 4
  before=$(at $follower get "k$round" --print-value-only)
  resumed=$(date +%s.%N); kill -CONT "${pids[$leader]}"
  sleep 1.5
  after=$(at $follower get "k$round" --print-value-only)
  kill $renewer; wait $renewer 2>/dev/null
  echo "round $round: leader m$leader frozen at $stopped, resumed at $resumed; key before SIGCONT: ${before:-GONE}, after: ${after:-GONE}"
  awk -v r="$resumed" '$1 > r - 1 && $1 < r + 1 {print "    " $0}' "$dir/renewals"
  [ -z "$after" ] && [ -n "$before" ] && gone=$((gone + 1))
  at $follower lease revoke "$id" > /dev/null 2>&1
done
echo "the key of a lease renewed all along was gone after the old leader resumed in $gone of $rounds rounds"
