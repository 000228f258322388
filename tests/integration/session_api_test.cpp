// The public session API against a real etcd: async_close, async_wait_lease_lost, the io_context constructor,
// what the locks on a session are told, and the probe reading in pages (issue 10).

#include <clusterlock/clusterlock.hpp>
#include <clusterlock/etcd/client.hpp>

#include "session/session_state.hpp"
#include "support/async_test.hpp"
#include "support/bounded_wait.hpp"
#include "support/etcd_cluster.hpp"
#include "support/test_lock_listener.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace clusterlock {
namespace detail {
struct session_access {
  static std::shared_ptr<session_state> state(session& s) { return s.state_; }
};
}  // namespace detail

namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

template <class T>
std::optional<T> run(asio::io_context& io, asio::awaitable<T> op, std::chrono::milliseconds limit = 10s) {
  std::optional<T> out;
  bool done = false;
  asio::co_spawn(io, std::move(op), [&](std::exception_ptr e, T r) {
    done = true;
    if (!e) out.emplace(std::move(r));
  });
  test::run_until(io, [&] { return done; }, limit);
  return out;
}

session_options options_for(const test::etcd_cluster& cluster, const std::string& what) {
  session_options so;
  so.endpoints = cluster.client_urls();
  so.watch_prefix = what + "-" + std::to_string(::getpid()) + "/";
  so.ttl = 5s;
  so.probe_interval = 100ms;
  so.request_timeout = 1000ms;
  return so;
}

// A session with one lock (a test listener) that holds a lease.
struct session_with_lock {
  session s;
  std::shared_ptr<detail::session_state> state;
  test::test_lock_listener lock;
  std::int64_t lease = 0;

  session_with_lock(asio::io_context& io, session_options so) : s(io, std::move(so)) {
    state = detail::session_access::state(s);
    state->join(&lock, s.options().watch_prefix + "a/");
    auto r = run(io, state->lease->ensure_lease());
    if (r && *r) lease = **r;
  }
  ~session_with_lock() { state->hub->remove(&lock); }
};

// The lease's TTL as etcd sees it: -1 when it is gone.
std::int64_t ttl_in_etcd(asio::io_context& io, detail::session_state& state, std::int64_t lease) {
  etcd::client_config cc = detail::client_config_of(state.opts);
  etcd::client c(io.get_executor(), cc);
  auto r = run(io, c.lease_time_to_live(lease));
  if (!r || !*r) return -2;
  return (*r)->ttl.count();
}

TEST(SessionApi, CloseRevokesTheLeaseAndTellsEveryLockItsLeaseIsGoneThenTheClose) {
  test::etcd_cluster cluster;
  asio::io_context io;
  session_with_lock sl(io, options_for(cluster, "close"));
  ASSERT_NE(sl.lease, 0);
  std::vector<std::string> told;
  sl.lock.on_closed_hook = [&] { told.push_back("closed after " + std::to_string(sl.lock.lost) + " lost"); };

  std::optional<error_code> closed;
  sl.s.async_close([&](error_code ec) { closed = ec; });
  ASSERT_TRUE(test::run_until(io, [&] { return closed.has_value() && sl.lock.closed == 1; }, 5s));
  EXPECT_FALSE(*closed) << closed->message();
  ASSERT_EQ(sl.lock.lost_leases, std::vector<std::int64_t>{sl.lease});
  EXPECT_EQ(told, std::vector<std::string>{"closed after 1 lost"});
  EXPECT_EQ(ttl_in_etcd(io, *sl.state, sl.lease), -1) << "the lease was not revoked";

  // Closed for good: no lease for later locks, at once; a lock that joins now is told.
  const auto before = steady::now();
  auto again = run(io, sl.state->lease->ensure_lease());
  ASSERT_TRUE(again && !*again);
  EXPECT_EQ(again->error(), make_error_code(errc::not_started));
  EXPECT_LT(steady::now() - before, 100ms);
  test::test_lock_listener late;
  sl.state->join(&late, sl.s.options().watch_prefix + "late/");
  EXPECT_TRUE(test::run_until(io, [&] { return late.closed == 1; }, 1s)) << "a lock joining a closed session was not told";
  EXPECT_EQ(late.lost, 0);
  sl.state->hub->remove(&late);

  // Idempotent: a close after the close completes at once, successfully.
  std::optional<error_code> second;
  sl.s.async_close([&](error_code ec) { second = ec; });
  ASSERT_TRUE(test::run_until(io, [&] { return second.has_value(); }, 1s));
  EXPECT_FALSE(*second);
  EXPECT_EQ(sl.lock.closed, 1);
}

