#pragma once
// The lock manager: contends for one cluster-wide lock in etcd and tells you, pessimistically, whether you hold it.
//
// Threads: a lock_manager runs on a strand of the executor you give it and spawns no threads. have_lock(),
// fencing_token(), identity() and stats() may be called from any thread at any time; everything else from any thread too,
// but callbacks and completions run on the manager's strand (or your handler's own executor).
//
// Lifecycle (docs/lifecycle.md has the table of every operation in every state): a manager is made idle; start()
// or async_acquire puts a key in line and keeps it there (ACQUIRED when it is the oldest); async_release takes it
// out again (the manager stays usable); async_shutdown is final. Callbacks and completions are posted, never run
// inside the manager's bookkeeping: a callback may destroy the manager, start or stop others, or throw (an
// exception is caught and reported to the diagnostics hook: options::diagnostics, or the session's).

#include <clusterlock/detail/async_run.hpp>
#include <clusterlock/diagnostics.hpp>
#include <clusterlock/error.hpp>
#include <clusterlock/etcd/client.hpp>
#include <clusterlock/etcd/types.hpp>
#include <clusterlock/lock_event.hpp>
#include <clusterlock/options.hpp>
#include <clusterlock/session.hpp>
#include <clusterlock/stats.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace clusterlock {

namespace recipe {
struct admission;
}  // namespace recipe

namespace detail {
class event_queue;
class manager_face;
struct manager_state;
using event_handler = boost::asio::any_completion_handler<void(boost::system::error_code, lock_event)>;
using done_handler = boost::asio::any_completion_handler<void(boost::system::error_code)>;
using try_handler = boost::asio::any_completion_handler<void(boost::system::error_code, bool)>;
using lead_handler = boost::asio::any_completion_handler<void(std::exception_ptr, boost::system::error_code)>;
using lead_body = std::function<boost::asio::awaitable<void>(std::int64_t fencing_token)>;
void initiate_wait(const std::shared_ptr<event_queue>&, event_handler);
void initiate_acquire(const std::shared_ptr<manager_state>&, done_handler);
void initiate_try_acquire(const std::shared_ptr<manager_state>&, try_handler);
void initiate_release(const std::shared_ptr<manager_state>&, done_handler);
void initiate_shutdown(const std::shared_ptr<manager_state>&, done_handler);
void initiate_lead(const std::shared_ptr<manager_state>&, lead_body, lead_handler);
boost::asio::awaitable<result<etcd::txn_response>> guarded_txn(std::shared_ptr<manager_state>, etcd::txn_request);
boost::asio::awaitable<result<void>> proclaim(std::shared_ptr<manager_state>, std::string value);
}  // namespace detail

/// One entry of the lock's queue: the holder first, then the waiters in the order they will get it.
struct lock_entry {
  std::string key;
  std::string identity;            ///< the key's value: its contender's identity, or what it proclaimed
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
  lock_manager(boost::asio::io_context& io, options opts) : lock_manager(io.get_executor(), std::move(opts)) {}
  /// A lock on a shared session (many locks, one lease, one watch, one probe). Of `opts` only name, identity,
  /// contend, watch, event_backlog and diagnostics are used (watch_scope::predecessor: the lock has a watch of its
  /// own); the name must lie under the session's watch_prefix. Runs on the
  /// session's strand. Two contending managers for one name on one session take turns: the later one waits
  /// until the earlier has shut down and its key is gone (they would otherwise share one key, `name/<lease>`).
  lock_manager(session& s, options opts);
  /// Safe at any time, also from one of its own callbacks: no callback runs after it, pending operations
  /// complete with operation_aborted, and a started manager shuts down in the background (deletes its key,
  /// revokes its own session's lease), on the executor if it still runs.
  ~lock_manager();
  lock_manager(const lock_manager&) = delete;
  lock_manager& operator=(const lock_manager&) = delete;

  /// Begins contending (or observing, with options::contend = false) and keeps contending: after a loss, a new
  /// key goes in line. Idempotent; no effect once shut down. Equivalent to async_acquire with nobody waiting.
  void start();

