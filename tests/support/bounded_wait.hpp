#pragma once
// Bounded waits for tests: no sleep-and-hope, every wait for an event ends by a deadline.

#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <thread>

namespace clusterlock::test {

/// Polls `condition` every `interval` until it holds or `timeout` passes; returns whether it held.
/// For what happens in other processes (etcd, the programs under test), while this thread only waits.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval = std::chrono::milliseconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

/// Runs `io` until `pred` holds or `timeout` passes; returns pred(). Once it holds, runs what is ready too:
/// state such as have_lock() changes before the events that say so are delivered (they are posted). That is
/// bounded, as a test may keep handlers ready all the time. A stopped `io` is restarted first.
template <class Pred>
bool run_until(boost::asio::io_context& io, Pred&& pred, std::chrono::steady_clock::duration timeout) {
  using steady = std::chrono::steady_clock;
  if (io.stopped()) io.restart();
  const auto deadline = steady::now() + timeout;
  while (!pred()) {
    const auto now = steady::now();
    if (now >= deadline) return pred();
    io.run_one_for(std::min<steady::duration>(deadline - now, std::chrono::milliseconds(5)));
  }
  for (int i = 0; i < 1000 && io.poll_one() > 0; ++i) {
  }
  return true;
}

/// Runs `io` for `duration`, whatever happens.
inline void run_for(boost::asio::io_context& io, std::chrono::steady_clock::duration duration) {
  run_until(io, [] { return false; }, duration);
}

}  // namespace clusterlock::test
