// The etcd gateway client against a real etcd member started by the tests: range, put, delete, txn, leases.
// The other etcd_client_*_test.cpp files: watch and completion tokens, faults, TLS and auth.

#include "integration/etcd_client_fixture.hpp"

#include <cstdio>
#include <set>

namespace clusterlock::test::client_tests {
namespace {

// ---- range / put / delete_range

TEST_F(EtcdClientTest, PutThenRangeOneKey) {
  const auto p = put(key("a"), "value-a");
  EXPECT_GT(p.header.revision, 0);
  EXPECT_FALSE(p.prev_kv);

  const auto r = range({.key = key("a")});
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].key, key("a"));
  EXPECT_EQ(r.kvs[0].value, "value-a");
  EXPECT_EQ(r.kvs[0].create_revision, p.header.revision);
  EXPECT_EQ(r.kvs[0].mod_revision, p.header.revision);
  EXPECT_EQ(r.kvs[0].version, 1);
  EXPECT_EQ(r.kvs[0].lease, 0);
  EXPECT_EQ(r.count, 1);
  EXPECT_FALSE(r.more);
  EXPECT_GE(r.header.revision, p.header.revision);
  EXPECT_NE(r.header.cluster_id, 0u);
  EXPECT_NE(r.header.member_id, 0u);

  const auto missing = range({.key = key("missing")});
  EXPECT_TRUE(missing.kvs.empty());
  EXPECT_EQ(missing.count, 0);
}

TEST_F(EtcdClientTest, RangePrefixSortedByCreateRevisionWithLimit) {
  // Created in the order c, a, b: key order and creation order differ.
  const auto rc = put(key("c"), "1").header.revision;
  const auto ra = put(key("a"), "2").header.revision;
  const auto rb = put(key("b"), "3").header.revision;
  put(key("c"), "updated");  // a later mod_revision must not change the create order
  put(prefix_ + "\xff", "outside?");  // still inside the prefix: its last byte is not the prefix's
  const std::string outside = prefix_.substr(0, prefix_.size() - 1) + "0";  // '/' + 1: just past the prefix
  put(outside, "outside");

  const auto all = range_prefix({.order = etcd::sort_order::ascend, .target = etcd::sort_target::create});
  EXPECT_THAT(keys_of(all), ::testing::ElementsAre(key("c"), key("a"), key("b"), prefix_ + "\xff"));
  EXPECT_EQ(all.count, 4);

  const auto first2 =
      range_prefix({.limit = 2, .order = etcd::sort_order::ascend, .target = etcd::sort_target::create});
  EXPECT_THAT(keys_of(first2), ::testing::ElementsAre(key("c"), key("a")));
  EXPECT_TRUE(first2.more);
  EXPECT_EQ(first2.count, 4);  // count is of the whole range, not the page

  const auto newest = range_prefix({.limit = 1, .order = etcd::sort_order::descend, .target = etcd::sort_target::create});
  EXPECT_THAT(keys_of(newest), ::testing::ElementsAre(prefix_ + "\xff"));

  const auto older = range_prefix({.order = etcd::sort_order::ascend, .target = etcd::sort_target::create,
                                   .max_create_revision = ra});
  EXPECT_THAT(keys_of(older), ::testing::ElementsAre(key("c"), key("a")));
  const auto newer = range_prefix({.order = etcd::sort_order::ascend, .target = etcd::sort_target::create,
                                   .min_create_revision = rb});
  EXPECT_THAT(keys_of(newer), ::testing::ElementsAre(key("b"), prefix_ + "\xff"));

  const auto by_key = range_prefix({.order = etcd::sort_order::ascend, .target = etcd::sort_target::key});
  EXPECT_THAT(keys_of(by_key), ::testing::ElementsAre(key("a"), key("b"), key("c"), prefix_ + "\xff"));

  // A read at an older revision sees the old value.
  const auto then = range({.key = key("c"), .revision = rb});
  ASSERT_EQ(then.kvs.size(), 1u);
  EXPECT_EQ(then.kvs[0].value, "1");
  EXPECT_EQ(then.kvs[0].create_revision, rc);

  // Serializable reads work too (served by the member alone).
  const auto ser = range({.key = key("a"), .serializable = true});
  ASSERT_EQ(ser.kvs.size(), 1u);
  EXPECT_EQ(ser.kvs[0].value, "2");
}

