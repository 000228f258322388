#pragma once
// Leaving cleanly: every subcommand ends by shutting its lock manager down (which deletes its key, so the next
// waiter gets the lock at once, and revokes its lease), then stops its io_context.

#include <clusterlock/lock_manager.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>

namespace clusterlock::cli {

/// Shuts `lock` down, then stops `io`; stops `io` anyway after the shutdown's own bound (its release and its
/// revoke, one request timeout each) so that an unreachable etcd cannot hold up the exit.
void shut_down_then_stop(lock_manager& lock, boost::asio::io_context& io, std::chrono::milliseconds request_timeout);

}  // namespace clusterlock::cli
