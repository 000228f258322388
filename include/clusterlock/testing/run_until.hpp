#pragma once
// Bounded waits on a condition in a single-threaded test: runs the io_context until it holds or a deadline passes.

#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <thread>

namespace clusterlock::testing {

/// Runs `io` on this thread until `condition()` holds or `timeout` passes; returns condition(). Checks between
/// handlers, at least every 10 ms. Restarts a stopped `io` first. For state your code changes in its lock_manager
/// callbacks (on_acquired, on_lost), which may run after a wait for the same event (event_waiter) has returned.
template <class Condition>
bool run_until(boost::asio::io_context& io, Condition&& condition, std::chrono::milliseconds timeout) {
  using steady = std::chrono::steady_clock;
  const auto deadline = steady::now() + timeout;
  if (io.stopped()) io.restart();
  while (!condition()) {
    const auto now = steady::now();
    if (now >= deadline) return condition();
    io.run_one_for(std::min<steady::duration>(deadline - now, std::chrono::milliseconds(10)));
    if (io.stopped()) {  // out of work for now: the condition may still come true (other threads)
      io.restart();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  return true;
}

}  // namespace clusterlock::testing