  /// Completes when we hold the lock (have_lock() is true at completion), contending first if needed; from then
  /// on we keep contending as after start(). Completes with an error that retrying cannot cure (is_refusal():
  /// permission denied, authentication failed, TLS refused, an endpoint that is not etcd, a too large TTL)
  /// instead of waiting forever, with
  /// errc::not_started after shutdown or once the session closed, with errc::invalid_options on an observer, and
  /// with operation_aborted when an async_release or async_shutdown comes first.
  /// Cancellation: terminal and partial leave the line as async_release does: our key is deleted (compare-guarded)
  /// before the handler runs with operation_aborted. Total: not supported (ignored).
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_acquire(Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [s = state_](auto handler) { detail::initiate_acquire(s, std::move(handler)); }, token);
  }

  /// One try, no waiting in line: `acquired` true when our key is the oldest (have_lock() is true at completion).
  /// Otherwise our key is deleted before the handler runs, and `acquired` is false. If we already wait in line
  /// (start(), async_acquire), it answers false and leaves us in line. Errors as async_acquire.
  /// Cancellation: terminal and partial: our key is deleted before the handler runs with operation_aborted.
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_try_acquire(Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, bool)>(
        [s = state_](auto handler) { detail::initiate_try_acquire(s, std::move(handler)); }, token);
  }

  /// Gives up the lock or our place in line, and keeps the manager and its session: have_lock() is false from the
  /// call on (REMOVED if we held it), and our key is deleted (only if its create revision is still ours) before
  /// completion. A later async_acquire or start() contends again with a new key and a higher fencing token.
  /// Completes with the delete's error when etcd did not answer; the delete is then retried in the background
  /// (before any new key), until it succeeds or the lease is gone. Pending acquires complete with
  /// operation_aborted. Cancellation: terminal completes the handler at once with operation_aborted; the release
  /// itself goes on.
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_release(Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [s = state_](auto handler) { detail::initiate_release(s, std::move(handler)); }, token);
  }

  /// Stops for good: as async_release, then leaves the session (a lock's own session revokes its lease), stops
  /// watching, and ends every subscription (after its backlog) with errc::not_started. An enqueue txn on its way is
  /// awaited, so that its key can be deleted. Completes when done: each etcd call is bounded by request_timeout
  /// (the enqueue by the client's retry policy). A second call completes when the first is done. Errors: the
  /// delete's, when etcd did not answer (on a shared session it is then retried in the background while the session
  /// lives; the lease's end removes the key at the latest). Cancellation: terminal completes the handler at once
  /// with operation_aborted; the shutdown itself goes on.
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_shutdown(Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [s = state_](auto handler) { detail::initiate_shutdown(s, std::move(handler)); }, token);
  }
  /// Starts async_shutdown and returns at once.
  void shutdown();

  /// A leadership scope: acquires the lock (as async_acquire), then runs `body(fencing_token)` on the manager's
  /// strand while we hold it. The body is cancelled (terminal) the moment the lock is lost (REMOVED or UNKNOWN),
  /// and when the operation is cancelled. When the body ends, however it ends, the lock is released (as
  /// async_release). Completes with the body's exception, if it threw, and: no error when the body returned while
  /// we held the lock; errc::lock_lost when the lock was lost; operation_aborted when cancelled; async_acquire's
  /// error when we never got the lock. Like Kubernetes' OnStartedLeading(ctx) or Curator's takeLeadership.
  /// Cancellation: terminal and partial: the body is cancelled (or the acquire left), then our key is deleted.
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_lead(std::function<boost::asio::awaitable<void>(std::int64_t fencing_token)> body,
                  Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return boost::asio::async_initiate<Token, void(std::exception_ptr, boost::system::error_code)>(
        [s = state_](auto handler, detail::lead_body b) { detail::initiate_lead(s, std::move(b), std::move(handler)); },
        token, std::move(body));
  }

  /// A write fenced by etcd itself: etcd applies `txn` (its compares, then its success operations) only if our key
  /// still exists with our create revision, the fencing token, in the same transaction. A holder that lost the lock
  /// without knowing it (frozen past its TTL, cut off from etcd) cannot write. Completes with:
  /// - `{}` and etcd's response: `succeeded` says whether your compares held (when they did not, `responses` is
  ///   empty: none of your operations ran);
  /// - errc::lock_lost when we do not hold the lock: have_lock() was false at the call (nothing is sent), or etcd
  ///   found our key gone or replaced (nothing of `txn` ran);
  /// - errc::invalid_options when `txn` has failure operations (they would run exactly when we do not lead);
  /// - the request's error otherwise (errc::timeout, errc::unavailable, ...). Once sent, a txn is not retried:
  ///   after a timeout it may or may not have been applied, guarded as ever.
  /// Cancellation: terminal completes with operation_aborted; a txn already sent may still be applied (guarded).
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_guarded_txn(etcd::txn_request txn,
                         Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return detail::async_run<etcd::txn_response>(get_executor(), detail::guarded_txn(state_, std::move(txn)),
                                                 std::forward<Token>(token));
  }
  /// async_guarded_txn with one put: writes `value` at `key` only while we hold the lock.
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_guarded_put(std::string key, std::string value,
                         Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    etcd::put_request put;
    put.key = std::move(key);
    put.value = std::move(value);
    etcd::txn_request txn;
    txn.success.emplace_back(std::move(put));
    return async_guarded_txn(std::move(txn), std::forward<Token>(token));
  }
  /// async_guarded_txn with one delete of `key`, only while we hold the lock.
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_guarded_delete(std::string key, Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    etcd::delete_range_request del;
    del.key = std::move(key);
    etcd::txn_request txn;
    txn.success.emplace_back(std::move(del));
    return async_guarded_txn(std::move(txn), std::forward<Token>(token));
  }

  /// Changes our key's value while we hold the lock, as etcd's Election.Proclaim does (an election's leader tells
  /// where to reach it: an address, a JSON blob). One guarded txn (see async_guarded_txn): etcd writes the value
  /// only if our key still has our create revision, and keeps our lease on it. Every manager on the lock, observers
  /// included, gets a holder_changed event with the new value (and `etcdctl elect -l` prints it). value() returns
  /// it from completion on, and a key made after a loss carries it. Completes with: `{}`; errc::lock_lost when we do
  /// not hold the lock (nothing sent, or etcd found our key gone: nothing written); the request's error otherwise
  /// (after errc::timeout the value may or may not be written; the events tell). Cancellation: terminal completes
  /// with operation_aborted; a txn already sent may still be applied (guarded).
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_proclaim(std::string value, Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return detail::async_run<void>(get_executor(), detail::proclaim(state_, std::move(value)),
                                   std::forward<Token>(token));
  }

  /// True only while we hold the lock and our lease's proven lifetime has not run out, checked at the call.
  bool have_lock() const noexcept;
  /// Our key's create revision while have_lock() is true, 0 otherwise. Strictly increases across holders.
  std::int64_t fencing_token() const noexcept;
  /// Our identity (options::identity, or the one made for us): our key's first value.
  const std::string& identity() const noexcept;
  /// Our key's value: the identity until async_proclaim changes it. Any thread.
  std::string value() const;
  /// The key we contend with (`name/<lease hex>`), empty until we have a lease.
  std::string key() const;

  /// The next event of the manager's default subscription (see event_subscription::async_wait_event).
  template <class Token>
  auto async_wait_event(Token&& token) {
    return default_subscription_.async_wait_event(std::forward<Token>(token));
  }
  /// A new subscription: it sees every event from now on, in order.
  event_subscription subscribe();

  /// Called on the manager's strand, posted (never inside the manager's bookkeeping), until the manager is
  /// destroyed. on_lost: removed or unknown while we held the lock (our own release and shutdown included: they
  /// begin with removed). A callback may destroy the manager or throw: an exception is caught and reported to
  /// the diagnostics hook (options::diagnostics, or the session's).
  void on_acquired(callback cb);
  void on_lost(callback cb);
  /// Called when the holder changes (also when we take or lose it), like Kubernetes' OnNewLeader. Never with
  /// options::watch = watch_scope::predecessor (the lock does not follow the holder).
  void on_holder_changed(callback cb);

  /// The holder and waiters as last seen (holder first). Call on the manager's strand, or accept a snapshot taken
  /// under a lock. With watch_scope::predecessor: the key ahead of ours and ours; holder() is ours while we hold, else
  /// none (the lock does not follow the holder).
  std::vector<lock_entry> queue() const;
  std::optional<lock_entry> holder() const;

  /// What this lock did so far (acquisitions, losses by cause, time held and UNKNOWN, its place in line) and its
  /// session's figures (stats.hpp). Any thread, any time: a snapshot taken under the manager's and the session's
  /// own small locks, as queue() is; have_lock and fencing_token as have_lock() and fencing_token() answer.
  lock_stats stats() const;

  executor_type get_executor() const noexcept;
  /// The etcd client the manager uses (its session's), for your own reads beside the lock, e.g. of what a guarded
  /// write wrote. Not thread-safe: call it on the manager's strand (get_executor()). Do not close() it. It lives as
  /// long as the manager (or its session).
  etcd::client& etcd_client() const noexcept;

 private:
  friend class detail::manager_face;
  friend class rw_lock;  // holders()
  // Another admission rule on the lock's machinery: a semaphore's of N permits (semaphore.hpp), a read-write lock's
  // reader or writer (rw_lock.hpp).
  lock_manager(executor_type ex, options opts, const recipe::admission& rule);
  lock_manager(session& s, options opts, const recipe::admission& rule);

  std::shared_ptr<detail::manager_state> state_;
  event_subscription default_subscription_;
};

}  // namespace clusterlock
