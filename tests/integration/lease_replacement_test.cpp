// A lease revoked by hand while the lock is held: the manager says REMOVED, gets a new lease and the lock again, and
// the keepalive loop of the old lease ends cleanly. Found by AddressSanitizer: the new lease's keepalive loop was
// bound to the same cancellation slot while the old loop still waited on it (heap-use-after-free when it woke).

#include <clusterlock/clusterlock.hpp>

#include "support/bounded_wait.hpp"
#include "support/etcd_cluster.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace clusterlock {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using boost::system::error_code;

TEST(lease_replacement, a_lease_revoked_by_hand_is_replaced_and_the_lock_taken_again) {
  test::etcd_cluster cluster;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};

  options o;
  o.endpoints = cluster.client_urls();
  o.name = "lease-replacement/" + std::to_string(::getpid());
  o.identity = "replaced";
  o.ttl = 10s;  // long: the old keepalive loop is asleep on its timer when the lease goes
  o.probe_interval = 200ms;
  o.request_timeout = 500ms;
  std::vector<lock_event> events;
  lock_manager lock(io.get_executor(), o);
  lock.on_acquired([&](const lock_event& e) { events.push_back(e); });
  lock.on_lost([&](const lock_event& e) { events.push_back(e); });
  lock.start();
  ASSERT_TRUE(test::run_until(io, [&] { return lock.have_lock(); }, 10s));
  const std::int64_t first_token = lock.fencing_token();

  for (int round = 0; round < 3; ++round) {
    // The key is NAME/<lease hex>: revoke that lease (etcdctl takes it in hex).
    const std::string key = lock.key();
    const std::string lease_hex = key.substr(key.rfind('/') + 1);
    cluster.etcdctl({"lease", "revoke", lease_hex});
    const std::size_t before = events.size();
    ASSERT_TRUE(test::run_until(io, [&] { return events.size() >= before + 2 && lock.have_lock(); }, 10s))
        << "round " << round << ": no REMOVED and ACQUIRED after the lease was revoked";
    EXPECT_EQ(events[before].kind, lock_event::removed);
    EXPECT_EQ(events[before + 1].kind, lock_event::acquired);
    EXPECT_NE(lock.key(), key) << "a new lease, a new key";
    EXPECT_GT(lock.fencing_token(), first_token);
  }
  // The old loops wake (and must end) at their next keepalive time: wait past it, holding the lock meanwhile.
  const bool dropped = test::run_until(io, [&] { return !lock.have_lock(); }, 4s);
  EXPECT_FALSE(dropped);

  bool done = false;
  lock.async_shutdown([&](error_code) { done = true; });
  EXPECT_TRUE(test::run_until(io, [&] { return done; }, 5s));
}

}  // namespace
}  // namespace clusterlock
