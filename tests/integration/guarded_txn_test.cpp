// Writes fenced by etcd itself (lock_manager::async_guarded_txn, _put, _delete), against real etcd: written while we
// hold the lock, refused with errc::lock_lost (and nothing written) when etcd no longer has our key, whatever we
// believe.

#include <clusterlock/clusterlock.hpp>

#include "support/hostile_relay.hpp"
#include "support/lock_fixture.hpp"

#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <memory>
#include <optional>
#include <string>

namespace clusterlock {
namespace {

using namespace test;

struct txn_outcome {
  bool done = false;
  error_code ec;
  etcd::txn_response response;
};

class guarded_txn : public lock_manager_it {
 protected:
  // Starts the write now (its check of have_lock() runs first on the strand), then runs the io_context until it
  // completes (bounded).
  template <class Start>
  txn_outcome complete(Start&& start) {
    auto out = std::make_shared<txn_outcome>();
    start([out](error_code ec, etcd::txn_response r) {
      out->ec = ec;
      out->response = std::move(r);
      out->done = true;
    });
    EXPECT_TRUE(run_until([&] { return out->done; }, 10s)) << "the guarded write did not complete";
    return *out;
  }
  std::string value_of(const std::string& key) { return cluster().etcdctl({"get", "--print-value-only", key}); }

