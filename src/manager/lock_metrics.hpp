#pragma once
// What a lock counts for lock_manager::stats(), from the events it delivers: acquisitions, losses by cause, time
// held and time UNKNOWN. Told on the manager's strand (once per ACQUIRED, REMOVED or UNKNOWN), read from any thread:
// one small lock. No I/O, and the time is given: unit tests drive it directly.

#include <clusterlock/lock_event.hpp>
#include <clusterlock/stats.hpp>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>

namespace clusterlock::detail {

class lock_metrics {
 public:
  using clock = std::chrono::steady_clock;
  /// Why a REMOVED came: etcd removed our key, our lease went (etcd said so, or the session closed), or we gave the
  /// lock up ourselves.
  enum class cause { removed, lease_lost, released };

  /// An event of ours (holder_changed is ignored) at `now`; `why` says what a removed means.
  void on_event(lock_event::kind_type kind, cause why, clock::time_point now);
  /// Fills the counting fields of `out` (acquisitions, losses, time_held, time_unknown) as of `now`: a stretch
  /// held or UNKNOWN that still lasts counts up to `now`.
  void fill(lock_stats& out, clock::time_point now) const;

 private:
  mutable std::mutex mutex_;
  std::uint64_t acquisitions_ = 0, removed_ = 0, lease_lost_ = 0, released_ = 0, unknowns_ = 0;
  clock::duration held_{0}, unknown_{0};
  std::optional<clock::time_point> held_since_, unknown_since_;
};

}  // namespace clusterlock::detail
