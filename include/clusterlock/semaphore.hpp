#pragma once
// A counting semaphore over etcd: at most N holders of one name at a time (docs/semaphore.md).
//
// The lock's recipe with N permits: every contender puts `name/<lease hex>` on its lease, with the value
// `slots=<N>;<identity>`; a contender holds a permit while fewer than N other keys under the name are as old as its
// own (lower or equal create revision). FIFO, no herd: a permit that frees admits the first waiter from the watch's
// DELETE, with no further request. Every contender must give the same N: one that finds an older key with another N
// (or a plain lock's key) fails with errc::slots_mismatch and deletes its key.
//
// Everything else is lock_manager's (its header says it in full; docs/lifecycle.md has the table): the same
// threads, lifecycle, pessimism (have_permit() is false whenever the permit is not proven: lease validity, probe,
// UNKNOWN), operations and their cancellation, events (ACQUIRED, REMOVED, UNKNOWN about our permit; no
// HOLDER_CHANGED: a semaphore has no one holder), and shared sessions.

#include <clusterlock/lock_manager.hpp>

#include <cstddef>

namespace clusterlock {

class semaphore {
 public:
  using executor_type = lock_manager::executor_type;
  using callback = lock_manager::callback;

  /// At most `slots` holders of `opts.name` at a time. Validates `opts` as lock_manager does, and `slots` (1 to
  /// 1,000,000): throws boost::system::system_error(errc::invalid_options) naming the bad field. No I/O until start().
  semaphore(executor_type ex, options opts, std::size_t slots);
  semaphore(boost::asio::io_context& io, options opts, std::size_t slots)
      : semaphore(io.get_executor(), std::move(opts), slots) {}
  /// On a shared session (see lock_manager's). One session holds at most one permit of a name: a second
  /// contending semaphore of the name on the session waits until the first has shut down.
  semaphore(session& s, options opts, std::size_t slots);
  /// As lock_manager's: safe at any time; no callback runs after it; a started semaphore shuts down in the background.
  ~semaphore() = default;
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;

  /// Begins contending for a permit and keeps contending (after a loss, a new key goes in line). Idempotent.
  void start() { impl_.start(); }

  /// Completes when we hold a permit (have_permit() is true at completion), contending first if needed. Errors as
  /// lock_manager::async_acquire, and errc::slots_mismatch when an older contender has another number of slots (or
  /// is a plain lock): contention stops (until the next start() or acquire) and our key is deleted.
  /// Cancellation: terminal and partial leave the line: our key is deleted (compare-guarded) before the handler runs
  /// with operation_aborted. Total: not supported (ignored).
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_acquire(Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return impl_.async_acquire(std::forward<Token>(token));
  }

  /// One try, no waiting in line: `acquired` true when fewer than N other keys are as old as ours. Otherwise our key
  /// is deleted before the handler runs and `acquired` is false. Already in line: false, and we stay in line.
  /// Errors as async_acquire. Cancellation: terminal and partial: our key is deleted before the handler runs with
  /// operation_aborted.
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_try_acquire(Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return impl_.async_try_acquire(std::forward<Token>(token));
  }

  /// Gives up the permit or our place in line (see lock_manager::async_release): have_permit() is false from the
  /// call on, our key is deleted before completion, and the first waiter is admitted by that delete. Cancellation:
  /// terminal completes the handler at once with operation_aborted; the release itself goes on.
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

  /// A write fenced by our permit (see lock_manager::async_guarded_txn): etcd applies `txn` only if our key still
  /// stands with our create revision. errc::lock_lost when we hold no permit. Cancellation: terminal completes with
  /// operation_aborted; a txn already sent may still be applied (guarded).
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_guarded_txn(etcd::txn_request txn,
                         Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return impl_.async_guarded_txn(std::move(txn), std::forward<Token>(token));
  }

  /// True only while we hold a permit and our lease's proven lifetime has not run out, checked at the call.
  bool have_permit() const noexcept { return impl_.have_lock(); }
  /// Our key's create revision while have_permit() is true, 0 otherwise: unique to this permit, and higher than
  /// any permit this semaphore held before. Permits held at once by others may have higher or lower tokens.
  std::int64_t fencing_token() const noexcept { return impl_.fencing_token(); }
  /// The number of permits (the `slots` given).
  std::size_t slots() const noexcept { return slots_; }
  /// Our identity (options::identity, or the one made for us). Our key's value is `slots=<N>;<identity>`.
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
  /// on_acquired: ACQUIRED; on_lost: REMOVED or UNKNOWN while we held a permit. As lock_manager's.
  void on_acquired(callback cb) { impl_.on_acquired(std::move(cb)); }
  void on_lost(callback cb) { impl_.on_lost(std::move(cb)); }

  /// Every key in line as last seen, oldest first: the first slots() of them hold permits (if they agree on N),
  /// the rest wait. Identities without the `slots=N;` prefix. Any thread.
  std::vector<lock_entry> queue() const { return impl_.queue(); }
  /// The first slots() entries of queue(): the permit holders as last seen.
  std::vector<lock_entry> holders() const;
  /// As lock_manager::stats(); have_lock there is have_permit().
  lock_stats stats() const { return impl_.stats(); }

  executor_type get_executor() const noexcept { return impl_.get_executor(); }
  /// The etcd client (see lock_manager::etcd_client).
  etcd::client& etcd_client() const noexcept { return impl_.etcd_client(); }

 private:
  static std::size_t checked_slots(std::size_t slots);
  std::size_t slots_;
  lock_manager impl_;
};

}  // namespace clusterlock
