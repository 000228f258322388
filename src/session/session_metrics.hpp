#pragma once
// What a session counts for session::stats(): told by the lease keeper, the watch hub and the probe on the
// session's strand, read from any thread. One small lock, taken once per keepalive, probe or watch restart.

#include <clusterlock/stats.hpp>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>

namespace clusterlock::detail {

class session_metrics {
 public:
  using clock = std::chrono::steady_clock;

  /// A lease was granted (or renewed: `granted` false): etcd answered a request sent at `sent` with `ttl`, and
  /// the lease is proven to live until `valid_until`.
  void lease_proven(std::int64_t lease, clock::time_point sent, std::chrono::seconds ttl, clock::time_point valid_until,
                    bool granted);
  /// The lease is no more: etcd said it is gone (`lost`), or the session stopped it.
  void lease_dropped(bool lost);
  /// A keepalive took `took`; `failed`: no answer (a timeout, an unreachable etcd).
  void keepalive_done(clock::duration took, bool failed);
  void probe_done(clock::duration took, bool failed);
  void watch_restarted();

  /// Everything but the watch prefix and the client's requests, which the session adds.
  session_stats snapshot(clock::time_point now) const;

 private:
  mutable std::mutex mutex_;
  session_stats stats_;  // since_renewal and lease_valid_for are made at the snapshot, from these two:
  std::optional<clock::time_point> renewed_at_;
  clock::time_point valid_until_{};
};

}  // namespace clusterlock::detail
