// The read-write lock against real etcd: readers share, a writer is alone, a writer behind readers is admitted when
// they release (from the watch), FIFO (a reader behind a waiting writer waits), `etcdctl lock` on the name acts as a
// writer both ways, try-acquire, cancellation and shutdown.

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
using rw_mode = rw_lock::mode;

class rw_lock_it : public lock_manager_it {
 protected:
  void TearDown() override {
    auto pending = std::make_shared<int>(0);
    for (auto& l : locks_) {
      ++*pending;
      l->async_shutdown([pending](error_code) { --*pending; });
    }
    run_until([&] { return *pending == 0; }, 5s);
    lock_manager_it::TearDown();
  }

  rw_lock& add_rw(options o, rw_mode access, recorder::hook_type hook = {}) {
    locks_.push_back(std::make_unique<rw_lock>(io_.get_executor(), std::move(o), access));
    auto& l = *locks_.back();
    rw_recorders_.push_back(recorder::attach(l.subscribe(), std::move(hook)));
    return l;
  }
  recorder& events_of(const rw_lock& l) {
    for (std::size_t i = 0; i < locks_.size(); ++i)
      if (locks_[i].get() == &l) return *rw_recorders_[i];
    throw std::logic_error("not an rw_lock of this test");
  }
  void start_in_line(rw_lock& l) {
    l.start();
    ASSERT_TRUE(run_until([&] { return !l.key().empty(); }, 5s)) << l.identity() << " has no key";
  }
  void release(rw_lock& l) {
    bool done = false;
    l.async_release([&](error_code ec) {
      EXPECT_FALSE(ec) << ec.message();
      done = true;
    });
    ASSERT_TRUE(run_until([&] { return done; }, 5s)) << "async_release did not complete";
  }
  std::string who_holds() {
    std::string out;
    for (auto& l : locks_)
      if (l->have_lock()) out += l->identity() + "(" + std::string(to_string(l->access())) + ") ";
    return out;
  }
  // Never a writer beside anyone else.
  bool exclusive_ok() {
    int readers = 0, writers = 0;
    for (auto& l : locks_)
      if (l->have_lock()) ++(l->access() == rw_mode::read ? readers : writers);
    return writers == 0 || (writers == 1 && readers == 0);
  }
  std::vector<std::string> identities(const std::vector<lock_entry>& entries) {
    std::vector<std::string> out;
    for (const auto& e : entries) out.push_back(e.identity);
    return out;
  }

  std::vector<std::unique_ptr<rw_lock>> locks_;
  std::vector<std::shared_ptr<recorder>> rw_recorders_;
};

// R1 R2 W R3: both readers hold, the writer waits for them, the reader behind the waiting writer waits for it (FIFO),
// the writer is admitted when the last older reader releases, and R3 when the writer does. Sampled every millisecond
// and at every event: never a writer beside anyone.
TEST_F(rw_lock_it, readers_share_the_writer_is_alone_and_fifo) {
  const auto name = lock_name();
  auto violations = std::make_shared<int>(0);
  auto checks = std::make_shared<long>(0);
  auto check = [this, violations, checks] {
    if (!exclusive_ok()) ++*violations;
    ++*checks;
  };
  auto hook = [check](const lock_event&) { check(); };
  auto& r1 = add_rw(make_options(name, "r1"), rw_mode::read, hook);
  auto& r2 = add_rw(make_options(name, "r2"), rw_mode::read, hook);
  auto& w = add_rw(make_options(name, "w"), rw_mode::write, hook);
  auto& r3 = add_rw(make_options(name, "r3"), rw_mode::read, hook);
  sampler every_ms(io_, 1ms, check);
  start_in_line(r1);
  start_in_line(r2);
  ASSERT_TRUE(run_until([&] { return r1.have_lock() && r2.have_lock(); }, 5s)) << who_holds();
  start_in_line(w);
  start_in_line(r3);
  ASSERT_TRUE(run_until([&] { return r3.queue().size() == 4 && r1.queue().size() == 4; }, 5s));
  run_for(200ms);  // time enough for a wrong admission to show
  EXPECT_FALSE(w.have_lock());
  EXPECT_FALSE(r3.have_lock()) << "a reader was admitted past a waiting writer";
  EXPECT_EQ(identities(r3.holders()), (std::vector<std::string>{"r1", "r2"}));
  EXPECT_EQ(r3.queue()[2].identity, "w");  // identities without `rw=write;`

  release(r2);
  run_for(100ms);
  EXPECT_FALSE(w.have_lock()) << "r1 still holds";
  release(r1);
  ASSERT_TRUE(run_until([&] { return w.have_lock(); }, 5s)) << who_holds();
  EXPECT_FALSE(r3.have_lock());
  ASSERT_TRUE(run_until([&] { return identities(r3.holders()) == std::vector<std::string>{"w"}; }, 5s));
  release(w);
  ASSERT_TRUE(run_until([&] { return r3.have_lock(); }, 5s)) << who_holds();
  EXPECT_EQ(*violations, 0) << "a writer held beside someone";
  EXPECT_GE(*checks, 5);
  // A writer's token is above every key it waited for; r3's above the writer's.
  const auto w_token = events_of(w).first(lock_event::acquired)->event.fencing_token;
  EXPECT_GT(w_token, events_of(r1).first(lock_event::acquired)->event.fencing_token);
  EXPECT_GT(w_token, events_of(r2).first(lock_event::acquired)->event.fencing_token);
  EXPECT_GT(events_of(r3).first(lock_event::acquired)->event.fencing_token, w_token);
  for (auto* l : {&r1, &r2, &w, &r3}) EXPECT_EQ(events_of(*l).count(lock_event::holder_changed), 0u);
}

