// The counting semaphore against real etcd: at most N permit holders, FIFO admission from the watch, a release or
// a lost lease admitting exactly the next waiter, try-acquire, cancellation, and N's agreed by every contender.

#include <clusterlock/clusterlock.hpp>

#include "support/lock_fixture.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace clusterlock {
namespace {

using namespace test;

class semaphore_it : public lock_manager_it {
 protected:
  void TearDown() override {
    auto pending = std::make_shared<int>(0);
    for (auto& s : semaphores_) {
      ++*pending;
      s->async_shutdown([pending](error_code) { --*pending; });
    }
    run_until([&] { return *pending == 0; }, 5s);
    lock_manager_it::TearDown();
  }

  semaphore& add_semaphore(options o, std::size_t slots, recorder::hook_type hook = {}) {
    semaphores_.push_back(std::make_unique<semaphore>(io_.get_executor(), std::move(o), slots));
    auto& s = *semaphores_.back();
    sem_recorders_.push_back(recorder::attach(s.subscribe(), std::move(hook)));
    return s;
  }
  recorder& events_of(const semaphore& s) {
    for (std::size_t i = 0; i < semaphores_.size(); ++i)
      if (semaphores_[i].get() == &s) return *sem_recorders_[i];
    throw std::logic_error("not a semaphore of this test");
  }
  // Starts `s` and waits until its key is in line (so that the next one started is behind it).
  void start_in_line(semaphore& s) {
    s.start();
    ASSERT_TRUE(run_until([&] { return !s.key().empty(); }, 5s)) << s.identity() << " has no key";
  }
  void shut_down_semaphore(semaphore& s) {
    bool done = false;
    s.async_shutdown([&](error_code) { done = true; });
    EXPECT_TRUE(run_until([&] { return done; }, 5s)) << "async_shutdown did not complete";
  }
  int holders_now() {
    int n = 0;
    for (auto& s : semaphores_) n += s->have_permit() ? 1 : 0;
    return n;
  }
  std::string who_holds() {
    std::string out;
    for (auto& s : semaphores_)
      if (s->have_permit()) out += s->identity() + " ";
    return out;
  }

