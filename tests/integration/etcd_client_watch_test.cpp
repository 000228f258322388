// The etcd gateway client against a real etcd member: watch, version and health, binary data, every completion
// token, connection reuse.

#include "integration/etcd_client_fixture.hpp"

namespace clusterlock::test::client_tests {
namespace {

// ---- watch

TEST_F(EtcdClientTest, WatchKeyDeliversPutAndDelete) {
  etcd::watch_stream w(*client_);
  auto opened = run(io_, w.open({.key = key("k")}));
  ASSERT_TRUE(opened) << describe(opened);
  EXPECT_TRUE(w.is_open());

  const auto p = put(key("k"), "v1");
  EXPECT_GT(*opened, 0) << "open() returns the store's revision when the watch started";
  EXPECT_EQ(p.header.revision, *opened + 1) << "a watch from now starts right after that revision";
  put(key("other"), "not watched");
  auto d = run(io_, client_->delete_range({key("k"), "", false}));
  ASSERT_TRUE(d) << describe(d);

  auto events = read_events(io_, w, 2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, etcd::event_type::put);
  EXPECT_EQ(events[0].kv.key, key("k"));
  EXPECT_EQ(events[0].kv.value, "v1");
  EXPECT_EQ(events[0].kv.mod_revision, p.header.revision);
  EXPECT_FALSE(events[0].prev_kv) << "not asked for";
  EXPECT_EQ(events[1].type, etcd::event_type::del);
  EXPECT_EQ(events[1].kv.key, key("k"));
  EXPECT_EQ(events[1].kv.mod_revision, d->header.revision);
}

TEST_F(EtcdClientTest, WatchPrefixWithPrevKv) {
  put(key("p/a"), "a0");
  etcd::watch_stream w(*client_);
  auto opened =
      run(io_, w.open({.key = key("p/"), .range_end = etcd::prefix_range_end(key("p/")), .prev_kv = true}));
  ASSERT_TRUE(opened) << describe(opened);

  put(key("p/a"), "a1");
  put(key("q"), "outside the prefix");
  put(key("p/b"), "b0");
  ASSERT_TRUE(run(io_, client_->delete_range({key("p/a"), "", false})));

  auto events = read_events(io_, w, 3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kv.key, key("p/a"));
  EXPECT_EQ(events[0].kv.value, "a1");
  ASSERT_TRUE(events[0].prev_kv);
  EXPECT_EQ(events[0].prev_kv->value, "a0");
  EXPECT_EQ(events[1].kv.key, key("p/b"));
  EXPECT_FALSE(events[1].prev_kv) << "new key: nothing before it";
  EXPECT_EQ(events[2].type, etcd::event_type::del);
  EXPECT_EQ(events[2].kv.key, key("p/a"));
  ASSERT_TRUE(events[2].prev_kv) << "a DELETE with prev_kv carries the deleted value";
  EXPECT_EQ(events[2].prev_kv->value, "a1");
}

TEST_F(EtcdClientTest, WatchFromAPastRevisionDeliversHistory) {
  const auto r1 = put(key("h"), "1").header.revision;
  const auto r2 = put(key("h"), "2").header.revision;
  ASSERT_TRUE(run(io_, client_->delete_range({key("h"), "", false})));
  const auto r4 = put(key("h"), "4").header.revision;

  etcd::watch_stream w(*client_);
  auto opened = run(io_, w.open({.key = key("h"), .start_revision = r1}));
  ASSERT_TRUE(opened) << describe(opened);
  auto events = read_events(io_, w, 4);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].kv.mod_revision, r1);
  EXPECT_EQ(events[0].kv.value, "1");
  EXPECT_EQ(events[1].kv.mod_revision, r2);
  EXPECT_EQ(events[2].type, etcd::event_type::del);
  EXPECT_EQ(events[3].kv.mod_revision, r4);
  EXPECT_EQ(events[3].kv.value, "4");
  EXPECT_EQ(events[3].kv.version, 1) << "recreated after the delete";

