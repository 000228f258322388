#include <gtest/gtest.h>

#include "session/lease_keeper.hpp"
#include "support/bounded_wait.hpp"
#include "support/free_port.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <exception>
#include <memory>
#include <optional>
#include <string>

namespace clusterlock::detail {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST(LeaseKeeper, KeepalivePeriodIsAThirdOfTheTtlToTheMillisecond) {
  // A third in seconds would truncate: 2 s / 3 = 0 s (then the 100 ms floor: ten keepalives a second).
  EXPECT_EQ(lease_keeper::keepalive_period(2s), 666ms);
  EXPECT_EQ(lease_keeper::keepalive_period(5s), 1666ms);
  EXPECT_EQ(lease_keeper::keepalive_period(10s), 3333ms);
  EXPECT_EQ(lease_keeper::keepalive_period(60s), 20s);
}

TEST(LeaseKeeper, KeepalivePeriodHasAFloor) {
  EXPECT_EQ(lease_keeper::keepalive_period(0s), 100ms);
}

// A client whose only endpoint refuses connections and that retries for a long time, mostly asleep in its backoff.
std::shared_ptr<etcd::client> refusing_client(asio::io_context& io) {
  etcd::client_config cfg;
  cfg.endpoints = {"http://127.0.0.1:" + std::to_string(test::free_port())};
  cfg.retry.initial_backoff = 200ms;
  cfg.retry.max_backoff = 200ms;
  cfg.retry.max_attempts = 1000;
  return std::make_shared<etcd::client>(io.get_executor(), cfg);
}

struct outcome {
  bool done = false;
  bool threw = false;
  std::optional<result<std::int64_t>> value;
};

auto record(outcome& o) {
  return [&o](std::exception_ptr e, result<std::int64_t> r) {
    o.done = true;
    o.threw = e != nullptr;
    if (!e) o.value = r;
  };
}

// Issue 10: a grant cancelled (terminal) while the client backs off between retries ended with an exception at the
// next co_await, skipping `granting_ = false` and the wake of the other callers: they waited forever, and so did
// every later ensure_lease() on that keeper.
TEST(LeaseKeeper, AGrantCancelledDuringItsBackoffWakesTheOthersAndLetsTheNextGrantGo) {
  asio::io_context io;
  auto keeper = std::make_shared<lease_keeper>(refusing_client(io), 10s, 100ms, 1000ms);
  asio::cancellation_signal cancel_first;
  outcome first, second;
  asio::co_spawn(io, keeper->ensure_lease(), asio::bind_cancellation_slot(cancel_first.slot(), record(first)));
  asio::co_spawn(io, keeper->ensure_lease(), record(second));  // waits for the first one's grant
  // Let the first grant fail a few connects; it then spends nearly all its time in the backoff.
  test::run_for(io, 300ms);
  ASSERT_FALSE(first.done);
  ASSERT_FALSE(second.done);
  cancel_first.emit(asio::cancellation_type::terminal);
  ASSERT_TRUE(test::run_until(io, [&] { return first.done; }, 2s)) << "the cancelled grant did not end";
  EXPECT_TRUE(test::run_until(io, [&] { return second.done; }, 2s)) << "the waiting caller was never woken";
  if (second.value) {
    ASSERT_FALSE(*second.value);
    EXPECT_EQ(second.value->error(), make_error_code(errc::unavailable));
  }

  // A later call grants again (it does not wait for a grant that is over): it is the one in flight now, so a
  // terminal cancellation ends it promptly.
  outcome third;
  asio::cancellation_signal cancel_third;
  asio::co_spawn(io, keeper->ensure_lease(), asio::bind_cancellation_slot(cancel_third.slot(), record(third)));
  test::run_for(io, 100ms);
  cancel_third.emit(asio::cancellation_type::terminal);
  EXPECT_TRUE(test::run_until(io, [&] { return third.done; }, 2s));
  EXPECT_TRUE(third.threw || (third.value && !*third.value));
}

// Issue 10 (a manager started on a closed session): once closed, ensure_lease() answers not_started at once, without
// asking etcd.
TEST(LeaseKeeper, EnsureLeaseAfterCloseIsNotStartedAtOnce) {
  asio::io_context io;
  auto client = refusing_client(io);
  auto keeper = std::make_shared<lease_keeper>(client, 10s, 100ms, 1000ms);
  keeper->stop();
  outcome o;
  asio::co_spawn(io, keeper->ensure_lease(), record(o));
  ASSERT_TRUE(test::run_until(io, [&] { return o.done; }, 1s));
  ASSERT_TRUE(o.value.has_value());
  ASSERT_FALSE(*o.value);
  EXPECT_EQ(o.value->error(), make_error_code(errc::not_started));
  EXPECT_EQ(client->connects(), 0u);
}

}  // namespace
}  // namespace clusterlock::detail