TEST_F(EtcdClientTest, RangeCountOnlyAndKeysOnly) {
  put(key("x"), "vx");
  put(key("y"), "vy");
  put(key("z"), "vz");

  const auto counted = range_prefix({.count_only = true});
  EXPECT_EQ(counted.count, 3);
  EXPECT_TRUE(counted.kvs.empty());

  const auto keys = range_prefix({.keys_only = true});
  EXPECT_THAT(keys_of(keys), ::testing::ElementsAre(key("x"), key("y"), key("z")));
  for (const auto& kv : keys.kvs) {
    EXPECT_TRUE(kv.value.empty()) << kv.key;
    EXPECT_GT(kv.create_revision, 0);
  }
}

TEST_F(EtcdClientTest, FutureRevisionIsAnError) {
  const auto now = put(key("k"), "v").header.revision;
  auto r = run(io_, client_->range({.key = key("k"), .revision = now + 1000}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), make_error_code(errc::future_revision)) << describe(r);
}

TEST_F(EtcdClientTest, PutWithLeaseAndPrevKv) {
  auto lease = run(io_, client_->lease_grant(30s));
  ASSERT_TRUE(lease) << describe(lease);

  auto first = run(io_, client_->put({key("k"), "one", lease->id, true}));
  ASSERT_TRUE(first) << describe(first);
  EXPECT_FALSE(first->prev_kv) << "no previous key, no prev_kv";

  auto second = run(io_, client_->put({key("k"), "two", 0, true}));
  ASSERT_TRUE(second) << describe(second);
  ASSERT_TRUE(second->prev_kv);
  EXPECT_EQ(second->prev_kv->key, key("k"));
  EXPECT_EQ(second->prev_kv->value, "one");
  EXPECT_EQ(second->prev_kv->lease, lease->id);
  EXPECT_EQ(second->prev_kv->mod_revision, first->header.revision);
  EXPECT_EQ(second->prev_kv->version, 1);

  // The second put carried no lease: the key left the lease.
  auto r = range({.key = key("k")});
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].lease, 0);
  EXPECT_EQ(r.kvs[0].version, 2);

  auto third = run(io_, client_->put({key("k2"), "leased", lease->id, false}));
  ASSERT_TRUE(third) << describe(third);
  EXPECT_FALSE(third->prev_kv) << "not asked for";
  r = range({.key = key("k2")});
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].lease, lease->id);

  EXPECT_TRUE(run(io_, client_->lease_revoke(lease->id)));
  EXPECT_TRUE(range({.key = key("k2")}).kvs.empty()) << "revoking the lease deletes its keys";
}

TEST_F(EtcdClientTest, PutWithUnknownLeaseFails) {
  auto r = run(io_, client_->put({key("k"), "v", 0x1234567, false}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), make_error_code(errc::lease_not_found)) << describe(r);
}

TEST_F(EtcdClientTest, DeleteRangePrefixWithPrevKv) {
  put(key("a"), "va");
  put(key("b"), "vb");
  put(key("c/d"), "vcd");

  auto none = run(io_, client_->delete_range({key("nothing"), "", true}));
  ASSERT_TRUE(none) << describe(none);
  EXPECT_EQ(none->deleted, 0);
  EXPECT_TRUE(none->prev_kvs.empty());

  auto one = run(io_, client_->delete_range({key("a"), "", false}));
  ASSERT_TRUE(one) << describe(one);
  EXPECT_EQ(one->deleted, 1);
  EXPECT_TRUE(one->prev_kvs.empty()) << "not asked for";

  auto rest = run(io_, client_->delete_range({prefix_, etcd::prefix_range_end(prefix_), true}));
  ASSERT_TRUE(rest) << describe(rest);
  EXPECT_EQ(rest->deleted, 2);
  ASSERT_EQ(rest->prev_kvs.size(), 2u);
  EXPECT_EQ(rest->prev_kvs[0].key, key("b"));
  EXPECT_EQ(rest->prev_kvs[0].value, "vb");
  EXPECT_EQ(rest->prev_kvs[1].key, key("c/d"));
  EXPECT_EQ(rest->prev_kvs[1].value, "vcd");
  EXPECT_GT(rest->header.revision, 0);

  EXPECT_EQ(range_prefix({.count_only = true}).count, 0);
}

