#pragma once
// The lock manager: contends for one cluster-wide lock in etcd and tells you, pessimistically, whether you hold it.
//
// Threads: a lock_manager runs on a strand of the executor you give it and spawns no threads. have_lock(),
// fencing_token() and identity() may be called from any thread at any time; everything else from any thread too,
// but callbacks and completions run on the manager's strand (or your handler's own executor).

#include <clusterlock/error.hpp>
#include <clusterlock/lock_event.hpp>
#include <clusterlock/options.hpp>
#include <clusterlock/session.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace clusterlock {

namespace detail {
class event_queue;
struct manager_state;
using event_handler = boost::asio::any_completion_handler<void(boost::system::error_code, lock_event)>;
using done_handler = boost::asio::any_completion_handler<void(boost::system::error_code)>;
void initiate_wait(const std::shared_ptr<event_queue>&, event_handler);
}  // namespace detail

/// One entry of the lock's queue: the holder first, then the waiters in the order they will get it.
struct lock_entry {
  std::string key;
  std::string identity;
  std::int64_t fencing_token = 0;  ///< the key's create revision
  std::int64_t lease = 0;
};

/// A subscriber's own, ordered view of the events. Events that arrive while nobody waits are kept (up to
/// options::event_backlog; past that the oldest are dropped and the next wait reports errc::events_dropped once).
class event_subscription {
 public:
  /// Completes with the next event. Cancellation: terminal and partial; a cancelled wait completes with
  /// operation_aborted and loses no event. After the manager shuts down and the backlog is drained: errc::not_started.
  template <class Token>
  auto async_wait_event(Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, lock_event)>(
        [q = queue_](auto handler) { detail::initiate_wait(q, std::move(handler)); }, token);
  }

 private:
  friend class lock_manager;
  explicit event_subscription(std::shared_ptr<detail::event_queue> q) : queue_(std::move(q)) {}
  std::shared_ptr<detail::event_queue> queue_;
};

class lock_manager {
 public:
  using executor_type = boost::asio::any_io_executor;
  using callback = std::function<void(const lock_event&)>;

  /// Validates `opts` (see clusterlock::validate) and throws boost::system::system_error(errc::invalid_options)
  /// naming the bad field. No I/O until start().
  lock_manager(executor_type ex, options opts);
  /// A lock on a shared session (many locks, one lease, one watch, one probe). Of `opts` only name, identity,
  /// contend and event_backlog are used; the name must lie under the session's watch_prefix. Runs on the
  /// session's strand. Two contending managers for one name on one session take turns: the later one waits
  /// until the earlier has shut down (they would otherwise share one key, `name/<lease>`).
  lock_manager(session& s, options opts);
  /// Safe at any time: a started manager stops, and deletes its key and revokes its lease in the background
  /// (on the executor, if it still runs).
  ~lock_manager();
  lock_manager(const lock_manager&) = delete;
  lock_manager& operator=(const lock_manager&) = delete;

  /// Begins contending (or observing, with options::contend = false). Idempotent.
  void start();

  /// Stops contending: deletes our key (only if its create revision is still ours), revokes our lease,
  /// stops watching. The next waiter acquires at once. An enqueue txn on its way is not cut off but awaited,
  /// so that its key can be deleted. Completes when done: within about twice request_timeout when etcd does
  /// not answer. Cancellation: terminal stops waiting for etcd at once; a key not yet deleted then stays until
  /// the lease ends (its TTL for a lock's own session, the session's life for a shared one).
  template <class Token>
  auto async_shutdown(Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [this](auto handler) { initiate_shutdown(std::move(handler)); }, token);
  }
  /// Starts async_shutdown and returns at once.
  void shutdown();

  /// True only while we hold the lock and our lease's proven lifetime has not run out, checked at the call.
  bool have_lock() const noexcept;
  /// Our key's create revision while have_lock() is true, 0 otherwise. Strictly increases across holders.
  std::int64_t fencing_token() const noexcept;
  /// The identity written as our key's value.
  const std::string& identity() const noexcept;
  /// The key we contend with (`name/<lease hex>`), empty until we have a lease.
  std::string key() const;

  /// The next event of the manager's default subscription (see event_subscription::async_wait_event).
  template <class Token>
  auto async_wait_event(Token&& token) {
    return default_subscription_.async_wait_event(std::forward<Token>(token));
  }
  /// A new subscription: it sees every event from now on, in order.
  event_subscription subscribe();

  /// Called on the manager's strand. on_lost: removed or unknown while we held the lock (our own shutdown
  /// included: it ends with removed).
  void on_acquired(callback cb);
  void on_lost(callback cb);
  /// Called when the holder changes (also when we take or lose it), like Kubernetes' OnNewLeader.
  void on_holder_changed(callback cb);

  /// The holder and waiters as last seen (holder first). Call on the manager's strand, or accept a snapshot
  /// taken under a lock.
  std::vector<lock_entry> queue() const;
  std::optional<lock_entry> holder() const;

  executor_type get_executor() const noexcept;

 private:
  void initiate_shutdown(detail::done_handler handler);
  std::shared_ptr<detail::manager_state> state_;
  event_subscription default_subscription_;
};

}  // namespace clusterlock