  std::vector<std::unique_ptr<semaphore>> semaphores_;
  std::vector<std::shared_ptr<recorder>> sem_recorders_;
};

// Five contenders, two permits: never more than two holders (sampled every millisecond and at every event),
// admission in the order of the keys, and each release admits exactly the next waiter.
TEST_F(semaphore_it, five_contenders_two_permits_fifo_and_never_more_than_two) {
  const auto name = lock_name();
  std::vector<semaphore*> s;
  // Identities in the order of their ACQUIRED (shared: a callback may run during the fixture's shutdown).
  auto admitted = std::make_shared<std::vector<std::string>>();
  auto most = std::make_shared<int>(0);
  auto checks = std::make_shared<long>(0);
  auto check = [this, most, checks] {
    *most = std::max(*most, holders_now());
    ++*checks;
  };
  for (int i = 0; i < 5; ++i) {
    s.push_back(&add_semaphore(make_options(name, "c" + std::to_string(i)), 2, [check](const lock_event&) { check(); }));
    s.back()->on_acquired([admitted, id = s.back()->identity()](const lock_event&) { admitted->push_back(id); });
  }
  sampler every_ms(io_, 1ms, check);
  for (auto* c : s) start_in_line(*c);
  ASSERT_TRUE(run_until([&] { return s[0]->have_permit() && s[1]->have_permit(); }, 5s)) << who_holds();
  EXPECT_FALSE(s[2]->have_permit());
  EXPECT_EQ(s[0]->holders().size(), 2u);
  EXPECT_TRUE(run_until([&] { return s[0]->queue().size() == 5; }, 5s));  // its watch brings the later keys
  EXPECT_EQ(s[4]->queue().back().identity, "c4");  // identities without `slots=2;`

  // Each release admits exactly the first waiter: c2, then c3, then c4.
  for (int next = 2; next < 5; ++next) {
    bool released = false;
    s[next - 2]->async_release([&](error_code ec) {
      EXPECT_FALSE(ec) << ec.message();
      released = true;
    });
    ASSERT_TRUE(run_until([&] { return released && s[next]->have_permit(); }, 5s)) << who_holds();
    EXPECT_EQ(holders_now(), 2) << who_holds();
    for (int later = next + 1; later < 5; ++later) EXPECT_FALSE(s[later]->have_permit()) << "c" << later;
  }
  EXPECT_EQ(*admitted, (std::vector<std::string>{"c0", "c1", "c2", "c3", "c4"}));
  EXPECT_LE(*most, 2) << "more than two holders at once";
  EXPECT_GE(*checks, 10);  // it ran: at every event (10 at least: 5 ACQUIRED, 3 REMOVED...) and every millisecond
  // Per-permit tokens: each holder's is its key's create revision, in the order of the line.
  for (int i = 1; i < 5; ++i)
    EXPECT_GT(events_of(*s[i]).first(lock_event::acquired)->event.fencing_token,
              events_of(*s[i - 1]).first(lock_event::acquired)->event.fencing_token);
  // A semaphore sends no HOLDER_CHANGED: it has no one holder.
  for (auto* c : s) EXPECT_EQ(events_of(*c).count(lock_event::holder_changed), 0u);
}

// Semaphores on shared sessions (one lease, watch and probe for a semaphore and a lock each): the same admission.
TEST_F(semaphore_it, permits_on_shared_sessions) {
  const auto base = lock_name();
  const auto name = base + "/sem";
  std::vector<semaphore*> s;
  for (int i = 0; i < 3; ++i) {
    auto& on = make_session(base + "/");
    semaphores_.push_back(std::make_unique<semaphore>(on, make_options(name, "s" + std::to_string(i)), 2));
    sem_recorders_.push_back(recorder::attach(semaphores_.back()->subscribe()));
    s.push_back(semaphores_.back().get());
    if (i == 0) add_manager(on, make_options(base + "/lock", "lock")).start();  // a lock beside it on the session
  }
  for (auto* c : s) start_in_line(*c);
  ASSERT_TRUE(run_until([&] { return s[0]->have_permit() && s[1]->have_permit(); }, 5s)) << who_holds();
  EXPECT_FALSE(s[2]->have_permit());
  ASSERT_TRUE(run_until([&] { return managers_.front()->have_lock(); }, 5s));
  bool released = false;
  s[1]->async_release([&](error_code) { released = true; });
  ASSERT_TRUE(run_until([&] { return released && s[2]->have_permit(); }, 5s)) << who_holds();
  EXPECT_TRUE(s[0]->have_permit());
  EXPECT_FALSE(s[1]->have_permit());
  EXPECT_TRUE(managers_.front()->have_lock());
}

// A holder whose lease is revoked loses its permit (REMOVED), and the first waiter gets it.
TEST_F(semaphore_it, a_holders_lease_loss_frees_its_permit_for_the_next_waiter) {
  const auto name = lock_name();
  auto& a = add_semaphore(make_options(name, "a"), 2);
  auto& b = add_semaphore(make_options(name, "b"), 2);
  auto& c = add_semaphore(make_options(name, "c"), 2);
  start_in_line(a);
  start_in_line(b);
  start_in_line(c);
  ASSERT_TRUE(run_until([&] { return a.have_permit() && b.have_permit(); }, 5s)) << who_holds();
  EXPECT_FALSE(c.have_permit());
  const auto key = a.key();
  cluster().etcdctl({"lease", "revoke", key.substr(key.rfind('/') + 1)});
  ASSERT_TRUE(run_until([&] { return c.have_permit(); }, 5s)) << who_holds() << events_of(c).dump();
  EXPECT_GE(events_of(a).count(lock_event::removed), 1u) << events_of(a).dump();
  EXPECT_TRUE(b.have_permit());
  EXPECT_LE(holders_now(), 2) << who_holds();  // a contends again, behind c
}

// The lock's pessimism for a permit: etcd frozen, the holder says UNKNOWN and have_permit() is false within probe
// interval + request timeout; etcd back, the probe proves the same permit again (ACQUIRED, same token, no REMOVED).
TEST_F(semaphore_it, frozen_etcd_makes_a_permit_unknown_then_the_same_permit_again) {
  auto& c = own_cluster();
  const auto name = lock_name();
  auto& a = add_semaphore(make_options(name, "a", 10s), 2);  // a long TTL: the probe, not the lease, decides
  auto& b = add_semaphore(make_options(name, "b", 10s), 2);
  start_in_line(a);
  start_in_line(b);
  ASSERT_TRUE(run_until([&] { return a.have_permit() && b.have_permit(); }, 5s)) << who_holds();
  const auto token = a.fencing_token();
  run_for(1500ms);  // a steady state: keepalives and probes going
  const auto t_stop = now_ns();
  c.stop(0);
  ASSERT_TRUE(run_until([&] { return events_of(a).count(lock_event::unknown) > 0 && !a.have_permit(); }, 6s))
      << events_of(a).dump();
  measure("etcd SIGSTOP -> UNKNOWN of a permit", ms_between(t_stop, events_of(a).first(lock_event::unknown)->ns));
  EXPECT_LT(ms_between(t_stop, events_of(a).first(lock_event::unknown)->ns), 3000.0);
  EXPECT_EQ(events_of(a).first(lock_event::unknown)->event.fencing_token, token);
  const auto t_cont = now_ns();
  c.cont(0);
  ASSERT_TRUE(run_until([&] { return events_of(a).count(lock_event::acquired, t_cont) > 0 && a.have_permit(); }, 10s))
      << events_of(a).dump();
  EXPECT_EQ(a.fencing_token(), token);
  EXPECT_EQ(events_of(a).count(lock_event::removed), 0u) << events_of(a).dump();
}

// With every permit taken, a try answers false quickly and leaves no key behind.
TEST_F(semaphore_it, try_acquire_with_every_permit_taken_fails_fast_and_leaves_no_key) {
  const auto name = lock_name();
  auto& a = add_semaphore(make_options(name, "a"), 2);
  auto& b = add_semaphore(make_options(name, "b"), 2);
  auto& t = add_semaphore(make_options(name, "t"), 2);
  start_in_line(a);
  start_in_line(b);
  ASSERT_TRUE(run_until([&] { return a.have_permit() && b.have_permit(); }, 5s));
  bool done = false, acquired = true;
  error_code result;
  const auto asked = now_ns();
  t.async_try_acquire([&](error_code ec, bool got) {
    result = ec;
    acquired = got;
    done = true;
  });
  ASSERT_TRUE(run_until([&] { return done; }, 3s));
  measure("try_acquire, every permit taken", ms_between(asked, now_ns()));
  EXPECT_FALSE(result) << result.message();
  EXPECT_FALSE(acquired);
  EXPECT_FALSE(t.have_permit());
  EXPECT_EQ(keys_under(name + "/").size(), 2u);
  // One permit frees: the next try gets it.
  bool released = false;
  a.async_release([&](error_code) { released = true; });
  ASSERT_TRUE(run_until([&] { return released; }, 5s));
  done = false;
  t.async_try_acquire([&](error_code ec, bool got) {
    result = ec;
    acquired = got;
    done = true;
  });
  ASSERT_TRUE(run_until([&] { return done; }, 3s));
  EXPECT_FALSE(result) << result.message();
  EXPECT_TRUE(acquired);
  EXPECT_TRUE(t.have_permit());
}

// A waiter's acquire cancelled (terminal): it completes with operation_aborted once its key is deleted, and the
// line behind it moves up.
TEST_F(semaphore_it, a_cancelled_acquire_leaves_the_line) {
  const auto name = lock_name();
  auto& a = add_semaphore(make_options(name, "a"), 1);
  auto& w = add_semaphore(make_options(name, "w"), 1);
  auto& z = add_semaphore(make_options(name, "z"), 1);
  start_in_line(a);
  ASSERT_TRUE(run_until([&] { return a.have_permit(); }, 5s));
  asio::cancellation_signal cancel;
  bool done = false;
  error_code result;
  w.async_acquire(asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec) {
    result = ec;
    done = true;
  }));
  ASSERT_TRUE(run_until([&] { return !w.key().empty(); }, 5s));
  const auto w_key = w.key();
  start_in_line(z);
  cancel.emit(asio::cancellation_type::terminal);
  ASSERT_TRUE(run_until([&] { return done; }, 5s));
  EXPECT_EQ(result, asio::error::operation_aborted);
  const auto keys = keys_under(name + "/");
  EXPECT_EQ(std::count(keys.begin(), keys.end(), w_key), 0) << "the cancelled waiter's key is still there";
  bool released = false;
  a.async_release([&](error_code) { released = true; });
  ASSERT_TRUE(run_until([&] { return released && z.have_permit(); }, 5s)) << who_holds();
  EXPECT_FALSE(w.have_permit());
}

