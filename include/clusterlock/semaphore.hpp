#pragma once
// A counting semaphore over etcd: at most N holders of one name at a time (docs/semaphore.md).
//
// The lock's recipe with N permits: every contender puts `name/<lease hex>` on its lease, with the value
// `slots=<N>;<identity>`; a contender holds a permit while fewer than N other keys under the name are as old as its
// own (lower or equal create revision). FIFO, no herd: a permit that frees admits the first waiter from the watch's
// DELETE, with no further request. Every contender must give the same N: one that finds an older key with another N
// (or a plain lock's key) fails with errc::slots_mismatch and deletes its key.
//
// Everything else is lock_manager's (its header says it in full; docs/lifecycle.md has the table): the same
// threads, lifecycle, pessimism (have_permit() is false whenever the permit is not proven: lease validity, probe,
// UNKNOWN), operations and their cancellation (detail/manager_face.hpp forwards them), events (ACQUIRED, REMOVED,
// UNKNOWN about our permit; no HOLDER_CHANGED: a semaphore has no one holder), and shared sessions. async_acquire and
// async_try_acquire also fail with errc::slots_mismatch when an older contender has another number of slots (or is a
// plain lock): contention stops (until the next start() or acquire) and our key is deleted.

#include <clusterlock/detail/manager_face.hpp>

#include <cstddef>

namespace clusterlock {

class semaphore : public detail::manager_face {
 public:
  /// At most `slots` holders of `opts.name` at a time. Validates `opts` as lock_manager does, and `slots` (1 to
  /// 1,000,000): throws boost::system::system_error(errc::invalid_options) naming the bad field. No I/O until start().
  semaphore(executor_type ex, options opts, std::size_t slots);
  semaphore(boost::asio::io_context& io, options opts, std::size_t slots)
      : semaphore(io.get_executor(), std::move(opts), slots) {}
  /// On a shared session (see lock_manager's). One session holds at most one permit of a name: a second
  /// contending semaphore of the name on the session waits until the first has shut down.
  semaphore(session& s, options opts, std::size_t slots);
  /// As lock_manager's: safe at any time; no callback runs after it; a started semaphore shuts down in the background.
  ~semaphore() = default;

  /// True only while we hold a permit and our lease's proven lifetime has not run out, checked at the call.
  bool have_permit() const noexcept { return impl_.have_lock(); }
  /// Our key's create revision while have_permit() is true, 0 otherwise: unique to this permit, and
  /// higher than any permit this semaphore held before. Permits held at once by others may have higher or lower
  /// tokens. Our key's value is `slots=<N>;<identity>`.
  using manager_face::fencing_token;
  /// The number of permits (the `slots` given).
  std::size_t slots() const noexcept { return slots_; }
  /// The first slots() entries of queue(): the permit holders as last seen (if they agree on N).
  std::vector<lock_entry> holders() const;

 private:
  static std::size_t checked_slots(std::size_t slots);
  std::size_t slots_;
};

}  // namespace clusterlock
