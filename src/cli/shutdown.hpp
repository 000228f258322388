#pragma once
// Leaving cleanly: every subcommand ends by shutting its lock manager down (which deletes its key, so the next
// waiter gets the lock at once, and revokes its lease), then stops its io_context.

#include <clusterlock/lock_manager.hpp>

#include "cli/contender.hpp"
#include "cli/output.hpp"

#include <boost/asio/io_context.hpp>

namespace clusterlock::cli {

/// Shuts `lock` down, then stops `io`. A supervisor waits for our exit, so the wait is bounded: after the
/// shutdown's own bound (its release and its revoke, one request timeout each, and 0.5 s) `io` stops anyway, and a
/// contender says that its key, which etcd did not confirm deleted, stands until its lease's TTL runs out.
void shut_down_then_stop(lock_manager& lock, boost::asio::io_context& io, const options& opts, const logger& log);
/// The same for run's lock, semaphore or read-write lock.
void shut_down_then_stop(contender& lock, boost::asio::io_context& io, const options& opts, const logger& log);

}  // namespace clusterlock::cli
