#pragma once
// A read-write lock over etcd: shared (read) and exclusive (write) holders of one name (docs/rwlock.md).
//
// The lock's recipe with two kinds of key: every contender puts `name/<lease hex>` on its lease, with the value
// `rw=read;<identity>` or `rw=write;<identity>`. A reader holds while no key as old as its own or older (lower or
// equal create revision) is a writer's; a writer holds while no other key is as old as its own or older (the lock's
// rule). FIFO: a reader behind a waiting writer waits for it, so a stream of readers never starves a writer. No
// herd: when the last older writer goes, every reader behind it up to the next writer is admitted from the watch's
// DELETE, with no further request; a writer is admitted so when the last older key goes.
//
// Any value that is not `rw=read;...` counts as a writer's: a plain lock's key (lock_manager, `clusterlock run`),
// `etcdctl lock`'s empty value, even a semaphore's `slots=N;...`. So a plain lock or `etcdctl lock` on the same name
// acts as a writer, and is safe both ways: they wait for every older key, treating ours as writers. An rw_lock never
// refuses a foreign value (counting it as a writer is the safe reading).
//
// Everything else is lock_manager's (its header says it in full; docs/lifecycle.md has the table): the same
// threads, lifecycle, pessimism (have_lock() is false whenever holding is not proven: lease validity, probe,
// UNKNOWN), operations and their cancellation, events (ACQUIRED, REMOVED, UNKNOWN about our key; no HOLDER_CHANGED:
// readers share the lock, so it has no one holder), and shared sessions.

#include <clusterlock/lock_manager.hpp>

#include <string_view>

namespace clusterlock {

class rw_lock {
 public:
  using executor_type = lock_manager::executor_type;
  using callback = lock_manager::callback;

  /// Shared (read) or exclusive (write) access.
  enum class mode { read, write };

  /// Contends for `opts.name` in `access` mode. Validates `opts` as lock_manager does (throws
  /// boost::system::system_error(errc::invalid_options) naming the bad field) and `access`. No I/O until start().
  rw_lock(executor_type ex, options opts, mode access);
  rw_lock(boost::asio::io_context& io, options opts, mode access)
      : rw_lock(io.get_executor(), std::move(opts), access) {}
  /// On a shared session (see lock_manager's). One session holds at most one key of a name: a second contending
  /// rw_lock (or lock, or semaphore) of the name on the session waits until the first has shut down.
  rw_lock(session& s, options opts, mode access);
  /// As lock_manager's: safe at any time; no callback runs after it; a started rw_lock shuts down in the background.
  ~rw_lock() = default;
  rw_lock(const rw_lock&) = delete;
  rw_lock& operator=(const rw_lock&) = delete;

  /// Begins contending and keeps contending (after a loss, a new key goes in line). Idempotent.
  void start() { impl_.start(); }

  /// Completes when we hold the lock in our mode (have_lock() is true at completion), contending first if needed.
  /// Errors as lock_manager::async_acquire. Cancellation: terminal and partial leave the line: our key is deleted
  /// (compare-guarded) before the handler runs with operation_aborted. Total: not supported (ignored).
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_acquire(Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return impl_.async_acquire(std::forward<Token>(token));
  }

  /// One try, no waiting in line: `acquired` true when our new key holds at once (a reader: no writer is as old or
  /// older; a writer: no key is). Otherwise our key is deleted before the handler runs and `acquired` is false.
  /// Already in line: false, and we stay in line. Errors as async_acquire. Cancellation: terminal and partial: our
  /// key is deleted before the handler runs with operation_aborted.
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_try_acquire(Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return impl_.async_try_acquire(std::forward<Token>(token));
  }

  /// Gives up the lock or our place in line (see lock_manager::async_release): have_lock() is false from the call
  /// on, our key is deleted before completion, and whoever waited only for us is admitted by that delete.
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
  /// stands with our create revision. errc::lock_lost when we do not hold the lock. Cancellation: terminal completes
  /// with operation_aborted; a txn already sent may still be applied (guarded).
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_guarded_txn(etcd::txn_request txn,
                         Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return impl_.async_guarded_txn(std::move(txn), std::forward<Token>(token));
  }

  /// True only while we hold the lock in our mode and our lease's proven lifetime has not run out, checked at the
  /// call.
  bool have_lock() const noexcept { return impl_.have_lock(); }
  /// Our key's create revision while have_lock() is true, 0 otherwise. A writer's is higher than every key it waited
  /// for (every older key: readers' and writers'), so it fences off all of them. A reader's is higher than every
  /// older writer's, and lower than any writer's after it; readers holding at once may have higher or lower tokens
  /// (docs/rwlock.md, "Fencing").
  std::int64_t fencing_token() const noexcept { return impl_.fencing_token(); }
  /// Our mode (read or write), as given.
  mode access() const noexcept { return mode_; }
  /// Our identity (options::identity, or the one made for us). Our key's value is `rw=read;<identity>` or
  /// `rw=write;<identity>`.
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
  /// on_acquired: ACQUIRED; on_lost: REMOVED or UNKNOWN while we held the lock. As lock_manager's.
  void on_acquired(callback cb) { impl_.on_acquired(std::move(cb)); }
  void on_lost(callback cb) { impl_.on_lost(std::move(cb)); }

  /// Every key in line as last seen, oldest first. Identities without the `rw=...;` prefix. Any thread.
  std::vector<lock_entry> queue() const { return impl_.queue(); }
  /// The keys holding the lock as last seen: every reader ahead of the first writer, or that writer alone when it is
  /// first in line (a key whose value is not a reader's counts as a writer). Any thread.
  std::vector<lock_entry> holders() const;
  /// As lock_manager::stats().
  lock_stats stats() const { return impl_.stats(); }

  executor_type get_executor() const noexcept { return impl_.get_executor(); }
  /// The etcd client (see lock_manager::etcd_client).
  etcd::client& etcd_client() const noexcept { return impl_.etcd_client(); }

 private:
  static mode checked_mode(mode access);
  mode mode_;
  lock_manager impl_;
};

/// "read" or "write".
std::string_view to_string(rw_lock::mode access) noexcept;

}  // namespace clusterlock
