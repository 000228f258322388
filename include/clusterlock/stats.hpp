#pragma once
// Snapshots of what a lock and its session did so far: lock_manager::stats() and session::stats(). Plain values,
// taken under the library's own small locks, so any thread may ask at any time (a scrape thread, say). Counters
// only grow for the life of the object; durations are steady_clock time. prometheus.hpp writes them as metrics.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace clusterlock {

/// Durations in fixed buckets, as Prometheus' histograms count them.
struct latency_histogram {
  /// The buckets' upper bounds, in seconds (the last bucket, +Inf, is `count`).
  static constexpr std::array<double, 13> upper_bounds{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                        0.25,  0.5,    1.0,   2.5,  5.0,   10.0};
  /// Cumulative: buckets[i] counts the observations of at most upper_bounds[i] seconds.
  std::array<std::uint64_t, upper_bounds.size()> buckets{};
  std::uint64_t count = 0;  ///< every observation
  double sum = 0;           ///< of every observation, in seconds

  void observe(std::chrono::steady_clock::duration d) noexcept {
    const double s = std::chrono::duration<double>(d).count();
    for (std::size_t i = 0; i < upper_bounds.size(); ++i)
      if (s <= upper_bounds[i]) ++buckets[i];
    ++count;
    sum += s;
  }
};

/// The etcd requests of one client (etcd::client::request_stats()): every call, once, whatever its retries.
struct request_stats {
  std::uint64_t requests = 0;  ///< calls made (each counted once, however many attempts and endpoints it took)
  std::uint64_t failures = 0;  ///< calls that completed with an error (cancellations included)
  /// failures by their error: the clusterlock::errc name ("timeout", "unavailable", ...), "operation_aborted" for
  /// a cancelled call, else "<category>:<value>". A session's keepalives and probes cancel their call when their
  /// deadline (request_timeout) passes: an etcd that does not answer shows as operation_aborted (and in
  /// keepalive_failures, probe_failures), one that refuses as unavailable.
  std::map<std::string, std::uint64_t> failures_by_error;
};

/// One session: its lease, keepalives, probe, watch and requests. Shared by every lock on the session.
struct session_stats {
  using duration = std::chrono::steady_clock::duration;
  std::string watch_prefix;               ///< the session's watch prefix (a lock's own session: "<name>/")
  std::int64_t lease = 0;                 ///< the current lease ID, 0: none
  std::chrono::seconds granted_ttl{0};    ///< the TTL etcd granted the last lease (0: none yet)
  /// Since the last proven renewal: the send time of the last keepalive (or grant) etcd answered with the lease
  /// alive. Empty before the first lease. Growing past the TTL means renewal is stuck (healthz, docs/metrics.md).
  std::optional<duration> since_renewal;
  duration lease_valid_for{0};            ///< how much longer the lease is proven to live (0: not proven)
  std::uint64_t leases_granted = 0;       ///< leases etcd granted us
  std::uint64_t leases_lost = 0;          ///< leases etcd said were gone (expired or revoked) while we kept them
  std::uint64_t keepalive_failures = 0;   ///< keepalives without an answer (the lease may yet live)
  latency_histogram keepalive_latency;    ///< every keepalive, answered or not, from send to outcome
  std::uint64_t probe_failures = 0;       ///< probes without an answer in time (held locks go UNKNOWN)
  latency_histogram probe_latency;        ///< every probe (one linearizable read, or its pages), answered or not
  std::uint64_t watch_restarts = 0;       ///< times the session's watch stream was opened again after it broke
  request_stats requests;                 ///< the session's client: every etcd call, keepalives and probes included
};

/// One lock manager, and its session's figures.
struct lock_stats {
  using duration = std::chrono::steady_clock::duration;
  std::string name;                ///< options::name
  bool have_lock = false;          ///< have_lock() at the snapshot
  std::int64_t fencing_token = 0;  ///< fencing_token() at the snapshot
  std::uint64_t acquisitions = 0;  ///< ACQUIRED events (taking the lock again after an UNKNOWN counts too)
  /// REMOVED events by cause: etcd deleted our key or it was replaced (removed_by_etcd); etcd said our lease was
  /// gone, or our session closed (lease_lost); we gave the lock up ourselves: release, shutdown, the end of
  /// async_lead (released). An UNKNOWN that ends in a REMOVED counts in `unknowns` and here.
  std::uint64_t removed_by_etcd = 0;
  std::uint64_t lease_lost = 0;
  std::uint64_t released = 0;
  std::uint64_t unknowns = 0;      ///< UNKNOWN events: we held the lock and could not prove we still did
  duration time_held{0};           ///< total time from each ACQUIRED to the REMOVED or UNKNOWN after it (so far)
  duration time_unknown{0};        ///< total time from each UNKNOWN to the ACQUIRED or REMOVED after it (so far)
  /// Our key's place in line as last seen: 0 holds it, 1 is next, ... Empty: no key of ours in line.
  std::optional<std::size_t> queue_position;
  std::size_t queue_length = 0;    ///< keys in line as last seen, holder included
  session_stats session;           ///< the lock's session (its own, or the shared one it runs on)
};

}  // namespace clusterlock
