// lock_manager against real etcd: mutual exclusion and FIFO hand-off, interop with `etcdctl lock`, lease refresh,
// holders that die or freeze (in a process of their own: clusterlock_test_contender), etcd frozen, killed or losing
// a member, keys and leases removed by hand, compacted history, observers, completion tokens, invalid options.
//
// Every wait is bounded (run_until). Times are CLOCK_MONOTONIC nanoseconds (steady_clock), the clock the contender
// program prints too. Measured numbers are printed as "[ MEASURE  ] ..." lines and recorded as test properties.

#include <clusterlock/clusterlock.hpp>

#include "support/child_process.hpp"
#include "support/bounded_wait.hpp"
#include "support/etcd_cluster.hpp"
#include "support/piped_child.hpp"
#include "support/lock_fixture.hpp"

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

namespace clusterlock {
namespace {

using namespace test;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using boost::system::error_code;
using steady = std::chrono::steady_clock;


// ---- one holder at a time, FIFO

TEST_F(lock_manager_it, one_holder_at_a_time_and_fifo_handoff_with_increasing_tokens) {
  const auto name = lock_name();
  exclusion_check exclusive;
  std::vector<lock_manager*> ms;
  for (int i = 0; i < 4; ++i) {
    ms.push_back(&add_manager(make_options(name, "fifo-" + std::to_string(i)), [&](const lock_event&) { exclusive(); }));
    exclusive.managers.push_back(ms.back());
  }
  sampler fast(io_, 1ms, [&] { exclusive(); });
  for (auto* m : ms) m->start();

  // All four enqueued, and every one sees the same queue (oldest first).
  ASSERT_TRUE(run_until([&] { return std::all_of(ms.begin(), ms.end(), [](auto* m) { return m->queue().size() == 4; }); },
                        10s));
  const auto order = ms[0]->queue();
  for (auto* m : ms) {
    auto q = m->queue();
    for (std::size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(q[i].key, order[i].key);
      EXPECT_EQ(q[i].fencing_token, order[i].fencing_token);
    }
  }
  for (std::size_t i = 1; i < order.size(); ++i) EXPECT_LT(order[i - 1].fencing_token, order[i].fencing_token);
  auto by_identity = [&](const std::string& id) {
    for (auto* m : ms)
      if (m->identity() == id) return m;
    throw std::logic_error("no manager " + id);
  };

  std::int64_t last_token = 0;
  for (std::size_t k = 0; k < order.size(); ++k) {
    auto* holder = by_identity(order[k].identity);
    ASSERT_TRUE(run_until([&] { return holder->have_lock(); }, 5s)) << order[k].identity << " never got the lock";
    EXPECT_EQ(holder->fencing_token(), order[k].fencing_token);
    EXPECT_GT(holder->fencing_token(), last_token);
    last_token = holder->fencing_token();
    auto acquired = events_of(*holder).of(lock_event::acquired);
    ASSERT_EQ(acquired.size(), 1u) << events_of(*holder).dump();
    EXPECT_EQ(acquired[0].event.fencing_token, order[k].fencing_token);
    EXPECT_EQ(acquired[0].event.holder, order[k].identity);
    // Nobody behind it has it, or ever had it.
    for (std::size_t j = k + 1; j < order.size(); ++j) EXPECT_EQ(events_of(*by_identity(order[j].identity)).count(lock_event::acquired), 0u);

    const auto asked = shut_down(*holder);
    EXPECT_FALSE(holder->have_lock());
    if (k + 1 < order.size()) {
      auto& next = events_of(*by_identity(order[k + 1].identity));
      ASSERT_TRUE(run_until([&] { return next.count(lock_event::acquired) > 0; }, 5s));
      measure("fifo hand-off " + std::to_string(k), ms_between(asked, next.first(lock_event::acquired)->ns));
    }
  }
  for (auto* m : ms) EXPECT_EQ(events_of(*m).count(lock_event::unknown), 0u) << events_of(*m).dump();
  EXPECT_EQ(exclusive.violations, 0) << "two holders at once: " << exclusive.first_violation;
  EXPECT_GT(exclusive.checks, 20);  // it ran: at every event, and every millisecond
}

// ---- interop with etcdctl lock

TEST_F(lock_manager_it, waits_while_etcdctl_holds_the_lock_and_acquires_when_it_exits) {
  const auto name = lock_name();
  auto etcdctl = start_etcdctl({"lock", name});
  // `etcdctl lock NAME` prints its key once it holds the lock, and holds until it is told to stop.
  ASSERT_TRUE(run_until([&] { return etcdctl->find([&](auto& l) { return l.text.rfind(name + "/", 0) == 0; }).has_value(); },
                        10s))
      << etcdctl->text();
  const auto etcdctl_key = etcdctl->find([&](auto& l) { return l.text.rfind(name + "/", 0) == 0; })->text;

  auto& m = add_manager(make_options(name, "us"));
  bool had_it_too_early = false;
  bool etcdctl_gone = false;
  sampler watch(io_, 2ms, [&] { had_it_too_early |= (!etcdctl_gone && m.have_lock()); });
  m.start();
  ASSERT_TRUE(run_until([&] { return m.queue().size() == 2 && !m.key().empty(); }, 5s));
  auto front = m.holder();
  ASSERT_TRUE(front);
  EXPECT_EQ(front->key, etcdctl_key);
  EXPECT_EQ(front->identity, "");  // etcdctl writes an empty value
  // It saw etcdctl as the holder.
  auto changes = events_of(m).of(lock_event::holder_changed);
  ASSERT_FALSE(changes.empty());
  EXPECT_EQ(changes.back().event.fencing_token, front->fencing_token);
  // Still behind etcdctl a while later.
  run_for(1s);
  EXPECT_FALSE(m.have_lock());
  EXPECT_EQ(events_of(m).count(lock_event::acquired), 0u);

  const auto t_kill = now_ns();
  etcdctl_gone = true;
  etcdctl->terminate();  // etcdctl lock deletes its key on SIGTERM
  ASSERT_TRUE(run_until([&] { return m.have_lock(); }, 5s)) << events_of(m).dump();
  measure("etcdctl SIGTERM -> ACQUIRED", ms_between(t_kill, events_of(m).first(lock_event::acquired)->ns));
  EXPECT_GT(m.fencing_token(), front->fencing_token);
  EXPECT_FALSE(had_it_too_early);
}

TEST_F(lock_manager_it, etcdctl_lock_waits_while_we_hold_the_lock) {
  const auto name = lock_name();
  auto& m = add_manager(make_options(name, "us"));
  m.start();
  ASSERT_TRUE(run_until([&] { return m.have_lock(); }, 5s));
  const auto our_token = m.fencing_token();

  // The command runs once etcdctl holds the lock; it prints the key and revision etcdctl got.
  auto etcdctl = start_etcdctl({"lock", name, "--", "/bin/sh", "-c", "echo GOT $ETCD_LOCK_KEY $ETCD_LOCK_REV"});
  ASSERT_TRUE(run_until([&] { return m.queue().size() == 2; }, 10s)) << etcdctl->text();
  run_for(1s);
  EXPECT_TRUE(m.have_lock());
  EXPECT_FALSE(etcdctl->find(kind_after("GOT"))) << etcdctl->text();
  EXPECT_FALSE(etcdctl->exited()) << etcdctl->text();

  const auto asked = shut_down(m);
  ASSERT_TRUE(run_until([&] { return etcdctl->find(kind_after("GOT")).has_value(); }, 5s)) << etcdctl->text();
  const auto got = *etcdctl->find(kind_after("GOT"));
  measure("our shutdown -> etcdctl lock runs its command", ms_between(asked, ns_of(got.seen)));
  ASSERT_EQ(got.fields.size(), 3u) << got.text;
  EXPECT_EQ(got.fields[1].rfind(name + "/", 0), 0u);
  EXPECT_GT(std::stoll(got.fields[2]), our_token);
  EXPECT_TRUE(run_until([&] { return etcdctl->exited(); }, 5s));
  EXPECT_EQ(etcdctl->exit_code(), 0) << etcdctl->text();
}

// ---- lease refresh

TEST_F(lock_manager_it, holder_keeps_the_lock_past_three_ttls_by_refreshing_its_lease) {
  const auto name = lock_name();
  auto& m = add_manager(make_options(name, "keeper", 2s));
  m.start();
  ASSERT_TRUE(run_until([&] { return m.have_lock(); }, 5s));
  const auto token = m.fencing_token();
  const auto key = m.key();

  long samples = 0, lost = 0;
  {
    sampler s(io_, 10ms, [&] {
      ++samples;
      if (!m.have_lock() || m.fencing_token() != token) ++lost;
    });
    run_for(7s);  // > 3 x TTL
  }
  EXPECT_GT(samples, 300);
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(events_of(m).count(lock_event::unknown), 0u) << events_of(m).dump();
  EXPECT_EQ(events_of(m).count(lock_event::removed), 0u) << events_of(m).dump();
  // etcd agrees: the lease lives and the key is the one we created.
  const auto lease_hex = key.substr(key.rfind('/') + 1);
  const auto ttl = cluster().etcdctl({"lease", "timetolive", lease_hex});
  EXPECT_THAT(ttl, ::testing::HasSubstr("remaining(")) << ttl;
  EXPECT_THAT(ttl, ::testing::Not(::testing::HasSubstr("expired"))) << ttl;
  auto kv = boost::json::parse(cluster().etcdctl({"get", key, "-w", "json"}));
  ASSERT_EQ(kv.at("kvs").as_array().size(), 1u);
  EXPECT_EQ(kv.at("kvs").at(0).at("create_revision").to_number<std::int64_t>(), token);
}

// ---- a holder in another process: killed, frozen

TEST_F(lock_manager_it, killed_holder_process_loses_the_lock_within_its_ttl) {
  const auto name = lock_name();
  auto holder = start_contender(name, "doomed", 2s);
  ASSERT_TRUE(run_until([&] { return holder->find(kind_after("ACQUIRED")).has_value(); }, 10s)) << holder->text();
  const auto holder_token = token_of(*holder->find(kind_after("ACQUIRED")));

  auto& m = add_manager(make_options(name, "heir", 2s));
  m.start();
  ASSERT_TRUE(run_until([&] { return m.queue().size() == 2; }, 5s));
  EXPECT_EQ(m.holder()->identity, "doomed");
  EXPECT_FALSE(m.have_lock());

  const auto t_kill = now_ns();
  holder->kill();
  ASSERT_TRUE(run_until([&] { return m.have_lock(); }, 8s)) << events_of(m).dump();
  const auto latency = ms_between(t_kill, events_of(m).first(lock_event::acquired)->ns);
  measure("SIGKILL holder (ttl 2 s) -> next ACQUIRED", latency);
  EXPECT_LT(latency, 3000.0);  // TTL + 1 s
  EXPECT_GT(m.fencing_token(), holder_token);
}

TEST_F(lock_manager_it, frozen_holder_process_stops_claiming_the_lock_when_it_wakes) {
  const auto name = lock_name();
  auto frozen = start_contender(name, "sleeper", 2s);
  ASSERT_TRUE(run_until([&] { return frozen->find(kind_after("ACQUIRED")).has_value(); }, 10s)) << frozen->text();
  const auto frozen_token = token_of(*frozen->find(kind_after("ACQUIRED")));

  auto& m = add_manager(make_options(name, "awake", 2s));
  m.start();
  ASSERT_TRUE(run_until([&] { return m.queue().size() == 2; }, 5s));

  const auto t_stop = now_ns();
  frozen->stop();
  ASSERT_TRUE(run_until([&] { return m.have_lock(); }, 8s)) << events_of(m).dump();
  const auto t_acquired = events_of(m).first(lock_event::acquired)->ns;
  measure("SIGSTOP holder (ttl 2 s) -> next ACQUIRED", ms_between(t_stop, t_acquired));
  run_for(300ms);

  const auto t_cont = now_ns();
  frozen->cont();
  // It finds out at once: its lease ran out while it slept.
  ASSERT_TRUE(run_until(
      [&] { return frozen->find(kind_after("REMOVED", t_cont)) || frozen->find(kind_after("UNKNOWN", t_cont)); }, 5s))
      << frozen->text();
  const auto lost = frozen->find(
      [&](auto& l) { return (is(l, "REMOVED") || is(l, "UNKNOWN")) && l.ns > t_cont; });
  measure("SIGCONT -> frozen holder reports " + lost->fields[0], ms_between(t_cont, lost->ns));
  // Let it report have_lock() a few more times, while we still hold the lock.
  ASSERT_TRUE(run_until([&] { return frozen->count(kind_after("HAVE", t_cont)) >= 5; }, 5s)) << frozen->text();
  ASSERT_TRUE(m.have_lock());
  EXPECT_EQ(frozen->count([&](auto& l) { return is(l, "HAVE") && l.fields[1] == "1" && l.ns > t_acquired; }), 0u)
      << "the frozen holder claimed the lock while the other held it:\n" << frozen->text();
  EXPECT_EQ(frozen->count(kind_after("ACQUIRED", t_stop)), 0u) << frozen->text();
  // Its first word after waking is no claim: the first HAVE line after SIGCONT says 0.
  EXPECT_EQ(frozen->find(kind_after("HAVE", t_cont))->fields[1], "0");

  // When we leave, it contends again and gets the lock with a newer token.
  const auto my_token = m.fencing_token();
  const auto t_leave = shut_down(m);
  ASSERT_TRUE(run_until([&] { return frozen->find(kind_after("ACQUIRED", t_leave)).has_value(); }, 8s))
      << frozen->text();
  const auto again = token_of(*frozen->find(kind_after("ACQUIRED", t_leave)));
  EXPECT_GT(again, my_token);
  EXPECT_GT(my_token, frozen_token);
}

// ---- etcd unreachable

// Tracks have_lock() every millisecond while it lives: the last time it was seen true (the time is taken before the
// call, so a late sample never stretches it) and the first time seen false after `mark`.
struct have_lock_tracker {
  have_lock_tracker(asio::io_context& io, const lock_manager& watched)
      : m(watched), sampling(io, 1ms, [this] { sample(); }) {}

