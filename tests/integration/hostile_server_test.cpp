// lock_manager against a hostile server: a relay in front of real etcd (tests/support/hostile_relay) misbehaves
// after the lock is held -- answers garbage, stalls mid-stream, cuts replies and watch chunks in two, floods
// without newlines, accepts and never answers -- and a hostile endpoint listed before a real one.
//
// In each case the manager must say UNKNOWN (it held the lock and can no longer prove it) within
// probe_interval + request_timeout (plus slack for a loaded machine), have_lock() must be false from then on,
// memory must stay bounded (a flood is cut at the size bounds), nothing may crash (the suite runs under ASan and
// UBSan in CI), and once etcd answers again the manager must hold the same lock again with the same token -- or,
// after its lease expired, contend again and get a higher one. Every wait is bounded.

#include <clusterlock/clusterlock.hpp>

#include "support/bounded_wait.hpp"
#include "support/etcd_cluster.hpp"
#include "support/hostile_relay.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace clusterlock {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using boost::system::error_code;
using steady = std::chrono::steady_clock;
using mode = test::hostile_relay::mode;

constexpr auto probe_interval = 200ms;
constexpr auto request_timeout = 500ms;
// What a loaded 2-core machine (and a sanitized build) may add to the promised reaction time.
constexpr auto slack = 1500ms;

std::uint64_t rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;  // "VmRSS:   1234 kB"
  }
  return 0;
}

struct timed_event {
  lock_event event;
  steady::time_point at;
};

// Every event of one subscription, with the time it arrived.
class recorder : public std::enable_shared_from_this<recorder> {
 public:
  static std::shared_ptr<recorder> attach(event_subscription sub) {
    auto r = std::shared_ptr<recorder>(new recorder(std::move(sub)));
    r->next();
    return r;
  }
  std::vector<timed_event> events;
  std::vector<error_code> errors;

  std::vector<timed_event> of(lock_event::kind_type k, steady::time_point after = {}) const {
    std::vector<timed_event> out;
    for (const auto& e : events)
      if (e.event.kind == k && e.at > after) out.push_back(e);
    return out;
  }
  std::size_t count(lock_event::kind_type k, steady::time_point after = {}) const { return of(k, after).size(); }
  std::string dump() const {
    std::ostringstream out;
    const auto start = events.empty() ? steady::now() : events.front().at;
    for (const auto& e : events)
      out << "  +" << std::chrono::duration_cast<std::chrono::milliseconds>(e.at - start).count() << " ms: " << e.event
          << "\n";
    return out.str();
  }

 private:
  explicit recorder(event_subscription sub) : sub_(std::move(sub)) {}
  void next() {
    sub_.async_wait_event([w = weak_from_this()](error_code ec, lock_event e) {
      auto self = w.lock();
      if (!self || ec == errc::not_started) return;
      if (ec) {
        self->errors.push_back(ec);
      } else {
        self->events.push_back({std::move(e), steady::now()});
      }
      self->next();
    });
  }
  event_subscription sub_;
};

