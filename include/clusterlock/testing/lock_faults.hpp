#pragma once
// Faults a test forces on a lock through etcd itself, as an operator or another client could: its key deleted, its
// lease revoked. Blocking (etcdctl runs to completion); any thread.

#include <clusterlock/lock_manager.hpp>
#include <clusterlock/testing/etcd_cluster.hpp>

#include <cstdint>
#include <string>

namespace clusterlock::testing {

/// Deletes `lock`'s key (lock_manager::key()) in `cluster`. A holder gets REMOVED, then contends again with a new
/// key (after start() or async_acquire). Throws std::logic_error when the lock has no key yet, std::runtime_error
/// when etcdctl fails or the key was not there.
void force_removed(const etcd_cluster& cluster, const lock_manager& lock);

/// Revokes the lease `lock`'s key lives on, which deletes the key: a holder gets REMOVED, its session grants a new
/// lease, and the lock contends again with it. Throws std::logic_error when the lock has no key yet,
/// std::runtime_error when etcdctl fails (no such lease, etcd down).
void force_lease_loss(const etcd_cluster& cluster, const lock_manager& lock);

/// The lease ID in a lock's key (`name/<lease hex>`, as lock_manager::key() and lock_event::key name it).
/// Throws std::invalid_argument when `key` does not end in one.
std::int64_t lease_of_key(const std::string& key);

}  // namespace clusterlock::testing
