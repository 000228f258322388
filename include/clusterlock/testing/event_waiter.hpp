#pragma once
// Waiting for a lock's events in a test, with a deadline: one line per check, no test framework needed.
//
//   clusterlock::testing::event_waiter events(lock);   // before the action: it sees every event from here on
//   lock.start();
//   auto acquired = events.wait_for(clusterlock::lock_event::acquired, std::chrono::seconds(10));
//   ASSERT_TRUE(acquired) << acquired.failure;          // or if (!acquired) throw ..., in any framework

#include <clusterlock/lock_event.hpp>
#include <clusterlock/lock_manager.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace clusterlock::testing {

/// What a wait found: the event, or why there is none.
struct event_result {
  lock_event event;     ///< the event waited for (valid when ok())
  std::string failure;  ///< empty when ok(); else what was waited for, for how long, and the events seen meanwhile
  bool ok() const noexcept { return failure.empty(); }
  explicit operator bool() const noexcept { return ok(); }
};

/// A subscription to one lock_manager's events (lock_manager::subscribe), from construction on, with blocking
/// waits. Each wait consumes the events up to and including the one it returns; events of other kinds on the way
/// are skipped (and listed in a failure). Not thread-safe: one waiting thread at a time.
///
/// Two ways to wait, depending on who runs the manager's executor:
/// - another thread (the io_context runs in a std::thread): wait_for(kind, timeout) blocks this thread;
/// - this thread (a single-threaded test): wait_for(io, kind, timeout) runs `io` here until the event comes.
///
/// A waiter may outlive its manager: once the manager is destroyed or shut down (and its events are drained),
/// waits fail at once, saying so.
class event_waiter {
 public:
  explicit event_waiter(lock_manager& lock);
  ~event_waiter();
  event_waiter(const event_waiter&) = delete;
  event_waiter& operator=(const event_waiter&) = delete;

  /// Blocks until an event of `kind` arrives or `timeout` passes. The manager's executor must run on another
  /// thread (else nothing arrives, and it fails after `timeout`).
  event_result wait_for(lock_event::kind_type kind, std::chrono::milliseconds timeout);
  /// Runs `io` on this thread (io.run_one_for) until an event of `kind` arrives or `timeout` passes. Restarts a
  /// stopped `io` first.
  event_result wait_for(boost::asio::io_context& io, lock_event::kind_type kind, std::chrono::milliseconds timeout);

  /// Every event seen so far, in order, waited for or not.
  std::vector<lock_event> seen() const;

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace clusterlock::testing
