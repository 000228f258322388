// The etcd client's batched txns (client::txn_batched), against a loopback fake gateway (no etcd; the real one is
// tests/integration/etcd_client_test.cpp's TxnBatched tests).

#include <clusterlock/error.hpp>
#include <clusterlock/etcd/client.hpp>

#include "etcd/codec.hpp"
#include "support/bounded_wait.hpp"
#include "support/fake_http_server.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/json.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace clusterlock {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using boost::system::error_code;
using namespace std::chrono_literals;
using test::fake_http_server;

std::string b64(std::string_view s) {
  std::string out;
  out.resize(boost::beast::detail::base64::encoded_size(s.size()));
  out.resize(boost::beast::detail::base64::encode(out.data(), s.data(), s.size()));
  return out;
}

// Two create-if-absent txns as the nested txns of one (encode_txn_batch), answered by etcd 3.4.23.
constexpr std::string_view captured_txn_batch =
    R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"272740","raft_term":"2"},"succeeded":true,"responses":[{"response_txn":{"header":{},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"272740"}}},{"response_range":{"header":{"revision":"272740"},"kvs":[{"key":"dC9h","create_revision":"272740","mod_revision":"272740","version":"1","value":"eA=="}],"count":"1"}}]}},{"response_txn":{"header":{},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"272740"}}},{"response_range":{"header":{"revision":"272740"},"kvs":[{"key":"dS9h","create_revision":"272740","mod_revision":"272740","version":"1","value":"eQ=="}],"count":"1"}}]}}]})";

TEST(TxnBatchCodec, EncodesEachTxnAsANestedTxnOfTheSuccessBranch) {
  EXPECT_EQ(etcd::codec::encode_txn_batch({R"({"compare":[]})", "{}"}),
            R"({"success":[{"request_txn":{"compare":[]}},{"request_txn":{}}]})");
  EXPECT_TRUE(json::parse(etcd::codec::encode_txn_batch({etcd::codec::encode(etcd::txn_request{})})).is_object());
}

TEST(TxnBatchCodec, DecodesEachNestedAnswerWithTheOuterHeader) {
  auto r = etcd::codec::decode_txn_batch(captured_txn_batch);
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->size(), 2u);
  const char* keys[] = {"t/a", "u/a"};
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& t = (*r)[i];
    EXPECT_TRUE(t.succeeded);
    EXPECT_EQ(t.header.revision, 272740);
    EXPECT_EQ(t.header.member_id, 3319814642761637952u);
    ASSERT_EQ(t.responses.size(), 2u);
    const auto& range = std::get<etcd::range_response>(t.responses[1]);
    ASSERT_EQ(range.kvs.size(), 1u);
    EXPECT_EQ(range.kvs[0].key, keys[i]);
    EXPECT_EQ(range.kvs[0].create_revision, 272740);
  }
}

TEST(TxnBatchCodec, AnythingButNestedTxnAnswersIsMalformed) {
  const std::string header = R"("header":{"cluster_id":"1","member_id":"1","revision":"5","raft_term":"2"})";
  for (const std::string& body : {"{" + header + R"(,"responses":[{"response_put":{}}]})",
                                 "{" + header + R"(,"responses":[{"response_txn":[]}]})",
                                 "{" + header + R"(,"responses":[{"response_txn":{},"response_put":{}}]})",
                                 "{" + header + R"(,"responses":{}})", "{" + header + "}",
                                 std::string(R"({"responses":[]})")}) {
    auto r = etcd::codec::decode_txn_batch(body);
    ASSERT_FALSE(r) << body;
    EXPECT_EQ(r.error(), errc::malformed_response) << body;
  }
}

// One txn's answer: a range response holding the key of its first compare, so each caller can tell it got its own.
json::object answer_for(const json::object& txn) {
  const auto& key = txn.at("compare").as_array().at(0).as_object().at("key");
  json::object kv{{"key", key}, {"create_revision", "7"}, {"mod_revision", "7"}, {"version", "1"}};
  json::object range{{"header", json::object{}}, {"kvs", json::array{kv}}, {"count", "1"}};
  return {{"header", json::object{}}, {"succeeded", true}, {"responses", json::array{json::object{{"response_range", range}}}}};
}

// A fake gateway's /v3/kv/txn: answers a plain txn or a batch of nested ones. Replies wait while `hold` is set; a
// body that mentions `refused` (base64) is refused with etcd's permission error.
struct fake_txn_gateway {
  bool hold = false;
  std::string refused;
  std::vector<std::string> bodies;  // every request's body, in order

