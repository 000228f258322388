#pragma once
// Bounds a whole etcd call (retries included) by one deadline: what the lock needs to stay pessimistic in time.

#include <clusterlock/error.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>

namespace clusterlock::etcd {

/// Runs `op`; when `deadline` passes first, cancels it and fails with errc::timeout. The caller's own
/// cancellation reaches `op` too.
template <class T>
boost::asio::awaitable<result<T>> with_deadline(boost::asio::awaitable<result<T>> op,
                                                std::chrono::steady_clock::duration deadline) {
  namespace asio = boost::asio;
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex, deadline);
  auto [order, timer_ec, failure, r] =
      co_await asio::experimental::make_parallel_group(timer.async_wait(asio::deferred),
                                                       asio::co_spawn(ex, std::move(op), asio::deferred))
          .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
  if (order[0] == 0 && !timer_ec) co_return make_error_code(errc::timeout);
  if (failure) co_return make_error_code(errc::server_error);
  co_return std::move(r);
}

}  // namespace clusterlock::etcd
