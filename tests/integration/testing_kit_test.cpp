// The testing kit's helpers (clusterlock::testing) as a user's test sees them, against real etcd: event waits on
// either thread model, their failures, the lock faults, a lock on lock_options() of a TLS + auth cluster, UNKNOWN
// through the fault relay, and a frozen member driving UNKNOWN. The relay itself: fault_relay_test.cpp. etcd_cluster itself is tested in etcd_harness_test.cpp.
#include <clusterlock/clusterlock.hpp>
#include <clusterlock/testing.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

namespace asio = boost::asio;
namespace kit = clusterlock::testing;
using clusterlock::lock_event;
using namespace std::chrono_literals;

// The io_context on a thread of its own, for the blocking waits; joined before the members it runs are destroyed.
struct io_thread {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread{[this] { io.run(); }};
  ~io_thread() {
    work.reset();
    io.stop();
    thread.join();
  }
};

TEST(TestingKit, LeaseOfKeyReadsTheHexSuffix) {
  EXPECT_EQ(kit::lease_of_key("locks/a/694d77aa9e38260f"), 0x694d77aa9e38260fLL);
  EXPECT_EQ(kit::lease_of_key("x/1"), 1);
  EXPECT_THROW(kit::lease_of_key("no-slash"), std::invalid_argument);
  EXPECT_THROW(kit::lease_of_key("a/"), std::invalid_argument);
  EXPECT_THROW(kit::lease_of_key("a/xyz"), std::invalid_argument);
  EXPECT_THROW(kit::lease_of_key("a/11112222333344445"), std::invalid_argument);  // 17 digits
}

TEST(TestingKit, BadOptionsFailAtOnceNamingTheProblem) {
  EXPECT_THROW(kit::etcd_cluster({.members = 0}), std::invalid_argument);
  EXPECT_THROW(kit::etcd_cluster({.client_cert_auth = true}), std::invalid_argument);  // without tls
  try {
    kit::etcd_cluster etcd({.etcd_binary = "/nonexistent/etcd"});
    ADD_FAILURE() << "started without an etcd";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/etcd"), std::string::npos) << e.what();
  }
  kit::etcd_cluster etcd({.etcdctl_binary = "/nonexistent/etcdctl"});
  try {
    etcd.etcdctl({"get", "x"});
    ADD_FAILURE() << "etcdctl ran without an etcdctl";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/etcdctl"), std::string::npos) << e.what();
  }
}

TEST(TestingKit, LockOptionsNameEveryMember) {
  kit::etcd_cluster etcd({.members = 3});
  const clusterlock::etcd::client_config config = etcd.client_config();
  ASSERT_EQ(config.endpoints.size(), 3u);
  EXPECT_EQ(config.endpoints, etcd.client_urls());
  EXPECT_TRUE(config.auth.user.empty());
  EXPECT_TRUE(config.tls.ca_file.empty());
  etcd.kill(0);  // the first endpoint refuses: the lock gets through to the others
  asio::io_context io;
  clusterlock::lock_manager lock(io, etcd.lock_options("kit-three"));
  kit::event_waiter events(lock);
  lock.start();
  const kit::event_result acquired = events.wait_for(io, lock_event::acquired, 15s);
  ASSERT_TRUE(acquired) << acquired.failure;
}

TEST(TestingKit, FaultsOnALockWithoutAKeyAreALogicError) {
  kit::etcd_cluster etcd;
  asio::io_context io;
  clusterlock::lock_manager lock(io, etcd.lock_options("kit-no-key"));
  EXPECT_THROW(kit::force_removed(etcd, lock), std::logic_error);
  EXPECT_THROW(kit::force_lease_loss(etcd, lock), std::logic_error);
}

TEST(TestingKit, AWaitThatTimesOutSaysWhatItWaitedForAndSaw) {
  kit::etcd_cluster etcd;
  asio::io_context io;
  clusterlock::lock_manager lock(io, etcd.lock_options("kit-timeout"));
  kit::event_waiter events(lock);
  lock.start();
  ASSERT_TRUE(events.wait_for(io, lock_event::acquired, 10s));

  const auto start = std::chrono::steady_clock::now();
  const kit::event_result none = events.wait_for(io, lock_event::removed, 300ms);
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(none);
  EXPECT_NE(none.failure.find("no REMOVED event within 300 ms; other events meanwhile: "), std::string::npos)
      << none.failure;
  EXPECT_GE(waited, 300ms);
  EXPECT_LT(waited, 3s);
  int acquired = 0;
  for (const lock_event& e : events.seen()) {
    EXPECT_NE(e.kind, lock_event::removed);
    acquired += e.kind == lock_event::acquired ? 1 : 0;
  }
  EXPECT_EQ(acquired, 1);
}