// ---- txn

TEST_F(EtcdClientTest, TxnCreateIfAbsentLikeTheLockRecipe) {
  const std::string me = key("lock/me");
  auto acquire = [&] {
    etcd::txn_request t;
    t.compares.push_back(etcd::compare::create_revision(me, etcd::compare_result::equal, 0));
    t.success.push_back(etcd::put_request{me, "holder", 0, false});
    t.success.push_back(etcd::range_request{.key = key("lock/"), .range_end = etcd::prefix_range_end(key("lock/")),
                                            .limit = 1, .order = etcd::sort_order::ascend,
                                            .target = etcd::sort_target::create});
    t.failure.push_back(etcd::range_request{.key = me});
    t.failure.push_back(etcd::range_request{.key = key("lock/"), .range_end = etcd::prefix_range_end(key("lock/")),
                                            .limit = 1, .order = etcd::sort_order::ascend,
                                            .target = etcd::sort_target::create});
    return run(io_, client_->txn(std::move(t), etcd::idempotency::safe));
  };

  auto created = acquire();
  ASSERT_TRUE(created) << describe(created);
  EXPECT_TRUE(created->succeeded);
  ASSERT_EQ(created->responses.size(), 2u);
  ASSERT_TRUE(std::holds_alternative<etcd::put_response>(created->responses[0]));
  EXPECT_EQ(std::get<etcd::put_response>(created->responses[0]).header.revision, created->header.revision);
  ASSERT_TRUE(std::holds_alternative<etcd::range_response>(created->responses[1]));
  const auto& owner = std::get<etcd::range_response>(created->responses[1]);
  ASSERT_EQ(owner.kvs.size(), 1u);
  EXPECT_EQ(owner.kvs[0].key, me);
  EXPECT_EQ(owner.kvs[0].create_revision, created->header.revision);

  auto again = acquire();
  ASSERT_TRUE(again) << describe(again);
  EXPECT_FALSE(again->succeeded);
  ASSERT_EQ(again->responses.size(), 2u);
  ASSERT_TRUE(std::holds_alternative<etcd::range_response>(again->responses[0]));
  const auto& mine = std::get<etcd::range_response>(again->responses[0]);
  ASSERT_EQ(mine.kvs.size(), 1u);
  EXPECT_EQ(mine.kvs[0].create_revision, created->header.revision);
  EXPECT_EQ(again->header.revision, created->header.revision) << "the failure branch wrote nothing";
}

