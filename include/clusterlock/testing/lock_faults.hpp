#pragma once
// Faults a test forces on a lock: through etcd itself, as an operator or another client could (its key deleted, its
// lease revoked; blocking, etcdctl runs to completion), or on its connections with a fault_relay (UNKNOWN).
// Any thread.

#include <clusterlock/lock_manager.hpp>
#include <clusterlock/options.hpp>
#include <clusterlock/testing/etcd_cluster.hpp>
#include <clusterlock/testing/fault_relay.hpp>

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

/// clusterlock::options for a lock called `name` on `cluster`, every connection of which goes through `relay` (a
/// fault_relay in front of one member: fault_relay relay("127.0.0.1", cluster.client_port(0))). TLS and auth as
/// cluster.lock_options(name); TLS passes the relay untouched.
clusterlock::options lock_options_through(const fault_relay& relay, const etcd_cluster& cluster, std::string name);

/// Cuts a lock that reaches etcd through `relay` off from it, without closing anything (relay.blackhole()): a holder
/// gets UNKNOWN within about probe_interval + request_timeout (2 s at the defaults). relay.pass() heals it: ACQUIRED
/// again with the same fencing token while its lease still lives in etcd (REMOVED if it expired meanwhile).
void force_unknown(fault_relay& relay);

}  // namespace clusterlock::testing