class hostile_server_it : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new test::etcd_cluster(test::etcd_options{}); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  void SetUp() override {
    relay_ = std::make_unique<test::hostile_relay>(io_.get_executor(), "127.0.0.1", cluster_->client_port(0));
  }

  void TearDown() override {
    if (manager_) {
      relay_->set_mode(mode::forward);  // so that the release reaches etcd
      bool done = false;
      manager_->async_shutdown([&](error_code) { done = true; });
      EXPECT_TRUE(run_until([&] { return done; }, 5s)) << "async_shutdown did not complete";
      manager_.reset();
      run_for(50ms);  // the recorder's last wait completes
    }
    relay_.reset();
  }

  // Unique per test and repetition: a key left behind (until its lease expires) must not disturb the next run.
  static std::string lock_name() {
    static int serial = 0;
    return std::string("hostile/") + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "/" +
           std::to_string(::getpid()) + "-" + std::to_string(++serial);
  }

  options make_options(std::vector<std::string> endpoints, std::chrono::seconds ttl = 10s) {
    options o;
    o.endpoints = std::move(endpoints);
    o.name = lock_name();
    o.identity = "hostile-test";
    o.ttl = ttl;
    o.request_timeout = request_timeout;
    o.probe_interval = probe_interval;
    o.retry.initial_backoff = 20ms;
    o.retry.max_backoff = 200ms;
    return o;
  }

  lock_manager& start(options o) {
    manager_ = std::make_unique<lock_manager>(io_.get_executor(), std::move(o));
    events_ = recorder::attach(manager_->subscribe());
    manager_->start();
    return *manager_;
  }

  // Runs the io_context until `pred` holds or `timeout` passes (see test::run_until); returns pred().
  template <class Pred>
  bool run_until(Pred&& pred, steady::duration timeout) {
    return test::run_until(io_, std::forward<Pred>(pred), timeout);
  }
  void run_for(steady::duration d) { test::run_for(io_, d); }

  // Waits for our first ACQUIRED; returns its token (0 on failure, with a test failure).
  std::int64_t acquire() {
    const bool acquired = run_until([&] { return events_->count(lock_event::acquired) > 0; }, 10s);
    EXPECT_TRUE(acquired) << "no ACQUIRED\n" << events_->dump();
    if (!acquired) return 0;
    EXPECT_TRUE(manager_->have_lock());
    return events_->of(lock_event::acquired).front().event.fencing_token;
  }

  // The relay turns to `m` while we hold the lock (`during` runs right after); the manager must say UNKNOWN in
  // time, with `why`, and claim nothing; back to forward, it must hold the same lock again with the same token.
  void misbehave_after_acquired(mode m, std::vector<errc> why, const std::function<void()>& during = {}) {
    SCOPED_TRACE(std::string("relay mode ") + test::to_string(m));
    auto& lock = start(make_options({relay_->url()}));
    const std::int64_t token = acquire();
    ASSERT_NE(token, 0);
    const std::uint64_t rss_before = rss_bytes();

    const auto turned = steady::now();
    relay_->set_mode(m);
    if (during) during();
    const bool unknown = run_until([&] { return events_->count(lock_event::unknown, turned) > 0; },
                                   probe_interval + request_timeout + slack + 2s);
    ASSERT_TRUE(unknown) << "no UNKNOWN after the relay turned " << test::to_string(m) << "\n" << events_->dump();
    const auto said = events_->of(lock_event::unknown, turned).front();
    const auto reaction = std::chrono::duration_cast<std::chrono::milliseconds>(said.at - turned);
    std::printf("[ MEASURE  ] UNKNOWN %lld ms after the relay turned %s\n", static_cast<long long>(reaction.count()),
                test::to_string(m));
    EXPECT_LE(reaction, probe_interval + request_timeout + slack);
    EXPECT_TRUE(std::any_of(why.begin(), why.end(), [&](errc e) { return said.event.error == e; }))
        << "an UNKNOWN says why: " << said.event.error.message();
    EXPECT_EQ(said.event.fencing_token, token);
    EXPECT_FALSE(lock.have_lock());
    EXPECT_EQ(lock.fencing_token(), 0);

    // It stays hostile a while: no claim meanwhile.
    bool claimed = false;
    run_until([&] { return (claimed = claimed || lock.have_lock()), false; }, 700ms);
    EXPECT_FALSE(claimed) << "have_lock() while etcd could not be reached";
    EXPECT_EQ(events_->count(lock_event::acquired, said.at), 0u) << events_->dump();

    const auto healed = steady::now();
    relay_->set_mode(mode::forward);
    const bool again = run_until([&] { return events_->count(lock_event::acquired, healed) > 0; }, 10s);
    ASSERT_TRUE(again) << "no ACQUIRED after the relay forwards again\n" << events_->dump();
    EXPECT_EQ(events_->of(lock_event::acquired, healed).front().event.fencing_token, token)
        << "the same lock, the same token\n" << events_->dump();
    EXPECT_TRUE(lock.have_lock());
    EXPECT_EQ(lock.fencing_token(), token);
    EXPECT_EQ(events_->count(lock_event::removed), 0u) << events_->dump();
    EXPECT_TRUE(events_->errors.empty());
    // Bounded: the floods write hundreds of megabytes; nothing of that may stay.
    const std::uint64_t rss_after = rss_bytes();
    std::printf("[ MEASURE  ] RSS %llu MiB before, %llu MiB after\n",
                static_cast<unsigned long long>(rss_before >> 20), static_cast<unsigned long long>(rss_after >> 20));
    EXPECT_LT(rss_after, rss_before + (256u << 20));
  }

  static test::etcd_cluster* cluster_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::unique_ptr<test::hostile_relay> relay_;
  std::unique_ptr<lock_manager> manager_;
  std::shared_ptr<recorder> events_;
};

test::etcd_cluster* hostile_server_it::cluster_ = nullptr;

TEST_F(hostile_server_it, garbage_that_is_not_http_gives_unknown_then_the_same_lock_again) {
  misbehave_after_acquired(mode::garbage, {errc::malformed_response});
}

TEST_F(hostile_server_it, replies_that_are_not_json_give_unknown_then_the_same_lock_again) {
  misbehave_after_acquired(mode::garbage_json, {errc::malformed_response});
}

TEST_F(hostile_server_it, a_stall_mid_stream_gives_unknown_then_the_same_lock_again) {
  misbehave_after_acquired(mode::stall, {errc::timeout});
}

TEST_F(hostile_server_it, a_server_that_accepts_and_never_answers_gives_unknown_then_the_same_lock_again) {
  misbehave_after_acquired(mode::silent, {errc::timeout});
}

TEST_F(hostile_server_it, replies_and_watch_chunks_cut_in_two_give_unknown_then_the_same_lock_again) {
  misbehave_after_acquired(mode::cut, {errc::malformed_response}, [&] {
    // A change under the lock's prefix: the watch stream gets a chunk, which the relay cuts in two. (The key is
    // newer than ours: it waits behind us and changes nothing for the lock.)
    cluster_->etcdctl({"put", manager_->key() + "-watch-trigger", "x"});
  });
  EXPECT_GE(relay_->watch_cuts(), 1u) << "the watch stream was never cut mid-chunk";
}

