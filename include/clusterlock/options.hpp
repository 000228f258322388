#pragma once
// Everything a lock_manager can be told, with its default. validate() checks it before any I/O.

#include <clusterlock/diagnostics.hpp>
#include <clusterlock/error.hpp>
#include <clusterlock/etcd/client_config.hpp>

#include <boost/system/error_code.hpp>  // validate() returns one

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace clusterlock {

/// What a contender's watch follows. docs/guarantees.md ("Watch scope") has what each promises.
enum class watch_scope {
  /// Every key of the lock, from one watch per session: queue() and on_holder_changed follow every change, and the
  /// next waiter takes its turn from the release's watch event alone, with no request. etcd sends every enqueue and
  /// release to every contender, so its cost per hand-off grows with the line: for lines of up to some tens.
  line,
  /// As etcd's Go recipe (concurrency.Mutex): only the key just ahead of ours while we wait, and ours while we hold.
  /// A release reaches one waiter, whatever the line's length, which then takes its turn after one linearizable read
  /// (a round trip). Watches of its own, so connections: one per lock, two once it has held and waited (it keeps the
  /// watch it no longer follows for its next turn, until it wants no key at a probe round); queue() shows just the
  /// key ahead of ours and ours, and no holder_changed event comes. Plain locks only (not semaphore, not rw_lock), and contenders only.
  predecessor,
};

struct options {
  /// etcd endpoints, `http://host:port` or `https://host:port`; at least one.
  std::vector<std::string> endpoints;
  /// The lock's name. Its keys live under `name + "/"`, as etcd's own lock recipe (`etcdctl lock`) keeps them,
  /// so the two exclude each other. Must not be empty.
  std::string name;
  /// Lease TTL asked of etcd. etcd may grant more (it raises small TTLs); every deadline uses what it granted.
  /// Longer: less traffic, slower fail-over after a crash. Shorter: the opposite.
  std::chrono::seconds ttl{10};
  /// Deadline of one request to etcd (connect and TLS included).
  std::chrono::milliseconds request_timeout{1000};
  /// How often the holder proves that it still holds the lock (a linearizable read of its own key). A holder
  /// that cannot reach etcd stops claiming the lock within probe_interval + request_timeout, and never after
  /// its lease could have expired.
  std::chrono::milliseconds probe_interval{1000};
  /// Safety margin subtracted from the lease's proven lifetime, for clock-rate drift between us and etcd.
  std::chrono::milliseconds clock_margin{100};
  /// Identity stored as the lock key's value. Empty: hostname + "-" + a random UUID, made by the lock_manager's
  /// constructor and kept for that manager's life.
  std::string identity;
  /// false: only observe the holder and the queue, never contend.
  bool contend = true;
  /// What our watch follows: the whole line (the default), or only the key ahead of ours (for long lines).
  watch_scope watch = watch_scope::line;
  /// Events kept for a subscriber that does not keep up; beyond this the oldest are dropped and its next
  /// wait reports errc::events_dropped once.
  std::size_t event_backlog = 1024;
  etcd::tls_config tls;
  etcd::auth_config auth;
  etcd::retry_config retry;
  /// Told of trouble the library handles itself: failed etcd calls it retries, lost leases, re-authentications,
  /// watch restarts, failed probes, a refusal that stopped contention, and exceptions thrown by callbacks (see
  /// diagnostics.hpp: posted to the session's strand, rate-limited, exceptions dropped). For a lock on a shared
  /// session the session's own `diagnostics` is used. Empty: none.
  diagnostics_handler diagnostics{};
};

/// Checks `o` without I/O. Returns errc::invalid_options with `*why` (if given) naming the bad field.
/// Every field is checked except the TLS files' contents: the lock_manager's constructor reads them (for an
/// https endpoint) and throws if they cannot be read or used.
boost::system::error_code validate(const options& o, std::string* why = nullptr);
/// Checks only what a lock on a shared session uses: name, contend and watch, event_backlog.
boost::system::error_code validate_lock(const options& o, std::string* why = nullptr);

}  // namespace clusterlock