TEST(SessionApi, ASecondCloseCompletesOnlyAfterTheFirstWithItsResult) {
  test::etcd_cluster cluster;
  asio::io_context io;
  session_with_lock sl(io, options_for(cluster, "close-twice"));
  ASSERT_NE(sl.lease, 0);
  cluster.stop(0);  // the revoke waits for its request_timeout
  std::vector<std::pair<int, error_code>> order;
  sl.s.async_close([&](error_code ec) { order.emplace_back(1, ec); });
  sl.s.async_close([&](error_code ec) { order.emplace_back(2, ec); });
  test::run_until(io, [&] { return !order.empty(); }, 300ms);
  EXPECT_TRUE(order.empty()) << "a close completed while the first one still revoked";
  ASSERT_TRUE(test::run_until(io, [&] { return order.size() == 2; }, 5s));
  cluster.cont(0);
  EXPECT_EQ(order[0].first, 1);
  EXPECT_EQ(order[0].second, make_error_code(errc::timeout));
  EXPECT_EQ(order[1].second, make_error_code(errc::timeout));
}

TEST(SessionApi, ACancelledCloseStopsWaitingAndLeavesTheLeaseToItsTtl) {
  test::etcd_cluster cluster;
  asio::io_context io;
  auto so = options_for(cluster, "close-cancelled");
  so.request_timeout = 3s;
  session_with_lock sl(io, so);
  ASSERT_NE(sl.lease, 0);
  cluster.stop(0);
  asio::cancellation_signal cancel;
  std::optional<error_code> closed;
  sl.s.async_close(asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec) { closed = ec; }));
  // A second caller waits for the first; it is not cancelled, and completes with the first one's result.
  std::optional<error_code> waiter;
  sl.s.async_close([&](error_code ec) { waiter = ec; });
  test::run_for(io, 100ms);
  const auto cancelled_at = steady::now();
  cancel.emit(asio::cancellation_type::terminal);
  ASSERT_TRUE(test::run_until(io, [&] { return closed.has_value() && waiter.has_value(); }, 2s));
  EXPECT_LT(steady::now() - cancelled_at, 500ms);
  EXPECT_EQ(*closed, asio::error::operation_aborted);
  EXPECT_EQ(*waiter, asio::error::operation_aborted);
  EXPECT_TRUE(sl.state->closed());
  EXPECT_TRUE(sl.state->lease->closed());
  EXPECT_TRUE(test::run_until(io, [&] { return sl.lock.closed == 1; }, 1s));
  cluster.cont(0);
  // What is left: the lease, which nothing renews any more, so etcd ends it within its TTL (5 s). The revoke's bytes
  // may have been in the frozen member's socket buffer already: etcd may then apply it when it runs again, which is
  // fine too. Either way the lease must be gone within the TTL.
  const auto ttl = ttl_in_etcd(io, *sl.state, sl.lease);
  EXPECT_LE(ttl, 5);
  EXPECT_TRUE(test::eventually([&] { return ttl_in_etcd(io, *sl.state, sl.lease) == -1; }, 7s, 250ms))
      << "the lease outlived its TTL: something still renews it";
}