TEST_F(EtcdClientTest, TxnComparesOnModRevisionVersionAndValue) {
  const std::string k = key("k");
  const auto r1 = put(k, "v1").header.revision;
  const auto r2 = put(k, "v2").header.revision;  // version 2, mod r2, create r1

  struct step {
    etcd::compare cmp;
    bool expect;
  };
  const std::vector<step> steps = {
      {etcd::compare::mod_revision(k, etcd::compare_result::equal, r2), true},
      {etcd::compare::mod_revision(k, etcd::compare_result::equal, r1), false},
      {etcd::compare::mod_revision(k, etcd::compare_result::less, r2 + 1), true},
      {etcd::compare::mod_revision(k, etcd::compare_result::greater, r2), false},
      {etcd::compare::create_revision(k, etcd::compare_result::equal, r1), true},
      {etcd::compare::create_revision(k, etcd::compare_result::not_equal, r1), false},
      {etcd::compare::version(k, etcd::compare_result::equal, 2), true},
      {etcd::compare::version(k, etcd::compare_result::greater, 2), false},
      {etcd::compare::version(k, etcd::compare_result::less, 3), true},
      {etcd::compare::value_of(k, etcd::compare_result::equal, "v2"), true},
      {etcd::compare::value_of(k, etcd::compare_result::equal, "v1"), false},
      {etcd::compare::value_of(k, etcd::compare_result::not_equal, "v1"), true},
  };
  for (std::size_t i = 0; i < steps.size(); ++i) {
    etcd::txn_request t;
    t.compares.push_back(steps[i].cmp);
    t.success.push_back(etcd::range_request{.key = k});
    t.failure.push_back(etcd::range_request{.key = k, .count_only = true});
    auto r = run(io_, client_->txn(std::move(t)));
    ASSERT_TRUE(r) << "step " << i << ": " << describe(r);
    EXPECT_EQ(r->succeeded, steps[i].expect) << "step " << i;
    ASSERT_EQ(r->responses.size(), 1u) << "step " << i;
    ASSERT_TRUE(std::holds_alternative<etcd::range_response>(r->responses[0]));
    const auto& rr = std::get<etcd::range_response>(r->responses[0]);
    EXPECT_EQ(rr.count, 1) << "step " << i;
    EXPECT_EQ(rr.kvs.size(), steps[i].expect ? 1u : 0u) << "step " << i << ": the wrong branch ran";
  }

  // Several compares: all must hold.
  etcd::txn_request both;
  both.compares.push_back(etcd::compare::version(k, etcd::compare_result::equal, 2));
  both.compares.push_back(etcd::compare::value_of(k, etcd::compare_result::equal, "nope"));
  auto r = run(io_, client_->txn(std::move(both)));
  ASSERT_TRUE(r) << describe(r);
  EXPECT_FALSE(r->succeeded);
  EXPECT_TRUE(r->responses.empty());
}

TEST_F(EtcdClientTest, TxnPutAndDeleteInBothBranches) {
  const std::string k = key("k");
  put(k, "old");
  put(key("gone-on-success"), "x");
  put(key("gone-on-failure"), "y");

  // Success branch: delete (with prev_kv) and put.
  etcd::txn_request ok;
  ok.compares.push_back(etcd::compare::value_of(k, etcd::compare_result::equal, "old"));
  ok.success.push_back(etcd::delete_range_request{key("gone-on-success"), "", true});
  ok.success.push_back(etcd::put_request{k, "new", 0, true});
  ok.failure.push_back(etcd::put_request{key("never"), "x", 0, false});
  auto r = run(io_, client_->txn(std::move(ok)));
  ASSERT_TRUE(r) << describe(r);
  EXPECT_TRUE(r->succeeded);
  ASSERT_EQ(r->responses.size(), 2u);
  ASSERT_TRUE(std::holds_alternative<etcd::delete_range_response>(r->responses[0]));
  const auto& del = std::get<etcd::delete_range_response>(r->responses[0]);
  EXPECT_EQ(del.deleted, 1);
  ASSERT_EQ(del.prev_kvs.size(), 1u);
  EXPECT_EQ(del.prev_kvs[0].value, "x");
  ASSERT_TRUE(std::holds_alternative<etcd::put_response>(r->responses[1]));
  const auto& p = std::get<etcd::put_response>(r->responses[1]);
  ASSERT_TRUE(p.prev_kv);
  EXPECT_EQ(p.prev_kv->value, "old");

  // Failure branch: the same compare fails now; its delete and put run instead.
  etcd::txn_request fail;
  fail.compares.push_back(etcd::compare::value_of(k, etcd::compare_result::equal, "old"));
  fail.success.push_back(etcd::put_request{key("never"), "x", 0, false});
  fail.failure.push_back(etcd::delete_range_request{key("gone-on-failure"), "", false});
  fail.failure.push_back(etcd::put_request{key("failure-put"), "z", 0, false});
  r = run(io_, client_->txn(std::move(fail)));
  ASSERT_TRUE(r) << describe(r);
  EXPECT_FALSE(r->succeeded);
  ASSERT_EQ(r->responses.size(), 2u);
  ASSERT_TRUE(std::holds_alternative<etcd::delete_range_response>(r->responses[0]));
  EXPECT_EQ(std::get<etcd::delete_range_response>(r->responses[0]).deleted, 1);
  ASSERT_TRUE(std::holds_alternative<etcd::put_response>(r->responses[1]));

  EXPECT_THAT(keys_of(range_prefix()), ::testing::ElementsAre(key("failure-put"), key("k")));
  EXPECT_EQ(range({.key = k}).kvs.at(0).value, "new");
}

