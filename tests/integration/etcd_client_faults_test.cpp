// The etcd gateway client when etcd fails it: deadlines and cancellation on a frozen member, unreachable endpoints,
// bad configuration, fail-over across three members, progress notifications of an idle watch.

#include "integration/etcd_client_fixture.hpp"

namespace clusterlock::test::client_tests {
namespace {

// ---- deadlines and cancellation on a frozen member

TEST_F(EtcdClientTest, FrozenMemberFailsWithinTheConfiguredBound) {
  auto config = config_for({cluster_->client_url(0)});
  config.request_timeout = 300ms;
  config.retry.initial_backoff = 50ms;
  config.retry.max_backoff = 200ms;
  config.retry.max_attempts = 3;
  etcd::client c(io_.get_executor(), config);
  ASSERT_TRUE(run(io_, c.range({.key = key("k")})));  // a kept-alive connection exists, too

  // Attempt i waits at most request_timeout; before attempt i >= (number of endpoints) comes a backoff of at most
  // min(max_backoff, initial_backoff * 2^(i - endpoints)).
  milliseconds bound = config.request_timeout * config.retry.max_attempts;
  for (int i = 1; i < config.retry.max_attempts; ++i)
    bound += std::min(config.retry.max_backoff, config.retry.initial_backoff * (1 << (i - 1)));
  ASSERT_EQ(bound, 1050ms);

  cluster_->stop(0);
  resume_on_exit resume{*cluster_, 0};
  const auto start = steady_clock::now();
  auto r = run(io_, c.range({.key = key("k")}));
  const auto took = elapsed_since(start);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error(), ::testing::AnyOf(make_error_code(errc::timeout), make_error_code(errc::unavailable)))
      << describe(r);
  EXPECT_GE(took, config.request_timeout * config.retry.max_attempts - 50ms) << "every attempt waits its timeout";
  EXPECT_LE(took, bound + 400ms) << "bound " << bound.count() << " ms (+ 400 ms for a loaded machine)";
  RecordProperty("frozen_member_failure_ms", static_cast<int>(took.count()));
}

TEST_F(EtcdClientTest, CancellationStopsARequestPromptly) {
  auto config = config_for({cluster_->client_url(0)});
  config.request_timeout = 5s;
  etcd::client c(io_.get_executor(), config);
  cluster_->stop(0);
  resume_on_exit resume{*cluster_, 0};

  asio::cancellation_signal cancel;
  std::optional<error_code> got;
  const auto start = steady_clock::now();
  c.async_range(etcd::range_request{.key = key("k")},
                asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec, etcd::range_response) { got = ec; }));
  asio::steady_timer t(io_, 200ms);
  t.async_wait([&](error_code) { cancel.emit(asio::cancellation_type::terminal); });
  ASSERT_TRUE(run_until(io_, [&] { return got.has_value(); }, 15s));
  EXPECT_EQ(*got, asio::error::operation_aborted) << got->what();
  EXPECT_LT(elapsed_since(start), 1500ms) << "cancellation must not wait for the request timeout";
}

TEST_F(EtcdClientTest, DeadlineCutsRetriesShort) {
  // with_deadline (what the lock layers use) cancels the call: it must end at the deadline, not after all retries,
  // also when the cancellation lands in a backoff between attempts.
  const auto port = clusterlock::test::free_port();
  auto config = config_for({"http://127.0.0.1:" + std::to_string(port)});
  config.retry.initial_backoff = 1000ms;
  config.retry.max_backoff = 2000ms;
  config.retry.max_attempts = 6;
  etcd::client c(io_.get_executor(), config);
  const auto start = steady_clock::now();
  auto r = run(io_, etcd::with_deadline(c.range({.key = key("k")}), 300ms));
  const auto took = elapsed_since(start);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), make_error_code(errc::timeout)) << describe(r);
  EXPECT_LT(took, 1000ms) << "the call went on after its deadline";
}

TEST_F(EtcdClientTest, DeadlinesDuringBackoffLeaveTheClientUsable) {
  // Calls cut short by with_deadline while they back off between attempts must give their connection slot back:
  // more of them than max_connections, then the endpoint comes up, and the client must work.
  const auto port = clusterlock::test::free_port();
  auto config = config_for({"http://127.0.0.1:" + std::to_string(port)});
  config.max_connections = 2;
  config.retry.initial_backoff = 400ms;
  config.retry.max_backoff = 400ms;
  config.retry.max_attempts = 50;
  etcd::client c(io_.get_executor(), config);
  for (int i = 0; i < 6; ++i) {
    auto r = run(io_, etcd::with_deadline(c.range({.key = key("k")}), 150ms));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), make_error_code(errc::timeout)) << describe(r);
  }
  clusterlock::test::tcp_forwarder relay("127.0.0.1", "127.0.0.1", cluster_->client_port(0), port);
  auto r = run(io_, etcd::with_deadline(c.range({.key = key("k")}), 5s));
  EXPECT_TRUE(r) << "the client is wedged: " << describe(r);
}