  std::string reply_to(const std::string& body, unsigned& status) {
    bodies.push_back(body);
    if (!refused.empty() && body.find(b64(refused)) != std::string::npos) {
      status = 403;
      return R"({"error":"etcdserver: permission denied","message":"etcdserver: permission denied","code":7})";
    }
    status = 200;
    const auto request = json::parse(body).as_object();
    json::object header{{"cluster_id", "1"}, {"member_id", "1"}, {"revision", "9"}, {"raft_term", "2"}};
    if (!request.contains("success") || !request.at("success").as_array().at(0).as_object().contains("request_txn")) {
      auto one = answer_for(request);
      one["header"] = header;
      return json::serialize(one);
    }
    json::array responses;
    for (const auto& op : request.at("success").as_array())
      responses.push_back(json::object{{"response_txn", answer_for(op.as_object().at("request_txn").as_object())}});
    return json::serialize(json::object{{"header", header}, {"succeeded", true}, {"responses", responses}});
  }

  fake_http_server::behaviour behaviour() {
    return [this](fake_http_server::connection& c) -> asio::awaitable<void> {
      while (co_await c.read_request()) {
        while (hold) co_await c.pause(1ms);
        test::canned_reply reply;
        reply.body = reply_to(c.last_request().body(), reply.status);
        if (!co_await c.write_reply(reply)) co_return;
      }
    };
  }
};

etcd::txn_request put_txn(const std::string& key) {
  etcd::txn_request t;
  t.compares.push_back(etcd::compare::create_revision(key, etcd::compare_result::equal, 0));
  t.success.push_back(etcd::put_request{key, "v", 0, false});
  return t;
}

struct batched_call {
  asio::cancellation_signal cancel;
  std::optional<error_code> ec;
  std::string answered_key;  // the key of the answer this call got
  void start(etcd::client& c, etcd::txn_request t) {
    asio::co_spawn(c.get_executor(), run(c, std::move(t), this),
                   asio::bind_cancellation_slot(cancel.slot(), asio::detached));
  }
  static asio::awaitable<void> run(etcd::client& c, etcd::txn_request t, batched_call* self) {
    auto r = co_await c.txn_batched(std::move(t));
    self->ec = r ? error_code{} : r.error();
    if (r && !r->responses.empty()) {
      const auto& range = std::get<etcd::range_response>(r->responses.front());
      if (!range.kvs.empty()) self->answered_key = range.kvs.front().key;
      EXPECT_EQ(r->header.revision, 9);  // the batch's header, also for a nested txn
    }
  }
};

struct TxnBatch : ::testing::Test {
  asio::io_context io;
  fake_txn_gateway gateway;
  fake_http_server server{io.get_executor(), gateway.behaviour()};
  etcd::client client{io.get_executor(), [this] {
                        etcd::client_config cfg;
                        cfg.endpoints = {server.url()};
                        cfg.max_connections = 16;
                        return cfg;
                      }()};
  std::vector<std::unique_ptr<batched_call>> calls;

  batched_call& ask(const std::string& key) { return ask(put_txn(key)); }
  batched_call& ask(etcd::txn_request t) {
    calls.push_back(std::make_unique<batched_call>());
    calls.back()->start(client, std::move(t));
    return *calls.back();
  }
  bool all_answered() {
    return test::run_until(io, [&] { for (auto& c : calls) if (!c->ec) return false; return true; }, 5s);
  }
  // Four on their way (the most at once), held by the server: what is asked next waits and is batched.
  void four_on_their_way() {
    gateway.hold = true;
    for (int i = 0; i < 4; ++i) ask("first" + std::to_string(i));
    ASSERT_TRUE(test::run_until(io, [&] { return server.requests() == 4; }, 5s));
  }
};

TEST_F(TxnBatch, OneAskedAloneIsSentAtOnceAsAPlainTxn) {
  auto& c = ask("k");
  ASSERT_TRUE(all_answered());
  EXPECT_FALSE(*c.ec) << c.ec->message();
  EXPECT_EQ(c.answered_key, "k");
  ASSERT_EQ(gateway.bodies.size(), 1u);
  EXPECT_EQ(gateway.bodies[0].find("request_txn"), std::string::npos) << gateway.bodies[0];
}

TEST_F(TxnBatch, TxnsAskedWhileOthersAreOnTheirWayShareOneRequestAndEachGetsItsOwnAnswer) {
  four_on_their_way();
  for (int i = 0; i < 10; ++i) ask("k" + std::to_string(i));
  test::run_for(io, 20ms);
  EXPECT_EQ(server.requests(), 4u);  // the ten wait for a batch to come back
  gateway.hold = false;
  ASSERT_TRUE(all_answered());
  EXPECT_EQ(gateway.bodies.size(), 5u);  // 4 + one batch of 10
  for (std::size_t i = 0; i < calls.size(); ++i) {
    EXPECT_FALSE(*calls[i]->ec) << calls[i]->ec->message();
    EXPECT_EQ(calls[i]->answered_key, i < 4 ? "first" + std::to_string(i) : "k" + std::to_string(i - 4));
  }
}

