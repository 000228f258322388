// Starting and reaping child processes for the testing kit (etcd, etcdctl, openssl), with fork+exec.
#pragma once

#include <sys/types.h>

#include <clusterlock/testing/etcd_cluster.hpp>  // command_result

#include <chrono>
#include <string>
#include <vector>

namespace clusterlock::testing::detail {

struct spawn_options {
  std::vector<std::string> argv;  // argv[0] is an absolute path: no PATH search between fork and exec
  std::vector<std::string> env;   // the whole environment, "NAME=value"
  int stdin_fd = -1;              // -1: /dev/null
  int stdout_fd = -1;             // -1: /dev/null
  int stderr_fd = -1;             // -1: /dev/null
  // Its own process group, so that a Ctrl-C (or any signal) sent to the test's group does not reach it.
  bool own_process_group = true;
  // SIGKILL when the thread that spawned it ends: a crashed or aborted test leaves nothing running. Linux ties this
  // to the spawning thread, not the process: spawn from a thread that outlives the child (gtest's main thread does).
  bool die_with_parent = true;
};

// fork+exec. Throws std::runtime_error when fork fails or exec fails (the child reports errno through a pipe).
pid_t spawn(const spawn_options& options);

// This process's environment without ETCD_* and ETCDCTL_* variables (etcd and etcdctl read flags from them, which
// would silently change what a test starts), plus `extra`.
std::vector<std::string> clean_environment(const std::vector<std::string>& extra = {});

// Waits for `pid` to end (retrying on EINTR) and returns its wait status; -1 when it is not our child (any more).
int reap(pid_t pid) noexcept;

// SIGCONT (harmless when running; a stopped process is then not left stopped if SIGKILL were ever delayed), SIGKILL,
// reap. Never throws; waits only for the kernel to end the process.
void kill_and_reap(pid_t pid) noexcept;

// True when `pid` no longer runs: no such process, or a zombie nobody has reaped yet (an orphan whose new parent
// does not reap, as in some containers).
bool process_gone(pid_t pid);

// Runs a command to completion, collecting stdout and stderr; SIGKILLs it after `timeout`.
command_result run_command(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                           std::chrono::milliseconds timeout);

// "argv[0] argv[1] ..." for messages.
std::string join_command(const std::vector<std::string>& argv);

}  // namespace clusterlock::testing::detail
