// Testing a leader-only service with clusterlock::testing (docs/testing.md, "A worked example").
//
// The service: a reporter that writes a report every 20 ms, but only while it holds the lock (a scheduler, a
// singleton consumer, a cron leader look the same). The tests start a real etcd, run the service against it, and
// check its reactions: it works once ACQUIRED, stops on REMOVED (its key deleted, its lease revoked) and on UNKNOWN
// (cut off from etcd by the kit's fault relay), and comes back when it gets the lock again; a standby takes over from a leader that goes away.
//
// Single-threaded: each test runs its io_context itself, through the kit's waits, which end by a deadline.
#include <clusterlock/clusterlock.hpp>
#include <clusterlock/testing.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace {

namespace asio = boost::asio;
namespace kit = clusterlock::testing;
using clusterlock::lock_event;
using namespace std::chrono_literals;

// ---- The service under test

class reporter {
 public:
  reporter(asio::io_context& io, clusterlock::options options) : lock_(io, std::move(options)), timer_(io) {
    lock_.on_acquired([this](const lock_event& e) { begin(e.fencing_token); });
    lock_.on_lost([this](const lock_event&) { end(); });
  }

  void start() { lock_.start(); }
  bool working() const { return working_; }
  int reports() const { return reports_; }
  std::int64_t token() const { return token_; }  // the fencing token the reports went out under
  clusterlock::lock_manager& lock() { return lock_; }

 private:
  void begin(std::int64_t token) {
    working_ = true;
    token_ = token;
    tick();
  }
  void end() {
    working_ = false;
    timer_.cancel();
  }
  void tick() {
    timer_.expires_after(20ms);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec || !working_) return;
      if (lock_.have_lock()) ++reports_;  // checked at the moment of the work: never while unsure
      tick();
    });
  }

  clusterlock::lock_manager lock_;
  asio::steady_timer timer_;
  bool working_ = false;
  int reports_ = 0;
  std::int64_t token_ = 0;
};

// ---- The tests

class ReporterTest : public ::testing::Test {
 protected:
  kit::etcd_cluster etcd;  // a fresh single-member etcd for each test, gone after it
  asio::io_context io;
  clusterlock::options options = etcd.lock_options("reporter");
};

TEST_F(ReporterTest, ReportsOnlyOnceItHoldsTheLock) {
  reporter service(io, options);
  kit::event_waiter events(service.lock());  // before start(): no event is missed
  EXPECT_FALSE(service.working());
  service.start();

  const kit::event_result acquired = events.wait_for(io, lock_event::acquired, 10s);
  ASSERT_TRUE(acquired) << acquired.failure;
  ASSERT_TRUE(kit::run_until(io, [&] { return service.reports() >= 3; }, 5s));
  EXPECT_EQ(service.token(), acquired.event.fencing_token);
}

TEST_F(ReporterTest, StopsWhenItsKeyIsDeletedAndComesBack) {
  reporter service(io, options);
  kit::event_waiter events(service.lock());
  service.start();
  const kit::event_result first = events.wait_for(io, lock_event::acquired, 10s);
  ASSERT_TRUE(first) << first.failure;

  kit::force_removed(etcd, service.lock());
  const kit::event_result removed = events.wait_for(io, lock_event::removed, 10s);
  ASSERT_TRUE(removed) << removed.failure;
  ASSERT_TRUE(kit::run_until(io, [&] { return !service.working(); }, 5s));

  const kit::event_result again = events.wait_for(io, lock_event::acquired, 10s);  // it kept contending
  ASSERT_TRUE(again) << again.failure;
  EXPECT_GT(again.event.fencing_token, first.event.fencing_token);
  ASSERT_TRUE(kit::run_until(io, [&] { return service.working() && service.token() == again.event.fencing_token; }, 5s));
}

TEST_F(ReporterTest, StopsWhenItsLeaseIsLostAndComesBack) {
  reporter service(io, options);
  kit::event_waiter events(service.lock());
  service.start();
  const kit::event_result first = events.wait_for(io, lock_event::acquired, 10s);
  ASSERT_TRUE(first) << first.failure;

  kit::force_lease_loss(etcd, service.lock());
  const kit::event_result removed = events.wait_for(io, lock_event::removed, 10s);
  ASSERT_TRUE(removed) << removed.failure;
  ASSERT_TRUE(kit::run_until(io, [&] { return !service.working(); }, 5s));

  const kit::event_result again = events.wait_for(io, lock_event::acquired, 10s);  // on a new lease
  ASSERT_TRUE(again) << again.failure;
  EXPECT_NE(kit::lease_of_key(again.event.key), kit::lease_of_key(first.event.key));
}

TEST_F(ReporterTest, StopsWhileUnsureAndResumesOnceSure) {
  kit::fault_relay relay("127.0.0.1", etcd.client_port(0));  // the service reaches etcd through it only
  reporter service(io, kit::lock_options_through(relay, etcd, "reporter"));
  kit::event_waiter events(service.lock());
  service.start();
  const kit::event_result acquired = events.wait_for(io, lock_event::acquired, 10s);
  ASSERT_TRUE(acquired) << acquired.failure;
  ASSERT_TRUE(kit::run_until(io, [&] { return service.working(); }, 5s));

  kit::force_unknown(relay);  // its connections hang: it can no longer prove that it holds the lock
  const kit::event_result unknown = events.wait_for(io, lock_event::unknown, 10s);
  ASSERT_TRUE(unknown) << unknown.failure;
  ASSERT_TRUE(kit::run_until(io, [&] { return !service.working(); }, 5s));
  const int reports = service.reports();

  relay.pass();  // healed well within the lease's TTL: the same lock, proven again
  const kit::event_result sure = events.wait_for(io, lock_event::acquired, 10s);
  ASSERT_TRUE(sure) << sure.failure;
  EXPECT_EQ(sure.event.fencing_token, acquired.event.fencing_token);
  ASSERT_TRUE(kit::run_until(io, [&] { return service.reports() > reports; }, 5s));
}

TEST_F(ReporterTest, AStandbyTakesOverWhenTheLeaderGoesAway) {
  reporter leader(io, options);
  kit::event_waiter leader_events(leader.lock());
  leader.start();
  ASSERT_TRUE(leader_events.wait_for(io, lock_event::acquired, 10s));

  auto standby_options = options;
  standby_options.identity = "standby";
  reporter standby(io, standby_options);
  kit::event_waiter standby_events(standby.lock());
  standby.start();
  const kit::event_result sees_leader = standby_events.wait_for(io, lock_event::holder_changed, 10s);
  ASSERT_TRUE(sees_leader) << sees_leader.failure;
  EXPECT_FALSE(standby.working());

  kit::force_removed(etcd, leader.lock());  // as if the leader's key were lost; it queues up again behind
  const kit::event_result took_over = standby_events.wait_for(io, lock_event::acquired, 10s);
  ASSERT_TRUE(took_over) << took_over.failure;
  ASSERT_TRUE(kit::run_until(io, [&] { return standby.working() && !leader.working(); }, 5s));
}

}  // namespace
