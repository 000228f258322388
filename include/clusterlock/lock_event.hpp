#pragma once

#include <boost/system/error_code.hpp>

#include <cstdint>
#include <ostream>
#include <string>

namespace clusterlock {

struct lock_event {
  enum kind_type {
    acquired,        ///< we hold the lock (again): have_lock() is true from now until a removed/unknown
    removed,         ///< we held it and it is gone (our key deleted, our lease expired or revoked)
    unknown,         ///< we held it and cannot prove we still do (etcd unreachable or too slow)
    holder_changed,  ///< someone else (or no one) holds it now, or the holder proclaimed a new value; sent to
                     ///< observers and contenders alike (an observer's first event: the holder then, or none)
  };
  kind_type kind = unknown;
  /// The holder's key create revision: strictly increases from holder to holder. 0: no holder.
  std::int64_t fencing_token = 0;
  /// The holder's key's value: its identity, or its election proposal (async_proclaim). Ours for
  /// acquired/removed/unknown. Empty: no holder.
  std::string holder;
  /// The etcd revision at which this was observed (0 where not from etcd, e.g. unknown).
  std::int64_t revision = 0;
  /// unknown: why we could not prove that we hold the lock (the probe's error, e.g. errc::timeout or
  /// errc::unavailable, or the last keepalive's when the lease's proven lifetime ran out). Empty otherwise.
  boost::system::error_code error;
  /// The holder's key (`name/<lease hex>`; ours for acquired/removed/unknown). Empty: no holder.
  std::string key;
  /// The holder's lease ID (0: no holder, or a key put without a lease).
  std::int64_t lease = 0;
};

const char* to_string(lock_event::kind_type k) noexcept;

inline std::ostream& operator<<(std::ostream& os, const lock_event& e) {
  os << to_string(e.kind) << " token=" << e.fencing_token << " holder=" << e.holder << " rev=" << e.revision;
  if (e.error) os << " error=" << e.error.message();
  return os;
}

}  // namespace clusterlock
