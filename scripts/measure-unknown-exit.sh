#!/usr/bin/env bash
# Measures how fast `clusterlock run` reacts when etcd stops answering: freezes etcd (SIGSTOP) while `run` holds a
# lock with COMMAND running, and times
#   (a) freeze -> COMMAND stopped (its process gone or a zombie: it has ended, whether or not `run` reaped it yet)
#   (b) freeze -> `run` exited, with its exit status (123, UNKNOWN, expected)
# with the default --request-timeout, probe interval and --ttl, and `--grace 0` (SIGKILL at once).
# Every run uses a fresh single-member etcd on free loopback ports, in a temporary directory.
#
#   scripts/measure-unknown-exit.sh [--runs N] [--load] [--cli PATH] [--show-log]
#     --runs N     number of freezes (default 20)
#     --load       keep 2 busy loops running for the whole measurement (a loaded 2-core machine)
#     --cli PATH   the clusterlock binary (default: build/src/clusterlock of this checkout)
#     --show-log   print `run`'s stderr for every run (it is always printed for a run that went wrong)
#
# Needs etcd, etcdctl (v3 API) and python3. Exit status 0 when every run exited 123 (within 30 s), else 1.
# Times come from python3's time.monotonic(), polled every 5 ms: each figure is late by up to ~5 ms (more under load).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
runs=20
load=0
cli=$here/build/src/clusterlock
show_log=0

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    --runs) [ $# -ge 2 ] || { usage >&2; exit 2; }; runs=$2; shift 2 ;;
    --runs=*) runs=${1#--runs=}; shift ;;
    --load) load=1; shift ;;
    --cli) [ $# -ge 2 ] || { usage >&2; exit 2; }; cli=$2; shift 2 ;;
    --cli=*) cli=${1#--cli=}; shift ;;
    --show-log) show_log=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
