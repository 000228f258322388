#pragma once
// Running a test body written as a coroutine on the test's io_context, with a bound on its duration.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <concepts>
#include <exception>
#include <memory>
#include <type_traits>

namespace clusterlock::test {

/// Runs `body` on `io` until it finishes; false (and a test failure) when it has not after `limit`.
/// Exceptions from the body are rethrown here.
/// `body` is a coroutine, or a function object that makes one: pass a coroutine lambda itself, not its call
/// (`[&]() -> awaitable<void> {...}`, without `()`), so that co_spawn keeps the lambda, whose captures the coroutine
/// reads, alive as long as the coroutine (a called temporary lambda dies at the end of the full expression, also
/// when the body did not finish and is resumed later).
template <class Body>
  requires std::same_as<std::remove_cvref_t<Body>, boost::asio::awaitable<void>> ||
           std::same_as<std::invoke_result_t<std::remove_cvref_t<Body>&>, boost::asio::awaitable<void>>
bool run_until_done(boost::asio::io_context& io, Body&& body,
                    std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  struct outcome {
    bool done = false;
    std::exception_ptr failure;
  };
  auto result = std::make_shared<outcome>();
  boost::asio::co_spawn(io, std::forward<Body>(body), [result, &io](std::exception_ptr e) {
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