TEST_F(EtcdClientTest, CloseFailsRequestsInFlightAndTheClientStaysUsable) {
  auto config = config_for({cluster_->client_url(0)});
  config.request_timeout = 3s;
  config.max_connections = 1;
  etcd::client c(io_.get_executor(), config);
  {
    cluster_->stop(0);
    resume_on_exit resume{*cluster_, 0};
    std::optional<error_code> got;
    const auto start = steady_clock::now();
    c.async_range(etcd::range_request{.key = key("k")}, [&](error_code ec, etcd::range_response) { got = ec; });
    asio::steady_timer t(io_, 200ms);
    t.async_wait([&](error_code) { c.close(); });
    ASSERT_TRUE(run_until(io_, [&] { return got.has_value(); }, 15s));
    EXPECT_EQ(*got, asio::error::operation_aborted) << got->what();
    EXPECT_LT(elapsed_since(start), 1500ms) << "close() must fail the request in flight, not wait for its timeout";
  }
  // The member runs again: new requests work (the connection accounting survived the close).
  for (int i = 0; i < 3; ++i) {
    auto r = run(io_, c.range({.key = key("k")}), 10s);
    EXPECT_TRUE(r) << describe(r);
  }
}

// ---- unreachable endpoints

TEST(EtcdClientUnreachable, NothingListeningFailsQuicklyWithUnavailable) {
  asio::io_context io;
  const auto ports = clusterlock::test::free_ports(2);
  etcd::client c(io.get_executor(), config_for({"http://127.0.0.1:" + std::to_string(ports[0]),
                                                "http://127.0.0.1:" + std::to_string(ports[1])}));
  const auto start = steady_clock::now();
  auto r = run(io, c.range({.key = "/k"}));
  const auto took = elapsed_since(start);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), make_error_code(errc::unavailable)) << describe(r);
  // 4 attempts (two passes), each refused at once; backoffs of at most 50 and 100 ms on the second pass.
  EXPECT_LT(took, c.config().request_timeout) << "a refused connect must not wait for a timeout";
  EXPECT_EQ(c.connects(), 0u);

  etcd::watch_stream w(c);
  auto opened = run(io, w.open({.key = "/k"}));
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error(), make_error_code(errc::unavailable)) << describe(opened);
}

TEST(EtcdClientConfig, BadConfigThrowsInvalidOptions) {
  asio::io_context io;
  auto expect_invalid = [&](etcd::client_config config, const std::string& names) {
    try {
      etcd::client c(io.get_executor(), std::move(config));
      ADD_FAILURE() << "accepted a config with a bad " << names;
    } catch (const boost::system::system_error& e) {
      EXPECT_EQ(e.code(), make_error_code(errc::invalid_options)) << e.what();
    }
  };
  expect_invalid(config_for({}), "endpoint list");
  expect_invalid(config_for({"ftp://127.0.0.1:2379"}), "endpoint scheme");
  auto no_timeout = config_for({"http://127.0.0.1:2379"});
  no_timeout.request_timeout = 0ms;
  expect_invalid(no_timeout, "timeout");
  auto half_auth = config_for({"http://127.0.0.1:2379"});
  half_auth.auth.user = "root";
  expect_invalid(half_auth, "auth");
  auto missing_ca = config_for({"https://127.0.0.1:2379"});
  missing_ca.tls.ca_file = "/nonexistent/ca.pem";
  expect_invalid(missing_ca, "CA file");
}

// ---------------------------------------------------------------------------------------------------------------
// Three members: fail-over. A cluster per test: members are killed and frozen.

class EtcdClientFailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<etcd_cluster>(etcd_options{.members = 3});
    prefix_ = unique_prefix();
    leader_ = cluster_->leader();
    ASSERT_GE(leader_, 0);
    follower_ = (leader_ + 1) % 3;
  }

  // The endpoint list with `first` in front, then the others in order.
  std::vector<std::string> endpoints_starting_with(int first) const {
    std::vector<std::string> urls{cluster_->client_url(first)};
    for (int i = 0; i < 3; ++i)
      if (i != first) urls.push_back(cluster_->client_url(i));
    return urls;
  }

  asio::io_context io_;
  std::unique_ptr<etcd_cluster> cluster_;
  std::string prefix_;
  int leader_ = -1;
  int follower_ = -1;
};