  const lock_manager& m;
  long long last_true = 0;
  long long first_false_after_mark = 0;
  long long mark = 0;
  sampler sampling;

 private:
  void sample() {
    const auto t = now_ns();
    if (m.have_lock()) {
      last_true = t;
    } else if (mark != 0 && first_false_after_mark == 0 && t > mark) {
      first_false_after_mark = t;
    }
  }
};

TEST_F(lock_manager_it, frozen_etcd_makes_the_holder_unsure_then_it_holds_again_with_the_same_token) {
  auto& c = own_cluster();
  const auto name = lock_name();
  auto& m = add_manager(make_options(name, "patient", 10s));  // a long TTL: the probe, not the lease, decides
  have_lock_tracker track(io_, m);
  const auto token = hold_steadily(m, 1500ms);  // a steady state: keepalives and probes going
  ASSERT_NE(token, 0);

  track.mark = now_ns();
  c.stop(0);
  ASSERT_TRUE(run_until([&] { return events_of(m).count(lock_event::unknown) > 0 && track.first_false_after_mark; }, 6s))
      << events_of(m).dump();
  const auto unknown_ms = ms_between(track.mark, events_of(m).first(lock_event::unknown)->ns);
  const auto false_ms = ms_between(track.mark, track.first_false_after_mark);
  measure("etcd SIGSTOP -> UNKNOWN (probe 1 s, request timeout 1 s)", unknown_ms);
  // It says why: the probe got no answer in time.
  EXPECT_EQ(events_of(m).first(lock_event::unknown)->event.error, errc::timeout) << events_of(m).dump();
  measure("etcd SIGSTOP -> have_lock() false", false_ms);
  EXPECT_LT(unknown_ms, 3000.0);
  EXPECT_LT(ms_between(track.mark, track.last_true), 3000.0);
  EXPECT_FALSE(m.have_lock());
  run_for(1s);
  EXPECT_FALSE(m.have_lock());

  const auto t_cont = now_ns();
  c.cont(0);
  ASSERT_TRUE(run_until([&] { return events_of(m).count(lock_event::acquired, t_cont) > 0; }, 10s))
      << events_of(m).dump();
  measure("etcd SIGCONT -> ACQUIRED again", ms_between(t_cont, events_of(m).first(lock_event::acquired, t_cont)->ns));
  EXPECT_EQ(events_of(m).first(lock_event::acquired, t_cont)->event.fencing_token, token);
  EXPECT_TRUE(m.have_lock());
  EXPECT_EQ(m.fencing_token(), token);
  EXPECT_EQ(events_of(m).count(lock_event::removed), 0u) << events_of(m).dump();
}

TEST_F(lock_manager_it, etcd_frozen_past_the_lease_the_holder_stops_by_its_deadline_and_contends_again) {
  auto& c = own_cluster();
  const auto name = lock_name();
  auto& m = add_manager(make_options(name, "short-lease", 2s));
  have_lock_tracker track(io_, m);
  const auto token = hold_steadily(m, 1s);
  ASSERT_NE(token, 0);

  track.mark = now_ns();
  c.stop(0);
  ASSERT_TRUE(run_until([&] { return events_of(m).count(lock_event::unknown) > 0; }, 6s)) << events_of(m).dump();
  const auto last_true_ms = ms_between(track.mark, track.last_true);
  measure("etcd SIGSTOP (ttl 2 s) -> last have_lock() true", last_true_ms);
  measure("etcd SIGSTOP (ttl 2 s) -> UNKNOWN", ms_between(track.mark, events_of(m).first(lock_event::unknown)->ns));
  // The lease was last proven before the freeze; it cannot outlive that proof by more than its TTL.
  EXPECT_LT(last_true_ms, 2000.0);
  EXPECT_LT(ms_between(track.mark, events_of(m).first(lock_event::unknown)->ns), 3000.0);
  run_until([] { return false; }, 3s - std::chrono::nanoseconds(now_ns() - track.mark));  // frozen past the TTL
  EXPECT_FALSE(m.have_lock());

  const auto t_cont = now_ns();
  c.cont(0);
  // The lease expired in etcd: the key is gone; it contends again and wins with a newer token.
  ASSERT_TRUE(run_until([&] { return events_of(m).count(lock_event::acquired, t_cont) > 0; }, 10s))
      << events_of(m).dump();
  EXPECT_GT(m.fencing_token(), token) << events_of(m).dump();
  EXPECT_GT(events_of(m).count(lock_event::removed, track.mark), 0u) << events_of(m).dump();
}

TEST_F(lock_manager_it, killed_etcd_makes_the_holder_unsure_then_it_holds_again_after_restart) {
  auto& c = own_cluster();
  const auto name = lock_name();
  auto& m = add_manager(make_options(name, "survivor", 10s));
  have_lock_tracker track(io_, m);
  const auto token = hold_steadily(m, 1500ms);
  ASSERT_NE(token, 0);

  track.mark = now_ns();
  c.kill(0);
  ASSERT_TRUE(run_until([&] { return events_of(m).count(lock_event::unknown) > 0; }, 6s)) << events_of(m).dump();
  const auto unknown_ms = ms_between(track.mark, events_of(m).first(lock_event::unknown)->ns);
  measure("etcd SIGKILL -> UNKNOWN", unknown_ms);
  const auto why = events_of(m).first(lock_event::unknown)->event.error;
  EXPECT_TRUE(why == errc::unavailable || why == errc::timeout) << why.message();
  EXPECT_LT(unknown_ms, 3000.0);
  EXPECT_LT(ms_between(track.mark, track.last_true), 3000.0);

  const auto t_restart = now_ns();
  c.restart(0);
  // etcd keeps leases across a restart (and extends them): our key still stands, so it is the same lock.
  ASSERT_TRUE(run_until([&] { return events_of(m).count(lock_event::acquired, t_restart) > 0; }, 10s))
      << events_of(m).dump();
  measure("etcd restarted -> ACQUIRED again", ms_between(t_restart, events_of(m).first(lock_event::acquired, t_restart)->ns));
  EXPECT_EQ(m.fencing_token(), token);
  EXPECT_EQ(events_of(m).count(lock_event::removed), 0u) << events_of(m).dump();
}

// ---- a 3-member cluster loses the member we talk to

class lock_manager_three_members : public lock_manager_it {
 protected:
  // The member behind the first endpoint dies (SIGKILL) or freezes (SIGSTOP: its sockets stay open, it answers
  // nothing). The other two keep a quorum.
  void run_case(bool leader_first, bool freeze = false, std::chrono::seconds ttl = 5s) {
    auto& c = own_cluster(test::etcd_options{.members = 3});
    const int leader = c.leader();
    ASSERT_GE(leader, 0);
    const int target = leader_first ? leader : (leader + 1) % 3;
    std::vector<std::string> endpoints{c.client_url(target)};
    for (int i = 0; i < 3; ++i)
      if (i != target) endpoints.push_back(c.client_url(i));

    const auto name = lock_name();
    auto o = make_options(name, "mover", ttl);
    o.endpoints = endpoints;
    auto& m = add_manager(o);
    have_lock_tracker track(io_, m);
    const auto token = hold_steadily(m, 1500ms);
    ASSERT_NE(token, 0);

    track.mark = now_ns();
    if (freeze) {
      c.stop(target);
    } else {
      c.kill(target);
    }
    // Watch it for a while: it must keep (or regain) the same lock and never lose it.
    run_for(6s);
    const auto unknowns = events_of(m).count(lock_event::unknown, track.mark);
    const std::string what = std::string("3 members, ") + (leader_first ? "leader" : "follower") + " endpoint " +
                             (freeze ? "frozen" : "killed");
    measure(what + ": UNKNOWN events", static_cast<double>(unknowns));
    if (track.first_false_after_mark) measure("  ... have_lock() first false after", ms_between(track.mark, track.first_false_after_mark));
    if (unknowns > 0) {
      const auto first = events_of(m).first(lock_event::unknown, track.mark)->ns;
      const auto back = events_of(m).first(lock_event::acquired, first);
      measure("  ... UNKNOWN after kill", ms_between(track.mark, first));
      if (back) measure("  ... UNKNOWN lasted", ms_between(first, back->ns));
    }
    EXPECT_EQ(events_of(m).count(lock_event::removed), 0u) << events_of(m).dump();
    EXPECT_TRUE(m.have_lock()) << events_of(m).dump();
    EXPECT_EQ(m.fencing_token(), token);
    if (!leader_first && !freeze) {
      EXPECT_EQ(unknowns, 0u) << "a follower's death should not make the holder unsure:\n" << events_of(m).dump();
    }
    // A frozen follower answers nothing; the probe's first try times out after half its deadline and the second
    // reaches another member. A frozen leader is different: until the other two elect a new one (about an election
    // timeout, 1 s) no member serves a linearizable read, so one UNKNOWN is honest; then the next probe proves the
    // lock again.
    if (freeze && !leader_first) {
      EXPECT_EQ(unknowns, 0u) << "a frozen follower should not make the holder unsure:\n" << events_of(m).dump();
    }
    if (freeze && leader_first) {
      EXPECT_LE(unknowns, 1u) << events_of(m).dump();
    }

    // Its watch works on another member: a newcomer shows up in its queue, and gets the lock when we leave.
    auto o2 = make_options(name, "newcomer", 5s);
    o2.endpoints = {endpoints[1], endpoints[2]};
    auto& n = add_manager(o2);
    n.start();
    ASSERT_TRUE(run_until([&] { return m.queue().size() == 2; }, 5s)) << events_of(m).dump();
    shut_down(m);
    ASSERT_TRUE(run_until([&] { return n.have_lock(); }, 5s)) << events_of(n).dump();
    EXPECT_GT(n.fencing_token(), token);
  }
};

TEST_F(lock_manager_three_members, holder_keeps_the_lock_when_its_follower_endpoint_dies) { run_case(false); }
TEST_F(lock_manager_three_members, holder_keeps_the_lock_when_its_leader_endpoint_dies) { run_case(true); }
TEST_F(lock_manager_three_members, holder_keeps_the_lock_when_its_follower_endpoint_freezes) { run_case(false, true); }
TEST_F(lock_manager_three_members, holder_keeps_the_lock_when_its_leader_endpoint_freezes) { run_case(true, true); }
TEST_F(lock_manager_three_members, holder_keeps_a_2s_lease_when_its_follower_endpoint_freezes) { run_case(false, true, 2s); }

// ---- keys and leases removed by hand, compacted history

TEST_F(lock_manager_it, key_deleted_by_hand_means_removed_then_it_contends_again) {
  const auto name = lock_name();
  auto& m = add_manager(make_options(name, "victim"));
  m.start();
  ASSERT_TRUE(run_until([&] { return m.have_lock(); }, 5s));
  const auto token = m.fencing_token();
  const auto key = m.key();

  const auto t_del = now_ns();
  cluster().etcdctl({"del", key});
  ASSERT_TRUE(run_until([&] { return events_of(m).count(lock_event::removed) > 0; }, 3s)) << events_of(m).dump();
  measure("etcdctl del -> REMOVED", ms_between(t_del, events_of(m).first(lock_event::removed)->ns));
  EXPECT_EQ(events_of(m).first(lock_event::removed)->event.fencing_token, token);
  ASSERT_TRUE(run_until([&] { return m.have_lock() && m.fencing_token() != token; }, 5s)) << events_of(m).dump();
  EXPECT_GT(m.fencing_token(), token);
  EXPECT_EQ(events_of(m).count(lock_event::acquired), 2u) << events_of(m).dump();
}

TEST_F(lock_manager_it, lease_revoked_by_hand_means_removed_then_a_new_lease_and_the_lock_again) {
  const auto name = lock_name();
  auto& m = add_manager(make_options(name, "revoked"));
  m.start();
  ASSERT_TRUE(run_until([&] { return m.have_lock(); }, 5s));
  const auto token = m.fencing_token();
  const auto key = m.key();

  const auto t_revoke = now_ns();
  cluster().etcdctl({"lease", "revoke", key.substr(key.rfind('/') + 1)});
  ASSERT_TRUE(run_until([&] { return events_of(m).count(lock_event::removed) > 0; }, 3s)) << events_of(m).dump();
  measure("etcdctl lease revoke -> REMOVED", ms_between(t_revoke, events_of(m).first(lock_event::removed)->ns));
  ASSERT_TRUE(run_until([&] { return m.have_lock() && m.fencing_token() != token; }, 8s)) << events_of(m).dump();
  EXPECT_GT(m.fencing_token(), token);
  EXPECT_NE(m.key(), key) << "a new lease means a new key";

  // The new lease is kept alive: the lock stays past its TTL (the old lease's keepalive round, still pending
  // when the new lease was granted, comes due meanwhile and must not disturb it).
  long samples = 0, lost = 0;
  {
    sampler s(io_, 10ms, [&] {
      ++samples;
      if (!m.have_lock()) ++lost;
    });
    run_for(3s);
  }
  EXPECT_GT(samples, 100);
  EXPECT_EQ(lost, 0) << events_of(m).dump();
  EXPECT_EQ(events_of(m).count(lock_event::removed), 1u) << events_of(m).dump();
}

TEST_F(lock_manager_it, waiter_gets_the_lock_when_the_holders_delete_was_compacted_away) {
  auto& c = own_cluster();
  const auto name = lock_name();
  auto& h = add_manager(make_options(name, "holder", 10s));
  h.start();
  ASSERT_TRUE(run_until([&] { return h.have_lock(); }, 5s));
  auto waiter = start_contender(name, "waiter", 10s);
  ASSERT_TRUE(run_until([&] { return h.queue().size() == 2 && waiter->find(kind_after("HOLDER")); }, 10s))
      << waiter->text();
  // It has told us who holds the lock: now it opens its watch. Give it a moment to be watching (if it is not
  // yet, it opens the watch after waking: from a compacted revision all the same).
  run_for(300ms);

  // Freeze the waiter and break its watch connection behind its back (restart etcd), so that it must resume
  // its watch later from a revision that is compacted by then.
  waiter->stop();
  c.kill(0);
  c.restart(0);
  ASSERT_TRUE(run_until([&] { return h.have_lock(); }, 10s)) << events_of(h).dump();
  shut_down(h);
  for (int i = 0; i < 5; ++i) c.etcdctl({"put", name + "-filler", std::to_string(i)});
  const auto rev = current_revision();
  c.etcdctl({"compact", std::to_string(rev)});

  const auto t_cont = now_ns();
  waiter->cont();
  ASSERT_TRUE(run_until([&] { return waiter->find(kind_after("ACQUIRED", t_cont)).has_value(); }, 10s))
      << waiter->text();
  measure("waiter resumed past compaction -> ACQUIRED",
          ms_between(t_cont, waiter->find(kind_after("ACQUIRED", t_cont))->ns));
  EXPECT_GT(token_of(*waiter->find(kind_after("ACQUIRED", t_cont))), events_of(h).first(lock_event::acquired)->event.fencing_token);
}

// ---- graceful hand-off

TEST_F(lock_manager_it, graceful_shutdown_hands_the_lock_over_promptly) {
  const auto name = lock_name();
  std::vector<double> latencies;
  auto* current = &add_manager(make_options(name, "round-0"));
  current->start();
  ASSERT_TRUE(run_until([&] { return current->have_lock(); }, 5s));
  for (int round = 1; round <= 5; ++round) {
    auto& next = add_manager(make_options(name, "round-" + std::to_string(round)));
    next.start();
    ASSERT_TRUE(run_until([&] { return next.queue().size() == 2; }, 5s));
    const auto token = current->fencing_token();
    const auto asked = shut_down(*current);
    ASSERT_TRUE(run_until([&] { return next.have_lock(); }, 5s)) << events_of(next).dump();
    latencies.push_back(ms_between(asked, events_of(next).first(lock_event::acquired)->ns));
    EXPECT_GT(next.fencing_token(), token);
    current = &next;
  }
  std::sort(latencies.begin(), latencies.end());
  measure("graceful hand-off min", latencies.front());
  measure("graceful hand-off median", latencies[latencies.size() / 2]);
  measure("graceful hand-off max", latencies.back());
  EXPECT_LT(latencies.back(), 1000.0);
}

// ---- locks on a shared session

TEST_F(lock_manager_it, locks_on_one_session_are_held_at_once_on_its_one_lease) {
  const auto prefix = lock_name() + "/";
  auto& s = make_session(prefix);
  std::vector<lock_manager*> locks;
  for (const char* n : {"a", "b", "c"}) {
    auto o = make_options(prefix + n, n);
    locks.push_back(&add_manager(s, o));
    locks.back()->start();
  }
  ASSERT_TRUE(run_until([&] { return std::all_of(locks.begin(), locks.end(), [](auto* m) { return m->have_lock(); }); },
                        5s));
  char lease_hex[32];
  std::snprintf(lease_hex, sizeof lease_hex, "%llx", static_cast<unsigned long long>(s.lease()));
  for (auto* m : locks) EXPECT_EQ(m->key(), prefix + m->identity() + "/" + lease_hex);
  EXPECT_EQ(keys_under(prefix).size(), 3u);
}

TEST_F(lock_manager_it, two_managers_for_one_name_on_one_session_take_turns) {
  // They would share one key (name/<lease>): without turns both would believe they hold the lock.
  const auto prefix = lock_name() + "/";
  auto& s = make_session(prefix);
  auto& first = add_manager(s, make_options(prefix + "x", "first"));
  auto& second = add_manager(s, make_options(prefix + "x", "second"));
  first.start();
  second.start();
  ASSERT_TRUE(run_until([&] { return first.have_lock(); }, 5s));
  const auto first_token = first.fencing_token();
  EXPECT_FALSE(run_until([&] { return second.have_lock(); }, 500ms)) << events_of(second).dump();
  shut_down(first);
  ASSERT_TRUE(run_until([&] { return second.have_lock(); }, 5s)) << events_of(second).dump();
  EXPECT_GT(second.fencing_token(), first_token);  // a key of its own, made after the first one's was deleted
  EXPECT_EQ(events_of(first).count(lock_event::acquired), 1u);
  EXPECT_EQ(events_of(second).count(lock_event::acquired), 1u);
}

TEST_F(lock_manager_it, shutdown_at_any_moment_of_the_acquisition_leaves_no_key_on_a_shared_session) {
  // The session's lease outlives each lock: a key left behind would block the lock until the session ends.
  const auto prefix = lock_name() + "/";
  auto& s = make_session(prefix);
  for (int round = 0; round < 40; ++round) {
    auto& m = add_manager(s, make_options(prefix + "x", "round-" + std::to_string(round)));
    m.start();
    // 0 to 39 handlers in: before the lease, during the enqueue txn, after ACQUIRED.
    for (int i = 0; i < round; ++i) io_.run_one_for(5ms);
    error_code ec;
    shut_down(m, &ec);
    EXPECT_FALSE(ec) << "round " << round << ": " << ec.message();
    ASSERT_EQ(keys_under(prefix), std::vector<std::string>{}) << "round " << round;
  }
  // The lock is free for another session at once.
  auto& other = add_manager(make_options(prefix + "x", "other"));
  other.start();
  EXPECT_TRUE(run_until([&] { return other.have_lock(); }, 5s));
}

// ---- observers

TEST_F(lock_manager_it, observer_sees_every_holder_with_its_identity_and_token) {
  const auto name = lock_name();
  auto oo = make_options(name, "observer");
  oo.contend = false;
  auto& observer = add_manager(oo);
  observer.start();
  ASSERT_TRUE(run_until([&] { return events_of(observer).count(lock_event::holder_changed) > 0; }, 5s));
  EXPECT_EQ(events_of(observer).events.back().event.holder, "");

  std::vector<lock_manager*> cs;
  for (const char* id : {"alpha", "beta", "gamma"}) {
    cs.push_back(&add_manager(make_options(name, id)));
    cs.back()->start();
    const auto n = cs.size();
    ASSERT_TRUE(run_until([&] { return observer.queue().size() == n; }, 5s));
  }
  ASSERT_TRUE(run_until([&] { return cs[0]->have_lock(); }, 5s));
  std::vector<std::pair<std::string, std::int64_t>> expected;
  for (auto* c : cs) {
    ASSERT_TRUE(run_until([&] { return c->have_lock(); }, 5s)) << c->identity();
    expected.emplace_back(c->identity(), c->fencing_token());
    shut_down(*c);
  }
  ASSERT_TRUE(run_until([&] { return !observer.holder() && events_of(observer).events.back().event.holder.empty(); }, 5s))
      << events_of(observer).dump();

  std::vector<std::pair<std::string, std::int64_t>> seen;
  for (const auto& e : events_of(observer).events) {
    EXPECT_EQ(e.event.kind, lock_event::holder_changed) << e.event;
    if (!e.event.holder.empty()) seen.emplace_back(e.event.holder, e.event.fencing_token);
  }
  EXPECT_EQ(seen, expected) << events_of(observer).dump();
  EXPECT_FALSE(observer.have_lock());
  EXPECT_EQ(observer.fencing_token(), 0);
  EXPECT_TRUE(observer.key().empty());
}

// ---- completion tokens

TEST_F(lock_manager_it, async_wait_event_takes_any_completion_token) {
  auto& m = add_manager(make_options(lock_name(), "tokens"));
  auto s_awaitable = m.subscribe();
  auto s_future = m.subscribe();
  auto s_deferred = m.subscribe();

  std::optional<lock_event> by_callback, by_awaitable, by_deferred;
  m.async_wait_event([&](error_code ec, lock_event e) {
    EXPECT_FALSE(ec) << ec.message();
    by_callback = e;
  });
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> { by_awaitable = co_await s_awaitable.async_wait_event(asio::use_awaitable); },
      asio::detached);
  std::future<lock_event> future = s_future.async_wait_event(asio::use_future);
  auto deferred = s_deferred.async_wait_event(asio::deferred);  // nothing starts until it is invoked
  m.start();
  ASSERT_TRUE(run_until([&] { return by_callback && by_awaitable && future.wait_for(0s) == std::future_status::ready; },
                        5s));
  std::move(deferred)([&](error_code ec, lock_event e) {
    EXPECT_FALSE(ec) << ec.message();
    by_deferred = e;
  });
  ASSERT_TRUE(run_until([&] { return by_deferred.has_value(); }, 5s));

