// stats() and the Prometheus writer against a real etcd: what is counted when a lock is held, deleted by hand,
// unsure while etcd is frozen, released; the scrape of a live lock passes promtool.

#include <clusterlock/clusterlock.hpp>

#include "support/lock_fixture.hpp"
#include "support/promtool.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <sstream>
#include <thread>

namespace clusterlock {
namespace {

using namespace test;
using namespace std::chrono_literals;

using metrics_it = lock_manager_it;

TEST_F(metrics_it, a_held_lock_counts_its_acquisition_time_held_keepalives_and_place_in_line) {
  const auto name = lock_name();
  auto& holder = add_manager(make_options(name, "holder", 2s));  // keepalive every ~667 ms
  ASSERT_NE(hold_steadily(holder, 1500ms), 0);
  auto& waiter = add_manager(make_options(name, "waiter", 2s));
  waiter.start();
  // Each sees the other's key when its own watch delivers it.
  ASSERT_TRUE(run_until(
      [&] {
        return waiter.stats().queue_position == std::optional<std::size_t>(1) && holder.stats().queue_length == 2;
      },
      5s));

  const auto s = holder.stats();
  EXPECT_EQ(s.name, name);
  EXPECT_TRUE(s.have_lock);
  EXPECT_EQ(s.fencing_token, holder.fencing_token());
  EXPECT_EQ(s.acquisitions, 1u);
  EXPECT_EQ(s.removed_by_etcd + s.lease_lost + s.released + s.unknowns, 0u);
  EXPECT_GE(s.time_held, 1500ms);
  EXPECT_EQ(s.time_unknown, 0s);
  EXPECT_EQ(s.queue_position, std::optional<std::size_t>(0));
  EXPECT_EQ(s.queue_length, 2u);
  EXPECT_EQ(s.session.watch_prefix, name + "/");
  EXPECT_NE(s.session.lease, 0);
  EXPECT_EQ(s.session.granted_ttl, 2s);
  EXPECT_EQ(s.session.leases_granted, 1u);
  ASSERT_TRUE(s.session.since_renewal.has_value());
  EXPECT_LT(*s.session.since_renewal, 2s);
  EXPECT_GT(s.session.lease_valid_for, 0s);
  EXPECT_GE(s.session.keepalive_latency.count, 1u);
  EXPECT_EQ(s.session.keepalive_failures, 0u);
  EXPECT_GE(s.session.probe_latency.count, 1u);  // a holder is probed every second
  EXPECT_GE(s.session.requests.requests, 3u);     // grant, enqueue txn, keepalives, probes
  EXPECT_EQ(s.session.requests.failures, 0u);

  // Time held grows while we hold it, and so do the keepalives.
  run_for(1s);
  const auto later = holder.stats();
  EXPECT_GE(later.time_held, s.time_held + 1s);
  EXPECT_GT(later.session.keepalive_latency.count, s.session.keepalive_latency.count);

  // The scrapes of live locks are valid for Prometheus; the holder's and the waiter's apart, as two processes'
  // would be (one scrape refuses two locks of one name: their series would collide).
  std::ostringstream holder_scrape;
  write_prometheus(holder_scrape, later, {{"job", "metrics_it"}});
  std::ostringstream waiter_scrape;
  write_prometheus(waiter_scrape, waiter.stats(), {{"job", "metrics_it"}});
  for (const auto& scrape : {holder_scrape.str(), waiter_scrape.str()}) {
    const auto check = promtool_check(scrape);
    EXPECT_EQ(check.status, 0) << check.output << "\n" << scrape;
  }
  EXPECT_THAT(holder_scrape.str(),
              ::testing::HasSubstr("clusterlock_lock_held{lock=\"" + name + "\",job=\"metrics_it\"} 1\n"));
  EXPECT_THAT(waiter_scrape.str(),
              ::testing::HasSubstr("clusterlock_lock_queue_position{lock=\"" + name + "\",job=\"metrics_it\"} 1\n"));
}

TEST_F(metrics_it, a_key_deleted_by_hand_counts_as_a_loss_removed_by_etcd) {
  const auto name = lock_name();
  auto& m = add_manager(make_options(name, "victim"));
  m.start();
  ASSERT_TRUE(run_until([&] { return m.have_lock(); }, 5s));
  const auto token = m.fencing_token();
  cluster().etcdctl({"del", m.key()});
  ASSERT_TRUE(run_until([&] { return m.have_lock() && m.fencing_token() != token; }, 8s)) << events_of(m).dump();
  const auto s = m.stats();
  EXPECT_EQ(s.removed_by_etcd, 1u) << events_of(m).dump();
  EXPECT_EQ(s.lease_lost + s.released + s.unknowns, 0u);
  EXPECT_EQ(s.acquisitions, 2u);
  EXPECT_EQ(s.acquisitions, events_of(m).count(lock_event::acquired));
}

TEST_F(metrics_it, a_revoked_lease_counts_as_a_lease_lost_by_the_session_and_one_loss_of_the_lock) {
  const auto name = lock_name();
  auto& m = add_manager(make_options(name, "revoked"));
  m.start();
  ASSERT_TRUE(run_until([&] { return m.have_lock(); }, 5s));
  const auto token = m.fencing_token();
  const auto key = m.key();
  cluster().etcdctl({"lease", "revoke", key.substr(key.rfind('/') + 1)});
  ASSERT_TRUE(run_until([&] { return m.have_lock() && m.fencing_token() != token; }, 8s)) << events_of(m).dump();
  const auto s = m.stats();
  // Which comes first is a race: the watch's delete of our key (removed) or etcd's word on the lease (lease_lost).
  EXPECT_EQ(s.removed_by_etcd + s.lease_lost, 1u) << events_of(m).dump();
  EXPECT_EQ(s.session.leases_lost, 1u);
  EXPECT_EQ(s.session.leases_granted, 2u);
}

TEST_F(metrics_it, frozen_etcd_counts_an_unknown_its_time_probe_failures_and_timeouts) {
  auto& c = own_cluster();
  const auto name = lock_name();
  auto& m = add_manager(make_options(name, "patient", 10s));  // the probe, not the lease, decides
  ASSERT_NE(hold_steadily(m, 1500ms), 0);
  c.stop(0);
  ASSERT_TRUE(run_until([&] { return events_of(m).count(lock_event::unknown) > 0; }, 6s)) << events_of(m).dump();
  const auto during = m.stats();
  EXPECT_FALSE(during.have_lock);
  EXPECT_EQ(during.unknowns, 1u);
  run_for(500ms);
  EXPECT_GE(m.stats().time_unknown, 500ms) << "an UNKNOWN that lasts counts up to the snapshot";

  const auto t_cont = now_ns();
  c.cont(0);
  ASSERT_TRUE(run_until([&] { return events_of(m).count(lock_event::acquired, t_cont) > 0; }, 10s))
      << events_of(m).dump();
  const auto s = m.stats();
  EXPECT_TRUE(s.have_lock);
  EXPECT_EQ(s.unknowns, 1u);
  EXPECT_EQ(s.acquisitions, 2u);
  EXPECT_GE(s.time_unknown, 500ms);
  const auto unknown_at = s.time_unknown;
  run_for(300ms);
  EXPECT_EQ(m.stats().time_unknown, unknown_at) << "the UNKNOWN stretch ended with the ACQUIRED";
  EXPECT_GE(s.session.probe_failures, 1u);
  EXPECT_GE(s.session.requests.failures, 1u);
  // The probe's and the keepalive's deadline cancels their call: the client counts it as operation_aborted.
  EXPECT_GE(s.session.requests.failures_by_error.count("operation_aborted"), 1u)
      << ::testing::PrintToString(s.session.requests.failures_by_error);
  // A 1 s request timeout: the failed probe's latency lands in the 1 s bucket or above.
  EXPECT_GT(s.session.probe_latency.count, s.session.probe_latency.buckets[8]);
}

TEST_F(metrics_it, our_own_release_counts_as_released_and_ends_the_time_held) {
  const auto name = lock_name();
  auto& m = add_manager(make_options(name, "leaver"));
  m.start();
  ASSERT_TRUE(run_until([&] { return m.have_lock(); }, 5s));
  bool done = false;
  m.async_release([&](error_code) { done = true; });
  ASSERT_TRUE(run_until([&] { return done; }, 5s));
  const auto s = m.stats();
  EXPECT_EQ(s.released, 1u);
  EXPECT_EQ(s.removed_by_etcd + s.lease_lost + s.unknowns, 0u);
  EXPECT_FALSE(s.have_lock);
  EXPECT_FALSE(s.queue_position.has_value());
  run_for(200ms);
  EXPECT_EQ(m.stats().time_held, s.time_held);

  // After shutdown too: the counts stay as they were.
  shut_down(m);
  const auto after = m.stats();
  EXPECT_EQ(after.released, 1u);
  EXPECT_EQ(after.acquisitions, 1u);
  EXPECT_EQ(after.time_held, s.time_held);
  EXPECT_FALSE(after.queue_position.has_value());
}

// stats() from a thread of the user's own (a scrape thread) while the lock runs on the io_context's thread: it is
// documented for any thread (the tsan preset checks the reads).
TEST_F(metrics_it, stats_may_be_read_from_another_thread_while_the_lock_comes_and_goes) {
  const auto name = lock_name();
  auto& m = add_manager(make_options(name, "scraped"));
  std::atomic<bool> stop{false};
  std::atomic<long> scrapes{0}, held_seen{0};
  std::thread scraper([&] {
    while (!stop.load()) {
      const auto s = m.stats();
      std::ostringstream out;
      write_prometheus(out, s);
      if (s.have_lock) ++held_seen;
      ++scrapes;
    }
  });
  for (int round = 0; round < 3; ++round) {
    m.start();
    ASSERT_TRUE(run_until([&] { return m.have_lock(); }, 5s));
    run_for(100ms);
    bool released = false;
    m.async_release([&](error_code) { released = true; });
    ASSERT_TRUE(run_until([&] { return released; }, 5s));
  }
  stop = true;
  scraper.join();
  EXPECT_GT(scrapes.load(), 10);
  EXPECT_GT(held_seen.load(), 0);
  EXPECT_EQ(m.stats().acquisitions, 3u);
  EXPECT_EQ(m.stats().released, 3u);
}

TEST_F(metrics_it, locks_on_one_shared_session_report_its_one_lease) {
  auto& sess = make_session("mt-shared-" + std::to_string(::getpid()) + "/", 5s);
  const auto prefix = sess.options().watch_prefix;
  options a;
  a.name = prefix + "a";
  options b;
  b.name = prefix + "b";
  auto& ma = add_manager(sess, a);
  auto& mb = add_manager(sess, b);
  ma.start();
  mb.start();
  ASSERT_TRUE(run_until([&] { return ma.have_lock() && mb.have_lock(); }, 5s));
  const auto sa = ma.stats(), sb = mb.stats();
  EXPECT_EQ(sa.session.lease, sb.session.lease);
  EXPECT_EQ(sa.session.lease, sess.stats().lease);
  EXPECT_EQ(sess.stats().leases_granted, 1u);
  EXPECT_EQ(sess.stats().watch_prefix, prefix);
}

}  // namespace
}  // namespace clusterlock
