// What every measurement of the benchmark driver shares: where etcd and the helper programs are, the results
// table, statistics, CSV files, child processes driven line by line, and synchronous etcd look-ups.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proc_stats.hpp"

namespace clusterlock::test {
class etcd_cluster;
}

namespace clusterlock::bench {

using namespace std::chrono_literals;

/// One line of the results table: ours against the anchor, and the target.
struct result_row {
  std::string benchmark;              ///< "1 command hand-off"
  std::string metric;                 ///< "median (ms)"
  std::optional<double> ours;
  std::optional<double> anchor;       ///< none: no anchor for this metric
  std::string anchor_name;            ///< "etcdctl lock", "put+delete floor", "TTL"
  std::string target;                 ///< as text: "<= 0.5x etcdctl"
  std::optional<bool> met;            ///< none: no target
  std::string note;
  int decimals = 2;
  std::optional<double> ratio() const;
};

struct context {
  std::string endpoint;  ///< the etcd member's client URL
  unsigned short etcd_port = 0;
  test::etcd_cluster* etcd = nullptr;
  std::string out_dir;   ///< CSV files go here
  std::string work_dir;  ///< scratch files (stamp files)
  std::string peer_bin, stamp_bin, cli_bin;
  std::string etcdctl_bin = "/usr/bin/etcdctl";
  std::string go_bin;    ///< etcd's Go recipe (benchmarks/go_recipe); empty: measured without it
  bool quick = false;    ///< fewer trials and shorter windows: to try the driver, not to publish
  std::vector<result_row> rows;

  void add(result_row row);
  std::string out(const std::string& file) const { return out_dir + "/" + file; }
};

// ---- the measurements (one file each)
void command_handoff(context& ctx);   // 1. clusterlock run vs etcdctl lock
void library_handoff(context& ctx);   // 2. async_shutdown -> next ACQUIRED, in one process and across two
void crash_failover(context& ctx);    // 3. SIGKILL -> next ACQUIRED, TTL 2/5/10 s
void acquire_cycles(context& ctx);    // 4. uncontended acquire+release cycles vs put+delete
void idle_cost(context& ctx);         // 5. requests, CPU, RSS of an idle holder (and of etcdctl lock)
void scale(context& ctx);             // 6. 1..10,000 locks on one session
void many_waiters(context& ctx);      // 7. N waiters on one lock, hand-offs 50 ms apart, vs etcd's Go recipe
void semaphore_admission(context& ctx);  // 8. a permit freed -> the next waiter's ACQUIRED, beside the lock's hand-off

/// The machine, the tools and the build, as (what, value) pairs: for machine.csv and the report.
std::vector<std::pair<std::string, std::string>> machine_info(context& ctx);

// ---- statistics
struct summary {
  std::size_t n = 0;
  double min = 0, median = 0, p90 = 0, p99 = 0, max = 0, mean = 0;
};
summary summarize(std::vector<double> values);
/// Linear interpolation between closest ranks; p in [0, 1].
double percentile(const std::vector<double>& sorted, double p);

// ---- output
std::string fixed(double v, int decimals);
void write_csv(const std::string& path, const std::vector<std::string>& header,
               const std::vector<std::vector<std::string>>& rows);
/// For the plots: each series sorted, one block after the other, with its cumulative fraction (series,value,fraction).
void write_cdf_csv(const std::string& path, const std::vector<std::pair<std::string, std::vector<double>>>& series);
/// "[bench] ..." on stderr, with the time since the driver started.
void log(const std::string& message);

// ---- child processes (fork+exec through the test harness's spawn: they die with the driver)

/// A child with its stdin and stdout on pipes, read line by line with timeouts. stderr goes to the driver's.
class child {
 public:
  /// `pipe_stdio` false: stdin and stdout are /dev/null. `stderr_file` empty: the driver's stderr.
  explicit child(std::vector<std::string> argv, std::vector<std::string> extra_env = {}, bool pipe_stdio = true,
                 const std::string& stderr_file = {});
  ~child();  // SIGKILL and reap if it still runs
  child(const child&) = delete;
  child& operator=(const child&) = delete;

  pid_t pid() const noexcept { return pid_; }
  void send(const std::string& line);
  /// The next line, or none when `timeout` passes first. Throws at EOF.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  /// Reads lines until one starts with `prefix` (skipping others); throws on timeout or EOF.
  std::string expect(const std::string& prefix, std::chrono::milliseconds timeout);
  /// SIGKILL and reap.
  void kill();
  /// Waits for it to exit; returns the wait status. Throws on timeout.
  int wait(std::chrono::milliseconds timeout);
  bool running() const noexcept { return pid_ > 0; }

 private:
  std::string describe() const;
  std::vector<std::string> argv_;
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  std::string buffered_;
};

/// The nanosecond stamp after the first space-separated word: "ACQUIRED 123 7" -> 123.
std::int64_t stamp_of(const std::string& line);

// ---- synchronous etcd look-ups for the driver (our own gateway client on a private io_context)
class etcd_helper {
 public:
  explicit etcd_helper(const std::string& endpoint);
  ~etcd_helper();
  std::int64_t count(const std::string& prefix);
  /// Polls every 2 ms until `count(prefix) == n`; throws after `timeout`.
  void wait_count(const std::string& prefix, std::int64_t n, std::chrono::milliseconds timeout);
  void delete_prefix(const std::string& prefix);
  /// Grants a lease asking for `ttl`, revokes it, and returns the TTL etcd granted (it raises small ones).
  std::int64_t granted_ttl(std::chrono::seconds ttl);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace clusterlock::bench
