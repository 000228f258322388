#pragma once
// A session: one etcd client, one lease, one watch stream and one probe, shared by any number of lock managers.
//
// A lock_manager made from options alone gets a session of its own. Many locks in one process share one: they then
// cost one lease keepalive every TTL/3, one watch stream and one probe every probe_interval in all, whatever their
// number. Every lock on a session lives and dies with its lease.

#include <clusterlock/detail/async_run.hpp>
#include <clusterlock/diagnostics.hpp>
#include <clusterlock/error.hpp>
#include <clusterlock/etcd/client_config.hpp>
#include <clusterlock/stats.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdint>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace clusterlock {

struct options;

namespace detail {
class session_state;
struct session_access;
}

struct session_options {
  /// etcd endpoints, `http://host:port` or `https://host:port`; at least one.
  std::vector<std::string> endpoints;
  /// Every lock on this session must have a name under this prefix (`watch_prefix` + anything); one watch on
  /// it serves them all. E.g. "jobs/" for locks "jobs/a", "jobs/b". Must not be empty.
  std::string watch_prefix;
  /// Lease TTL asked of etcd (it may grant more; deadlines use what it granted).
  std::chrono::seconds ttl{10};
  /// Deadline of one request to etcd.
  std::chrono::milliseconds request_timeout{1000};
  /// How often the session proves, for every lock it holds, that the lock still stands, and for every lock that
  /// waits, that its watch is not behind: one linearizable read, whatever the number of locks (of the keys they
  /// need when those are at most 16, else of every key under watch_prefix).
  std::chrono::milliseconds probe_interval{1000};
  /// Subtracted from every proven lease lifetime, for clock-rate drift.
  std::chrono::milliseconds clock_margin{100};
  etcd::tls_config tls;
  etcd::auth_config auth;
  etcd::retry_config retry;
  /// Largest reply accepted. A probe of many locks reads the keys under watch_prefix in pages that fit in it (a
  /// page that does not makes the later ones smaller), so many locks need no larger bound.
  std::size_t max_response_size = 16 * 1024 * 1024;
  /// Told of trouble the session handles itself: every failed etcd call it retries, lost leases,
  /// re-authentications, watch restarts and compactions, failed probes, a failed revoke at close. Posted to the
  /// session's strand (never called inside the library's bookkeeping), rate-limited (at most one message a second
  /// per kind of trouble and error, the next one counting those suppressed), exceptions it throws dropped.
  /// Empty: none. See diagnostics.hpp.
  diagnostics_handler diagnostics{};
};

/// Checks `o` without I/O: errc::invalid_options with `*why` naming the bad field.
boost::system::error_code validate(const session_options& o, std::string* why = nullptr);

class session {
 public:
  using executor_type = boost::asio::any_io_executor;

  /// Throws boost::system::system_error(errc::invalid_options) naming the bad field. No I/O until a lock starts.
  session(executor_type ex, session_options opts);
  /// The same on `io`'s executor.
  session(boost::asio::io_context& io, session_options opts);
  /// Safe at any time; the lease is revoked in the background once every lock manager on it is gone.
  ~session();
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  /// The session's strand: its lock managers run on it.
  executor_type get_executor() const noexcept;
  /// The lease ID, 0 while there is none. Call on the session's strand.
  std::int64_t lease() const noexcept;
  const session_options& options() const noexcept;
  /// What the session did so far: its lease, keepalives, probes, watch restarts and etcd requests (stats.hpp).
  /// Any thread, any time (a snapshot under the session's own small lock).
  session_stats stats() const;

  /// Closes the session: stops the keepalives, the watch and the probe at once, then revokes the lease (bounded by
  /// request_timeout). Every lock on the session sees its lease gone (a lock that held is REMOVED: its key goes
  /// with the lease) and is told that the session is closed; a lock started on it later is told so at once. Later
  /// locks get no lease (errc::not_started). Signature `void(error_code)`: success, or why the revoke failed (the
  /// lease, and any key on it, then lives until its TTL runs out).
  ///
  /// Idempotent: a later call completes once the first one has finished, with its result (not at once while the
  /// first still revokes).
  ///
  /// Cancellation (terminal, through the token's cancellation slot): stops waiting for etcd and completes with
  /// operation_aborted. The session is closed all the same (no keepalive, watch or probe runs after the call);
  /// what is left is the lease, which etcd then ends when its TTL runs out, with any key on it. A cancelled later
  /// call stops waiting for the first one and leaves it running.
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_close(Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return detail::async_run<void>(get_executor(), close_op(state_), std::forward<Token>(token));
  }

  /// Completes when etcd says a lease of this session is gone: it expired (etcd did not hear from us in time) or
  /// was revoked (by hand, or by another client). Signature `void(error_code, std::int64_t lease)`, the lease
  /// being the one that went. Every lock on it was REMOVED; the session grants a new lease for the locks that
  /// contend again (as Go's Session.Done(), but the session lives on). Completes with errc::not_started once the
  /// session is closed (async_close, or no user left).
  ///
  /// Nothing is lost between two waits: a loss reaches every wait pending when it happens; a loss that happens
  /// while no wait is pending is kept (the last 64) and the next wait completes at once with the oldest one kept.
  /// Losses kept when the session closes are reported before not_started.
  ///
  /// Cancellation: terminal, partial and total; the wait completes with operation_aborted and takes no loss with
  /// it (a loss that came first is reported instead: the cancellation came too late).
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_wait_lease_lost(Token&& token = boost::asio::default_completion_token_t<executor_type>()) {
    return detail::async_run<std::int64_t>(get_executor(), wait_lease_lost_op(state_), std::forward<Token>(token));
  }

 private:
  friend class lock_manager;
  friend struct detail::session_access;  // tests
  static boost::asio::awaitable<result<void>> close_op(std::shared_ptr<detail::session_state> state);
  static boost::asio::awaitable<result<std::int64_t>> wait_lease_lost_op(std::shared_ptr<detail::session_state> state);
  std::shared_ptr<detail::session_state> state_;
};

}  // namespace clusterlock
