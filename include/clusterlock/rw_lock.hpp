#pragma once
// A read-write lock over etcd: shared (read) and exclusive (write) holders of one name (docs/rwlock.md).
//
// The lock's recipe with two kinds of key: every contender puts `name/<lease hex>` on its lease, with the value
// `rw=read;<identity>` or `rw=write;<identity>`. A reader holds while no key as old as its own or older (lower or
// equal create revision) is a writer's; a writer holds while no other key is as old as its own or older (the lock's
// rule). FIFO: a reader behind a waiting writer waits for it, so a stream of readers never starves a writer. No
// herd: when the last older writer goes, every reader behind it up to the next writer is admitted from the watch's
// DELETE, with no further request; a writer is admitted so when the last older key goes.
//
// Any value that is not `rw=read;...` counts as a writer's: a plain lock's key (lock_manager, `clusterlock run`),
// `etcdctl lock`'s empty value, even a semaphore's `slots=N;...`. So a plain lock or `etcdctl lock` on the same name
// acts as a writer, and is safe both ways: they wait for every older key, treating ours as writers. An rw_lock never
// refuses a foreign value (counting it as a writer is the safe reading).
//
// Everything else is lock_manager's (its header says it in full; docs/lifecycle.md has the table): the same
// threads, lifecycle, pessimism (have_lock() is false whenever holding is not proven: lease validity, probe,
// UNKNOWN), operations and their cancellation (detail/manager_face.hpp forwards them), events (ACQUIRED, REMOVED,
// UNKNOWN about our key; no HOLDER_CHANGED: readers share the lock, so it has no one holder), and shared sessions.

#include <clusterlock/detail/manager_face.hpp>

#include <string_view>

namespace clusterlock {

class rw_lock : public detail::manager_face {
 public:
  /// Shared (read) or exclusive (write) access.
  enum class mode { read, write };

  /// Contends for `opts.name` in `access` mode. Validates `opts` as lock_manager does (throws
  /// boost::system::system_error(errc::invalid_options) naming the bad field) and `access`. No I/O until start().
  rw_lock(executor_type ex, options opts, mode access);
  rw_lock(boost::asio::io_context& io, options opts, mode access)
      : rw_lock(io.get_executor(), std::move(opts), access) {}
  /// On a shared session (see lock_manager's). One session holds at most one key of a name: a second contending
  /// rw_lock (or lock, or semaphore) of the name on the session waits until the first has shut down.
  rw_lock(session& s, options opts, mode access);
  /// As lock_manager's: safe at any time; no callback runs after it; a started rw_lock shuts down in the background.
  ~rw_lock() = default;

  /// True only while we hold the lock in our mode and our lease's proven lifetime has not run out, checked at the
  /// call.
  bool have_lock() const noexcept { return impl_.have_lock(); }
  /// Our key's create revision while have_lock() is true, 0 otherwise. A writer's is higher than
  /// every key it waited for (every older key: readers' and writers'), so it fences off all of them. A reader's is
  /// higher than every older writer's, and lower than any writer's after it; readers holding at once may have higher
  /// or lower tokens (docs/rwlock.md, "Fencing"). Our key's value is `rw=read;<identity>` or `rw=write;<identity>`.
  using manager_face::fencing_token;
  /// Our mode (read or write), as given.
  mode access() const noexcept { return mode_; }
  /// The keys holding the lock as last seen: every reader ahead of the first writer, or that writer alone when it is
  /// first in line (a key whose value is not a reader's counts as a writer). Any thread.
  std::vector<lock_entry> holders() const;

 private:
  static mode checked_mode(mode access);
  mode mode_;
};

/// "read" or "write".
std::string_view to_string(rw_lock::mode access) noexcept;

}  // namespace clusterlock