case $runs in ''|*[!0-9]*|0) echo "--runs wants a positive whole number, not '$runs'" >&2; exit 2 ;; esac
[ -x "$cli" ] || { echo "no clusterlock binary at $cli (use --cli PATH)" >&2; exit 2; }
for tool in etcd etcdctl python3; do
  command -v "$tool" >/dev/null || { echo "$tool not found in PATH" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/measure-unknown-exit.XXXXXX")
core_pid=''
load_pids=()

# Every exit path (normal end, error, Ctrl-C, kill) must leave no etcd, clusterlock, sleep or busy loop behind.
# The python core cleans up after each run itself; this is the backstop for when it was killed. It writes the pid
# of every process it starts to $work/pids, so we can find them (a frozen etcd needs SIGCONT before it can die of
# SIGTERM; SIGKILL works regardless, and these are throwaway processes).
# shellcheck disable=SC2317  # (reached through the trap)
cleanup() {
  local status=$? pid
  trap - EXIT INT TERM HUP
  if [ -n "$core_pid" ] && kill -0 "$core_pid" 2>/dev/null; then
    kill -TERM "$core_pid" 2>/dev/null || true
    wait "$core_pid" 2>/dev/null || true
  fi
  if [ -f "$work/pids" ]; then
    while read -r pid; do
      [ -d "/proc/$pid" ] || continue
      kill -CONT "$pid" 2>/dev/null || true
      kill -KILL "$pid" 2>/dev/null || true
    done <"$work/pids"
  fi
  for pid in "${load_pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [ "$load" = 1 ]; then
  # Two CPU-bound loops at normal priority: on 2 cores, clusterlock and etcd compete with them for every slice.
  for _ in 1 2; do
    sh -c 'while :; do :; done' &
    load_pids+=("$!")
  done
fi

echo "clusterlock: $cli"
echo "runs: $runs, load: $([ "$load" = 1 ] && echo '2 busy loops' || echo none), $(nproc) cores"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# The core, in python3 for its monotonic clock and cheap 5 ms polling.
cat >"$work/core.py" <<'PY'
import os, random, shutil, signal, socket, statistics, subprocess, sys, time

work, runs, cli, show_log = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
POLL = 0.005      # the polling step: the resolution of every time below
DEADLINE = 30.0   # after the freeze. Expected: 3-4 s (1-2 s until UNKNOWN, 2 s of failed delete and revoke);
                  # the documented bound is 4.5 s. Generous, so that a slow exit is measured rather than cut off.
NAME = "m"

# SIGTERM from the wrapper's trap: unwind, so every `finally` below stops what it started.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

def note_pid(pid):
    with open(os.path.join(work, "pids"), "a") as f:
        f.write(f"{pid}\n")

def free_port():
    # The kernel picks a free port; another process could take it before etcd does, which would fail the run loudly.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def ended(pid):
    # Gone, or a zombie: it has stopped running (reaping it is `run`'s business, and `run` does it on SIGCHLD).
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state in ("Z", "X")

def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read()
    except OSError:
        return ""

def etcdctl(url, *args):
    return subprocess.run(["etcdctl", "--endpoints", url, "--dial-timeout", "1s", "--command-timeout", "1s", *args],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env={**os.environ, "ETCDCTL_API": "3"})

def wait_until(what, predicate, bound):
    end = time.monotonic() + bound
    while not predicate():
        if time.monotonic() > end:
            raise RuntimeError(f"{what}: not within {bound:g} s")
        time.sleep(0.05)

def stop(proc, frozen=False):
    if proc is None or proc.poll() is not None:
        return
    if frozen:
        proc.send_signal(signal.SIGCONT)
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

def one_run(n, logs):
    """Returns (t1, t2, status): seconds from the freeze to COMMAND's end and to `run`'s exit (None: not seen).
    Appends `run`'s stderr to `logs`, also when the run fails."""
    rundir = os.path.join(work, f"run-{n}")
    os.mkdir(rundir)
    pidfile = os.path.join(rundir, "command.pid")
    etcd = run = None
    child = None
    frozen = False
    try:
        client, peer = free_port(), free_port()
        url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
        # New sessions: a Ctrl-C on the terminal reaches only us, and we stop these in order (`run` also sees no
        # terminal, as under cron or systemd).
        with open(os.path.join(rundir, "etcd.log"), "w") as log:
            etcd = subprocess.Popen(
                ["etcd", "--name", "default", "--data-dir", os.path.join(rundir, "etcd"),
                 "--listen-client-urls", url, "--advertise-client-urls", url,
                 "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                 "--initial-cluster", f"default={peer_url}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        note_pid(etcd.pid)
        wait_until("etcd healthy", lambda: etcd.poll() is None and etcdctl(url, "endpoint", "health").returncode == 0,
                   20)

        # Default --ttl, --request-timeout and probe interval; --grace 0: SIGKILL as soon as the lock is UNKNOWN.
        with open(os.path.join(rundir, "run.log"), "w") as log:
            run = subprocess.Popen(
                [cli, "run", "--endpoints", url, "--grace", "0", NAME, "--",
                 "sh", "-c", f"echo $$ > {pidfile}.tmp && mv {pidfile}.tmp {pidfile}; exec sleep 60"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        note_pid(run.pid)
        # COMMAND starts only on a hold `run` has proven; the key in etcd confirms it from outside.
        wait_until("COMMAND started", lambda: os.path.exists(pidfile) or run.poll() is not None, 20)
        if run.poll() is not None:
            raise RuntimeError(f"clusterlock run exited early with {run.returncode}")
        child = int(open(pidfile).read())
        note_pid(child)
        wait_until("COMMAND is sleep", lambda: cmdline(child).startswith("sleep"), 5)
        wait_until("our key in etcd", lambda: etcdctl(url, "get", "--prefix", "--keys-only", NAME + "/").stdout.strip(),
                   10)

        # The probe runs every probe_interval (1 s): a random wait spreads the freeze over its cycle, as a real
        # outage would be, instead of hitting the same phase every time.
        time.sleep(random.uniform(0, 1.0))

        t1 = t2 = status = None
        t0 = time.monotonic()
        etcd.send_signal(signal.SIGSTOP)
        frozen = True
        while time.monotonic() - t0 < DEADLINE:
            now = time.monotonic()
            if t1 is None and ended(child):
                t1 = now - t0
            if t2 is None and run.poll() is not None:
                t2, status = now - t0, run.returncode
            if t1 is not None and t2 is not None:
                break
            time.sleep(POLL)
        return t1, t2, status
    finally:
        stop(run)
        if child is not None and not ended(child):
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        stop(etcd, frozen)
        run_log = os.path.join(rundir, "run.log")
        if os.path.exists(run_log):
            logs.append(open(run_log).read())
        shutil.rmtree(rundir, ignore_errors=True)

def fmt(t):
    return "  (none)" if t is None else f"{t:8.3f}"

results = []
ok = True
for n in range(1, runs + 1):
    logs = []
    try:
        t1, t2, status = one_run(n, logs)
    except RuntimeError as e:
        print(f"run {n:3}: setup failed: {e}", flush=True)
        t1 = t2 = status = None
    bad = t1 is None or t2 is None or status != 123
    ok = ok and not bad
    results.append((t1, t2, status))
    print(f"run {n:3}: freeze->COMMAND stopped {fmt(t1)} s   freeze->run exited {fmt(t2)} s   "
          f"exit {'none' if status is None else status}", flush=True)
    if (bad or show_log) and logs and logs[0]:
        print("         run's stderr:\n" + "".join(f"           {line}\n" for line in logs[0].splitlines()), end="",
              flush=True)

def summary(label, values):
    values = [v for v in values if v is not None]
    if not values:
        print(f"{label}: no values")
        return
    print(f"{label}: median {statistics.median(values):.3f} s, min {min(values):.3f} s, max {max(values):.3f} s "
          f"(n={len(values)})")

print()
summary("freeze -> COMMAND stopped", [r[0] for r in results])
summary("freeze -> run exited     ", [r[1] for r in results])
summary("COMMAND stopped -> exited", [r[1] - r[0] for r in results if r[0] is not None and r[1] is not None])
counts = {}
for r in results:
    counts[r[2]] = counts.get(r[2], 0) + 1
print("exit statuses: " + ", ".join(f"{'none' if k is None else k} x{v}"
                                     for k, v in sorted(counts.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))))
sys.exit(0 if ok else 1)
PY
# In the background, and we `wait` for it: bash runs a trap only between commands, so a SIGTERM to this script would
# otherwise wait for the whole measurement to end.
python3 "$work/core.py" "$work" "$runs" "$cli" "$show_log" &
core_pid=$!
status=0
wait "$core_pid" || status=$?
core_pid=''
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
