#pragma once
// One etcd lease kept alive every TTL/3 (after etcd's client/v3/concurrency/session.go); every lock on it lives
// and dies with it. It also knows until when the lease is proven to live.

#include <clusterlock/error.hpp>
#include <clusterlock/etcd/client.hpp>

#include "session/session_metrics.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace clusterlock::detail {

class lease_keeper : public std::enable_shared_from_this<lease_keeper> {
 public:
  using clock = std::chrono::steady_clock;

  /// Told on the client's executor. Listeners must remove themselves before they go away.
  struct listener {
    virtual void on_lease_renewed() = 0;                             // valid_until() moved on
    virtual void on_lease_lost(std::int64_t lease) = 0;              // etcd says it is gone: so are its keys
    virtual void on_keepalive_failed(boost::system::error_code) = 0; // no answer; the lease may yet live
   protected:
    ~listener() = default;
  };

  lease_keeper(std::shared_ptr<etcd::client> client, std::chrono::seconds ttl, std::chrono::milliseconds clock_margin,
          std::chrono::milliseconds request_timeout, std::shared_ptr<session_metrics> metrics = nullptr);

  /// The lease, granted now if there is none (or the last one was lost). Starts the keepalive loop.
  boost::asio::awaitable<result<std::int64_t>> ensure_lease();

  std::int64_t lease() const noexcept { return lease_; }
  /// Until then the lease surely lives: the send time of the last answered keepalive (or grant) plus the TTL
  /// etcd granted, minus the clock margin. A keepalive sent at t that etcd answers with TTL T proves the
  /// lease lives until t + T, since etcd restarted the TTL after it got the request.
  clock::time_point valid_until() const noexcept { return valid_until_; }
  std::chrono::seconds granted_ttl() const noexcept { return granted_ttl_; }

  /// Someone else learned that the lease is gone (a put on it failed with lease_not_found): drop it so the next
  /// ensure_lease() grants a new one, and tell the listeners.
  void lease_gone(std::int64_t lease);

  void add_listener(listener* l);
  void remove_listener(listener* l);

  /// Stops the keepalives and forgets the lease, without I/O: from now on ensure_lease() answers
  /// errc::not_started at once. Returns the lease that was current (0: none), for revoke().
  std::int64_t stop();
  /// Revokes `lease` (bounded by the request timeout); the error says why it failed (the lease then lives until
  /// its TTL runs out). Cancellation: terminal, through the caller's slot.
  boost::asio::awaitable<boost::system::error_code> revoke(std::int64_t lease);
  /// stop(), then revoke() what was current.
  boost::asio::awaitable<boost::system::error_code> close();
  bool closed() const noexcept { return closed_; }

  /// The keepalive period for a granted TTL: a third of it, as etcd's own client does.
  static std::chrono::milliseconds keepalive_period(std::chrono::seconds granted_ttl);

 private:
  boost::asio::awaitable<void> keep_alive();

  std::shared_ptr<etcd::client> client_;
  std::chrono::seconds ttl_;
  std::chrono::milliseconds clock_margin_;
  std::chrono::milliseconds request_timeout_;
  std::shared_ptr<session_metrics> metrics_;  // told of grants, keepalives and losses (may be null)
  std::int64_t lease_ = 0;
  std::chrono::seconds granted_ttl_{0};
  clock::time_point valid_until_{};
  std::vector<listener*> listeners_;
  boost::asio::cancellation_signal stop_keepalive_;
  bool keeping_alive_ = false;  // the keepalive loop runs (it never ends before close())
  bool granting_ = false;
  std::vector<boost::asio::steady_timer*> grant_waiters_;
  bool closed_ = false;
};

}  // namespace clusterlock::detail
