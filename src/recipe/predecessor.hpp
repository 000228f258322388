#pragma once
// The lock recipe's reads for a contender that follows only the key ahead of its own (watch_scope::predecessor), as
// etcd's Go recipe does (client/v3/concurrency/mutex.go): a txn makes our key and reads the oldest; when that is not
// ours, a read finds the newest key older than ours, which we then watch; when it goes, we read again.

#include "recipe/lock_recipe.hpp"

namespace clusterlock::recipe {

/// One txn: create our key on the lease unless it exists, read it and the oldest key of the queue. When ours is not
/// the oldest, read_ahead() follows. The snapshot holds our key and the one just ahead of it (none: we are first).
/// Safe to retry, as enqueue().
boost::asio::awaitable<result<snapshot>> enqueue_behind(etcd::client& c, const std::string& prefix,
                                                        const std::string& my_key, const std::string& identity,
                                                        std::int64_t lease);

/// Our key and the newest other key of the queue as old as it or older (`my_revision`: our key's create revision),
/// at one revision, linearizable. No key ahead: we are first in line (if our key still stands).
boost::asio::awaitable<result<snapshot>> read_ahead(etcd::client& c, const std::string& prefix,
                                                    const std::string& my_key, std::int64_t my_revision);

}  // namespace clusterlock::recipe