TEST_F(hostile_server_it, a_flood_without_newlines_is_cut_at_the_bounds_and_memory_stays_bounded) {
  // Whichever bound comes first: the reply's size, or (on a slow machine, e.g. under TSan) the request's deadline.
  misbehave_after_acquired(mode::flood, {errc::response_too_large, errc::timeout});
  EXPECT_GE(relay_->watch_floods(), 1u) << "no watch stream was flooded";
  // A watch line may take max_watch_message_size (4 MiB); a reply max_response_size (16 MiB for a session). What
  // lies beyond is the kernel's socket buffers, not ours.
  std::printf("[ MEASURE  ] flood: %llu MiB in all, at most %llu MiB on one watch, %llu MiB on one connection\n",
              static_cast<unsigned long long>(relay_->flood_bytes() >> 20),
              static_cast<unsigned long long>(relay_->largest_watch_flood() >> 20),
              static_cast<unsigned long long>(relay_->largest_flood() >> 20));
  EXPECT_LE(relay_->largest_watch_flood(), (4u + 12u) << 20);
  EXPECT_LE(relay_->largest_flood(), (16u + 12u) << 20);
}

TEST_F(hostile_server_it, after_an_outage_longer_than_the_lease_it_contends_again_with_a_higher_token) {
  auto& lock = start(make_options({relay_->url()}, 2s));
  const std::int64_t token = acquire();
  ASSERT_NE(token, 0);
  const auto turned = steady::now();
  relay_->set_mode(mode::silent);
  ASSERT_TRUE(run_until([&] { return events_->count(lock_event::unknown, turned) > 0; }, 5s)) << events_->dump();
  EXPECT_FALSE(lock.have_lock());
  run_for(4s);  // the lease (2 s) expires in etcd meanwhile
  EXPECT_FALSE(lock.have_lock());
  const auto healed = steady::now();
  relay_->set_mode(mode::forward);
  const bool removed = run_until([&] { return events_->count(lock_event::removed, turned) > 0; }, 10s);
  ASSERT_TRUE(removed) << "no REMOVED once etcd says the lease is gone\n" << events_->dump();
  const bool again = run_until([&] { return events_->count(lock_event::acquired, healed) > 0; }, 10s);
  ASSERT_TRUE(again) << events_->dump();
  EXPECT_GT(events_->of(lock_event::acquired, healed).back().event.fencing_token, token);
  EXPECT_TRUE(lock.have_lock());
}

// A hostile endpoint first, a real etcd second: the manager moves on to the real one and holds the lock there.
class hostile_first_endpoint : public hostile_server_it, public ::testing::WithParamInterface<mode> {};

TEST_P(hostile_first_endpoint, the_manager_moves_on_to_the_real_etcd_and_holds_the_lock) {
  relay_->set_mode(GetParam());
  auto& lock = start(make_options({relay_->url(), cluster_->client_url(0)}));
  const std::int64_t token = acquire();
  ASSERT_NE(token, 0);
  // Held steadily: every request goes to the endpoint that answered.
  bool dropped = false;
  run_until([&] { return (dropped = dropped || !lock.have_lock()), false; }, 1500ms);
  EXPECT_FALSE(dropped);
  EXPECT_EQ(events_->count(lock_event::unknown), 0u) << events_->dump();
  EXPECT_EQ(lock.fencing_token(), token);
}

// The relay (first endpoint) turns hostile while we hold the lock through it; a real etcd is listed second.
TEST_P(hostile_first_endpoint, turning_hostile_after_the_lock_is_held_ends_on_the_real_etcd_with_the_same_token) {
  auto& lock = start(make_options({relay_->url(), cluster_->client_url(0)}));
  const std::int64_t token = acquire();
  ASSERT_NE(token, 0);
  const auto turned = steady::now();
  relay_->set_mode(GetParam());
  run_for(1500ms);
  // An UNKNOWN is allowed (a stalled request takes its whole deadline), but the lock comes back, with its token,
  // and nothing is lost: the lease was kept alive through the second endpoint.
  const bool holding = run_until([&] { return lock.have_lock(); }, 5s);
  EXPECT_TRUE(holding) << events_->dump();
  EXPECT_EQ(lock.fencing_token(), token);
  EXPECT_EQ(events_->count(lock_event::removed), 0u) << events_->dump();
  if (events_->count(lock_event::unknown, turned) > 0) {
    EXPECT_GT(events_->count(lock_event::acquired, turned), 0u) << events_->dump();
    EXPECT_EQ(events_->of(lock_event::acquired, turned).back().event.fencing_token, token);
  }
}

INSTANTIATE_TEST_SUITE_P(modes, hostile_first_endpoint,
                         ::testing::Values(mode::garbage, mode::garbage_json, mode::stall, mode::silent, mode::cut,
                                           mode::flood),
                         [](const ::testing::TestParamInfo<mode>& info) { return test::to_string(info.param); });

}  // namespace
}  // namespace clusterlock
