#pragma once
// The lock-manager integration fixture: real etcd (shared per suite, or a test's own), managers with event recorders,
// bounded waits. Used by lock_manager_test.cpp and lifecycle_test.cpp.


#include <clusterlock/clusterlock.hpp>

#include "support/child_process.hpp"
#include "support/bounded_wait.hpp"
#include "support/etcd_cluster.hpp"
#include "support/piped_child.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <boost/system/system_error.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#ifndef CLUSTERLOCK_TEST_CONTENDER
#error "CLUSTERLOCK_TEST_CONTENDER must name the clusterlock_test_contender executable"
#endif

namespace clusterlock::test {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using boost::system::error_code;
using steady = std::chrono::steady_clock;

inline long long ns_of(steady::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
inline long long now_ns() { return ns_of(steady::now()); }
inline double ms_between(long long from_ns, long long to_ns) { return static_cast<double>(to_ns - from_ns) / 1e6; }

inline void measure(const std::string& what, double ms) {
  std::printf("[ MEASURE  ] %s: %.1f ms\n", what.c_str(), ms);
  std::fflush(stdout);
  std::string property;  // a valid XML attribute name, for --gtest_output=xml
  for (char c : what) property += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  ::testing::Test::RecordProperty(property, std::to_string(static_cast<long long>(ms)));
}

// ---- events of one subscription, with the time each arrived

struct timed_event {
  lock_event event;
  long long ns = 0;
};

class recorder : public std::enable_shared_from_this<recorder> {
 public:
  using hook_type = std::function<void(const lock_event&)>;

  static std::shared_ptr<recorder> attach(event_subscription sub, hook_type hook = {}) {
    auto r = std::shared_ptr<recorder>(new recorder(std::move(sub), std::move(hook)));
    r->next();
    return r;
  }

  std::vector<timed_event> events;
  std::vector<error_code> errors;  // anything but the final not_started
  bool closed = false;

  std::vector<timed_event> of(lock_event::kind_type k, long long after_ns = 0) const {
    std::vector<timed_event> out;
    for (const auto& e : events)
      if (e.event.kind == k && e.ns > after_ns) out.push_back(e);
    return out;
  }
  std::size_t count(lock_event::kind_type k, long long after_ns = 0) const { return of(k, after_ns).size(); }
  std::optional<timed_event> first(lock_event::kind_type k, long long after_ns = 0) const {
    auto v = of(k, after_ns);
    if (v.empty()) return std::nullopt;
    return v.front();
  }
  std::string dump() const {
    std::string out;
    for (const auto& e : events) {
      std::ostringstream s;
      s << "  " << e.ns / 1000000 << " ms: " << e.event << "\n";
      out += s.str();
    }
    return out;
  }

 private:
  recorder(event_subscription sub, hook_type hook) : sub_(std::move(sub)), hook_(std::move(hook)) {}
  void next() {
    sub_.async_wait_event([w = weak_from_this()](error_code ec, lock_event e) {
      auto self = w.lock();
      if (!self) return;
      if (ec == errc::not_started) {
        self->closed = true;
        return;
      }
      if (ec) {
        self->errors.push_back(ec);
      } else {
        self->events.push_back({e, now_ns()});
        if (self->hook_) self->hook_(self->events.back().event);
      }
      self->next();
    });
  }
  event_subscription sub_;
  hook_type hook_;
};

// Calls `tick` every `period` on the io_context until destroyed.
class sampler {
 public:
  sampler(asio::io_context& io, steady::duration period, std::function<void()> tick)
      : timer_(io), period_(period), tick_(std::move(tick)) {
    arm();
  }
  ~sampler() {
    *alive_ = false;
    timer_.cancel();
  }
  sampler(const sampler&) = delete;
  sampler& operator=(const sampler&) = delete;

 private:
  void arm() {
    timer_.expires_after(period_);
    timer_.async_wait([this, alive = alive_](error_code ec) {
      if (ec || !*alive) return;
      tick_();
      arm();
    });
  }
  asio::steady_timer timer_;
  steady::duration period_;
  std::function<void()> tick_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// At most one of `managers` may say have_lock() at any moment.
struct exclusion_check {
  std::vector<const lock_manager*> managers;
  long checks = 0;
  long violations = 0;
  std::string first_violation;

  void operator()() {
    std::string holders;
    int n = 0;
    for (const auto* m : managers) {
      if (m->have_lock()) {
        ++n;
        holders += m->identity() + " ";
      }
    }
    ++checks;
    if (n > 1 && violations++ == 0) first_violation = holders;
  }
};

// ---- contender output ("KIND field... ns")

inline bool is(const output_line& l, const char* kind) { return !l.fields.empty() && l.fields[0] == kind; }
inline auto kind_after(const char* kind, long long after_ns = 0) {
  return [kind, after_ns](const output_line& l) { return is(l, kind) && l.ns > after_ns; };
}
inline std::int64_t token_of(const output_line& l) { return l.fields.size() > 1 ? std::stoll(l.fields[1]) : 0; }

// ---- the fixture

class lock_manager_it : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { shared_cluster_ = new etcd_cluster(etcd_options{}); }
  static void TearDownTestSuite() {
    delete shared_cluster_;
    shared_cluster_ = nullptr;
  }

  void TearDown() override { shut_down_all(); }

  etcd_cluster& cluster() { return own_cluster_ ? *own_cluster_ : *shared_cluster_; }
  // A cluster of the test's own, for tests that freeze, kill or compact etcd.
  etcd_cluster& own_cluster(etcd_options o = {}) {
    own_cluster_ = std::make_unique<etcd_cluster>(std::move(o));
    return *own_cluster_;
  }

  // Unique per test and per repetition: a key left by a killed contender (until its TTL) must not disturb the
  // next run of the same test.
  static std::string lock_name() {
    static int serial = 0;
    return std::string("mt/") + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "/" +
           std::to_string(::getpid()) + "-" + std::to_string(++serial);
  }

  options make_options(const std::string& name, const std::string& identity, std::chrono::seconds ttl = 2s) {
    options o;
    o.endpoints = cluster().client_urls();
    o.name = name;
    o.identity = identity;
    o.ttl = ttl;
    return o;
  }

  lock_manager& add_manager(options o, recorder::hook_type hook = {}) {
    managers_.push_back(std::make_unique<lock_manager>(io_.get_executor(), std::move(o)));
    auto& m = *managers_.back();
    recorders_.push_back(recorder::attach(m.subscribe(), std::move(hook)));
    return m;
  }
  // A lock on a shared session (made by make_session).
  lock_manager& add_manager(session& on, options o) {
    managers_.push_back(std::make_unique<lock_manager>(on, std::move(o)));
    auto& m = *managers_.back();
    recorders_.push_back(recorder::attach(m.subscribe()));
    return m;
  }
  session& make_session(const std::string& watch_prefix, std::chrono::seconds ttl = 5s) {
    session_options so;
    so.endpoints = cluster().client_urls();
    so.watch_prefix = watch_prefix;
    so.ttl = ttl;
    sessions_.push_back(std::make_unique<session>(io_.get_executor(), std::move(so)));
    return *sessions_.back();
  }
  // The keys under `prefix` in etcd now, read with etcdctl.
  std::vector<std::string> keys_under(const std::string& prefix) {
    std::vector<std::string> keys;
    std::istringstream out(cluster().etcdctl({"get", "--prefix", "--keys-only", prefix}));
    for (std::string line; std::getline(out, line);)
      if (!line.empty()) keys.push_back(line);
    return keys;
  }

  recorder& events_of(const lock_manager& m) {
    for (std::size_t i = 0; i < managers_.size(); ++i)
      if (managers_[i].get() == &m) return *recorders_[i];
    throw std::logic_error("not a manager of this test");
  }

  // Runs the io_context until `pred` holds or `timeout` passes (see clusterlock::test::run_until); returns pred().
  template <class Pred>
  bool run_until(Pred&& pred, steady::duration timeout) {
    return clusterlock::test::run_until(io_, std::forward<Pred>(pred), timeout);
  }
  void run_for(steady::duration d) { test::run_for(io_, d); }

  // Shuts `m` down and waits (bounded) for it; returns the time it was asked, in ns.
  long long shut_down(lock_manager& m, error_code* result = nullptr) {
    bool done = false;
    error_code ec;
    const auto t = now_ns();
    m.async_shutdown([&](error_code e) {
      ec = e;
      done = true;
    });
    EXPECT_TRUE(run_until([&] { return done; }, 5s)) << "async_shutdown did not complete";
    if (result) *result = ec;
    return t;
  }

  void shut_down_all() {
    auto pending = std::make_shared<int>(0);
    for (auto& m : managers_) {
      ++*pending;
      m->async_shutdown([pending](error_code) { --*pending; });
    }
    run_until([&] { return *pending == 0; }, 5s);
  }

  // Starts `m`, waits (bounded) until it holds the lock, then lets it run `settle` into a steady state (keepalives
  // and probes going). Returns its fencing token from when it first held the lock; 0 (a test failure) without it.
  std::int64_t hold_steadily(lock_manager& m, steady::duration settle) {
    m.start();
    const bool held = run_until([&] { return m.have_lock(); }, 5s);
    EXPECT_TRUE(held) << "no lock\n" << events_of(m).dump();
    if (!held) return 0;
    const auto token = m.fencing_token();
    run_for(settle);
    return token;
  }

  std::unique_ptr<piped_child> start_contender(const std::string& name, const std::string& identity,
                                                std::chrono::seconds ttl = 2s,
                                                std::vector<std::string> extra = {},
                                                std::vector<std::string> endpoints = {}) {
    if (endpoints.empty()) endpoints = cluster().client_urls();
    std::string csv;
    for (const auto& e : endpoints) csv += (csv.empty() ? "" : ",") + e;
    std::vector<std::string> argv{CLUSTERLOCK_TEST_CONTENDER, "--endpoints", csv, "--name", name,
                                  "--identity", identity, "--ttl", std::to_string(ttl.count())};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<piped_child>(argv, clean_environment());
  }

  std::unique_ptr<piped_child> start_etcdctl(std::vector<std::string> args) {
    std::vector<std::string> argv{"/usr/bin/etcdctl", "--endpoints=" + cluster().endpoints_csv()};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<piped_child>(argv, clean_environment({"ETCDCTL_API=3"}));
  }

  // The current revision, as etcd reports it in a read's header.
  std::int64_t current_revision() {
    auto out = cluster().etcdctl({"get", "mt-no-such-key", "-w", "json"});
    return boost::json::parse(out).at("header").at("revision").to_number<std::int64_t>();
  }

  static inline etcd_cluster* shared_cluster_ = nullptr;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::unique_ptr<etcd_cluster> own_cluster_;  // before the managers: it outlives them
  std::vector<std::unique_ptr<session>> sessions_;   // before the managers, too
  std::vector<std::unique_ptr<lock_manager>> managers_;
  std::vector<std::shared_ptr<recorder>> recorders_;
};

}  // namespace clusterlock::test