TEST_F(EtcdClientFailoverTest, KilledMemberInUseIsLeftForAnother) {
  // A follower in front: its death needs no election, so every request must succeed without a pause.
  etcd::client c(io_.get_executor(), config_for(endpoints_starting_with(follower_)));
  ASSERT_TRUE(run(io_, c.put({prefix_ + "k", "v0", 0, false})));
  ASSERT_EQ(c.current_endpoint(), cluster_->client_url(follower_));

  cluster_->kill(follower_);
  for (int i = 0; i < 20; ++i) {
    auto r = run(io_, c.range({.key = prefix_ + "k"}));
    ASSERT_TRUE(r) << "range " << i << ": " << describe(r);
    // An unsafe write too: the dead keep-alive connection is found before anything is sent, so it may move on.
    auto p = run(io_, c.put({prefix_ + "k", "v" + std::to_string(i + 1), 0, false}));
    ASSERT_TRUE(p) << "put " << i << ": " << describe(p);
  }
  EXPECT_NE(c.current_endpoint(), cluster_->client_url(follower_));
  auto r = run(io_, c.range({.key = prefix_ + "k"}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kvs.at(0).value, "v20");
}

TEST_F(EtcdClientFailoverTest, KilledLeaderInUseRecoversAfterTheElection) {
  auto config = config_for(endpoints_starting_with(leader_));
  config.retry.max_attempts = 12;  // an election takes a few seconds on a loaded machine
  etcd::client c(io_.get_executor(), config);
  ASSERT_TRUE(run(io_, c.put({prefix_ + "k", "v", 0, false})));
  ASSERT_EQ(c.current_endpoint(), cluster_->client_url(leader_));

  cluster_->kill(leader_);
  const auto start = steady_clock::now();
  auto r = run(io_, c.range({.key = prefix_ + "k"}));
  ASSERT_TRUE(r) << describe(r) << " after " << elapsed_since(start).count() << " ms";
  EXPECT_EQ(r->kvs.at(0).value, "v");
  EXPECT_NE(c.current_endpoint(), cluster_->client_url(leader_));
  RecordProperty("leader_failover_ms", static_cast<int>(elapsed_since(start).count()));
}

TEST_F(EtcdClientFailoverTest, FrozenMemberInFrontIsPassedWithinTheRequestTimeout) {
  auto config = config_for(endpoints_starting_with(follower_));
  config.request_timeout = 1000ms;
  etcd::client c(io_.get_executor(), config);
  cluster_->stop(follower_);
  resume_on_exit resume{*cluster_, follower_};

  const auto start = steady_clock::now();
  auto r = run(io_, c.range({.key = prefix_ + "k"}));
  const auto took = elapsed_since(start);
  ASSERT_TRUE(r) << describe(r);
  EXPECT_GE(took, config.request_timeout - 50ms) << "the frozen member had the first attempt";
  EXPECT_LE(took, config.request_timeout + 700ms);
  EXPECT_NE(c.current_endpoint(), cluster_->client_url(follower_));

  // Later requests go straight to the member that answered.
  const auto again = steady_clock::now();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(run(io_, c.range({.key = prefix_ + "k"})));
  EXPECT_LT(elapsed_since(again), config.request_timeout);

  // A watch opened now does not try the frozen member either.
  etcd::watch_stream w(c);
  ASSERT_TRUE(run(io_, w.open({.key = prefix_ + "k"})));
}

TEST_F(EtcdClientFailoverTest, WatchOpenPassesAFrozenMember) {
  auto config = config_for(endpoints_starting_with(follower_));
  config.request_timeout = 1000ms;
  etcd::client c(io_.get_executor(), config);
  cluster_->stop(follower_);
  resume_on_exit resume{*cluster_, follower_};

  etcd::watch_stream w(c);
  const auto start = steady_clock::now();
  auto opened = run(io_, w.open({.key = prefix_ + "k"}));
  ASSERT_TRUE(opened) << describe(opened);
  EXPECT_LE(elapsed_since(start), config.request_timeout + 700ms);
  ASSERT_TRUE(run(io_, c.put({prefix_ + "k", "v", 0, false})));
  auto events = read_events(io_, w, 1);
  ASSERT_EQ(events.size(), 1u);
}

// ---------------------------------------------------------------------------------------------------------------
// Watch progress notifications: a member of its own, with a 1 s notify interval.

TEST(EtcdClientProgressNotify, IdleWatchGetsProgressMessages) {
  etcd_cluster cluster(etcd_options{.extra_args = {"--experimental-watch-progress-notify-interval=1s"}});
  asio::io_context io;
  etcd::client c(io.get_executor(), config_for({cluster.client_url(0)}));
  auto p = run(io, c.put({"/progress/k", "v", 0, false}));
  ASSERT_TRUE(p) << describe(p);

  etcd::watch_stream w(c);
  ASSERT_TRUE(run(io, w.open({.key = "/progress/", .range_end = etcd::prefix_range_end("/progress/"),
                              .progress_notify = true})));
  // Nothing changes: within a few intervals a progress message must come (and no watch_stalled before it).
  auto m = run(io, w.next(5s));
  ASSERT_TRUE(m) << describe(m);
  EXPECT_TRUE(m->is_progress_notify());
  EXPECT_TRUE(m->events.empty());
  EXPECT_GE(m->header.revision, p->header.revision);

  // Without progress_notify the same silence is just silence.
  etcd::watch_stream quiet(c);
  ASSERT_TRUE(run(io, quiet.open({.key = "/progress/"})));
  auto none = run(io, quiet.next(2500ms));
  ASSERT_FALSE(none) << "got a message on a watch without progress_notify";
  EXPECT_EQ(none.error(), make_error_code(errc::watch_stalled));
}

}  // namespace
}  // namespace clusterlock::test::client_tests