  // From the middle: r1 is not delivered.
  etcd::watch_stream later(*client_);
  ASSERT_TRUE(run(io_, later.open({.key = key("h"), .start_revision = r2})));
  auto tail = read_events(io_, later, 3);
  ASSERT_EQ(tail.size(), 3u);
  EXPECT_EQ(tail[0].kv.mod_revision, r2);
}

TEST_F(EtcdClientTest, WatchSilenceIsReportedAsStalled) {
  etcd::watch_stream w(*client_);
  ASSERT_TRUE(run(io_, w.open({.key = key("quiet")})));
  const auto start = steady_clock::now();
  auto m = run(io_, w.next(300ms));
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error(), make_error_code(errc::watch_stalled)) << describe(m);
  EXPECT_GE(elapsed_since(start), 250ms);
  EXPECT_FALSE(w.is_open());
}

TEST_F(EtcdClientTest, WatchCanBeCancelled) {
  etcd::watch_stream w(*client_);
  ASSERT_TRUE(run(io_, w.open({.key = key("quiet")})));
  asio::cancellation_signal cancel;
  std::optional<error_code> got;
  w.async_next(0ms, asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec, etcd::watch_response) { got = ec; }));
  asio::steady_timer t(io_, 100ms);
  t.async_wait([&](error_code) { cancel.emit(asio::cancellation_type::terminal); });
  io_.restart();
  io_.run_for(5s);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, asio::error::operation_aborted) << got->what();
  EXPECT_FALSE(w.is_open());
}

TEST_F(EtcdClientTest, CompactedRevisionFailsRangeAndWatch) {
  const auto r1 = put(key("c"), "1").header.revision;
  const auto r2 = put(key("c"), "2").header.revision;
  auto compacted = run(io_, client_->compact(r2, true));
  ASSERT_TRUE(compacted) << describe(compacted);

  auto old_read = run(io_, client_->range({.key = key("c"), .revision = r1}));
  ASSERT_FALSE(old_read);
  EXPECT_EQ(old_read.error(), make_error_code(errc::compacted)) << describe(old_read);

  // Compacting the same revision again is an error too.
  auto twice = run(io_, client_->compact(r2, false));
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error(), make_error_code(errc::compacted)) << describe(twice);

  // etcd accepts the watch ("created") and cancels it with compact_revision right after: the error comes from
  // the first next() (checked by hand with curl against 3.4.23).
  etcd::watch_stream w(*client_);
  auto opened = run(io_, w.open({.key = key("c"), .start_revision = r1}));
  error_code ec = opened ? error_code{} : opened.error();
  if (!ec) {
    auto first = run(io_, w.next(5s));
    ASSERT_FALSE(first) << "a watch from a compacted revision delivered a message";
    ec = first.error();
  }
  EXPECT_EQ(ec, make_error_code(errc::compacted)) << ec.what();
  EXPECT_FALSE(w.is_open());

  // At the compaction revision itself the history is still there.
  etcd::watch_stream ok(*client_);
  ASSERT_TRUE(run(io_, ok.open({.key = key("c"), .start_revision = r2})));
  auto events = read_events(io_, ok, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kv.value, "2");
}

// ---- version, health, binary data

TEST_F(EtcdClientTest, VersionAndHealth) {
  auto v = run(io_, client_->version());
  ASSERT_TRUE(v) << describe(v);
  // The releases we support: 3.4 (Debian 12) and 3.5 (Debian 13). 3.4.23 says {"etcdserver":"3.4.23",
  // "etcdcluster":"3.4.0"}, 3.5.16 {"etcdserver":"3.5.16","etcdcluster":"3.5.0"}: the cluster version is the
  // server's minor release.
  EXPECT_THAT(v->server, ::testing::MatchesRegex(R"(3\.[45]\.[0-9]+)"));
  EXPECT_EQ(v->cluster, v->server.substr(0, 3) + ".0");

  auto h = run(io_, client_->health());
  ASSERT_TRUE(h) << describe(h);
  EXPECT_TRUE(h->healthy);
}

