// The counting behind stats() without etcd (lock_metrics, session_metrics, latency_histogram, driven with given
// times), and the Prometheus writer checked by Prometheus' own promtool.

#include <clusterlock/prometheus.hpp>
#include <clusterlock/stats.hpp>

#include "manager/lock_metrics.hpp"
#include "session/session_metrics.hpp"
#include "support/bounded_wait.hpp"
#include "support/free_port.hpp"
#include "support/promtool.hpp"

#include <clusterlock/etcd/client.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>
#include <stdexcept>

namespace clusterlock {
namespace {

using namespace std::chrono_literals;
using detail::lock_metrics;
using detail::session_metrics;
using cause = lock_metrics::cause;
using ::testing::HasSubstr;
using test::promtool_check;

const auto t0 = std::chrono::steady_clock::time_point{} + 1000s;

TEST(lock_metrics, counts_acquisitions_losses_by_cause_and_the_time_held_and_unknown) {
  lock_metrics m;
  m.on_event(lock_event::acquired, cause::removed, t0);
  m.on_event(lock_event::holder_changed, cause::removed, t0 + 1s);  // not ours: ignored
  m.on_event(lock_event::unknown, cause::removed, t0 + 2s);
  m.on_event(lock_event::acquired, cause::removed, t0 + 3s);  // back from UNKNOWN
  m.on_event(lock_event::removed, cause::removed, t0 + 5s);
  m.on_event(lock_event::acquired, cause::removed, t0 + 6s);
  m.on_event(lock_event::removed, cause::lease_lost, t0 + 7s);
  m.on_event(lock_event::acquired, cause::removed, t0 + 8s);
  m.on_event(lock_event::unknown, cause::removed, t0 + 9s);
  m.on_event(lock_event::removed, cause::released, t0 + 11s);  // an UNKNOWN that ends in REMOVED
  lock_stats s;
  m.fill(s, t0 + 20s);
  EXPECT_EQ(s.acquisitions, 4u);
  EXPECT_EQ(s.unknowns, 2u);
  EXPECT_EQ(s.removed_by_etcd, 1u);
  EXPECT_EQ(s.lease_lost, 1u);
  EXPECT_EQ(s.released, 1u);
  EXPECT_EQ(s.time_held, 2s + 2s + 1s + 1s);
  EXPECT_EQ(s.time_unknown, 1s + 2s);
}

TEST(lock_metrics, a_stretch_that_still_lasts_counts_up_to_the_snapshot) {
  lock_metrics m;
  lock_stats s;
  m.fill(s, t0);
  EXPECT_EQ(s.time_held, 0s);
  m.on_event(lock_event::acquired, cause::removed, t0);
  m.fill(s, t0 + 4s);
  EXPECT_EQ(s.time_held, 4s);
  m.fill(s, t0 + 6s);
  EXPECT_EQ(s.time_held, 6s);
  m.on_event(lock_event::unknown, cause::removed, t0 + 7s);
  m.fill(s, t0 + 10s);
  EXPECT_EQ(s.time_held, 7s);
  EXPECT_EQ(s.time_unknown, 3s);
}

TEST(latency_histogram, buckets_are_cumulative_with_sum_and_count) {
  latency_histogram h;
  h.observe(500us);
  h.observe(3ms);
  h.observe(700ms);
  h.observe(60s);  // beyond the last bound: only in +Inf (count)
  EXPECT_EQ(h.count, 4u);
  EXPECT_NEAR(h.sum, 0.0005 + 0.003 + 0.7 + 60, 1e-9);
  EXPECT_EQ(h.buckets[0], 1u);                            // <= 1 ms
  EXPECT_EQ(h.buckets[2], 2u);                            // <= 5 ms
  EXPECT_EQ(h.buckets[8], 2u);                            // <= 0.5 s
  EXPECT_EQ(h.buckets[9], 3u);                            // <= 1 s
  EXPECT_EQ(h.buckets[h.upper_bounds.size() - 1], 3u);    // <= 10 s
}

TEST(session_metrics, renewal_age_validity_keepalives_probes_and_losses) {
  session_metrics m;
  auto s = m.snapshot(t0);
  EXPECT_FALSE(s.since_renewal.has_value());
  EXPECT_EQ(s.lease_valid_for, 0s);
  m.lease_proven(42, t0, 10s, t0 + 9900ms, true);
  m.keepalive_done(20ms, false);
  m.lease_proven(42, t0 + 3s, 10s, t0 + 12900ms, false);
  m.keepalive_done(1s, true);
  m.probe_done(5ms, false);
  m.probe_done(1s, true);
  m.watch_restarted();
  s = m.snapshot(t0 + 5s);
  EXPECT_EQ(s.lease, 42);
  EXPECT_EQ(s.granted_ttl, 10s);
  ASSERT_TRUE(s.since_renewal.has_value());
  EXPECT_EQ(*s.since_renewal, 2s);
  EXPECT_EQ(s.lease_valid_for, 7900ms);
  EXPECT_EQ(s.leases_granted, 1u);
  EXPECT_EQ(s.keepalive_latency.count, 2u);
  EXPECT_EQ(s.keepalive_failures, 1u);
  EXPECT_EQ(s.probe_latency.count, 2u);
  EXPECT_EQ(s.probe_failures, 1u);
  EXPECT_EQ(s.watch_restarts, 1u);
  m.lease_dropped(true);
  s = m.snapshot(t0 + 6s);
  EXPECT_EQ(s.lease, 0);
  EXPECT_EQ(s.leases_lost, 1u);
  EXPECT_EQ(s.lease_valid_for, 0s);
  EXPECT_EQ(*s.since_renewal, 3s) << "the last proven renewal stays: its age tells how long renewal has been stuck";
  m.lease_dropped(false);  // the session stopped it: not a loss
  EXPECT_EQ(m.snapshot(t0 + 6s).leases_lost, 1u);
}

// A client whose only endpoint refuses connections: `attempts` tries, 200 ms apart.
etcd::range_request read_of_k() {
  etcd::range_request r;
  r.key = "k";
  return r;
}

std::shared_ptr<etcd::client> refusing(boost::asio::io_context& io, int attempts) {
  etcd::client_config cfg;
  cfg.endpoints = {"http://127.0.0.1:" + std::to_string(test::free_port())};
  cfg.retry.initial_backoff = 200ms;
  cfg.retry.max_backoff = 200ms;
  cfg.retry.max_attempts = attempts;
  return std::make_shared<etcd::client>(io.get_executor(), cfg);
}

TEST(request_stats, a_failed_call_counts_once_by_its_error_whatever_its_attempts) {
  boost::asio::io_context io;
  auto client = refusing(io, 3);
  bool done = false;
  boost::asio::co_spawn(io, client->range(read_of_k()),
                        [&](std::exception_ptr, result<etcd::range_response>) { done = true; });
  ASSERT_TRUE(test::run_until(io, [&] { return done; }, 5s));
  const auto s = client->request_stats();
  EXPECT_EQ(s.requests, 1u);
  EXPECT_EQ(s.failures, 1u);
  EXPECT_EQ(s.failures_by_error, (std::map<std::string, std::uint64_t>{{"unavailable", 1}}));
}

// A deadline (the session's with_deadline) cancels a call; cancelled in its backoff, it ends by an exception at
// its next co_await. It was not counted at all (request failures 0 while etcd was frozen).
TEST(request_stats, a_call_cancelled_in_its_backoff_counts_as_operation_aborted) {
  boost::asio::io_context io;
  auto client = refusing(io, 1000);
  boost::asio::cancellation_signal cancel;
  bool done = false;
  boost::asio::co_spawn(io, client->range(read_of_k()),
                        boost::asio::bind_cancellation_slot(
                            cancel.slot(), [&](std::exception_ptr, result<etcd::range_response>) { done = true; }));
  test::run_for(io, 300ms);
  ASSERT_FALSE(done);
  cancel.emit(boost::asio::cancellation_type::terminal);
  ASSERT_TRUE(test::run_until(io, [&] { return done; }, 2s));
  const auto s = client->request_stats();
  EXPECT_EQ(s.requests, 1u);
  EXPECT_EQ(s.failures, 1u);
  EXPECT_EQ(s.failures_by_error, (std::map<std::string, std::uint64_t>{{"operation_aborted", 1}}));
}

lock_stats sample_stats(std::string name) {
  lock_stats l;
  l.name = std::move(name);
  l.have_lock = true;
  l.fencing_token = 1234;
  l.acquisitions = 3;
  l.removed_by_etcd = 1;
  l.lease_lost = 1;
  l.unknowns = 2;
  l.time_held = 12500ms;
  l.time_unknown = 1500ms;
  l.queue_position = 0;
  l.queue_length = 3;
  l.session.watch_prefix = l.name + "/";
  l.session.lease = 0x1234;
  l.session.granted_ttl = 10s;
  l.session.since_renewal = 2100ms;
  l.session.lease_valid_for = 7800ms;
  l.session.leases_granted = 2;
  l.session.leases_lost = 1;
  l.session.keepalive_latency.observe(2ms);
  l.session.keepalive_latency.observe(1200ms);
  l.session.probe_latency.observe(3ms);
  l.session.requests.requests = 40;
  l.session.requests.failures = 3;
  l.session.requests.failures_by_error = {{"timeout", 2}, {"unavailable", 1}};
  return l;
}

TEST(prometheus, promtool_accepts_the_exposition_of_locks_and_sessions_with_odd_label_values) {
  const auto a = sample_stats("jobs/a \"quoted\" back\\slash\nnewline");
  const auto b = sample_stats("jobs/b");
  std::ostringstream out;
  write_prometheus(out, {a, b}, {a.session, b.session}, {{"service", "sched\"uler\\\n"}});
  const auto text = out.str();
  const auto check = promtool_check(text);
  EXPECT_EQ(check.status, 0) << check.output << "\n" << text;
  EXPECT_EQ(check.output, "") << text;
  EXPECT_THAT(text, HasSubstr("# TYPE clusterlock_lock_held gauge\n"));
  EXPECT_THAT(text, HasSubstr("clusterlock_lock_held{lock=\"jobs/b\",service=\"sched\\\"uler\\\\\\n\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("clusterlock_lock_held{lock=\"jobs/a \\\"quoted\\\" back\\\\slash\\nnewline\""));
  EXPECT_THAT(text, HasSubstr("clusterlock_lock_losses_total{lock=\"jobs/b\",cause=\"unknown\",service="));
  EXPECT_THAT(text, HasSubstr("clusterlock_lock_held_seconds_total{lock=\"jobs/b\",service=\"sched\\\"uler\\\\\\n\"} 12.5\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE clusterlock_session_keepalive_duration_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("clusterlock_session_keepalive_duration_seconds_bucket{session=\"jobs/b/\",le=\"0.0025\","));
  EXPECT_THAT(text, HasSubstr("clusterlock_session_keepalive_duration_seconds_bucket{session=\"jobs/b/\",le=\"+Inf\","));
  EXPECT_THAT(text, HasSubstr("clusterlock_session_keepalive_duration_seconds_count{session=\"jobs/b/\",service="));
  EXPECT_THAT(text, HasSubstr("clusterlock_session_request_failures_total{session=\"jobs/b/\",error=\"timeout\","));
}

TEST(prometheus, a_lock_alone_and_one_never_renewed_are_valid_too) {
  lock_stats l;
  l.name = "fresh";
  l.session.watch_prefix = "fresh/";
  std::ostringstream out;
  write_prometheus(out, l);
  const auto check = promtool_check(out.str());
  EXPECT_EQ(check.status, 0) << check.output << "\n" << out.str();
  EXPECT_THAT(out.str(), HasSubstr("clusterlock_lock_queue_position{lock=\"fresh\"} -1\n"));
  EXPECT_THAT(out.str(), ::testing::Not(HasSubstr("clusterlock_session_seconds_since_renewal{")));
}

TEST(prometheus, promtool_does_complain_about_a_bad_exposition) {
  // The check above means something: promtool fails on what Prometheus' conventions forbid.
  const auto check = promtool_check("# HELP clusterlock_things A counter without _total.\n"
                                    "# TYPE clusterlock_things counter\nclusterlock_things 1\n");
  EXPECT_NE(check.status, 0) << check.output;
  EXPECT_THAT(check.output, HasSubstr("_total"));
}

TEST(prometheus, label_names_must_be_valid_and_not_ours) {
  std::ostringstream out;
  const auto l = sample_stats("x");
  for (const char* bad : {"", "9lives", "with-dash", "__reserved", "lock", "le", "cause"})
    EXPECT_THROW(write_prometheus(out, l, {{bad, "v"}}), std::invalid_argument) << bad;
  EXPECT_THROW(write_prometheus(out, l, {{"twice", "a"}, {"twice", "b"}}), std::invalid_argument);
  EXPECT_NO_THROW(write_prometheus(out, l, {{"_ok9", "v"}}));
}

TEST(prometheus, two_locks_or_sessions_of_one_name_are_refused_not_written_as_colliding_series) {
  // Their series would carry the same labels: an exposition Prometheus refuses ("metric not unique", promtool 2.53).
  const auto a = sample_stats("same");
  const auto b = sample_stats("same");
  const auto c = sample_stats("other");
  std::ostringstream out;
  EXPECT_THROW(write_prometheus(out, {a, b}, {a.session}), std::invalid_argument);
  EXPECT_THROW(write_prometheus(out, {a, c}, {a.session, b.session}), std::invalid_argument);
  EXPECT_EQ(out.str(), "");  // nothing half written
  EXPECT_NO_THROW(write_prometheus(out, {a, c}, {a.session, c.session}));
}

}  // namespace
}  // namespace clusterlock