TEST_F(EtcdClientTest, TxnWithoutComparesTakesTheSuccessBranch) {
  etcd::txn_request t;
  t.success.push_back(etcd::put_request{key("a"), "1", 0, false});
  t.success.push_back(etcd::put_request{key("b"), "2", 0, false});
  auto r = run(io_, client_->txn(std::move(t)));
  ASSERT_TRUE(r) << describe(r);
  EXPECT_TRUE(r->succeeded);
  EXPECT_EQ(r->responses.size(), 2u);
  const auto both = range_prefix();
  ASSERT_EQ(both.kvs.size(), 2u);
  EXPECT_EQ(both.kvs[0].mod_revision, both.kvs[1].mod_revision) << "one txn, one revision";
}

// ---- leases

TEST_F(EtcdClientTest, LeaseGrantRaisesSmallTtls) {
  auto small = run(io_, client_->lease_grant(1s));
  ASSERT_TRUE(small) << describe(small);
  EXPECT_NE(small->id, 0);
  // etcd raises a TTL below its minimum (1.5 x election timeout, rounded up: 2 s with the defaults).
  EXPECT_GE(small->ttl, 1s);
  EXPECT_LE(small->ttl, 5s);
  RecordProperty("granted_ttl_for_1s", static_cast<int>(small->ttl.count()));

  auto normal = run(io_, client_->lease_grant(30s));
  ASSERT_TRUE(normal) << describe(normal);
  EXPECT_EQ(normal->ttl, 30s);
  EXPECT_NE(normal->id, small->id);

  // Our own ID.
  const std::int64_t wanted = 0x5eed0000 + (std::chrono::steady_clock::now().time_since_epoch().count() & 0xffff);
  auto chosen = run(io_, client_->lease_grant(30s, wanted));
  ASSERT_TRUE(chosen) << describe(chosen);
  EXPECT_EQ(chosen->id, wanted);

  for (auto id : {small->id, normal->id, chosen->id}) EXPECT_TRUE(run(io_, client_->lease_revoke(id)));
}

TEST_F(EtcdClientTest, LeaseKeepaliveThenRevoke) {
  auto lease = run(io_, client_->lease_grant(20s));
  ASSERT_TRUE(lease) << describe(lease);

  auto alive = run(io_, client_->lease_keepalive(lease->id));
  ASSERT_TRUE(alive) << describe(alive);
  EXPECT_EQ(alive->id, lease->id);
  EXPECT_EQ(alive->ttl, 20s) << "a keepalive restarts the full TTL";

  auto revoked = run(io_, client_->lease_revoke(lease->id));
  ASSERT_TRUE(revoked) << describe(revoked);
  EXPECT_GT(revoked->header.revision, 0);

  auto gone = run(io_, client_->lease_keepalive(lease->id));
  ASSERT_TRUE(gone) << "a gone lease is TTL 0, not an error: " << describe(gone);
  EXPECT_EQ(gone->ttl, 0s);

  auto again = run(io_, client_->lease_revoke(lease->id));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), make_error_code(errc::lease_not_found)) << describe(again);
}