// Readers behind a writer are admitted together by its release (and the one behind the next writer is not).
TEST_F(rw_lock_it, readers_behind_a_writer_are_admitted_together_by_its_release) {
  const auto name = lock_name();
  auto& w = add_rw(make_options(name, "w"), rw_mode::write);
  auto& a = add_rw(make_options(name, "a"), rw_mode::read);
  auto& b = add_rw(make_options(name, "b"), rw_mode::read);
  auto& w2 = add_rw(make_options(name, "w2"), rw_mode::write);
  auto& c = add_rw(make_options(name, "c"), rw_mode::read);
  start_in_line(w);
  ASSERT_TRUE(run_until([&] { return w.have_lock(); }, 5s));
  for (auto* l : {&a, &b, &w2, &c}) start_in_line(*l);
  ASSERT_TRUE(run_until([&] { return c.queue().size() == 5 && a.queue().size() == 5; }, 5s));
  release(w);
  ASSERT_TRUE(run_until([&] { return a.have_lock() && b.have_lock(); }, 5s)) << who_holds();
  run_for(100ms);
  EXPECT_FALSE(w2.have_lock());
  EXPECT_FALSE(c.have_lock());
}

// `etcdctl lock` on the name is a writer both ways: it holds, and a reader waits; a reader holds, and etcdctl's
// command runs only once the reader has left.
TEST_F(rw_lock_it, etcdctl_lock_on_the_name_acts_as_a_writer) {
  const auto name = lock_name();
  auto holder = start_etcdctl({"lock", name});
  ASSERT_TRUE(run_until([&] { return keys_under(name + "/").size() == 1; }, 10s)) << holder->text();
  auto& r = add_rw(make_options(name, "r"), rw_mode::read);
  start_in_line(r);
  run_for(300ms);
  EXPECT_FALSE(r.have_lock()) << "a reader held beside etcdctl lock's holder";
  holder->terminate();  // etcdctl lock unlocks on SIGTERM
  ASSERT_TRUE(run_until([&] { return r.have_lock(); }, 5s)) << "not admitted when etcdctl released";

  auto waiter = start_etcdctl({"lock", name, "--", "/bin/sh", "-c", "echo GOT $ETCD_LOCK_KEY"});
  ASSERT_TRUE(run_until([&] { return r.queue().size() == 2; }, 10s)) << waiter->text();
  auto got = [](const output_line& l) { return is(l, "GOT"); };
  run_for(300ms);
  EXPECT_FALSE(waiter->find(got)) << "etcdctl ran beside a reader: " << waiter->text();
  release(r);
  ASSERT_TRUE(run_until([&] { return waiter->find(got).has_value(); }, 5s)) << waiter->text();
}

// A plain lock_manager on the name is a writer for readers, and waits for them.
TEST_F(rw_lock_it, a_plain_lock_on_the_name_acts_as_a_writer) {
  const auto name = lock_name();
  auto& r = add_rw(make_options(name, "r"), rw_mode::read);
  start_in_line(r);
  ASSERT_TRUE(run_until([&] { return r.have_lock(); }, 5s));
  auto& lock = add_manager(make_options(name, "lock"));
  lock.start();
  auto& r2 = add_rw(make_options(name, "r2"), rw_mode::read);
  ASSERT_TRUE(run_until([&] { return r.queue().size() == 2; }, 5s));
  start_in_line(r2);
  run_for(200ms);
  EXPECT_FALSE(lock.have_lock());
  EXPECT_FALSE(r2.have_lock()) << "a reader passed the lock waiting as a writer";
  release(r);
  ASSERT_TRUE(run_until([&] { return lock.have_lock(); }, 5s));
  EXPECT_FALSE(r2.have_lock());
}

