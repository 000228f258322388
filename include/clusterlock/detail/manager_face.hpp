#pragma once
// What clusterlock::semaphore and clusterlock::rw_lock share: the lock manager's operations, events and views,
// forwarded as they are. lock_manager.hpp documents each in full, and docs/lifecycle.md's table holds for all three;
// "the lock" there is, for a semaphore, our permit, and for a read-write lock, the lock in our mode.

#include <clusterlock/lock_manager.hpp>

#include <utility>

namespace clusterlock::detail {

class manager_face {
 public:
  using executor_type = lock_manager::executor_type;
  using callback = lock_manager::callback;

  manager_face(const manager_face&) = delete;
  manager_face& operator=(const manager_face&) = delete;

  /// Begins contending and keeps contending (after a loss, a new key goes in line). Idempotent.
  void start() { impl_.start(); }

  /// Completes when we hold (the holding check is true at completion), contending first if needed. Errors as
  /// lock_manager::async_acquire. Cancellation: terminal and partial leave the line: our key is deleted
  /// (compare-guarded) before the handler runs with operation_aborted. Total: not supported (ignored).
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_acquire(Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return impl_.async_acquire(std::forward<Token>(token));
  }

  /// One try, no waiting in line: `acquired` true when our new key is admitted at once. Otherwise our key is deleted
  /// before the handler runs and `acquired` is false. Already in line: false, and we stay in line. Errors as
  /// async_acquire. Cancellation: terminal and partial: our key is deleted before the handler runs with
  /// operation_aborted.
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_try_acquire(Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return impl_.async_try_acquire(std::forward<Token>(token));
  }

  /// Gives up what we hold or our place in line (see lock_manager::async_release): the holding check is false from
  /// the call on, our key is deleted before completion, and whoever waited only for us is admitted by that delete.
  /// Cancellation: terminal completes the handler at once with operation_aborted; the release itself goes on.
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_release(Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return impl_.async_release(std::forward<Token>(token));
  }

  /// Stops for good (see lock_manager::async_shutdown). Cancellation: terminal completes the handler at once with
  /// operation_aborted; the shutdown itself goes on.
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_shutdown(Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return impl_.async_shutdown(std::forward<Token>(token));
  }
  /// Starts async_shutdown and returns at once.
  void shutdown() { impl_.shutdown(); }

  /// A write fenced by our key (see lock_manager::async_guarded_txn): etcd applies `txn` only if our key still
  /// stands with our create revision. errc::lock_lost when we do not hold. Cancellation: terminal completes with
  /// operation_aborted; a txn already sent may still be applied (guarded).
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_guarded_txn(etcd::txn_request txn,
                         Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return impl_.async_guarded_txn(std::move(txn), std::forward<Token>(token));
  }

  /// Our key's create revision while we hold, 0 otherwise (what it orders: the class's own header says).
  std::int64_t fencing_token() const noexcept { return impl_.fencing_token(); }
  /// Our identity (options::identity, or the one made for us), without our value's prefix.
  const std::string& identity() const noexcept { return impl_.identity(); }
  /// The key we contend with (`name/<lease hex>`), empty until we have a lease.
  std::string key() const { return impl_.key(); }

  /// The next event of the default subscription (see event_subscription::async_wait_event; cancellation: terminal
  /// and partial, no event lost).
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_wait_event(Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return impl_.async_wait_event(std::forward<Token>(token));
  }
  /// A new subscription: it sees every event from now on, in order.
  event_subscription subscribe() { return impl_.subscribe(); }
  /// on_acquired: ACQUIRED; on_lost: REMOVED or UNKNOWN while we held. As lock_manager's.
  void on_acquired(callback cb) { impl_.on_acquired(std::move(cb)); }
  void on_lost(callback cb) { impl_.on_lost(std::move(cb)); }

  /// Every key in line as last seen, oldest first, identities without the value's prefix. Any thread.
  std::vector<lock_entry> queue() const { return impl_.queue(); }
  /// As lock_manager::stats(); have_lock there is the class's holding check.
  lock_stats stats() const { return impl_.stats(); }

  executor_type get_executor() const noexcept { return impl_.get_executor(); }
  /// The etcd client (see lock_manager::etcd_client).
  etcd::client& etcd_client() const noexcept { return impl_.etcd_client(); }

 protected:
  manager_face(executor_type ex, options opts, const recipe::admission& rule)
      : impl_(std::move(ex), std::move(opts), rule) {}
  manager_face(session& s, options opts, const recipe::admission& rule) : impl_(s, std::move(opts), rule) {}
  ~manager_face() = default;

  lock_manager impl_;
};

}  // namespace clusterlock::detail