TEST_F(TxnBatch, TxnsWritingOneKeyNeverShareABatch) {
  four_on_their_way();
  ask("same");
  ask("same");
  gateway.hold = false;
  ASSERT_TRUE(all_answered());
  EXPECT_EQ(gateway.bodies.size(), 6u);
  for (auto& c : calls) EXPECT_FALSE(*c->ec) << c->ec->message();
}

TEST_F(TxnBatch, ARangeDeleteGoesAlone) {
  four_on_their_way();
  ask("a");
  etcd::txn_request range_delete;
  range_delete.compares.push_back(etcd::compare::version("b", etcd::compare_result::equal, 0));
  range_delete.success.push_back(etcd::delete_range_request{"b", "c", false});
  ask(std::move(range_delete));
  ask("d");
  gateway.hold = false;
  ASSERT_TRUE(all_answered());
  EXPECT_EQ(gateway.bodies.size(), 7u);  // 4, then a, the range delete and d each alone
}

TEST_F(TxnBatch, ABatchRefusedAsAWholeIsSentAgainTxnByTxnAndOnlyTheOneAtFaultFails) {
  gateway.refused = "forbidden";
  four_on_their_way();
  auto& ok1 = ask("ok1");
  auto& bad = ask("forbidden");
  auto& ok2 = ask("ok2");
  gateway.hold = false;
  ASSERT_TRUE(all_answered());
  EXPECT_FALSE(*ok1.ec) << ok1.ec->message();
  EXPECT_FALSE(*ok2.ec) << ok2.ec->message();
  EXPECT_EQ(*bad.ec, errc::permission_denied);
  EXPECT_EQ(ok1.answered_key, "ok1");
  EXPECT_EQ(ok2.answered_key, "ok2");
  EXPECT_EQ(gateway.bodies.size(), 8u);  // 4, the batch of 3, then each of the 3 alone
}

TEST_F(TxnBatch, ACallCancelledBeforeItsBatchIsSentIsNeverSent) {
  four_on_their_way();
  auto& gone = ask("gone");
  auto& kept = ask("kept");
  test::run_for(io, 5ms);
  gone.cancel.emit(asio::cancellation_type::terminal);
  ASSERT_TRUE(test::run_until(io, [&] { return gone.ec.has_value(); }, 2s));
  EXPECT_EQ(*gone.ec, asio::error::operation_aborted);
  gateway.hold = false;
  ASSERT_TRUE(all_answered());
  EXPECT_FALSE(*kept.ec);
  for (const auto& body : gateway.bodies) EXPECT_EQ(body.find(b64("gone")), std::string::npos) << body;
}

TEST_F(TxnBatch, CloseEndsTheCallsWaitingForABatch) {
  four_on_their_way();
  auto& waiting = ask("waiting");
  test::run_for(io, 5ms);
  client.close();
  ASSERT_TRUE(all_answered());
  EXPECT_EQ(*waiting.ec, asio::error::operation_aborted);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(*calls[i]->ec, asio::error::operation_aborted);
}

// Destroyed with batches on their way and calls waiting for one: nothing runs after, nothing leaks (the sanitized
// suite checks), and no new batch is started by the ones being destroyed.
TEST(TxnBatchLifetime, TheClientAndItsIoContextGoWithBatchesInFlight) {
  std::vector<std::unique_ptr<batched_call>> calls;
  {
    asio::io_context io;
    fake_txn_gateway gateway;
    gateway.hold = true;
    fake_http_server server(io.get_executor(), gateway.behaviour());
    etcd::client_config cfg;
    cfg.endpoints = {server.url()};
    auto client = std::make_unique<etcd::client>(io.get_executor(), cfg);
    for (int i = 0; i < 6; ++i) {
      calls.push_back(std::make_unique<batched_call>());
      calls.back()->start(*client, put_txn("k" + std::to_string(i)));
    }
    ASSERT_TRUE(test::run_until(io, [&] { return server.requests() == 2; }, 5s));  // 2 connections: 2 in flight
    client.reset();
    test::run_for(io, 5ms);
  }
  for (auto& c : calls) EXPECT_FALSE(c->ec.has_value() && !*c->ec) << "answered although the server held it";
}

}  // namespace
}  // namespace clusterlock
