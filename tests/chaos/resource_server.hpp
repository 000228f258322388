// The fenced resource of a chaos run: a register on loopback TCP that keeps the highest fencing token it accepted
// and refuses writes with a lower one (or the same token from another identity); for a read-write lock it keeps the
// rw fence of resource_check.hpp (writers held to every token taken, readers to the writers'). For a semaphore of
// N > 1 no token rule fences (resource_check.hpp): it accepts and logs every write, to be checked. Contenders send one line per
// write, "<token> <identity>\n", and get no answer (a holder acts on the resource; what it did is the resource's to
// record). Every write is logged to resource.log with the decision and the time it was taken: the harness's
// CLOCK_MONOTONIC (std::chrono::steady_clock; the harness never runs under libfaketime), the clock of every other
// file of the run.
//
// Its own thread (the harness is single-threaded and blocking): it serves from construction to destruction.
#pragma once

#include "chaos/resource_check.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>

namespace clusterlock::chaos {

class resource_server {
 public:
  /// Listens on 127.0.0.1 (a free port) and starts serving; throws std::runtime_error when it cannot.
  /// `fence` empty (a semaphore, resource_check.hpp): every write is accepted and logged, only checked later.
  explicit resource_server(const std::string& log_path, std::optional<resource_fence> fence = resource_fence{});
  ~resource_server();
  resource_server(const resource_server&) = delete;
  resource_server& operator=(const resource_server&) = delete;

  int port() const { return port_; }
  std::size_t accepted() const { return accepted_.load(); }
  std::size_t rejected() const { return rejected_.load(); }

 private:
  void serve();
  std::string decide(const std::string& line);  // one resource.log line, or "" for a malformed write

  int listen_fd_ = -1;
  int port_ = 0;
  int log_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> accepted_{0}, rejected_{0};
  std::optional<resource_fence> fence_;  // the serving thread's alone once it serves
  std::thread thread_;
};

}  // namespace clusterlock::chaos