TEST_F(EtcdClientTest, LeaseTimeToLiveWithKeys) {
  auto lease = run(io_, client_->lease_grant(40s));
  ASSERT_TRUE(lease) << describe(lease);
  put(key("one"), "1", lease->id);
  put(key("two"), "2", lease->id);

  auto ttl = run(io_, client_->lease_time_to_live(lease->id, true));
  ASSERT_TRUE(ttl) << describe(ttl);
  EXPECT_EQ(ttl->id, lease->id);
  EXPECT_EQ(ttl->granted_ttl, 40s);
  EXPECT_GT(ttl->ttl, 30s);
  EXPECT_LE(ttl->ttl, 40s);
  EXPECT_THAT(ttl->keys, ::testing::UnorderedElementsAre(key("one"), key("two")));

  auto no_keys = run(io_, client_->lease_time_to_live(lease->id, false));
  ASSERT_TRUE(no_keys) << describe(no_keys);
  EXPECT_TRUE(no_keys->keys.empty());

  ASSERT_TRUE(run(io_, client_->lease_revoke(lease->id)));
  auto gone = run(io_, client_->lease_time_to_live(lease->id, true));
  ASSERT_TRUE(gone) << describe(gone);
  EXPECT_EQ(gone->ttl, -1s);
  EXPECT_TRUE(gone->keys.empty());
}

}  // namespace
}  // namespace clusterlock::test::client_tests

namespace clusterlock::test::client_tests {

// txn_batched against etcd: txns asked at once share requests, as nested txns, and each gets its own answer: its own
// branch and its own reads, at the revision of the txn that carried it.
TEST_F(EtcdClientTest, TxnBatchedRunsEachTxnAsItsOwnNestedTxn) {
  constexpr int count = 40;
  put(key("taken/07"), "earlier");  // its create-if-absent takes the failure branch
  const auto before = client_->request_stats().requests;
  std::vector<std::future<result<etcd::txn_response>>> futures;
  for (int i = 0; i < count; ++i) {  // all asked before any is answered
    char name[16];
    std::snprintf(name, sizeof name, "taken/%02d", i);
    etcd::txn_request t;
    t.compares.push_back(etcd::compare::create_revision(key(name), etcd::compare_result::equal, 0));
    t.success.push_back(etcd::put_request{key(name), "batched", 0, false});
    t.success.push_back(etcd::range_request{.key = key(name)});
    t.failure.push_back(etcd::range_request{.key = key(name)});
    futures.push_back(asio::co_spawn(io_, client_->txn_batched(std::move(t)), asio::use_future));
  }
  std::vector<result<etcd::txn_response>> results;
  for (auto& f : futures) results.push_back(wait_on(io_, std::move(f), 30s));
  ASSERT_EQ(results.size(), static_cast<std::size_t>(count));
  std::set<std::int64_t> revisions;
  for (int i = 0; i < count; ++i) {
    const auto& r = results[static_cast<std::size_t>(i)];
    ASSERT_TRUE(r) << i << ": " << describe(r);
    EXPECT_EQ(r->succeeded, i != 7) << i;
    ASSERT_FALSE(r->responses.empty()) << i;
    const auto& read = std::get<etcd::range_response>(r->responses.back());
    ASSERT_EQ(read.kvs.size(), 1u) << i;
    char name[16];
    std::snprintf(name, sizeof name, "taken/%02d", i);
    EXPECT_EQ(read.kvs[0].key, key(name));
    EXPECT_EQ(read.kvs[0].value, i == 7 ? "earlier" : "batched");
    if (i != 7) {
      EXPECT_EQ(read.kvs[0].create_revision, r->header.revision) << i;
    }
    revisions.insert(r->header.revision);
  }
  const auto sent = client_->request_stats().requests - before;
  EXPECT_LT(sent, static_cast<std::uint64_t>(count)) << "no txn shared a request";
  EXPECT_EQ(revisions.size(), sent) << "one revision per request sent";
}

}  // namespace clusterlock::test::client_tests