// An operator rewrites an older reader's key as a writer's while we read: our hold is taken away (REMOVED), our key
// leaves the line and a new one goes in at its end; once the older key is a reader's again we hold again, with a
// higher token (never the same hold back after a REMOVED).
TEST_F(rw_lock_it, an_older_reader_rewritten_as_a_writer_takes_our_hold_and_we_come_back_with_a_new_key) {
  const auto name = lock_name();
  auto& a = add_rw(make_options(name, "a"), rw_mode::read);
  auto& b = add_rw(make_options(name, "b"), rw_mode::read);
  start_in_line(a);
  start_in_line(b);
  ASSERT_TRUE(run_until([&] { return a.have_lock() && b.have_lock(); }, 5s)) << who_holds();
  const auto first = b.fencing_token();
  const auto a_key = a.key();
  const auto lease = "--lease=" + a_key.substr(a_key.rfind('/') + 1);
  cluster().etcdctl({"put", lease, a_key, "operator"});
  ASSERT_TRUE(run_until([&] { return events_of(b).count(lock_event::removed) > 0; }, 5s)) << events_of(b).dump();
  EXPECT_FALSE(b.have_lock());
  run_for(300ms);  // b's new key is in line, behind a's, which is a writer's now
  EXPECT_FALSE(b.have_lock());
  cluster().etcdctl({"put", lease, a_key, "rw=read;a"});
  ASSERT_TRUE(run_until([&] { return b.have_lock(); }, 5s)) << events_of(b).dump();
  EXPECT_GT(b.fencing_token(), first);
  EXPECT_EQ(events_of(b).count(lock_event::acquired), 2u) << events_of(b).dump();
}

// Tries: a reader's fails under a writer and leaves no key; succeeds beside readers; a writer's fails beside them.
TEST_F(rw_lock_it, try_acquire_by_the_rule) {
  const auto name = lock_name();
  auto& w = add_rw(make_options(name, "w"), rw_mode::write);
  auto& r = add_rw(make_options(name, "r"), rw_mode::read);
  auto& r2 = add_rw(make_options(name, "r2"), rw_mode::read);
  auto& w2 = add_rw(make_options(name, "w2"), rw_mode::write);
  auto try_once = [&](rw_lock& l) {
    bool done = false, acquired = false;
    error_code result;
    l.async_try_acquire([&](error_code ec, bool got) {
      result = ec;
      acquired = got;
      done = true;
    });
    EXPECT_TRUE(run_until([&] { return done; }, 3s));
    EXPECT_FALSE(result) << result.message();
    return acquired;
  };
  start_in_line(w);
  ASSERT_TRUE(run_until([&] { return w.have_lock(); }, 5s));
  EXPECT_FALSE(try_once(r));
  EXPECT_FALSE(r.have_lock());
  EXPECT_EQ(keys_under(name + "/").size(), 1u);
  release(w);
  EXPECT_TRUE(try_once(r));
  EXPECT_TRUE(try_once(r2));  // shared
  EXPECT_TRUE(r.have_lock() && r2.have_lock());
  EXPECT_FALSE(try_once(w2));
  EXPECT_EQ(keys_under(name + "/").size(), 2u);
}

// A waiting reader's acquire cancelled (terminal): operation_aborted once its key is deleted.
TEST_F(rw_lock_it, a_cancelled_acquire_leaves_the_line) {
  const auto name = lock_name();
  auto& w = add_rw(make_options(name, "w"), rw_mode::write);
  auto& r = add_rw(make_options(name, "r"), rw_mode::read);
  start_in_line(w);
  ASSERT_TRUE(run_until([&] { return w.have_lock(); }, 5s));
  asio::cancellation_signal cancel;
  bool done = false;
  error_code result;
  r.async_acquire(asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec) {
    result = ec;
    done = true;
  }));
  ASSERT_TRUE(run_until([&] { return !r.key().empty(); }, 5s));
  const auto r_key = r.key();
  cancel.emit(asio::cancellation_type::terminal);
  ASSERT_TRUE(run_until([&] { return done; }, 5s));
  EXPECT_EQ(result, asio::error::operation_aborted);
  const auto keys = keys_under(name + "/");
  EXPECT_EQ(std::count(keys.begin(), keys.end(), r_key), 0) << "the cancelled reader's key is still there";
  release(w);
  run_for(100ms);
  EXPECT_FALSE(r.have_lock());
}

// Shutdown with a read held: the key goes, and the writer waiting for it is admitted.
TEST_F(rw_lock_it, shutdown_with_a_read_held_admits_the_writer) {
  const auto name = lock_name();
  auto& r = add_rw(make_options(name, "r"), rw_mode::read);
  auto& w = add_rw(make_options(name, "w"), rw_mode::write);
  start_in_line(r);
  ASSERT_TRUE(run_until([&] { return r.have_lock(); }, 5s));
  start_in_line(w);
  bool done = false;
  r.async_shutdown([&](error_code ec) {
    EXPECT_FALSE(ec) << ec.message();
    done = true;
  });
  ASSERT_TRUE(run_until([&] { return done && w.have_lock(); }, 5s)) << who_holds();
  EXPECT_EQ(keys_under(name + "/").size(), 1u);
  EXPECT_GE(events_of(r).count(lock_event::removed), 1u);
  EXPECT_EQ(r.access(), rw_mode::read);
  EXPECT_EQ(w.access(), rw_mode::write);
}

}  // namespace
}  // namespace clusterlock
