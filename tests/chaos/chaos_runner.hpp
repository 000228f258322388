// Runs one chaos experiment: a 3-member etcd cluster, `contenders` clusterlock_test_contender processes for one
// lock (each logging its actions while have_lock() is true), and the seeded fault plan carried out against them.
// Everything it leaves is under the output directory (see chaos_records.hpp for the files it writes):
//
//   run.txt, plan.txt, faults.txt, drivers.txt   what was planned and done, with times
//   logs/<identity>.log                          the contenders' action logs
//   contenders/<identity>.out                    each contender's event lines (READY, ACQUIRED, UNKNOWN, ...)
//   harness.log                                  what the harness did, in order
//   etcd/m<i>.log                                the members' logs (errors only)
//
// Single-threaded and blocking (it sleeps between steps): processes are started from the calling thread, which
// must outlive them (they die with it).
#pragma once

#include "chaos/fault_plan.hpp"

#include <cstddef>
#include <string>

namespace clusterlock::chaos {

struct run_settings {
  double duration_s = 110;
  plan_settings plan;
  int ttl_s = 2;
  int contenders = 5;
  int slots = 0;  // 0: every contender a lock_manager; N: a semaphore of N permits (contenders > N + 1)
  int rw_writers = -1;  // >= 0: an rw_lock; the contenders of slots below it write, the others read (slots 0)
  bool predecessor = false;  // lock_managers watching only the key ahead of theirs (options::watch; slots 0, no rw)
  int requeue_every = 0;  // > 0: every this many churns, the holder releases and queues again (SIGUSR1), not SIGTERM
  std::string out_dir;
  std::string contender_path;
  int log_interval_ms = 5;
  int probe_interval_ms = 1000;
  int request_timeout_ms = 1000;
  double liveness_bound_s = 4;  // no fault is injected so late that its liveness cannot be measured
  bool verbose = true;          // narrate the faults on stderr
};

struct run_result {
  long long start_ns = 0;
  long long end_ns = 0;
  std::size_t faults = 0;
  std::size_t skipped = 0;            // holder faults with no live holder to hit
  std::size_t drivers = 0;            // SIGTERMs of the holder
  std::size_t contenders_started = 0;
  std::size_t unexpected_exits = 0;   // contenders that ended without being killed or terminated (crashes)
};

/// Throws std::runtime_error when the experiment cannot be carried out (etcd does not start, no contender ever
/// holds the lock); the output directory then holds what happened so far.
run_result run_chaos(const run_settings& settings);

}  // namespace clusterlock::chaos