TEST(TestingKit, BlockingWaitsWithTheManagerOnAnotherThread) {
  kit::etcd_cluster etcd;
  io_thread runner;
  clusterlock::lock_manager lock(runner.io, etcd.lock_options("kit-threads"));
  kit::event_waiter events(lock);
  lock.start();
  const kit::event_result acquired = events.wait_for(lock_event::acquired, 10s);
  ASSERT_TRUE(acquired) << acquired.failure;
  EXPECT_TRUE(lock.have_lock());

  kit::force_removed(etcd, lock);
  const kit::event_result removed = events.wait_for(lock_event::removed, 10s);
  ASSERT_TRUE(removed) << removed.failure;
  EXPECT_EQ(removed.event.key, acquired.event.key);
  const kit::event_result again = events.wait_for(lock_event::acquired, 10s);  // a new key, same lease
  ASSERT_TRUE(again) << again.failure;
  EXPECT_GT(again.event.fencing_token, acquired.event.fencing_token);
  EXPECT_EQ(again.event.lease, acquired.event.lease);

  kit::force_lease_loss(etcd, lock);
  const kit::event_result lost = events.wait_for(lock_event::removed, 10s);
  ASSERT_TRUE(lost) << lost.failure;
  const kit::event_result third = events.wait_for(lock_event::acquired, 10s);  // on a new lease
  ASSERT_TRUE(third) << third.failure;
  EXPECT_NE(third.event.lease, acquired.event.lease);

  lock.shutdown();
  const kit::event_result ended = events.wait_for(lock_event::acquired, 10s);
  EXPECT_FALSE(ended);
  EXPECT_NE(ended.failure.find("events ended"), std::string::npos) << ended.failure;
}

TEST(TestingKit, AWaiterOutlivesItsManager) {
  kit::etcd_cluster etcd;
  asio::io_context io;
  auto lock = std::make_unique<clusterlock::lock_manager>(io, etcd.lock_options("kit-outlive"));
  kit::event_waiter events(*lock);
  lock->start();
  ASSERT_TRUE(events.wait_for(io, lock_event::acquired, 10s));
  lock.reset();  // it shuts down in the background: REMOVED, then the events end
  const auto start = std::chrono::steady_clock::now();
  const kit::event_result after = events.wait_for(io, lock_event::acquired, 10s);
  EXPECT_FALSE(after);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << "fails once the events end, not at the deadline";
  EXPECT_NE(after.failure.find("events ended"), std::string::npos) << after.failure;
}

TEST(TestingKit, LockOptionsReachATlsClusterWithAuth) {
  kit::etcd_cluster etcd({.tls = true, .client_cert_auth = true, .auth = true});
  const clusterlock::options options = etcd.lock_options("kit-tls-auth");
  EXPECT_EQ(options.auth.user, "root");
  EXPECT_FALSE(options.tls.cert_file.empty());
  asio::io_context io;
  clusterlock::lock_manager lock(io, options);
  kit::event_waiter events(lock);
  lock.start();
  const kit::event_result acquired = events.wait_for(io, lock_event::acquired, 15s);
  ASSERT_TRUE(acquired) << acquired.failure;
  kit::force_removed(etcd, lock);  // etcdctl with the same TLS files and auth
  const kit::event_result removed = events.wait_for(io, lock_event::removed, 10s);
  ASSERT_TRUE(removed) << removed.failure;
}

TEST(TestingKit, ForceUnknownThroughARelayToATlsCluster) {
  kit::etcd_cluster etcd({.tls = true});
  kit::fault_relay relay("127.0.0.1", etcd.client_port(0));
  const clusterlock::options options = kit::lock_options_through(relay, etcd, "kit-unknown");
  ASSERT_EQ(options.endpoints.size(), 1u);
  EXPECT_EQ(options.endpoints[0], "https://127.0.0.1:" + std::to_string(relay.port()));
  EXPECT_EQ(options.tls.ca_file, etcd.ca_file());
  asio::io_context io;
  clusterlock::lock_manager lock(io, options);
  kit::event_waiter events(lock);
  lock.start();
  const kit::event_result acquired = events.wait_for(io, lock_event::acquired, 10s);
  ASSERT_TRUE(acquired) << acquired.failure;

  kit::force_unknown(relay);
  const kit::event_result unknown = events.wait_for(io, lock_event::unknown, 10s);
  ASSERT_TRUE(unknown) << unknown.failure;
  EXPECT_FALSE(lock.have_lock());
  relay.pass();
  const kit::event_result back = events.wait_for(io, lock_event::acquired, 10s);
  ASSERT_TRUE(back) << back.failure;
  EXPECT_EQ(back.event.fencing_token, acquired.event.fencing_token);
}

TEST(TestingKit, AFrozenMemberMakesTheHolderUnknownAndThawingRestoresIt) {
  kit::etcd_cluster etcd;
  auto options = etcd.lock_options("kit-freeze");
  options.ttl = 5s;
  asio::io_context io;
  clusterlock::lock_manager lock(io, options);
  kit::event_waiter events(lock);
  lock.start();
  ASSERT_TRUE(events.wait_for(io, lock_event::acquired, 10s));

  etcd.freeze(0);
  EXPECT_TRUE(etcd.is_frozen(0));
  const kit::event_result unknown = events.wait_for(io, lock_event::unknown, 10s);
  ASSERT_TRUE(unknown) << unknown.failure;
  EXPECT_FALSE(lock.have_lock());
  etcd.thaw(0);
  const kit::event_result back = events.wait_for(io, lock_event::acquired, 10s);
  ASSERT_TRUE(back) << back.failure;
}

}  // namespace
