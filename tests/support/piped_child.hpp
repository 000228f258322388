// A child process whose output (stdout and stderr together) the test reads line by line while it runs: the
// contender program, `etcdctl lock`. A reader thread collects the lines; the test polls them with bounded waits.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace clusterlock::test {

struct output_line {
  std::string text;
  std::vector<std::string> fields;  // split on spaces
  long long ns = 0;                 // the last field when it is a number (the contender's monotonic time), else 0
  std::chrono::steady_clock::time_point seen;  // when the test read it
};

class piped_child {
 public:
  // Starts argv (argv[0] an absolute path) with `env`; dies with the test (PR_SET_PDEATHSIG). Throws on failure.
  piped_child(std::vector<std::string> argv, std::vector<std::string> env);
  // SIGKILLs it if it still runs, reaps it, joins the reader.
  ~piped_child();
  piped_child(const piped_child&) = delete;
  piped_child& operator=(const piped_child&) = delete;

  pid_t pid() const { return pid_; }

  void kill();       // SIGCONT + SIGKILL + reap; no-op once reaped
  void terminate();  // SIGTERM (no wait)
  void stop();       // SIGSTOP; returns once the kernel reports it stopped
  void cont();       // SIGCONT
  // True once it has exited (reaps it); exit_code() then says how (-1: killed by a signal).
  bool exited();
  int exit_code() const { return exit_code_; }

  std::vector<output_line> lines() const;
  std::optional<output_line> find(const std::function<bool(const output_line&)>& pred) const;
  std::size_t count(const std::function<bool(const output_line&)>& pred) const;
  // Everything it printed so far, for failure messages.
  std::string text() const;

 private:
  void read_loop();

  pid_t pid_ = -1;
  int fd_ = -1;
  bool reaped_ = false;
  int exit_code_ = -1;
  mutable std::mutex mutex_;
  std::vector<output_line> lines_;
  std::thread reader_;
};

}  // namespace clusterlock::test