// Two semaphores of one name with N = 2 and N = 3: the later one is refused with slots_mismatch, says which key
// disagrees, and deletes its key; the earlier keeps its permit.
TEST_F(semaphore_it, a_contender_with_another_n_is_refused_and_leaves) {
  const auto name = lock_name();
  std::vector<diagnostic> seen;
  auto o2 = make_options(name, "two");
  auto o3 = make_options(name, "three");
  o3.diagnostics = [&](const diagnostic& d) { seen.push_back(d); };
  auto& two = add_semaphore(o2, 2);
  auto& three = add_semaphore(o3, 3);
  start_in_line(two);
  ASSERT_TRUE(run_until([&] { return two.have_permit(); }, 5s));
  bool done = false;
  error_code result;
  three.async_acquire([&](error_code ec) {
    result = ec;
    done = true;
  });
  ASSERT_TRUE(run_until([&] { return done; }, 5s));
  EXPECT_EQ(result, errc::slots_mismatch) << result.message();
  EXPECT_FALSE(three.have_permit());
  EXPECT_EQ(events_of(three).count(lock_event::acquired), 0u);  // never claimed, not even for an instant
  ASSERT_TRUE(run_until([&] { return keys_under(name + "/").size() == 1; }, 5s)) << "its key stayed";
  EXPECT_TRUE(two.have_permit());
  ASSERT_TRUE(run_until([&] { return !seen.empty(); }, 2s));
  const auto& d = seen.front();
  EXPECT_EQ(d.error, errc::slots_mismatch);
  EXPECT_NE(d.message.find(two.key()), std::string::npos) << d.message;
  EXPECT_NE(d.message.find("was made with 2 slots, ours with 3"), std::string::npos) << d.message;
  // Contention stopped: it stays out of line until asked again (and is refused again while `two` stands).
  run_for(300ms);
  EXPECT_EQ(keys_under(name + "/").size(), 1u);
}

