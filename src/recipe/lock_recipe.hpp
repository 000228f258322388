#pragma once
// The lock recipe's etcd calls, each one short story (after etcd's client/v3/concurrency/mutex.go).
// Keys are etcd's own: `<name>/<lease id in lower-case hex>`, so etcdctl lock and clusterlock exclude each other.

#include <clusterlock/error.hpp>
#include <clusterlock/etcd/client.hpp>

#include "recipe/lock_machine.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace clusterlock::recipe {

/// Every key under the prefix at one revision, oldest first.
struct snapshot {
  std::int64_t revision = 0;
  std::vector<queue_entry> keys;
  bool complete = true;  // every key ahead of ours is in `keys` (a partial one, read_ahead(): not always)
};

/// Whether `key` is in the queue of the lock whose keys start with `prefix` (`name/`): one more path segment, as
/// etcd's recipe makes them. A key with a further '/' belongs to a nested name (`a/b/<lease>` is the lock `a/b`'s,
/// not `a`'s), so `a` and `a/b` are independent locks. (etcd's own recipe counts nested keys: `etcdctl lock a` waits
/// for a holder of `a/b`; its keys, `a/<lease>`, are ours to wait for all the same.)
bool in_queue(std::string_view prefix, std::string_view key);

/// `prefix` + the lease ID in lower-case hex, as etcd's recipe names it.
std::string lock_key(const std::string& prefix, std::int64_t lease);

/// One txn: create our key on the lease unless it exists, and read the whole queue in the same revision.
/// Safe to retry: a repeat finds the key and creates nothing.
boost::asio::awaitable<result<snapshot>> enqueue(etcd::client& c, const std::string& prefix, const std::string& my_key,
                                                 const std::string& identity, std::int64_t lease);

/// The queue as it stands now (linearizable): observers, and re-reads after the watch history was compacted.
boost::asio::awaitable<result<snapshot>> read_queue(etcd::client& c, const std::string& prefix);

/// What a linearizable read says of our key now.
struct probe_result {
  std::int64_t create_revision = 0;  // 0: the key is gone
  std::int64_t revision = 0;
};
boost::asio::awaitable<result<probe_result>> probe(etcd::client& c, const std::string& my_key);

/// Deletes our key only if it is still the one we created (etcd issue 22082: a late release must never
/// delete a newer key of the same session). Safe to retry.
boost::asio::awaitable<result<void>> release(etcd::client& c, const std::string& my_key, std::int64_t create_revision);

}  // namespace clusterlock::recipe
