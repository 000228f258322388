// What the kernel says about a process: CPU time, resident memory, TCP connections. Used by the benchmark driver
// (about its children) and by the peer program (about itself).
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace clusterlock::bench {

/// CLOCK_MONOTONIC in nanoseconds: the clock of std::chrono::steady_clock, and the same in every process on the
/// machine, so timestamps printed by different processes can be subtracted.
std::int64_t now_ns() noexcept;

struct process_usage {
  double cpu_seconds = 0;  ///< user + system time so far
  long rss_kib = 0;        ///< resident set now (VmRSS)
};

/// Of `pid` (0: this process). Throws std::runtime_error when the process is gone.
process_usage read_usage(pid_t pid = 0);

/// ESTABLISHED TCP connections owned by `pid` (0: this process) whose remote port is `remote_port`: the
/// process's socket inodes (/proc/PID/fd) matched against /proc/PID/net/tcp and tcp6.
int tcp_connections(pid_t pid, unsigned short remote_port);

}  // namespace clusterlock::bench
