// The leadership scope (lock_manager::async_lead): acquire, run the user's body while we hold the lock, cancel it
// the moment the lock is lost, release whatever happened.

#include "manager/manager_state.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

namespace clusterlock::detail {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

struct lead_control {
  asio::cancellation_signal signal;  // ends the scope: the user's cancellation, or the loss of the lock
  bool cancelled = false;            // by the user
};

// Whether `e` is what our own cancellation makes a body throw.
bool is_our_cancellation(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const boost::system::system_error& x) {
    return x.code() == asio::error::operation_aborted;
  } catch (...) {
    return false;
  }
}

asio::awaitable<error_code> lead(std::shared_ptr<manager_state> s, lead_body body, std::shared_ptr<lead_control> c) {
  co_await asio::this_coro::throw_if_cancelled(false);  // every outcome is an answer, not an exception
  auto token = asio::as_tuple(asio::use_awaitable);
  // Each awaitable in a variable of its own: GCC 12 miscompiles temporaries in a co_await expression.
  auto acquiring = asio::async_initiate<decltype(token), void(error_code)>([s](auto h) { s->acquire(std::move(h)); }, token);
  const auto [acquired] = co_await std::move(acquiring);
  if (acquired) co_return c->cancelled ? error_code(asio::error::operation_aborted) : acquired;
  std::exception_ptr failure;
  if (s->holds_now()) {
    std::erase_if(s->leaders, [](const auto& w) { return w.expired(); });
    s->leaders.push_back(std::shared_ptr<asio::cancellation_signal>(c, &c->signal));  // loss emits it
    auto leading = body(s->token.load());
    auto running = asio::co_spawn(s->strand, std::move(leading), token);
    const auto [e] = co_await std::move(running);
    if (e && !((c->cancelled || !s->held.load()) && is_our_cancellation(e))) failure = e;
  }
  const bool lost = !s->holds_now();
  // Our own release says REMOVED, which ends scopes: it must not cut short the wait for the delete.
  co_await asio::this_coro::reset_cancellation_state([](asio::cancellation_type) { return asio::cancellation_type::none; });
  auto releasing = asio::async_initiate<decltype(token), void(error_code)>([s](auto h) { s->release(std::move(h)); }, token);
  co_await std::move(releasing);
  if (failure) std::rethrow_exception(failure);
  if (c->cancelled) co_return error_code(asio::error::operation_aborted);
  co_return lost ? make_error_code(errc::lock_lost) : error_code{};
}

}  // namespace

void initiate_lead(const std::shared_ptr<manager_state>& s, lead_body body, lead_handler h) {
  asio::dispatch(s->strand, [s, body = std::move(body), h = std::move(h)]() mutable {
    auto c = std::make_shared<lead_control>();
    auto slot = asio::get_associated_cancellation_slot(h);
    if (slot.is_connected()) {
      slot.assign([w = std::weak_ptr(c), ex = s->strand](asio::cancellation_type type) {
        if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial)) == asio::cancellation_type::none)
          return;
        asio::post(ex, [w] {
          if (auto c = w.lock()) {
            c->cancelled = true;
            c->signal.emit(asio::cancellation_type::terminal);
          }
        });
      });
    }
    asio::co_spawn(s->strand, lead(s, std::move(body), c),
                   asio::bind_cancellation_slot(c->signal.slot(), [s, c, h = std::move(h)](std::exception_ptr e, error_code ec) mutable {
                     auto user_slot = asio::get_associated_cancellation_slot(h);
                     if (user_slot.is_connected()) user_slot.clear();
                     asio::post(s->strand, asio::append(std::move(h), e, ec));
                   }));
  });
}

}  // namespace clusterlock::detail
