#include "session/lease_keeper.hpp"

#include "etcd/scope_exit.hpp"
#include "etcd/with_deadline.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace clusterlock::detail {

namespace asio = boost::asio;

lease_keeper::lease_keeper(std::shared_ptr<etcd::client> client, std::chrono::seconds ttl,
                           std::chrono::milliseconds clock_margin,
                           std::chrono::milliseconds request_timeout, std::shared_ptr<session_metrics> metrics)
    : client_(std::move(client)),
      ttl_(ttl),
      clock_margin_(clock_margin),
      request_timeout_(request_timeout),
      metrics_(std::move(metrics)) {}

std::chrono::milliseconds lease_keeper::keepalive_period(std::chrono::seconds granted_ttl) {
  // Divide milliseconds, not seconds: 2 s / 3 in seconds is 0 s, which made a 2 s lease renew every 100 ms.
  return std::max<std::chrono::milliseconds>(std::chrono::milliseconds(100),
                                             std::chrono::milliseconds(granted_ttl) / 3);
}

asio::awaitable<result<std::int64_t>> lease_keeper::ensure_lease() {
  auto self = shared_from_this();
  if (closed_) co_return make_error_code(errc::not_started);
  if (lease_ != 0) co_return lease_;
  if (granting_) {
    // One grant at a time: the locks that ask meanwhile share its lease (or its failure).
    asio::steady_timer done(client_->get_executor(), asio::steady_timer::time_point::max());
    grant_waiters_.push_back(&done);
    detail::scope_exit leave_line([&] { std::erase(grant_waiters_, &done); });  // also when the co_await throws
    co_await done.async_wait(asio::as_tuple(asio::use_awaitable));
    leave_line.run();
    if (lease_ != 0) co_return lease_;
    co_return make_error_code(closed_ ? errc::not_started : errc::unavailable);
  }
  granting_ = true;
  // On every exit: a grant cancelled during the client's backoff ends with an exception at its next co_await, and
  // the waiters (every other lock on the session) would wait forever, as would every later ensure_lease().
  detail::scope_exit grant_over([this] {
    granting_ = false;
    for (auto* w : grant_waiters_) w->cancel();
  });
  const auto sent = clock::now();
  auto r = co_await client_->lease_grant(ttl_);
  if (!r) co_return r.error();
  if (closed_) {  // closed while granting: do not leave the lease behind for its TTL
    grant_over.run();
    co_await revoke(r->id);
    co_return make_error_code(errc::not_started);
  }
  lease_ = r->id;
  granted_ttl_ = r->ttl;
  valid_until_ = sent + r->ttl - clock_margin_;
  if (metrics_) metrics_->lease_proven(lease_, sent, granted_ttl_, valid_until_, true);
  if (!keeping_alive_) {
    keeping_alive_ = true;  // one loop for the keeper's life: see keep_alive()
    asio::co_spawn(client_->get_executor(), keep_alive(),
                   asio::bind_cancellation_slot(stop_keepalive_.slot(), asio::detached));
  }
  co_return lease_;
}

asio::awaitable<void> lease_keeper::keep_alive() {
  // One loop for the keeper's whole life, renewing whichever lease is current. A loop per lease would bind
  // stop_keepalive_'s slot again while the previous loop may still be waiting (its lease lost from outside,
  // through lease_gone()): binding a slot anew destroys the cancellation state the waiting coroutine still
  // uses (a heap-use-after-free when its timer or request completes).
  auto self = shared_from_this();
  asio::steady_timer timer(client_->get_executor());
  auto next = clock::now() + keepalive_period(granted_ttl_);
  while (!closed_) {
    timer.expires_at(next);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec || closed_) co_return;
    const auto lease = lease_;
    if (lease == 0) {
      // Lost: ensure_lease() grants the next one, which this loop renews from its next round.
      next = clock::now() + keepalive_period(granted_ttl_);
      continue;
    }
    const auto sent = clock::now();
    auto r = co_await etcd::with_deadline(client_->lease_keepalive(lease), request_timeout_);
    if (closed_) co_return;
    const bool answered = r || r.error() == errc::lease_not_found;
    if (metrics_) metrics_->keepalive_done(clock::now() - sent, !answered);
    if (lease_ != lease) {
      next = clock::now();  // lost (and perhaps replaced) while we asked: look again at once
      continue;
    }
    if (r && r->ttl.count() > 0) {
      granted_ttl_ = r->ttl;
      valid_until_ = sent + r->ttl - clock_margin_;
      next = sent + keepalive_period(r->ttl);
      if (metrics_) metrics_->lease_proven(lease_, sent, granted_ttl_, valid_until_, false);
      for (auto* l : std::vector(listeners_)) l->on_lease_renewed();
    } else if (answered) {
      lease_gone(lease);  // TTL 0: expired or revoked
      next = clock::now() + keepalive_period(granted_ttl_);
    } else {
      // A failure (operation_aborted too: it is not close(), which ends the loop above).
      for (auto* l : std::vector(listeners_)) l->on_keepalive_failed(r.error());
      // Try again soon: each answered keepalive before valid_until saves the lease (and the lock). After a
      // timeout go again at once: it already took request_timeout, the client has moved on to the next
      // endpoint, and with a short TTL the lease may not outlive another half second (a frozen member).
      next = clock::now() + (r.error() == errc::timeout
                                 ? std::chrono::milliseconds::zero()
                                 : std::min<std::chrono::milliseconds>(keepalive_period(granted_ttl_),
                                                                       std::chrono::milliseconds(500)));
    }
  }
}

void lease_keeper::lease_gone(std::int64_t lease) {
  if (lease_ != lease) return;
  lease_ = 0;
  valid_until_ = {};
  if (metrics_) metrics_->lease_dropped(true);
  for (auto* l : std::vector(listeners_)) l->on_lease_lost(lease);
}

void lease_keeper::add_listener(listener* l) { listeners_.push_back(l); }
void lease_keeper::remove_listener(listener* l) { std::erase(listeners_, l); }

std::int64_t lease_keeper::stop() {
  if (closed_) return 0;
  closed_ = true;
  stop_keepalive_.emit(asio::cancellation_type::terminal);
  valid_until_ = {};
  if (metrics_) metrics_->lease_dropped(false);
  return std::exchange(lease_, 0);
}

asio::awaitable<boost::system::error_code> lease_keeper::revoke(std::int64_t lease) {
  if (lease == 0) co_return boost::system::error_code{};
  auto self = shared_from_this();
  const auto r = co_await etcd::with_deadline(client_->lease_revoke(lease), request_timeout_);
  if (!r && r.error() != errc::lease_not_found) co_return r.error();  // not found: gone already, as we wanted
  co_return boost::system::error_code{};
}

asio::awaitable<boost::system::error_code> lease_keeper::close() {
  const auto lease = stop();  // before any co_await: a cancelled close() still stops the keepalives
  co_return co_await revoke(lease);
}

}  // namespace clusterlock::detail
