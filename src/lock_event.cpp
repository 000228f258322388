#include <clusterlock/lock_event.hpp>

namespace clusterlock {

const char* to_string(lock_event::kind_type k) noexcept {
  switch (k) {
    case lock_event::acquired: return "ACQUIRED";
    case lock_event::removed: return "REMOVED";
    case lock_event::unknown: return "UNKNOWN";
    case lock_event::holder_changed: return "HOLDER_CHANGED";
  }
  return "?";
}

}  // namespace clusterlock