TEST(SessionApi, ALostLeaseIsReportedToTheWaitAndAgainToTheNextWaitWhenNobodyWaited) {
  test::etcd_cluster cluster;
  asio::io_context io;
  session_with_lock sl(io, options_for(cluster, "lease-lost"));
  ASSERT_NE(sl.lease, 0);

  // A wait pending when the lease goes.
  std::optional<std::pair<error_code, std::int64_t>> lost;
  sl.s.async_wait_lease_lost([&](error_code ec, std::int64_t id) { lost.emplace(ec, id); });
  test::run_for(io, 50ms);
  ASSERT_FALSE(lost);
  char hex[24];
  std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(sl.lease));
  cluster.etcdctl({"lease", "revoke", hex});
  ASSERT_TRUE(test::run_until(io, [&] { return lost.has_value(); }, 5s));  // a keepalive every TTL/3
  EXPECT_FALSE(lost->first);
  EXPECT_EQ(lost->second, sl.lease);

  // A new lease; lost while nobody waits: the next wait reports it at once.
  auto second = run(io, sl.state->lease->ensure_lease());
  ASSERT_TRUE(second && *second);
  ASSERT_NE(**second, sl.lease);
  std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(**second));
  cluster.etcdctl({"lease", "revoke", hex});
  ASSERT_TRUE(test::run_until(io, [&] { return sl.lock.lost == 2; }, 5s));
  auto next = run(io, sl.s.async_wait_lease_lost(asio::use_awaitable), 1s);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, **second);

  // Partial cancellation ends a wait with operation_aborted.
  asio::cancellation_signal cancel;
  std::optional<error_code> aborted;
  sl.s.async_wait_lease_lost(asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec, std::int64_t) { aborted = ec; }));
  test::run_for(io, 20ms);
  cancel.emit(asio::cancellation_type::partial);
  ASSERT_TRUE(test::run_until(io, [&] { return aborted.has_value(); }, 1s));
  EXPECT_EQ(*aborted, asio::error::operation_aborted);

  // Closed: not_started, for a pending wait and for a later one.
  std::optional<error_code> at_close;
  sl.s.async_wait_lease_lost([&](error_code ec, std::int64_t) { at_close = ec; });
  test::run_for(io, 20ms);
  std::optional<error_code> closed;
  sl.s.async_close([&](error_code ec) { closed = ec; });
  ASSERT_TRUE(test::run_until(io, [&] { return closed && at_close; }, 5s));
  EXPECT_EQ(*at_close, make_error_code(errc::not_started));
  std::optional<error_code> after;
  sl.s.async_wait_lease_lost([&](error_code ec, std::int64_t) { after = ec; });
  ASSERT_TRUE(test::run_until(io, [&] { return after.has_value(); }, 1s));
  EXPECT_EQ(*after, make_error_code(errc::not_started));
}

// ---- diagnostics (issue 10, "Errors a user can see")

struct diagnostics_recorder {
  std::vector<diagnostic> seen;
  diagnostics_handler handler() {
    return [this](const diagnostic& d) { seen.push_back(d); };
  }
  bool any(const error_code& ec, const std::string& words = {}) const {
    for (const auto& d : seen)
      if (d.error == ec && d.message.find(words) != std::string::npos && !d.message.empty()) return true;
    return false;
  }
  std::string all() const {
    std::string out;
    for (const auto& d : seen) out += "\n  [" + std::to_string(static_cast<int>(d.severity)) + "] " + d.message;
    return out;
  }
};

TEST(SessionDiagnostics, AKilledEtcdIsReported) {
  test::etcd_cluster cluster;
  asio::io_context io;
  diagnostics_recorder rec;
  auto so = options_for(cluster, "diag-killed");
  so.ttl = 2s;  // a keepalive every 666 ms
  so.diagnostics = rec.handler();
  session_with_lock sl(io, so);
  ASSERT_NE(sl.lease, 0);
  cluster.kill(0);
  const bool all = test::run_until(io, [&] {
    return rec.any(make_error_code(errc::unavailable), "etcd request") && rec.any(make_error_code(errc::unavailable), "probe") &&
           rec.any(make_error_code(errc::unavailable), "keepalive") && rec.any(make_error_code(errc::unavailable), "watch");
  }, 10s);
  EXPECT_TRUE(all) << "seen:" << rec.all();
  for (const auto& d : rec.seen) EXPECT_EQ(d.severity, diagnostic::severity_type::warning) << d.message;
}

