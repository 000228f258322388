#include "manager/lock_metrics.hpp"

namespace clusterlock::detail {

namespace {
// Ends a stretch that started at `since` (if one did), adding it to `total`.
void close_stretch(std::optional<std::chrono::steady_clock::time_point>& since, std::chrono::steady_clock::duration& total,
                   std::chrono::steady_clock::time_point now) {
  if (!since) return;
  if (now > *since) total += now - *since;
  since.reset();
}
}  // namespace

void lock_metrics::on_event(lock_event::kind_type kind, cause why, clock::time_point now) {
  if (kind == lock_event::holder_changed) return;
  std::lock_guard lock(mutex_);
  close_stretch(held_since_, held_, now);
  close_stretch(unknown_since_, unknown_, now);
  switch (kind) {
    case lock_event::acquired:
      ++acquisitions_;
      held_since_ = now;
      break;
    case lock_event::unknown:
      ++unknowns_;
      unknown_since_ = now;
      break;
    case lock_event::removed:
      ++(why == cause::released ? released_ : why == cause::lease_lost ? lease_lost_ : removed_);
      break;
    case lock_event::holder_changed:
      break;
  }
}

void lock_metrics::fill(lock_stats& out, clock::time_point now) const {
  std::lock_guard lock(mutex_);
  out.acquisitions = acquisitions_;
  out.removed_by_etcd = removed_;
  out.lease_lost = lease_lost_;
  out.released = released_;
  out.unknowns = unknowns_;
  out.time_held = held_;
  out.time_unknown = unknown_;
  if (held_since_ && now > *held_since_) out.time_held += now - *held_since_;
  if (unknown_since_ && now > *unknown_since_) out.time_unknown += now - *unknown_since_;
}

}  // namespace clusterlock::detail