// An operator rewrites an older holder's key with another N while we hold beside it: the watch's PUT alone (no read
// follows) makes us refuse: REMOVED, slots_mismatch reported, our key deleted. (The check runs after every watch
// batch, not only after reads.)
TEST_F(semaphore_it, an_older_key_rewritten_with_another_n_on_the_watch_refuses_us) {
  const auto name = lock_name();
  std::vector<diagnostic> seen;
  auto ob = make_options(name, "b");
  ob.diagnostics = [&](const diagnostic& d) { seen.push_back(d); };
  auto& a = add_semaphore(make_options(name, "a"), 2);
  auto& b = add_semaphore(ob, 2);
  start_in_line(a);
  start_in_line(b);
  ASSERT_TRUE(run_until([&] { return a.have_permit() && b.have_permit(); }, 5s)) << who_holds();
  cluster().etcdctl({"put", a.key(), "slots=3;operator"});
  ASSERT_TRUE(run_until([&] { return !b.have_permit() && !seen.empty(); }, 5s)) << events_of(b).dump();
  EXPECT_EQ(seen.front().error, errc::slots_mismatch) << seen.front().message;
  EXPECT_NE(seen.front().message.find("was made with 3 slots, ours with 2"), std::string::npos) << seen.front().message;
  EXPECT_GE(events_of(b).count(lock_event::removed), 1u) << events_of(b).dump();
  ASSERT_TRUE(run_until([&] { return keys_under(name + "/").size() == 1; }, 5s)) << "b's key stayed";
}

// A plain lock on the name (a lock_manager, as `etcdctl lock`) holds: a semaphore contender behind it is refused,
// since the lock waits for every older key and would not count permits.
TEST_F(semaphore_it, a_plain_lock_ahead_on_the_name_refuses_the_semaphore) {
  const auto name = lock_name();
  auto& lock = add_manager(make_options(name, "lock"));
  lock.start();
  ASSERT_TRUE(run_until([&] { return lock.have_lock(); }, 5s));
  auto& s = add_semaphore(make_options(name, "sem"), 2);
  bool done = false;
  error_code result;
  s.async_acquire([&](error_code ec) {
    result = ec;
    done = true;
  });
  ASSERT_TRUE(run_until([&] { return done; }, 5s));
  EXPECT_EQ(result, errc::slots_mismatch);
  EXPECT_TRUE(lock.have_lock());
}

// A plain lock behind the permit holders (`etcdctl lock`, which waits for every older key) runs only once every
// older semaphore key is gone: it acts as a contender for all N permits.
TEST_F(semaphore_it, etcdctl_lock_behind_permit_holders_waits_for_all_of_them) {
  const auto name = lock_name();
  auto& a = add_semaphore(make_options(name, "a"), 2);
  auto& b = add_semaphore(make_options(name, "b"), 2);
  start_in_line(a);
  start_in_line(b);
  ASSERT_TRUE(run_until([&] { return a.have_permit() && b.have_permit(); }, 5s));
  auto etcdctl = start_etcdctl({"lock", name, "--", "/bin/sh", "-c", "echo GOT $ETCD_LOCK_KEY"});
  ASSERT_TRUE(run_until([&] { return a.queue().size() == 3; }, 10s)) << etcdctl->text();
  shut_down_semaphore(a);
  run_for(500ms);  // one older key left: etcdctl still waits
  auto got = [](const output_line& l) { return is(l, "GOT"); };  // (kind_after wants a time as the last field)
  EXPECT_FALSE(etcdctl->find(got)) << etcdctl->text();
  shut_down_semaphore(b);
  ASSERT_TRUE(run_until([&] { return etcdctl->find(got).has_value(); }, 5s)) << etcdctl->text();
}

}  // namespace
}  // namespace clusterlock
