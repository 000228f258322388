// watch_scope::predecessor against real etcd: FIFO hand-off with increasing tokens, one waiter told per release
// (etcd's own count of the events it sent), keys deleted by hand (the holder's, a waiter's, the one ahead), and
// interop with etcdctl lock.

#include <clusterlock/clusterlock.hpp>

#include "support/bounded_wait.hpp"
#include "support/etcd_cluster.hpp"
#include "support/http_probe.hpp"
#include "support/lock_fixture.hpp"
#include "support/piped_child.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace clusterlock {
namespace {

using namespace test;
using namespace std::chrono_literals;

class predecessor_it : public lock_manager_it {
 protected:
  // A member: the managers' hooks call it until TearDown has shut them down, also after a failed ASSERT.
  exclusion_check exclusive;

  options pred_options(const std::string& name, const std::string& identity) {
    auto o = make_options(name, identity, 5s);
    o.watch = watch_scope::predecessor;
    return o;
  }
  // A counter (or gauge) of etcd's member from its /metrics: the line that starts with `series`.
  long long etcd_metric(const std::string& series) {
    http_request_options o;
    o.target = "/metrics";
    auto r = http_request(cluster().client_urls().front(), o);
    EXPECT_TRUE(r) << "no /metrics";
    if (!r) return 0;
    std::istringstream in(r->body);
    for (std::string line; std::getline(in, line);)
      if (line.starts_with(series + " ")) return std::stoll(line.substr(series.size() + 1));
    ADD_FAILURE() << "no " << series << " in /metrics";
    return 0;
  }
  // Events etcd's member has sent to watchers so far.
  long long events_sent() { return etcd_metric("etcd_debugging_mvcc_events_total"); }
  // Watch streams etcd has started so far: through the gateway, each is a connection of ours.
  long long watches_started() {
    return etcd_metric(R"(grpc_server_started_total{grpc_method="Watch",grpc_service="etcdserverpb.Watch",)"
                       R"(grpc_type="bidi_stream"})");
  }
  // Managers in line, oldest first, once each has its key (every one sees at most itself and the key ahead).
  std::vector<lock_manager*> line_up(const std::string& name, int n, watch_scope scope,
                                     const std::function<void(options&)>& tweak = {}) {
    std::vector<lock_manager*> ms;
    for (int i = 0; i < n; ++i) {
      auto o = pred_options(name, "p-" + std::to_string(i));
      o.watch = scope;
      if (tweak) tweak(o);
      ms.push_back(&add_manager(o, [&](const lock_event&) { exclusive(); }));
      exclusive.managers.push_back(ms.back());
      ms.back()->start();
      // One at a time: the line's order is the order of starting.
      EXPECT_TRUE(run_until([&] { return !ms.back()->queue().empty(); }, 10s)) << "no key for " << i;
    }
    return ms;
  }
};

TEST_F(predecessor_it, fifo_handoff_with_increasing_tokens_and_a_view_of_the_key_ahead_only) {
  const auto name = lock_name();
  auto ms = line_up(name, 5, watch_scope::predecessor);
  sampler fast(io_, 1ms, [&] { exclusive(); });
  ASSERT_TRUE(run_until([&] { return ms[0]->have_lock(); }, 5s));
  ASSERT_TRUE(ms[0]->holder());
  EXPECT_EQ(ms[0]->holder()->identity, "p-0");
  for (std::size_t i = 1; i < ms.size(); ++i) {
    EXPECT_FALSE(ms[i]->holder()) << "a waiter does not follow the holder";
    const auto q = ms[i]->queue();
    ASSERT_EQ(q.size(), 2u) << "a waiter sees the key ahead and its own";
    EXPECT_EQ(q[0].identity, "p-" + std::to_string(i - 1));
    EXPECT_EQ(q[1].identity, "p-" + std::to_string(i));
  }
  std::int64_t last = 0;
  for (std::size_t k = 0; k < ms.size(); ++k) {
    ASSERT_TRUE(run_until([&] { return ms[k]->have_lock(); }, 5s)) << k << " never got the lock";
    EXPECT_GT(ms[k]->fencing_token(), last);
    last = ms[k]->fencing_token();
    for (std::size_t j = k + 1; j < ms.size(); ++j) EXPECT_EQ(events_of(*ms[j]).count(lock_event::acquired), 0u);
    shut_down(*ms[k]);
  }
  for (auto* m : ms) {
    EXPECT_EQ(events_of(*m).count(lock_event::holder_changed), 0u) << events_of(*m).dump();
    EXPECT_EQ(events_of(*m).count(lock_event::unknown), 0u) << events_of(*m).dump();
  }
  EXPECT_EQ(exclusive.violations, 0) << "two holders at once: " << exclusive.first_violation;
}

// The point of the mode: a release reaches the one waiter behind it (and the holder's own watch), not the line.
// etcd counts every event it sends to a watcher; the line scope sends each release to every contender.
TEST_F(predecessor_it, a_release_is_sent_to_one_waiter_not_to_the_whole_line) {
  constexpr int n = 8;
  auto per_handoff = [&](watch_scope scope) {
    const auto name = lock_name();
    auto ms = line_up(name, n, scope);
    EXPECT_TRUE(run_until([&] { return ms[0]->have_lock(); }, 5s));
    run_for(300ms);  // every watch stands (a predecessor waiter makes its own after its read)
    const auto before = events_sent();
    for (int k = 0; k < 4; ++k) {
      bool done = false;
      ms[k]->async_release([&](boost::system::error_code) { done = true; });
      EXPECT_TRUE(run_until([&] { return done && ms[k + 1]->have_lock(); }, 5s)) << "hand-off " << k;
    }
    const double sent = static_cast<double>(events_sent() - before) / 4;
    EXPECT_EQ(exclusive.violations, 0);
    shut_down_all();
    return sent;
  };
  const double line = per_handoff(watch_scope::line);
  const double pred = per_handoff(watch_scope::predecessor);
  std::printf("[ MEASURE  ] events etcd sent per hand-off, %d contenders: line %.1f, predecessor %.1f\n", n, line, pred);
  EXPECT_GE(line, n - 1.0) << "the line scope tells every contender";
  EXPECT_LE(pred, 3.0) << "the released key's DELETE to its own watch and the next waiter's";
}

// The second in line watches the key ahead and its own on one watch: the DELETE alone is its turn, with no request
// (as with the whole line); further back, the turn takes a read. Long TTL and probe interval: no keepalive or probe
// falls into the hand-offs, so the session's request count says what the turn cost.
TEST_F(predecessor_it, the_second_in_line_takes_its_turn_without_a_request_and_the_third_with_one_read) {
  auto ms = line_up(lock_name(), 3, watch_scope::predecessor, [](options& o) {
    o.ttl = 30s;
    o.probe_interval = 20s;
  });
  ASSERT_TRUE(run_until([&] { return ms[0]->have_lock(); }, 5s));
  run_for(300ms);  // every watch stands
  auto requests = [](const lock_manager& m) { return m.stats().session.requests.requests; };
  std::uint64_t at_turn = 0;
  ms[1]->on_acquired([&](const lock_event&) { at_turn = requests(*ms[1]); });
  const auto before_second = requests(*ms[1]);
  ms[0]->async_release([](boost::system::error_code) {});
  ASSERT_TRUE(run_until([&] { return at_turn != 0; }, 5s));
  EXPECT_EQ(at_turn - before_second, 0u) << "the second in line read or wrote to take its turn";

  at_turn = 0;
  ms[2]->on_acquired([&](const lock_event&) { at_turn = requests(*ms[2]); });
  run_for(300ms);
  const auto before_third = requests(*ms[2]);
  ms[1]->async_release([](boost::system::error_code) {});
  ASSERT_TRUE(run_until([&] { return at_turn != 0; }, 5s));
  EXPECT_EQ(at_turn - before_third, 1u) << "the third in line reads who is ahead once the key ahead goes";
}

// A lock taken in turns needs the same keys again: its own while it holds and, while it waits, the key of whoever
// queued just before it. It keeps the watches it used (two at most) instead of making new ones: once each lock of
// the line has held and waited, a turn starts no watch (etcd's own count). Before, every turn started two.
TEST_F(predecessor_it, locks_taken_in_turns_start_no_watch_once_each_has_held_and_waited) {
  auto ms = line_up(lock_name(), 3, watch_scope::predecessor, [](options& o) {
    o.ttl = 30s;
    o.probe_interval = 20s;
  });
  sampler fast(io_, 1ms, [&] { exclusive(); });
  ASSERT_TRUE(run_until([&] { return ms[0]->have_lock(); }, 5s));
  auto turn = [&](std::size_t k) {  // the holder goes to the back of the line and the next one takes over
    auto& holder = *ms[k % ms.size()];
    const auto token = holder.fencing_token();
    bool released = false;
    holder.async_release([&](boost::system::error_code ec) {
      EXPECT_FALSE(ec) << ec.message();
      released = true;
      holder.start();
    });
    // Until the next one holds and this one is back in line, behind the key ahead of it: the turns of a line
    // that holds for a while.
    return run_until([&] {
      const auto q = holder.queue();
      return released && ms[(k + 1) % ms.size()]->fencing_token() > token && q.size() == 2 &&
             q.back().fencing_token > token;
    }, 5s);
  };
  for (std::size_t k = 0; k < 2 * ms.size(); ++k) ASSERT_TRUE(turn(k)) << "turn " << k;
  run_for(300ms);  // the last watches made stand
  auto restarts = [&] {
    std::uint64_t n = 0;
    for (auto* m : ms) n += m->stats().session.watch_restarts;
    return n;
  };
  const auto before = watches_started();
  const auto restarts_before = restarts();
  for (std::size_t k = 2 * ms.size(); k < 4 * ms.size(); ++k) ASSERT_TRUE(turn(k)) << "turn " << k;
  // On a loaded machine a watch may break (its opening timed out) and be opened again: etcd starts a stream for
  // that too. None may be new.
  const auto started = watches_started() - before;
  const auto reopened = static_cast<long long>(restarts() - restarts_before);
  EXPECT_LE(started, reopened) << started << " watches started in " << 2 * ms.size() << " turns, " << reopened
                               << " of them broken watches opened again";
  EXPECT_LE(etcd_metric("etcd_debugging_mvcc_watch_stream_total"), 2 * static_cast<long long>(ms.size()))
      << "more than two watches a lock";
  EXPECT_EQ(exclusive.violations, 0) << exclusive.first_violation;
}

// The watches a released lock keeps for its next turn close once it wants no key at a probe round.
TEST_F(predecessor_it, a_released_lock_that_wants_no_key_closes_its_watches_at_the_next_probe_round) {
  auto ms = line_up(lock_name(), 2, watch_scope::predecessor, [](options& o) { o.probe_interval = 50ms; });
  ASSERT_TRUE(run_until([&] { return ms[0]->have_lock(); }, 5s));
  const auto streams = [&] { return etcd_metric("etcd_debugging_mvcc_watch_stream_total"); };
  ASSERT_TRUE(run_until([&] { return streams() >= 2; }, 5s)) << "the holder's watch and the waiter's";
  for (auto* m : ms) {
    bool released = false;
    m->async_release([&](boost::system::error_code) { released = true; });
    ASSERT_TRUE(run_until([&] { return released; }, 5s));
  }
  EXPECT_TRUE(run_until([&] { return streams() == 0; }, 5s)) << streams() << " watches still open";
}

// A waiter that follows only the key ahead claims nothing: it probes one round in ten (1,000 waiters probing every
// second cost etcd more than their hand-offs). The holder probes every round, as with the line.
TEST_F(predecessor_it, a_waiter_probes_one_round_in_ten_and_the_holder_every_round) {
  auto ms = line_up(lock_name(), 3, watch_scope::predecessor, [](options& o) { o.probe_interval = 20ms; });
  ASSERT_TRUE(run_until([&] { return ms[0]->have_lock(); }, 5s));
  auto probes = [](const lock_manager& m) { return m.stats().session.probe_latency.count; };
  const auto holder_before = probes(*ms[0]), waiter_before = probes(*ms[2]);
  run_for(2s);  // about 100 rounds (fewer on a loaded machine: each waits for the last probe's answer)
  const auto holder = probes(*ms[0]) - holder_before, waiter = probes(*ms[2]) - waiter_before;
  std::printf("[ MEASURE  ] probes in 2 s at 20 ms: holder %llu, third in line %llu\n",
              static_cast<unsigned long long>(holder), static_cast<unsigned long long>(waiter));
  EXPECT_GE(holder, 20u);
  EXPECT_LE(waiter * 5, holder) << "the waiter probed about as often as the holder";
  EXPECT_GE(waiter, 1u) << "the waiter never proved its watch";
  EXPECT_FALSE(ms[2]->have_lock());
}

TEST_F(predecessor_it, the_holders_key_deleted_by_hand_is_removed_at_once_and_the_next_waiter_takes_over) {
  const auto name = lock_name();
  auto ms = line_up(name, 3, watch_scope::predecessor);
  ASSERT_TRUE(run_until([&] { return ms[0]->have_lock(); }, 5s));
  run_for(200ms);
  cluster().etcdctl({"del", ms[0]->key()});
  ASSERT_TRUE(run_until([&] { return events_of(*ms[0]).count(lock_event::removed) > 0; }, 500ms))
      << "REMOVED from the holder's own watch, not a probe a second later\n" << events_of(*ms[0]).dump();
  EXPECT_FALSE(ms[0]->have_lock());
  ASSERT_TRUE(run_until([&] { return ms[1]->have_lock(); }, 5s));
  EXPECT_EQ(exclusive.violations, 0);
}

TEST_F(predecessor_it, a_waiters_key_deleted_by_hand_never_holds_and_goes_back_in_line) {
  const auto name = lock_name();
  auto ms = line_up(name, 3, watch_scope::predecessor);
  sampler fast(io_, 1ms, [&] { exclusive(); });
  ASSERT_TRUE(run_until([&] { return ms[0]->have_lock(); }, 5s));
  const auto gone = ms[1]->key();
  const auto gone_token = ms[1]->queue().back().fencing_token;
  cluster().etcdctl({"del", gone});
  shut_down(*ms[0]);  // its release reaches ms[1]'s watch: the read after it finds ms[1]'s key gone
  // ms[2] was behind ms[1]: ms[1]'s key went first, so ms[2] is next; ms[1] went back in line, behind it.
  ASSERT_TRUE(run_until([&] { return ms[2]->have_lock(); }, 5s)) << events_of(*ms[2]).dump();
  EXPECT_EQ(events_of(*ms[1]).count(lock_event::acquired), 0u) << events_of(*ms[1]).dump();
  shut_down(*ms[2]);
  ASSERT_TRUE(run_until([&] { return ms[1]->have_lock(); }, 5s)) << events_of(*ms[1]).dump();
  EXPECT_GT(ms[1]->fencing_token(), gone_token) << "a new key, a new token";
  EXPECT_EQ(exclusive.violations, 0) << exclusive.first_violation;
}

TEST_F(predecessor_it, the_key_ahead_leaving_the_line_sends_the_waiter_to_the_next_one_ahead) {
  const auto name = lock_name();
  auto ms = line_up(name, 3, watch_scope::predecessor);
  sampler fast(io_, 1ms, [&] { exclusive(); });
  ASSERT_TRUE(run_until([&] { return ms[0]->have_lock(); }, 5s));
  shut_down(*ms[1]);  // ms[2]'s key ahead goes while the holder stays
  ASSERT_TRUE(run_until([&] {
    const auto q = ms[2]->queue();
    return q.size() == 2 && q[0].identity == "p-0";
  }, 5s)) << "ms[2] now watches the holder";
  run_for(200ms);
  EXPECT_FALSE(ms[2]->have_lock());
  shut_down(*ms[0]);
  ASSERT_TRUE(run_until([&] { return ms[2]->have_lock(); }, 5s));
  EXPECT_EQ(exclusive.violations, 0) << exclusive.first_violation;
}

TEST_F(predecessor_it, waits_behind_etcdctl_lock_and_etcdctl_waits_behind_it) {
  const auto name = lock_name();
  auto holds = [&](piped_child& c) { return c.find([&](auto& l) { return l.text.rfind(name + "/", 0) == 0; }).has_value(); };
  auto first = start_etcdctl({"lock", name});  // prints its key once it holds, and holds until stopped
  ASSERT_TRUE(run_until([&] { return holds(*first); }, 10s)) << first->text();
  auto& m = add_manager(pred_options(name, "after-etcdctl"));
  m.start();
  ASSERT_TRUE(run_until([&] { return m.queue().size() == 2; }, 5s));
  run_for(300ms);
  EXPECT_FALSE(m.have_lock());
  first->terminate();
  ASSERT_TRUE(run_until([&] { return m.have_lock(); }, 5s)) << events_of(m).dump();
  auto second = start_etcdctl({"lock", name});
  run_for(1s);
  EXPECT_FALSE(holds(*second)) << second->text();
  shut_down(m);
  EXPECT_TRUE(run_until([&] { return holds(*second); }, 10s)) << second->text();
  second->terminate();
}

// On a shared session a lock that follows only the key ahead has a watch of its own; a lock beside it on the same
// session follows its whole line through the session's watch, as before.
TEST_F(predecessor_it, on_a_shared_session_beside_a_lock_that_follows_the_line) {
  const auto prefix = lock_name() + "/";
  auto& shared = make_session(prefix);
  auto o = pred_options(prefix + "a", "shared-a");
  auto& a = add_manager(shared, o);
  o.name = prefix + "b";
  o.identity = "shared-b";
  o.watch = watch_scope::line;
  auto& b = add_manager(shared, o);
  auto& holder_a = add_manager(pred_options(prefix + "a", "holder-a"));
  auto& holder_b = add_manager(make_options(prefix + "b", "holder-b"));
  holder_a.start();
  holder_b.start();
  ASSERT_TRUE(run_until([&] { return holder_a.have_lock() && holder_b.have_lock(); }, 5s));
  a.start();
  b.start();
  ASSERT_TRUE(run_until([&] { return a.queue().size() == 2 && b.queue().size() == 2; }, 5s));
  ASSERT_TRUE(b.holder());
  EXPECT_EQ(b.holder()->identity, "holder-b") << "the line's lock knows its holder";
  EXPECT_FALSE(a.holder()) << "the predecessor's does not";
  shut_down(holder_a);
  ASSERT_TRUE(run_until([&] { return a.have_lock(); }, 5s)) << events_of(a).dump();
  EXPECT_FALSE(b.have_lock());
  shut_down(holder_b);
  ASSERT_TRUE(run_until([&] { return b.have_lock(); }, 5s)) << events_of(b).dump();
  EXPECT_GT(events_of(b).count(lock_event::holder_changed), 0u);
  EXPECT_EQ(events_of(a).count(lock_event::holder_changed), 0u);
}

TEST_F(predecessor_it, an_observer_or_a_semaphore_with_predecessor_is_refused) {
  auto o = pred_options(lock_name(), "observer");
  o.contend = false;
  try {
    lock_manager m(io_.get_executor(), o);
    ADD_FAILURE() << "an observer with watch_scope::predecessor was accepted";
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), errc::invalid_options);
    EXPECT_NE(std::string(e.what()).find("watch"), std::string::npos) << e.what();
  }
  try {
    semaphore s(io_.get_executor(), pred_options(lock_name(), "sem"), 2);
    ADD_FAILURE() << "a semaphore with watch_scope::predecessor was accepted";
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), errc::invalid_options);
    EXPECT_NE(std::string(e.what()).find("watch"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace clusterlock