  // A manager that holds the lock through `relay`, which can hold its requests up (stall) until it forwards again.
  // The request timeout is long enough for the client to wait for a held-up reply rather than give up.
  lock_manager& hold_through(test::hostile_relay& relay, const std::string& name, std::chrono::seconds timeout = 10s) {
    auto o = make_options(name, "a");
    o.endpoints = {relay.url()};
    o.request_timeout = timeout;
    auto& m = add_manager(o);
    hold_steadily(m, 0s);
    return m;
  }
};

// Where a handler that may run after the test body (in TearDown's shutdown) keeps what it got.
using outcome = std::shared_ptr<std::optional<error_code>>;
outcome make_outcome() { return std::make_shared<std::optional<error_code>>(); }

TEST_F(guarded_txn, writes_while_we_hold_the_lock) {
  const auto name = lock_name();
  auto& m = add_manager(make_options(name, "a"));
  hold_steadily(m, 0s);
  const std::string data = name + "-data";
  auto put = complete([&](auto h) { m.async_guarded_put(data, "v1", h); });
  ASSERT_FALSE(put.ec) << put.ec.message();
  EXPECT_TRUE(put.response.succeeded);
  EXPECT_EQ(value_of(data), "v1\n");

  // The user's own compare decides the rest: it fails, nothing runs, no error.
  etcd::txn_request t;
  t.compares.push_back(etcd::compare::value_of(data, etcd::compare_result::equal, "not-v1"));
  etcd::put_request v2;
  v2.key = data;
  v2.value = "v2";
  t.success.emplace_back(v2);
  auto refused = complete([&](auto h) { m.async_guarded_txn(t, h); });
  ASSERT_FALSE(refused.ec) << refused.ec.message();
  EXPECT_FALSE(refused.response.succeeded);
  EXPECT_TRUE(refused.response.responses.empty()) << "our guard's read is not the user's business";
  EXPECT_EQ(value_of(data), "v1\n");

  auto del = complete([&](auto h) { m.async_guarded_delete(data, h); });
  ASSERT_FALSE(del.ec) << del.ec.message();
  EXPECT_EQ(value_of(data), "");
}

// A failure branch would run exactly when we do not hold the lock: refused before any I/O.
TEST_F(guarded_txn, a_failure_branch_is_refused) {
  const auto name = lock_name();
  auto& m = add_manager(make_options(name, "a"));
  hold_steadily(m, 0s);
  etcd::txn_request t;
  etcd::put_request put;
  put.key = name + "-data";
  put.value = "x";
  t.failure.emplace_back(put);
  auto r = complete([&](auto h) { m.async_guarded_txn(t, h); });
  EXPECT_EQ(r.ec, errc::invalid_options);
  EXPECT_EQ(value_of(name + "-data"), "");
}

// Not holding (never held, or after a release): lock_lost, and etcd is not asked.
TEST_F(guarded_txn, without_the_lock_nothing_is_written) {
  const auto name = lock_name();
  auto& m = add_manager(make_options(name, "a"));
  auto before = complete([&](auto h) { m.async_guarded_put(name + "-data", "x", h); });
  EXPECT_EQ(before.ec, errc::lock_lost);
  hold_steadily(m, 0s);
  bool released = false;
  m.async_release([&](error_code) { released = true; });
  ASSERT_TRUE(run_until([&] { return released; }, 5s));
  auto after = complete([&](auto h) { m.async_guarded_put(name + "-data", "x", h); });
  EXPECT_EQ(after.ec, errc::lock_lost);
  EXPECT_EQ(value_of(name + "-data"), "");
}

// The holder still believes it holds the lock (the io_context has not run since), but etcd deleted our key (an
// operator, or a lease that expired while we were frozen) or revoked our lease: etcd refuses the write. Whether the
// manager heard of it first or not, the answer is lock_lost and nothing is written.
TEST_F(guarded_txn, etcd_refuses_the_write_once_our_key_is_gone) {
  const auto name = lock_name();
  auto& m = add_manager(make_options(name, "a"));
  hold_steadily(m, 0s);
  const std::string data = name + "-data";

  cluster().etcdctl({"del", m.key()});
  ASSERT_TRUE(m.have_lock()) << "the manager cannot know yet: its io_context did not run";
  auto deleted = complete([&](auto h) { m.async_guarded_put(data, "stale", h); });
  EXPECT_EQ(deleted.ec, errc::lock_lost) << deleted.ec.message();
  EXPECT_EQ(value_of(data), "");

  // It contends again (start() keeps it in line) and holds with a new key: then the write goes through.
  ASSERT_TRUE(run_until([&] { return m.have_lock(); }, 5s)) << events_of(m).dump();
  auto fresh = complete([&](auto h) { m.async_guarded_put(data, "fresh", h); });
  EXPECT_FALSE(fresh.ec) << fresh.ec.message();
  EXPECT_EQ(value_of(data), "fresh\n");

  // Our lease revoked by hand: its keys go with it.
  const auto key = m.key();
  const auto lease_hex = key.substr(key.rfind('/') + 1);
  cluster().etcdctl({"lease", "revoke", lease_hex});
  auto revoked = complete([&](auto h) { m.async_guarded_put(data, "after-revoke", h); });
  EXPECT_EQ(revoked.ec, errc::lock_lost) << revoked.ec.message();
  EXPECT_EQ(value_of(data), "fresh\n");
}

// The case only etcd can decide: the write left while we held the lock, and reaches etcd after the lock moved on
// (held up in the network, or in a process frozen after it sent). Cancelling or noticing the loss cannot take it back;
// the guard in the same txn refuses it.
TEST_F(guarded_txn, a_write_held_up_on_its_way_until_after_the_loss_is_refused) {
  const auto name = lock_name();
  test::hostile_relay relay(io_.get_executor(), "127.0.0.1", cluster().client_port(0));
  auto& m = hold_through(relay, name);
  const std::string data = name + "-data";
  const auto key = m.key();

  relay.set_mode(test::hostile_relay::mode::stall);
  auto out = std::make_shared<txn_outcome>();
  m.async_guarded_put(data, "stale", [out](error_code ec, etcd::txn_response) {
    out->ec = ec;
    out->done = true;
  });
  run_for(300ms);  // sent into the relay, where it waits
  ASSERT_FALSE(out->done);
  cluster().etcdctl({"lease", "revoke", key.substr(key.rfind('/') + 1)});  // the lock moves on behind our back
  relay.set_mode(test::hostile_relay::mode::forward);
  ASSERT_TRUE(run_until([&] { return out->done; }, 15s));
  EXPECT_EQ(out->ec, errc::lock_lost) << out->ec.message();
  EXPECT_EQ(value_of(data), "");
}

// Terminal cancellation completes a write on its way at once with operation_aborted; so does a proclaim.
TEST_F(guarded_txn, a_cancelled_write_completes_at_once_with_operation_aborted) {
  const auto name = lock_name();
  test::hostile_relay relay(io_.get_executor(), "127.0.0.1", cluster().client_port(0));
  auto& m = hold_through(relay, name);
  relay.set_mode(test::hostile_relay::mode::stall);
  asio::cancellation_signal put_signal, proclaim_signal;
  auto put = make_outcome(), proclaimed = make_outcome();
  m.async_guarded_put(name + "-data", "x",
                      asio::bind_cancellation_slot(put_signal.slot(), [put](error_code ec, etcd::txn_response) { *put = ec; }));
  m.async_proclaim("elsewhere",
                   asio::bind_cancellation_slot(proclaim_signal.slot(), [proclaimed](error_code ec) { *proclaimed = ec; }));
  run_for(100ms);
  ASSERT_FALSE(*put || *proclaimed) << "the relay stalls: nothing can complete yet";
  const auto start = steady::now();
  put_signal.emit(asio::cancellation_type::terminal);
  proclaim_signal.emit(asio::cancellation_type::terminal);
  ASSERT_TRUE(run_until([&] { return *put && *proclaimed; }, 5s));
  EXPECT_LT(steady::now() - start, 1s);
  EXPECT_EQ(**put, asio::error::operation_aborted);
  EXPECT_EQ(**proclaimed, asio::error::operation_aborted);
  EXPECT_EQ(m.value(), "a") << "a proclaim that did not complete did not change value()";
  relay.set_mode(test::hostile_relay::mode::forward);
}

// Destroyed with a write on its way: the handler still runs, with etcd's answer or operation_aborted, never hangs.
TEST_F(guarded_txn, a_write_in_flight_completes_when_the_manager_is_destroyed) {
  const auto name = lock_name();
  test::hostile_relay relay(io_.get_executor(), "127.0.0.1", cluster().client_port(0));
  auto& m = hold_through(relay, name, 2s);
  relay.set_mode(test::hostile_relay::mode::stall);
  auto put = make_outcome();
  m.async_guarded_put(name + "-data", "x", [put](error_code ec, etcd::txn_response) { *put = ec; });
  run_for(100ms);
  managers_.clear();  // destroys m: it shuts down in the background
  recorders_.clear();
  relay.set_mode(test::hostile_relay::mode::forward);
  ASSERT_TRUE(run_until([&] { return put->has_value(); }, 10s)) << "the handler never ran";
  const error_code ec = **put;
  EXPECT_TRUE(!ec || ec == asio::error::operation_aborted || ec == errc::lock_lost) << ec.message();
}

}  // namespace
}  // namespace clusterlock
