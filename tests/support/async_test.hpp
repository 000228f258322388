#pragma once
// Running a test body written as a coroutine on the test's io_context, with a bound on its duration.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <exception>
#include <memory>

namespace clusterlock::test {

/// Runs `body` on `io` until it finishes; false (and a test failure) when it has not after `limit`.
/// Exceptions from the body are rethrown here.
inline bool run_until_done(boost::asio::io_context& io, boost::asio::awaitable<void> body,
                           std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  struct outcome {
    bool done = false;
    std::exception_ptr failure;
  };
  auto result = std::make_shared<outcome>();
  boost::asio::co_spawn(io, std::move(body), [result, &io](std::exception_ptr e) {
    result->done = true;
    result->failure = e;
    io.stop();
  });
  io.restart();
  io.run_for(limit);
  if (result->failure) std::rethrow_exception(result->failure);
  if (!result->done) ADD_FAILURE() << "the test body did not finish within " << limit.count() << " ms";
  return result->done;
}

}  // namespace clusterlock::test

/// ASSERT_TRUE for coroutines (gtest's ASSERT_* use `return`, which a coroutine cannot).
/// The condition is put in a variable first: GCC 12 miscompiles a co_await written directly in an
/// if condition, and the condition here is often a co_await.
#define CO_ASSERT_TRUE(condition)                                    \
  do {                                                               \
    const bool co_assert_holds_ = static_cast<bool>(condition);      \
    if (!co_assert_holds_) {                                         \
      ADD_FAILURE() << "CO_ASSERT_TRUE(" #condition ") failed";      \
      co_return;                                                     \
    }                                                                \
  } while (0)