TEST(SessionDiagnostics, ALostLeaseIsReported) {
  test::etcd_cluster cluster;
  asio::io_context io;
  diagnostics_recorder rec;
  auto so = options_for(cluster, "diag-lease");
  so.diagnostics = rec.handler();
  session_with_lock sl(io, so);
  ASSERT_NE(sl.lease, 0);
  cluster.etcdctl({"lease", "revoke", detail::lease_hex(sl.lease)});
  EXPECT_TRUE(test::run_until(io, [&] { return rec.any(make_error_code(errc::lease_not_found), detail::lease_hex(sl.lease)); }, 5s))
      << "seen:" << rec.all();
}

TEST(SessionDiagnostics, AReauthenticationIsReported) {
  test::etcd_cluster cluster(test::etcd_options{.auth = true, .extra_args = {"--auth-token-ttl=1"}});
  asio::io_context io;
  diagnostics_recorder rec;
  auto so = options_for(cluster, "diag-auth");
  // A probe every 3 s: the token, unused meanwhile, expires between two (etcd restarts a token's TTL at each use).
  // Keepalives do not count: etcd does not check the token of a lease keepalive.
  so.probe_interval = 3000ms;
  so.auth.user = "root";
  so.auth.password = cluster.root_password();
  so.diagnostics = rec.handler();
  session_with_lock sl(io, so);
  ASSERT_NE(sl.lease, 0);
  const bool seen = test::run_until(io, [&] { return rec.any(make_error_code(errc::unauthenticated), "authenticating"); }, 15s);
  EXPECT_TRUE(seen) << "seen:" << rec.all();
  for (const auto& d : rec.seen)
    if (d.error == errc::unauthenticated) {
      EXPECT_EQ(d.severity, diagnostic::severity_type::info);
    }
  EXPECT_TRUE(test::run_until(io, [&] { return sl.lock.probes >= 1; }, 5s)) << "no probe succeeded after re-authenticating";
  EXPECT_EQ(sl.lock.probe_failures, 0);
}

TEST(SessionDiagnostics, ACompactedWatchRestartIsReported) {
  test::etcd_cluster cluster;
  asio::io_context io;
  diagnostics_recorder rec;
  auto so = options_for(cluster, "diag-compact");
  so.diagnostics = rec.handler();
  session_with_lock sl(io, so);
  auto ready = run(io, sl.state->hub->ready());
  ASSERT_TRUE(ready && *ready);
  // Revisions the watch never delivers (outside its prefix), then compacted away, then the stream breaks: it
  // resumes from a compacted revision.
  etcd::client c(io.get_executor(), detail::client_config_of(sl.state->opts));
  std::int64_t revision = 0;
  for (int i = 0; i < 3; ++i) {
    etcd::put_request put;
    put.key = "elsewhere-" + std::to_string(::getpid());
    put.value = "x";
    auto r = run(io, c.put(put));
    ASSERT_TRUE(r && *r);
    revision = (*r)->header.revision;
  }
  auto compacted = run(io, c.compact(revision));
  ASSERT_TRUE(compacted && *compacted);
  sl.state->hub->reopen();
  EXPECT_TRUE(test::run_until(io, [&] { return rec.any(make_error_code(errc::compacted), "starts again") && sl.lock.resets == 1; }, 5s))
      << "seen:" << rec.all();
}

TEST(SessionDiagnostics, TheLockManagersOptionsReachTheHook) {
  test::etcd_cluster cluster;
  asio::io_context io;
  diagnostics_recorder rec;
  options o;
  o.endpoints = cluster.client_urls();
  o.name = "diag-manager-" + std::to_string(::getpid());
  o.ttl = 2s;
  o.probe_interval = 100ms;
  o.diagnostics = rec.handler();
  lock_manager lock(io.get_executor(), o);
  lock.start();
  ASSERT_TRUE(test::run_until(io, [&] { return lock.have_lock(); }, 10s));
  cluster.kill(0);
  EXPECT_TRUE(test::run_until(io, [&] { return rec.any(make_error_code(errc::unavailable), "probe"); }, 10s)) << "seen:" << rec.all();
  bool done = false;
  lock.async_shutdown([&](error_code) { done = true; });
  test::run_until(io, [&] { return done; }, 5s);
}

// A client for a test's own setup writes: they must not fail on a loaded machine (a put is not retried once sent).
etcd::client_config setup_writer(const test::etcd_cluster& cluster) {
  etcd::client_config cc;
  cc.endpoints = cluster.client_urls();
  cc.request_timeout = 5s;
  return cc;
}