  // Every subscription sees the same first event: we got the lock.
  const auto from_future = future.get();
  for (const lock_event* e : std::vector<const lock_event*>{&*by_callback, &*by_awaitable, &from_future, &*by_deferred}) {
    EXPECT_EQ(e->kind, lock_event::acquired) << *e;
    EXPECT_EQ(e->holder, "tokens");
    EXPECT_EQ(e->fencing_token, m.fencing_token());
  }
}

TEST_F(lock_manager_it, a_cancelled_wait_completes_with_operation_aborted_and_loses_no_event) {
  const auto name = lock_name();
  auto oo = make_options(name, "watcher");
  oo.contend = false;
  auto& observer = add_manager(oo);  // its recorder is the plain subscription we compare with
  auto sub = observer.subscribe();

  // One wait, cancelled before anything happened.
  asio::cancellation_signal signal;
  std::optional<error_code> aborted;
  sub.async_wait_event(asio::bind_cancellation_slot(signal.slot(), [&](error_code ec, lock_event) { aborted = ec; }));
  io_.poll();  // the wait is registered on the manager's strand
  signal.emit(asio::cancellation_type::terminal);
  ASSERT_TRUE(run_until([&] { return aborted.has_value(); }, 1s));
  EXPECT_EQ(*aborted, asio::error::operation_aborted);

  // Now every wait is cancelled as soon as it is made (a cancel posted behind it), while the lock changes hands:
  // cancels and events race all the time. The events that do arrive are exactly those the plain subscription
  // sees, in the same order.
  struct racer : std::enable_shared_from_this<racer> {
    event_subscription sub;
    asio::io_context& io;
    asio::cancellation_signal signal;
    std::vector<lock_event> events;
    int cancelled = 0;
    bool drained = false;
    bool stopped = false;  // the test ended early: stop racing
    racer(event_subscription s, asio::io_context& i) : sub(std::move(s)), io(i) {}
    void wait() {
      sub.async_wait_event(asio::bind_cancellation_slot(signal.slot(), [self = shared_from_this()](error_code ec, lock_event e) {
        if (ec == asio::error::operation_aborted) {
          ++self->cancelled;
        } else if (ec) {
          EXPECT_EQ(ec, make_error_code(errc::not_started)) << ec.message();
          self->drained = true;
          return;
        } else {
          self->events.push_back(e);
        }
        if (!self->stopped) self->wait();
      }));
      asio::post(io, [self = shared_from_this()] { self->signal.emit(asio::cancellation_type::terminal); });
    }
  };
  auto race = std::make_shared<racer>(sub, io_);
  struct stop_at_exit {
    std::shared_ptr<racer> r;
    ~stop_at_exit() { r->stopped = true; }
  } stop_guard{race};
  race->wait();
  const auto& through_cancels = race->events;

  observer.start();
  // Its first read (no holder yet) comes before any holder: then the sequence below is always the same.
  ASSERT_TRUE(run_until([&] { return !events_of(observer).events.empty(); }, 5s));
  for (int i = 0; i < 4; ++i) {
    auto& c = add_manager(make_options(name, "holder-" + std::to_string(i)));
    c.start();
    ASSERT_TRUE(run_until([&] { return c.have_lock(); }, 5s));
    ASSERT_TRUE(run_until([&] { return observer.holder() && observer.holder()->identity == c.identity(); }, 5s));
    shut_down(c);
  }
  ASSERT_TRUE(run_until([&] { return !observer.holder(); }, 5s));
  shut_down(observer);
  ASSERT_TRUE(run_until([&] { return race->drained && events_of(observer).closed; }, 5s));

  const auto& reference = events_of(observer).events;
  ASSERT_EQ(through_cancels.size(), reference.size()) << events_of(observer).dump();
  EXPECT_GE(reference.size(), 9u) << events_of(observer).dump();  // none, then each holder and none again
  for (std::size_t i = 0; i < through_cancels.size(); ++i) {
    EXPECT_EQ(through_cancels[i].kind, reference[i].event.kind) << i;
    EXPECT_EQ(through_cancels[i].fencing_token, reference[i].event.fencing_token) << i;
    EXPECT_EQ(through_cancels[i].holder, reference[i].event.holder) << i;
  }
  std::printf("[ INFO     ] %d waits cancelled, %zu events delivered through them\n", race->cancelled, through_cancels.size());
  EXPECT_GT(race->cancelled, 10) << "the waits were hardly ever cancelled: the test proves little";
}

// ---- invalid options

// Issue 17: every key under NAME/ counted for NAME, nested names' keys included, so a holder of NAME/b blocked NAME.
// A lock's queue is NAME/ plus one segment: on one session (one lease, one watch) both hold at once, each alone in
// its own queue.
TEST_F(lock_manager_it, nested_names_on_one_session_are_independent_locks) {
  const auto base = lock_name();
  auto& s = make_session(base + "/");
  auto& nested = add_manager(s, make_options(base + "/a/b", "nested"));
  auto& outer = add_manager(s, make_options(base + "/a", "outer"));
  nested.start();
  ASSERT_TRUE(run_until([&] { return nested.have_lock(); }, 5s)) << events_of(nested).dump();
  outer.start();
  ASSERT_TRUE(run_until([&] { return outer.have_lock(); }, 5s)) << events_of(outer).dump();
  EXPECT_TRUE(nested.have_lock());
  // A newer key of the nested name (its watch events reach the outer lock's prefix too) changes nothing for `outer`.
  auto& deeper = add_manager(make_options(base + "/a/b/c", "deeper"));
  deeper.start();
  ASSERT_TRUE(run_until([&] { return deeper.have_lock(); }, 5s)) << events_of(deeper).dump();
  run_for(200ms);
  ASSERT_EQ(outer.queue().size(), 1u);
  EXPECT_EQ(outer.queue()[0].identity, "outer");
  EXPECT_TRUE(outer.have_lock());
  EXPECT_EQ(nested.queue().size(), 1u);
}

TEST_F(lock_manager_it, invalid_options_throw_naming_the_field_before_any_io) {
  // A listener that must never see a connection: nothing may reach out before start().
  asio::ip::tcp::acceptor acceptor(io_, {asio::ip::make_address("127.0.0.1"), 0});
  // Shared: the accept completes (aborted) after this body returns, when TearDown runs the io_context.
  auto connected = std::make_shared<bool>(false);
  acceptor.async_accept([connected](error_code ec, asio::ip::tcp::socket) { *connected |= !ec; });
  const auto url = "http://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());

  auto valid = [&] {
    options o;
    o.endpoints = {url};
    o.name = "mt/invalid";
    o.ttl = 2s;
    return o;
  };
  struct bad_case {
    std::string field;
    std::function<void(options&)> spoil;
  };
  const std::vector<bad_case> cases{
      {"endpoints", [](options& o) { o.endpoints.clear(); }},
      {"name", [](options& o) { o.name.clear(); }},
      {"ttl", [](options& o) { o.ttl = 0s; }},
      {"endpoints", [](options& o) { o.endpoints = {"not a url"}; }},
      {"endpoints", [](options& o) { o.endpoints = {"ftp://127.0.0.1:2379"}; }},
      {"endpoints", [](options& o) { o.endpoints = {"http://"}; }},
      {"endpoints", [&](options& o) { o.endpoints = {url, "http://127.0.0.1:notaport"}; }},
  };
  for (const auto& c : cases) {
    auto o = valid();
    c.spoil(o);
    try {
      lock_manager m(io_.get_executor(), o);
      ADD_FAILURE() << "no exception for a bad " << c.field;
    } catch (const boost::system::system_error& e) {
      EXPECT_EQ(e.code(), make_error_code(errc::invalid_options)) << e.what();
      EXPECT_THAT(e.what(), ::testing::HasSubstr(c.field));
    }
  }
  {
    lock_manager idle(io_.get_executor(), valid());  // valid, never started
    run_for(300ms);
    EXPECT_FALSE(idle.have_lock());
    EXPECT_TRUE(idle.key().empty());
  }
  run_for(200ms);
  EXPECT_FALSE(*connected) << "a manager connected to etcd without start()";
}

// An operator's txn deletes the holder's key and ours at one revision: our turn never came (our key went in the same
// step), so no ACQUIRED (the watch message was decided event by event: ACQUIRED, then REMOVED, at one revision).
TEST_F(lock_manager_it, one_txn_deleting_the_holders_key_and_ours_is_no_hold_for_us) {
  const auto name = lock_name();
  auto& holder = add_manager(make_options(name, "holder"));
  auto& m = add_manager(make_options(name, "next"));
  holder.start();
  ASSERT_TRUE(run_until([&] { return holder.have_lock(); }, 5s));
  m.start();
  ASSERT_TRUE(run_until([&] { return m.queue().size() == 2 && !m.key().empty(); }, 5s));
  const auto old_token = m.queue().back().fencing_token;
  etcd::client c(io_.get_executor(), cluster().client_config());
  etcd::txn_request both;  // the holder's key first: its DELETE comes first in the watch message
  both.success.push_back(etcd::delete_range_request{holder.key(), {}, false});
  both.success.push_back(etcd::delete_range_request{m.key(), {}, false});
  std::optional<bool> ok;
  asio::co_spawn(io_, c.txn(both), [&](std::exception_ptr, result<etcd::txn_response> r) { ok = r.has_value(); });
  ASSERT_TRUE(run_until([&] { return ok.has_value(); }, 5s));
  ASSERT_TRUE(*ok);
  // Both contend again with new keys, and one of them holds. m never held with its old key.
  ASSERT_TRUE(run_until([&] { return holder.have_lock() || m.have_lock(); }, 5s));
  run_for(200ms);
  for (const auto& a : events_of(m).of(lock_event::acquired))
    EXPECT_NE(a.event.fencing_token, old_token) << "ACQUIRED for a key deleted in the same step\n" << events_of(m).dump();
  for (const auto& r : events_of(m).of(lock_event::removed))
    EXPECT_NE(r.event.fencing_token, old_token) << "REMOVED of a hold never told\n" << events_of(m).dump();
}

}  // namespace
}  // namespace clusterlock
