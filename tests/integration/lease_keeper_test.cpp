// The lease keeper against real etcd: a lease lost outside the keepalive loop, and the lease that replaces it.
//
// Found by the chaos test (docs/chaos.md): a lock whose lease was revoked learns it from its failed put
// (lease_not_found) before the keepalive loop does, and grants a new lease while the loop of the old one still
// sleeps. The keeper used to spawn a second loop bound to the same cancellation_signal, which frees the sleeping
// loop's cancellation state: a heap use-after-free when it woke (contenders crashed with SIGSEGV). The ASan build
// (cmake --preset asan) reports it on this test with the old code.

#include "support/async_test.hpp"
#include "support/etcd_cluster.hpp"

#include <clusterlock/etcd/client.hpp>

#include "session/lease_keeper.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

namespace {

namespace asio = boost::asio;
namespace etcd = clusterlock::etcd;
using clusterlock::detail::lease_keeper;
using clusterlock::test::etcd_cluster;
using namespace std::chrono_literals;

std::string hex(std::int64_t id) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(id));
  return buf;
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

TEST(LeaseKeeperEtcd, ALeaseLostOutsideTheLoopIsReplacedAndTheNewOneKeptAlive) {
  etcd_cluster cluster;
  asio::io_context io;
  const auto strand = asio::make_strand(io);
  etcd::client_config config;
  config.endpoints = cluster.client_urls();
  auto client = std::make_shared<etcd::client>(strand, config);
  auto keeper = std::make_shared<lease_keeper>(client, 2s, 100ms, 1000ms);
  // One thread runs `io`: the body and the keeper's strand never run at once.

  clusterlock::test::run_until_done(io, [&]() -> asio::awaitable<void> {
    const auto first = co_await keeper->ensure_lease();
    CO_ASSERT_TRUE(first.has_value());
    // Revoked behind its back and noticed outside the loop, as a lock's put that fails with lease_not_found does.
    cluster.etcdctl({"lease", "revoke", hex(*first)});
    keeper->lease_gone(*first);
    const auto second = co_await keeper->ensure_lease();
    CO_ASSERT_TRUE(second.has_value());
    EXPECT_NE(*second, *first);
    // Past the moment the first lease's loop would wake up (TTL/3), and past the second lease's TTL: it lives only
    // if it is renewed.
    co_await sleep_for(3000ms);
    EXPECT_EQ(keeper->lease(), *second);
    EXPECT_GT(keeper->valid_until(), lease_keeper::clock::now());
    const auto alive = co_await client->lease_time_to_live(*second, false);
    CO_ASSERT_TRUE(alive.has_value());
    EXPECT_GT(alive->ttl.count(), 0) << "the second lease was not kept alive";
    co_await keeper->close();
  }(), 20s);
}

}  // namespace
