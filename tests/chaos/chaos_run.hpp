// The chaos run's state, shared by the files that carry it out (one idea a file):
//   chaos_runner.cpp   the run's loop over the plan, its files, run_chaos()
//   contenders.cpp     the contender processes: start, reap and replace, SIGTERM the holder, what etcd says holds
//   fault_actions.cpp  the faults on processes, members and keys (kill, stop, restart, compact, clock faults)
//   partition_faults.cpp  the partitions, through the relays of network.hpp
// Internal to the harness (chaos_runner.hpp is its interface). Single-threaded and blocking.
#pragma once

#include "chaos/chaos_runner.hpp"
#include "chaos/network.hpp"
#include "chaos/resource_server.hpp"

#include "etcd/codec.hpp"
#include "support/etcd_cluster.hpp"

#include <sys/types.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace clusterlock::chaos::detail {

inline constexpr const char* lock_name = "chaos/lock";
inline constexpr long long ms = 1'000'000;
inline constexpr long long s = 1'000'000'000;
inline constexpr long long poll_ns = 20 * ms;
inline constexpr long long terminate_grace_ns = 10 * s;  // a SIGTERMed contender that has not exited by then is killed

inline long long now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline long long seconds_to_ns(double seconds) { return static_cast<long long>(seconds * 1e9); }

struct contender {
  int slot = 0;
  int generation = -1;
  std::string identity;
  pid_t pid = -1;  // -1: none running
  bool stopped = false;
  bool terminating = false;  // SIGTERM sent
  long long terminated_at = 0;
  bool killed = false;  // SIGKILL sent by us
  bool liar = false;    // runs under a clock fault
  std::vector<std::string> next_env;  // for the next start in this slot only (a clock fault's libfaketime)
};

// What etcd says about the lock: the oldest key under its prefix, and the revision of the read.
struct lock_view {
  std::int64_t revision = 0;
  std::optional<etcd::key_value> holder;
};

class chaos_run {
 public:
  explicit chaos_run(const run_settings& settings);
  ~chaos_run();
  chaos_run(const chaos_run&) = delete;
  chaos_run& operator=(const chaos_run&) = delete;

  run_result run();

 private:
  std::string path(const std::string& name) const;
  std::string at(long long ns) const;
  void note(const std::string& what, bool loud = false);
  void write_run_info();

  // ---- contenders (contenders.cpp)
  std::string endpoints_for(int slot) const;
  void start_contender(contender& c, int slot);
  void kill_contender(contender& c);
  void service();  // reaps contenders that ended and starts new ones; kills those that overstay a SIGTERM
  void wait_until(long long deadline);
  std::optional<lock_view> read_lock(std::chrono::milliseconds per_member = std::chrono::milliseconds(1000)) const;
  contender* running(const std::string& identity);
  std::optional<std::pair<contender*, etcd::key_value>> live_holder(long long wait);
  void terminate_holder();
  void requeue_holder();  // SIGUSR1: the holder releases and queues again, in its process
  int churns_ = 0;
  void finish();

  // ---- faults (fault_actions.cpp)
  void record(fault_record f);
  void skip(const plan_step& step, const std::string& why);
  bool etcdctl(const std::vector<std::string>& args, std::string* out = nullptr);
  void compact_now();
  void wait_until_etcd_serves(fault_record& f);
  void hold(long long from, const plan_step& step);
  void execute(const plan_step& step);
  bool hand_lock_to(const contender& liar, long long wait);
  void clock_fault(const plan_step& step);

  // ---- partitions (partition_faults.cpp)
  void partition_fault(const plan_step& step);
  // Blackholes links for a fault; returns the detail word for faults.txt, "" when the fault is skipped.
  std::string cut_links(const plan_step& step, long long holder_wait);
  void flap_link(const plan_step& step, int slot, int member, long long until);

  run_settings settings_;
  fault_plan plan_;
  network network_;  // before cluster_: the cluster's peer URLs are relays of it
  test::etcd_cluster cluster_;
  resource_server resource_;
  std::string faketime_;  // libfaketime's path, "" when not installed
  std::ofstream harness_, faults_, drivers_, plan_out_;
  std::vector<contender> slots_;
  run_result result_;
  int next_fault_id_ = 1;
};

}  // namespace clusterlock::chaos::detail
