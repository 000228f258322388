// The etcd client's connection pool under cancellation, against a loopback fake server (no etcd).

#include <clusterlock/error.hpp>
#include <clusterlock/etcd/client.hpp>

#include "support/bounded_wait.hpp"
#include "support/fake_http_server.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>

namespace clusterlock {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;
using test::fake_http_server;

constexpr const char* range_reply = R"({"header":{"cluster_id":"1","member_id":"1","revision":"5","raft_term":"2"}})";

// The first connection's request is never answered (until the client gives it up); every later one is.
fake_http_server::behaviour first_request_hangs(std::shared_ptr<int> connections) {
  return [connections](fake_http_server::connection& c) -> asio::awaitable<void> {
    if ((*connections)++ == 0) {
      co_await c.read_request();
      co_await c.hold();
      co_return;
    }
    while (co_await c.read_request()) {
      const test::canned_reply reply{200, {}, range_reply};
      if (!co_await c.write_reply(reply)) co_return;
    }
  };
}

struct call {
  asio::cancellation_signal cancel;
  std::optional<error_code> result;
  void start(etcd::client& c) {
    etcd::range_request req;
    req.key = "k";
    c.async_range(std::move(req),
                  asio::bind_cancellation_slot(cancel.slot(), [this](error_code ec, etcd::range_response) { result = ec; }));
  }
};

// Issue 10 (client.cpp): release() woke waiters.front(), which may already have been cancelled (its wait completed
// with operation_aborted, but it had not yet run to erase itself). That wake was lost: with max_connections = 1 the
// next waiter waited forever although the connection was free.
void cancelled_waiter_keeps_the_line_moving(bool holder_first) {
  asio::io_context io;
  auto connections = std::make_shared<int>(0);
  fake_http_server server(io.get_executor(), first_request_hangs(connections));
  etcd::client_config cfg;
  cfg.endpoints = {server.url()};
  cfg.max_connections = 1;
  cfg.request_timeout = 10s;  // the hanging request ends by cancellation, not by its timeout
  etcd::client c(io.get_executor(), cfg);

  call holder, cancelled_waiter, next_waiter;
  holder.start(c);
  ASSERT_TRUE(test::run_until(io, [&] { return server.requests() == 1; }, 2s));
  cancelled_waiter.start(c);
  next_waiter.start(c);
  io.poll();  // both wait for the one connection now
  ASSERT_FALSE(cancelled_waiter.result || next_waiter.result);

  // The holder gives the connection back while the cancelled waiter has not run yet.
  if (holder_first) {
    holder.cancel.emit(asio::cancellation_type::terminal);
    cancelled_waiter.cancel.emit(asio::cancellation_type::terminal);
  } else {
    cancelled_waiter.cancel.emit(asio::cancellation_type::terminal);
    holder.cancel.emit(asio::cancellation_type::terminal);
  }
  ASSERT_TRUE(test::run_until(io, [&] { return holder.result && cancelled_waiter.result; }, 2s));
  EXPECT_EQ(*holder.result, asio::error::operation_aborted);
  EXPECT_EQ(*cancelled_waiter.result, asio::error::operation_aborted);
  ASSERT_TRUE(test::run_until(io, [&] { return next_waiter.result.has_value(); }, 3s))
      << "the next waiter never got the free connection";
  EXPECT_FALSE(*next_waiter.result) << next_waiter.result->message();
}

TEST(ClientPool, AWakeForACancelledWaiterPassesToTheNextHolderFirst) { cancelled_waiter_keeps_the_line_moving(true); }
TEST(ClientPool, AWakeForACancelledWaiterPassesToTheNextWaiterFirst) { cancelled_waiter_keeps_the_line_moving(false); }

// Issue 12: a session's client opens up to 16 connections for a burst of requests (etcd commits concurrent writes
// together); those beyond max_idle_connections close once idle for idle_linger, so an idle session keeps few.
TEST(ClientPool, ConnectionsABurstOpenedCloseOnceIdleBeyondTheKeptOnes) {
  asio::io_context io;
  auto read = std::make_shared<int>(0);
  // Every request is answered once four have been read: the client must have opened four connections.
  fake_http_server server(io.get_executor(), [read](fake_http_server::connection& c) -> asio::awaitable<void> {
    while (co_await c.read_request()) {
      ++*read;
      for (int i = 0; *read < 4 && i < 400; ++i) co_await c.pause(5ms);
      const test::canned_reply reply{200, {}, range_reply};  // named: GCC 12 frees a braced temporary twice in co_await
      if (!co_await c.write_reply(reply)) co_return;
    }
  });
  etcd::client_config cfg;
  cfg.endpoints = {server.url()};
  cfg.max_connections = 4;
  cfg.max_idle_connections = 1;
  cfg.idle_linger = 0ms;
  etcd::client c(io.get_executor(), cfg);

  call burst[4];
  for (auto& b : burst) b.start(c);
  ASSERT_TRUE(test::run_until(io, [&] { return std::all_of(std::begin(burst), std::end(burst), [](auto& b) { return b.result.has_value(); }); }, 5s));
  for (auto& b : burst) EXPECT_FALSE(*b.result) << b.result->message();
  EXPECT_EQ(server.accepted(), 4u);
  EXPECT_TRUE(test::run_until(io, [&] { return server.closed() == 3; }, 3s))
      << server.closed() << " of the 3 connections beyond the one kept were closed";

  call later;  // the one kept serves the next request
  later.start(c);
  ASSERT_TRUE(test::run_until(io, [&] { return later.result.has_value(); }, 3s));
  EXPECT_FALSE(*later.result);
  EXPECT_EQ(server.accepted(), 4u);
}

// A coroutine that sends request after request (as a session's contend coroutines do in a burst) gets its reply and
// asks again before a woken waiter has run: it must not take the slot the waiter was woken for. It did (the waiter
// found it taken and went to the back of the line): in a burst of 10,000 locks the lease keepalive waited for over
// its request_timeout, again and again, until the lease expired and every lock was lost, while etcd answered others
// in under 120 ms. Now waiters are served first come, first served.
TEST(ClientPool, AWaiterIsServedBeforeARequestAskedAfterIt) {
  asio::io_context io;
  fake_http_server server(io.get_executor(), [](fake_http_server::connection& c) -> asio::awaitable<void> {
    while (co_await c.read_request()) {
      const test::canned_reply reply{200, {}, range_reply};
      if (!co_await c.write_reply(reply)) co_return;
    }
  });
  etcd::client_config cfg;
  cfg.endpoints = {server.url()};
  cfg.max_connections = 1;
  etcd::client c(io.get_executor(), cfg);

  constexpr int burst = 200;
  int done = 0;
  // Coroutine functions, not lambdas' frames: nothing they read dies before they end.
  auto requests = [](etcd::client& c, int& done) -> asio::awaitable<void> {
    for (int i = 0; i < burst; ++i) {
      etcd::range_request req;
      req.key = "k";
      (void)co_await c.range(std::move(req));
      ++done;
    }
  };
  // Asks once, while the burst's request is in flight; says how many of the burst's requests were answered then and
  // when its own answer came.
  auto one = [](etcd::client& c, int& done, std::optional<std::pair<int, int>>& seen) -> asio::awaitable<void> {
    const int asked = done;
    etcd::range_request req;
    req.key = "waiter";
    (void)co_await c.range(std::move(req));
    seen.emplace(asked, done);
  };
  std::optional<std::pair<int, int>> seen;
  asio::co_spawn(io, requests(c, done), asio::detached);
  ASSERT_TRUE(test::run_until(io, [&] { return done == 20; }, 5s));
  asio::co_spawn(io, one(c, done, seen), asio::detached);
  ASSERT_TRUE(test::run_until(io, [&] { return done == burst; }, 10s));
  ASSERT_TRUE(seen.has_value());
  EXPECT_LE(seen->second - seen->first, 2) << "asked after " << seen->first << " of the burst's " << burst
                                           << " requests, answered after " << seen->second;
}

}  // namespace
}  // namespace clusterlock
