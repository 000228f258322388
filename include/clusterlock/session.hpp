#pragma once
// A session: one etcd client, one lease, one watch stream and one probe, shared by any number of lock managers.
//
// A lock_manager made from options alone gets a session of its own. Many locks in one process share one: they then
// cost one lease keepalive every TTL/3, one watch stream and one probe every probe_interval in all, whatever their
// number. Every lock on a session lives and dies with its lease.

#include <clusterlock/diagnostics.hpp>
#include <clusterlock/error.hpp>
#include <clusterlock/etcd/client_config.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace clusterlock {

struct options;

namespace detail {
class session_state;
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
  /// How often the session proves, for every lock it holds, that the lock still stands (one linearizable read
  /// of the watch prefix, whatever the number of locks).
  std::chrono::milliseconds probe_interval{1000};
  /// Subtracted from every proven lease lifetime, for clock-rate drift.
  std::chrono::milliseconds clock_margin{100};
  etcd::tls_config tls;
  etcd::auth_config auth;
  etcd::retry_config retry;
  /// Largest reply accepted (the probe reads every key under watch_prefix: raise it for many thousands of locks).
  std::size_t max_response_size = 16 * 1024 * 1024;
  /// Told of what the session retries, loses or recovers on its own (see options::diagnostics). Empty: none.
  diagnostics_handler diagnostics;
};

/// Checks `o` without I/O: errc::invalid_options with `*why` naming the bad field.
boost::system::error_code validate(const session_options& o, std::string* why = nullptr);

class session {
 public:
  using executor_type = boost::asio::any_io_executor;

  /// Throws boost::system::system_error(errc::invalid_options) naming the bad field. No I/O until a lock starts.
  session(executor_type ex, session_options opts);
  /// Safe at any time; the lease is revoked in the background once every lock manager on it is gone.
  ~session();
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  /// The session's strand: its lock managers run on it.
  executor_type get_executor() const noexcept;
  /// The lease ID, 0 while there is none. Call on the session's strand.
  std::int64_t lease() const noexcept;
  const session_options& options() const noexcept;

 private:
  friend class lock_manager;
  std::shared_ptr<detail::session_state> state_;
};

}  // namespace clusterlock