// Issue 10: the probe read every key under watch_prefix in one range; past max_response_size (many locks) it
// always failed (response_too_large) and held locks stayed UNKNOWN for good. It now reads in pages.
TEST(SessionProbe, ManyKeysBeyondTheResponseBoundAreReadInPages) {
  test::etcd_cluster cluster;
  asio::io_context io;
  auto so = options_for(cluster, "probe-pages");
  const std::string prefix = so.watch_prefix;
  etcd::client writer(io.get_executor(), setup_writer(cluster));
  for (int i = 0; i < 300; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "lock%03d/", i);
    etcd::put_request put;
    put.key = prefix + name + "k";
    put.value = std::string(20, 'v');
    auto r = run(io, writer.put(put));
    ASSERT_TRUE(r && *r);
  }
  const std::string last = prefix + "lock299/k";
  etcd::range_request get;
  get.key = last;
  // Read in a coroutine: GCC 12 warns falsely (maybe-uninitialized) on a range_response carried out of co_spawn.
  std::int64_t last_created = 0;
  auto read_last = [&]() -> asio::awaitable<void> {
    auto r = co_await writer.range(get);
    if (r && r->kvs.size() == 1) last_created = r->kvs[0].create_revision;
  };
  ASSERT_TRUE(test::run_until_done(io, read_last));
  ASSERT_NE(last_created, 0);

  so.max_response_size = 4096;  // 300 keys take about 40 KB in one reply
  auto state = std::make_shared<detail::session_state>(io.get_executor(), so, true);
  test::test_lock_listener lock;
  lock.key_of_interest = last;
  state->join(&lock, prefix + "lock299/");
  const bool probed = test::run_until(io, [&] { return lock.probes >= 3; }, 5s);
  EXPECT_TRUE(probed) << "no probe succeeded; " << lock.probe_failures << " failed, the last with "
                      << lock.last_probe_failure.message();
  EXPECT_EQ(lock.seen_create_revision, last_created);
  EXPECT_EQ(lock.probe_failures, 0);
  state->hub->remove(&lock);
  asio::co_spawn(io, state->close(), asio::detached);
  test::run_for(io, 200ms);
}

// Issue 12: each of n waiters, each on its own session, read every key under its prefix each second: n^2 keys a
// second for one queue (etcd spent 77 % of a core on 300 idle waiters). A lock that names the keys it needs (its
// own, a waiter's holder) gets a probe of just those, in one linearizable read.
TEST(SessionProbe, AFewLocksAreProbedForTheKeysTheyNameAlone) {
  test::etcd_cluster cluster;
  asio::io_context io;
  auto so = options_for(cluster, "probe-some");
  const std::string prefix = so.watch_prefix;
  etcd::client writer(io.get_executor(), setup_writer(cluster));
  std::int64_t mine = 0;
  for (int i = 0; i < 50; ++i) {  // a queue of 50; ours is the 25th
    etcd::put_request put;
    put.key = prefix + "q/" + std::to_string(1000 + i);
    auto r = run(io, writer.put(put));
    ASSERT_TRUE(r && *r);
    if (i == 24) mine = (*r)->header.revision;
  }
  auto state = std::make_shared<detail::session_state>(io.get_executor(), so, true);
  test::test_lock_listener lock;
  lock.key_of_interest = prefix + "q/1024";
  lock.targets = {prefix + "q/1024", prefix + "q/1000", prefix + "q/gone"};
  state->join(&lock, prefix + "q/");
  const bool probed = test::run_until(io, [&] { return lock.probes >= 2; }, 5s);
  EXPECT_TRUE(probed) << "no probe succeeded; " << lock.probe_failures << " failed, the last with "
                      << lock.last_probe_failure.message();
  EXPECT_EQ(lock.seen_create_revision, mine);
  EXPECT_EQ(lock.keys_read, 2u) << "the probe read more than the two keys named that stand";
  state->hub->remove(&lock);
  asio::co_spawn(io, state->close(), asio::detached);
  test::run_for(io, 200ms);
}

}  // namespace
}  // namespace clusterlock
