#pragma once
// Turns one of our coroutines into an Asio async operation that takes any completion token.

#include <clusterlock/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>

#include <exception>
#include <type_traits>
#include <utility>

namespace clusterlock::detail {

template <class T>
struct async_run_traits {
  using signature = void(boost::system::error_code, T);
};
template <>
struct async_run_traits<void> {
  using signature = void(boost::system::error_code);
};

// Runs `op` and hands its result to `handler` on the handler's executor. Parameters by value: the
// coroutine frame owns them (a capturing lambda would dangle).
template <class T, class Handler>
boost::asio::awaitable<void> async_run_body(boost::asio::awaitable<result<T>> op, Handler handler,
                                            boost::asio::any_io_executor fallback) {
  result<T> r = make_error_code(errc::server_error);
  try {
    r = co_await std::move(op);
  } catch (const boost::system::system_error& e) {
    r = e.code();
  } catch (...) {
    r = boost::system::error_code(boost::asio::error::operation_aborted);
  }
  auto ex = boost::asio::get_associated_executor(handler, fallback);
  boost::asio::dispatch(ex, [h = std::move(handler), r = std::move(r)]() mutable {
    if constexpr (std::is_void_v<T>) {
      std::move(h)(r ? boost::system::error_code{} : r.error());
    } else if (r) {
      std::move(h)(boost::system::error_code{}, std::move(*r));
    } else {
      std::move(h)(r.error(), T{});
    }
  });
}

/// Starts `op` on `ex` and completes `token` with `(error_code, T)` (or `(error_code)` for void).
/// Cancellation: the token's cancellation slot is connected to the coroutine, so a cancelled
/// operation completes with `operation_aborted` (or whatever error the interrupted step reports).
template <class T, class Token>
auto async_run(boost::asio::any_io_executor ex, boost::asio::awaitable<result<T>> op, Token&& token) {
  return boost::asio::async_initiate<Token, typename async_run_traits<T>::signature>(
      [ex](auto handler, boost::asio::awaitable<result<T>> op) mutable {
        auto slot = boost::asio::get_associated_cancellation_slot(handler);
        boost::asio::co_spawn(ex, async_run_body<T>(std::move(op), std::move(handler), ex),
                              boost::asio::bind_cancellation_slot(slot, boost::asio::detached));
      },
      token, std::move(op));
}

}  // namespace clusterlock::detail
