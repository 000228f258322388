#pragma once
// Cleanup that runs on every exit of a scope, also of a coroutine's scope: Asio ends a cancelled coroutine by
// throwing operation_aborted at its next co_await (or completes the awaited operation with it), so cleanup written
// as a statement after a co_await is skipped on those paths. Flags reset, waiters woken, pointers cleared: put them
// in a scope_exit made before the co_await.

#include <utility>

namespace clusterlock::detail {

template <class F>
class [[nodiscard]] scope_exit {
 public:
  explicit scope_exit(F f) : f_(std::move(f)) {}
  ~scope_exit() { run(); }
  scope_exit(const scope_exit&) = delete;
  scope_exit& operator=(const scope_exit&) = delete;

  /// Runs the cleanup now (once; the destructor then does nothing).
  void run() noexcept {
    if (armed_) {
      armed_ = false;
      f_();
    }
  }
  /// The cleanup will not run.
  void dismiss() noexcept { armed_ = false; }

 private:
  F f_;
  bool armed_ = true;
};

}  // namespace clusterlock::detail
