#include "session/session_metrics.hpp"

#include <algorithm>

namespace clusterlock::detail {

void session_metrics::lease_proven(std::int64_t lease, clock::time_point sent, std::chrono::seconds ttl,
                                   clock::time_point valid_until, bool granted) {
  std::lock_guard lock(mutex_);
  stats_.lease = lease;
  stats_.granted_ttl = ttl;
  if (granted) ++stats_.leases_granted;
  renewed_at_ = sent;
  valid_until_ = valid_until;
}

void session_metrics::lease_dropped(bool lost) {
  std::lock_guard lock(mutex_);
  stats_.lease = 0;
  valid_until_ = {};
  if (lost) ++stats_.leases_lost;
}

void session_metrics::keepalive_done(clock::duration took, bool failed) {
  std::lock_guard lock(mutex_);
  stats_.keepalive_latency.observe(took);
  if (failed) ++stats_.keepalive_failures;
}

void session_metrics::probe_done(clock::duration took, bool failed) {
  std::lock_guard lock(mutex_);
  stats_.probe_latency.observe(took);
  if (failed) ++stats_.probe_failures;
}

void session_metrics::watch_restarted() {
  std::lock_guard lock(mutex_);
  ++stats_.watch_restarts;
}

session_stats session_metrics::snapshot(clock::time_point now) const {
  std::lock_guard lock(mutex_);
  session_stats out = stats_;
  if (renewed_at_) out.since_renewal = now - *renewed_at_;
  out.lease_valid_for = std::max(valid_until_ - now, clock::duration::zero());
  return out;
}

}  // namespace clusterlock::detail
