#pragma once
// What the etcd client's integration tests share (etcd_client_*_test.cpp): bounded runs of coroutines, unique key
// prefixes, and the fixture with one shared single member for the operation tests.

#include "support/bounded_wait.hpp"
#include "support/etcd_cluster.hpp"
#include "support/free_port.hpp"
#include "support/tcp_forwarder.hpp"

#include <clusterlock/error.hpp>
#include <clusterlock/etcd/client.hpp>

#include "etcd/with_deadline.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <boost/system/system_error.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

// Requests are written as designated initializers naming only the fields a test sets; GCC 12 warns about every
// field left out, which is exactly the point here.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace clusterlock::test::client_tests {

namespace asio = boost::asio;
namespace etcd = clusterlock::etcd;
using clusterlock::errc;
using clusterlock::make_error_code;
using clusterlock::result;
using clusterlock::test::etcd_cluster;
using clusterlock::test::etcd_options;
using clusterlock::test::run_until;
using boost::system::error_code;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------------------------
// Helpers

// Drives `io` until `done` is ready (bounded: a hang fails the test instead of blocking CI).
template <class T>
T wait_on(asio::io_context& io, std::future<T> done, steady_clock::duration limit) {
  io.restart();
  const auto deadline = steady_clock::now() + limit;
  while (done.wait_for(0s) != std::future_status::ready) {
    if (steady_clock::now() > deadline) throw std::runtime_error("operation did not finish within the test's bound");
    io.run_one_for(20ms);
    if (io.stopped()) io.restart();
  }
  return done.get();
}

// Runs the coroutine `op` to its end on `io`.
template <class T>
T run(asio::io_context& io, asio::awaitable<T> op, steady_clock::duration limit = 60s) {
  return wait_on(io, asio::co_spawn(io, std::move(op), asio::use_future), limit);
}

// The same for a coroutine lambda, given itself (not called): co_spawn keeps the lambda, whose captures the
// coroutine reads, alive until the coroutine ends, also when the bound ran out first.
template <class F>
  requires std::invocable<F&>
auto run(asio::io_context& io, F body, steady_clock::duration limit = 60s) {
  return wait_on(io, asio::co_spawn(io, std::move(body), asio::use_future), limit);
}

// A key prefix no other test (nor another repetition of this one) uses.
inline std::string unique_prefix() {
  static std::atomic<int> counter{0};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return "/ctest/" + std::string(info->test_suite_name()) + "." + info->name() + "/" + std::to_string(++counter) + "/";
}

template <class T>
std::string describe(const result<T>& r) {
  return r ? std::string("success") : r.error().what();
}

inline etcd::client_config config_for(std::vector<std::string> endpoints) {
  etcd::client_config c;
  c.endpoints = std::move(endpoints);
  return c;
}

inline milliseconds elapsed_since(steady_clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
}

// Every byte value once, in order.
inline std::string all_bytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  return s;
}

// Reads watch messages until `count` events arrived (or fails the test after `limit`).
inline std::vector<etcd::watch_event> read_events(asio::io_context& io, etcd::watch_stream& w, std::size_t count,
                                           milliseconds limit = 10s) {
  return run(io, [&]() -> asio::awaitable<std::vector<etcd::watch_event>> {
    std::vector<etcd::watch_event> events;
    const auto deadline = steady_clock::now() + limit;
    while (events.size() < count) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
      if (left <= 0ms) break;
      auto m = co_await w.next(left);
      if (!m) {
        ADD_FAILURE() << "watch ended after " << events.size() << " of " << count << " events: " << describe(m);
        break;
      }
      for (auto& e : m->events) events.push_back(std::move(e));
    }
    co_return events;
  });
}

// Resumes a stopped member when the test ends, also when it fails half-way.
struct resume_on_exit {
  etcd_cluster& cluster;
  int member;
  ~resume_on_exit() { cluster.cont(member); }
};

// ---------------------------------------------------------------------------------------------------------------
// One shared single member for the operation tests.

class EtcdClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new etcd_cluster(etcd_options{}); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  void SetUp() override {
    client_ = std::make_unique<etcd::client>(io_.get_executor(), config_for({cluster_->client_url(0)}));
    prefix_ = unique_prefix();
  }

  std::string key(const std::string& name) const { return prefix_ + name; }

  etcd::put_response put(const std::string& k, const std::string& v, std::int64_t lease = 0) {
    auto r = run(io_, client_->put({k, v, lease, false}));
    EXPECT_TRUE(r) << describe(r);
    return r ? *r : etcd::put_response{};
  }

  etcd::range_response range(etcd::range_request req) {
    auto r = run(io_, client_->range(std::move(req)));
    EXPECT_TRUE(r) << describe(r);
    return r ? *r : etcd::range_response{};
  }

  etcd::range_response range_prefix(etcd::range_request req = {}) {
    req.key = prefix_;
    req.range_end = etcd::prefix_range_end(prefix_);
    return range(std::move(req));
  }

  static std::vector<std::string> keys_of(const etcd::range_response& r) {
    std::vector<std::string> out;
    for (const auto& kv : r.kvs) out.push_back(kv.key);
    return out;
  }

  inline static etcd_cluster* cluster_ = nullptr;
  asio::io_context io_;
  std::unique_ptr<etcd::client> client_;
  std::string prefix_;
};



}  // namespace clusterlock::test::client_tests