TEST_F(EtcdClientTest, BinaryKeysAndValuesRoundTrip) {
  const std::string bytes = all_bytes();
  const std::string k = prefix_ + bytes;
  const std::string v = bytes + bytes;

  etcd::watch_stream w(*client_);
  ASSERT_TRUE(run(io_, w.open({.key = k})));

  auto p = run(io_, client_->put({k, v, 0, false}));
  ASSERT_TRUE(p) << describe(p);
  const auto r = range({.key = k});
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].key, k);
  EXPECT_EQ(r.kvs[0].value, v);

  // Every byte also as the single-byte suffix of a key, found by a prefix range in key order.
  for (int i = 0; i < 256; ++i) put(prefix_ + "one/" + std::string(1, static_cast<char>(i)), std::string(1, static_cast<char>(255 - i)));
  const auto each = range({.key = prefix_ + "one/", .range_end = etcd::prefix_range_end(prefix_ + "one/")});
  ASSERT_EQ(each.kvs.size(), 256u);
  for (int i = 0; i < 256; ++i) {
    EXPECT_EQ(each.kvs[i].key.back(), static_cast<char>(i));
    EXPECT_EQ(each.kvs[i].value, std::string(1, static_cast<char>(255 - i)));
  }

  etcd::txn_request t;
  t.compares.push_back(etcd::compare::value_of(k, etcd::compare_result::equal, v));
  auto txn = run(io_, client_->txn(std::move(t)));
  ASSERT_TRUE(txn) << describe(txn);
  EXPECT_TRUE(txn->succeeded) << "binary value compare";

  auto events = read_events(io_, w, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kv.key, k);
  EXPECT_EQ(events[0].kv.value, v);

  // Empty value and a key that is only a NUL byte below our prefix.
  put(prefix_ + std::string(1, '\0'), "");
  const auto nul = range({.key = prefix_ + std::string(1, '\0')});
  ASSERT_EQ(nul.kvs.size(), 1u);
  EXPECT_EQ(nul.kvs[0].value, "");
}

// ---- completion tokens

TEST_F(EtcdClientTest, CompletionTokenUseAwaitable) {
  put(key("k"), "v");
  auto r = run(io_, [&]() -> asio::awaitable<etcd::range_response> {
    // A named request: GCC 12.2 destroys a braced temporary written inside a co_await expression twice.
    etcd::range_request req{.key = key("k")};
    co_return co_await client_->async_range(std::move(req), asio::use_awaitable);
  });
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].value, "v");

  // Errors arrive as a thrown system_error.
  EXPECT_THROW(run(io_, [&]() -> asio::awaitable<etcd::lease_revoke_response> {
                 co_return co_await client_->async_lease_revoke(0x7777777, asio::use_awaitable);
               }),
               boost::system::system_error);
}

TEST_F(EtcdClientTest, CompletionTokenCallback) {
  std::optional<error_code> ec;
  etcd::put_response got;
  client_->async_put(etcd::put_request{key("k"), "by-callback", 0, false}, [&](error_code e, etcd::put_response r) {
    ec = e;
    got = std::move(r);
  });
  ASSERT_TRUE(run_until(io_, [&] { return ec.has_value(); }, 10s));
  ASSERT_FALSE(*ec) << ec->what();
  EXPECT_GT(got.header.revision, 0);
  EXPECT_EQ(range({.key = key("k")}).kvs.at(0).value, "by-callback");

  // An error arrives as the error code, with a default result.
  std::optional<error_code> failed;
  client_->async_lease_keepalive(0, [&](error_code e, etcd::lease_keepalive_response) { failed = e; });
  ASSERT_TRUE(run_until(io_, [&] { return failed.has_value(); }, 10s));
  // Lease ID 0 is never a lease: TTL 0 back, or an error. Either way the callback ran exactly once.
}

