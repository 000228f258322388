#pragma once
// What `run` holds: the lock, or (run --slots N) a permit of a semaphore. The supervisor speaks to either through
// this: the operations it uses, and the holders to name when it gives up.

#include <clusterlock/lock_manager.hpp>
#include <clusterlock/semaphore.hpp>

#include <boost/asio/io_context.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace clusterlock::cli {

class contender {
 public:
  /// `slots` 0: the lock `opts.name`; else a semaphore of `slots` permits.
  contender(boost::asio::io_context& io, const options& opts, std::size_t slots) {
    if (slots == 0) lock_ = std::make_unique<lock_manager>(io.get_executor(), opts);
    else sem_ = std::make_unique<semaphore>(io.get_executor(), opts, slots);
  }

  std::size_t slots() const noexcept { return sem_ ? sem_->slots() : 0; }
  const std::string& identity() const noexcept { return sem_ ? sem_->identity() : lock_->identity(); }
  std::string key() const { return sem_ ? sem_->key() : lock_->key(); }
  /// have_lock(), or have_permit().
  bool holds() const noexcept { return sem_ ? sem_->have_permit() : lock_->have_lock(); }
  event_subscription subscribe() { return sem_ ? sem_->subscribe() : lock_->subscribe(); }
  /// The lock's holder, or the semaphore's permit holders, as last seen.
  std::vector<lock_entry> holders() const {
    if (sem_) return sem_->holders();
    std::vector<lock_entry> out;
    if (auto h = lock_->holder()) out.push_back(std::move(*h));
    return out;
  }

  template <class Handler>
  void async_acquire(Handler&& h) {
    if (sem_) sem_->async_acquire(std::forward<Handler>(h));
    else lock_->async_acquire(std::forward<Handler>(h));
  }
  template <class Handler>
  void async_try_acquire(Handler&& h) {
    if (sem_) sem_->async_try_acquire(std::forward<Handler>(h));
    else lock_->async_try_acquire(std::forward<Handler>(h));
  }
  template <class Handler>
  void async_shutdown(Handler&& h) {
    if (sem_) sem_->async_shutdown(std::forward<Handler>(h));
    else lock_->async_shutdown(std::forward<Handler>(h));
  }

 private:
  std::unique_ptr<lock_manager> lock_;
  std::unique_ptr<semaphore> sem_;
};

}  // namespace clusterlock::cli