TEST_F(EtcdClientTest, CompletionTokenUseFuture) {
  // The future is waited for on this thread while the io_context runs on another.
  auto work = asio::make_work_guard(io_);
  std::thread runner([&] { io_.run(); });
  auto lease = client_->async_lease_grant(10s, asio::use_future);
  ASSERT_EQ(lease.wait_for(10s), std::future_status::ready);
  const auto granted = lease.get();
  EXPECT_EQ(granted.ttl, 10s);

  auto ka = client_->async_lease_keepalive(granted.id, asio::use_future);
  ASSERT_EQ(ka.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(ka.get().ttl, 10s);

  auto revoke = client_->async_lease_revoke(granted.id, asio::use_future);
  ASSERT_EQ(revoke.wait_for(10s), std::future_status::ready);
  revoke.get();

  auto again = client_->async_lease_revoke(granted.id, asio::use_future);
  ASSERT_EQ(again.wait_for(10s), std::future_status::ready);
  try {
    again.get();
    ADD_FAILURE() << "revoking a gone lease must fail";
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), make_error_code(errc::lease_not_found)) << e.what();
  }
  work.reset();
  runner.join();
}

TEST_F(EtcdClientTest, CompletionTokenDeferred) {
  // Nothing happens until the deferred operation is started.
  auto op = client_->async_delete_range(etcd::delete_range_request{key("k"), "", true}, asio::deferred);
  put(key("k"), "to-delete");
  std::optional<error_code> ec;
  etcd::delete_range_response got;
  std::move(op)([&](error_code e, etcd::delete_range_response r) {
    ec = e;
    got = std::move(r);
  });
  ASSERT_TRUE(run_until(io_, [&] { return ec.has_value(); }, 10s));
  ASSERT_FALSE(*ec) << ec->what();
  EXPECT_EQ(got.deleted, 1);
  ASSERT_EQ(got.prev_kvs.size(), 1u);
  EXPECT_EQ(got.prev_kvs[0].value, "to-delete");

  // And inside a coroutine, composed with co_await.
  auto txn = run(io_, [&]() -> asio::awaitable<etcd::txn_response> {
    etcd::txn_request t;
    t.compares.push_back(etcd::compare::version(key("k"), etcd::compare_result::equal, 0));
    co_return co_await client_->async_txn(std::move(t), etcd::idempotency::safe, asio::deferred);
  });
  EXPECT_TRUE(txn.succeeded);
}

// ---- connections

TEST_F(EtcdClientTest, SequentialRequestsShareOneConnection) {
  put(key("k"), "v");
  const auto before = client_->connects();
  EXPECT_EQ(before, 1u) << "the put opened the first connection";
  constexpr int n = 200;
  for (int i = 0; i < n; ++i) {
    auto r = run(io_, client_->range({.key = key("k")}));
    ASSERT_TRUE(r) << "range " << i << ": " << describe(r);
    ASSERT_EQ(r->kvs.size(), 1u);
  }
  EXPECT_EQ(client_->connects(), 1u) << n << " sequential ranges must reuse one keep-alive connection";

  // A watch has its own connection; the unary one stays in use next to it.
  etcd::watch_stream w(*client_);
  ASSERT_TRUE(run(io_, w.open({.key = key("k")})));
  EXPECT_EQ(client_->connects(), 2u);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(run(io_, client_->range({.key = key("k")})));
  put(key("k"), "v2");
  EXPECT_EQ(client_->connects(), 2u);
  auto events = read_events(io_, w, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kv.value, "v2");
}

TEST_F(EtcdClientTest, ConcurrentRequestsUseAtMostMaxConnections) {
  auto config = config_for({cluster_->client_url(0)});
  config.max_connections = 2;
  etcd::client c(io_.get_executor(), config);
  put(key("k"), "v");
  int ok = 0;
  constexpr int n = 40;
  for (int i = 0; i < n; ++i) {
    asio::co_spawn(io_, c.range({.key = key("k")}), [&](std::exception_ptr e, result<etcd::range_response> r) {
      if (!e && r && r->kvs.size() == 1) ++ok;
    });
  }
  run_until(io_, [&] { return ok >= n; }, 20s);
  EXPECT_EQ(ok, n);
  EXPECT_LE(c.connects(), 2u);
  EXPECT_GE(c.connects(), 1u);
}

}  // namespace
}  // namespace clusterlock::test::client_tests
