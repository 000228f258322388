// Leader election with values against real etcd and the real `etcdctl elect`: a leader proclaims a new value and
// every observer (ours, etcdctl's) sees it; a proclaim without the lock writes nothing; our contenders and
// etcdctl's take turns on the same keys.

#include <clusterlock/clusterlock.hpp>

#include "support/lock_fixture.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <memory>
#include <optional>
#include <string>

namespace clusterlock {
namespace {

using namespace test;

class election : public lock_manager_it {
 protected:
  error_code proclaim(lock_manager& m, std::string value) {
    auto out = std::make_shared<std::optional<error_code>>();
    m.async_proclaim(std::move(value), [out](error_code ec) { *out = ec; });
    EXPECT_TRUE(run_until([&] { return out->has_value(); }, 10s)) << "async_proclaim did not complete";
    return out->value_or(make_error_code(errc::timeout));
  }
  std::string value_of(const std::string& key) { return cluster().etcdctl({"get", "--print-value-only", key}); }
  // The holder_changed events `m` got that carry `value`.
  static auto announcing(const std::string& value) {
    return [value](const timed_event& t) {
      return t.event.kind == lock_event::holder_changed && t.event.holder == value;
    };
  }
  static std::size_t count_of(const recorder& r, const std::string& value) {
    auto events = r.of(lock_event::holder_changed);
    return std::count_if(events.begin(), events.end(), announcing(value));
  }
  static bool printed(const piped_child& child, const std::string& line) {
    return child.count([&](const output_line& l) { return l.text == line; }) > 0;
  }
};

TEST_F(election, a_leaders_proclaimed_value_reaches_every_observer_and_etcdctl) {
  const auto name = lock_name();
  auto& leader = add_manager(make_options(name, "10.0.0.1:80"));
  auto watching = make_options(name, "observer");
  watching.contend = false;
  auto& observer = add_manager(watching);
  observer.start();
  const auto token = hold_steadily(leader, 0s);
  auto etcdctl = start_etcdctl({"elect", "-l", name});
  ASSERT_TRUE(run_until([&] { return printed(*etcdctl, "10.0.0.1:80"); }, 10s)) << etcdctl->text();
  ASSERT_TRUE(run_until([&] { return count_of(events_of(observer), "10.0.0.1:80") == 1; }, 5s));

  ASSERT_FALSE(proclaim(leader, "10.0.0.1:81"));
  EXPECT_EQ(leader.value(), "10.0.0.1:81");
  EXPECT_EQ(leader.identity(), "10.0.0.1:80");
  EXPECT_EQ(value_of(leader.key()), "10.0.0.1:81\n");
  ASSERT_TRUE(run_until([&] { return count_of(events_of(observer), "10.0.0.1:81") == 1; }, 5s))
      << events_of(observer).dump();
  auto seen = events_of(observer).of(lock_event::holder_changed).back().event;
  EXPECT_EQ(seen.fencing_token, token) << "the same leader, the same token";
  EXPECT_EQ(seen.key, leader.key());
  EXPECT_TRUE(run_until([&] { return printed(*etcdctl, "10.0.0.1:81"); }, 10s)) << etcdctl->text();
  EXPECT_TRUE(leader.have_lock());
  EXPECT_EQ(leader.fencing_token(), token);

  // The key keeps our lease: revoked, the key goes, and the next key of ours carries the proclaimed value.
  const auto key = leader.key();
  cluster().etcdctl({"lease", "revoke", key.substr(key.rfind('/') + 1)});
  EXPECT_EQ(value_of(key), "");
  ASSERT_TRUE(run_until([&] { return leader.have_lock() && leader.key() != key; }, 10s))
      << events_of(leader).dump();
  EXPECT_EQ(value_of(leader.key()), "10.0.0.1:81\n");
  EXPECT_EQ(events_of(leader).of(lock_event::acquired).back().event.holder, "10.0.0.1:81");
}

// Not holding, or etcd no longer has our key (deleted by hand, lease revoked) while we still believe: lock_lost,
// and the key is not put again (an unguarded put would bring it back, without its place in line).
TEST_F(election, a_proclaim_without_the_lock_writes_nothing) {
  const auto name = lock_name();
  auto& m = add_manager(make_options(name, "first"));
  EXPECT_EQ(proclaim(m, "never"), errc::lock_lost);
  EXPECT_EQ(m.value(), "first");

  hold_steadily(m, 0s);
  auto key = m.key();
  cluster().etcdctl({"del", key});
  ASSERT_TRUE(m.have_lock()) << "the manager cannot know yet: its io_context did not run";
  EXPECT_EQ(proclaim(m, "after-delete"), errc::lock_lost);
  EXPECT_NE(value_of(key), "after-delete\n") << "(the manager may have put its key in line again: same lease, same name)";
  EXPECT_EQ(m.value(), "first");

  ASSERT_TRUE(run_until([&] { return m.have_lock(); }, 10s)) << events_of(m).dump();
  key = m.key();
  cluster().etcdctl({"lease", "revoke", key.substr(key.rfind('/') + 1)});
  EXPECT_EQ(proclaim(m, "after-revoke"), errc::lock_lost);
  EXPECT_EQ(value_of(key), "");
  EXPECT_EQ(count_of(events_of(m), "after-delete") + count_of(events_of(m), "after-revoke"), 0u);
}

// etcdctl elect and our managers share etcd's recipe: we see its proposal, wait behind it, and lead after it.
TEST_F(election, we_wait_behind_etcdctl_elect_and_lead_after_it) {
  const auto name = lock_name();
  auto etcdctl = start_etcdctl({"elect", name, "their-proposal"});
  ASSERT_TRUE(run_until([&] { return printed(*etcdctl, "their-proposal"); }, 10s)) << etcdctl->text();
  auto watching = make_options(name, "observer");
  watching.contend = false;
  auto& observer = add_manager(watching);
  observer.start();
  ASSERT_TRUE(run_until([&] { return count_of(events_of(observer), "their-proposal") == 1; }, 5s))
      << events_of(observer).dump();
  EXPECT_EQ(events_of(observer).of(lock_event::holder_changed).front().event.holder, "their-proposal")
      << "an observer's first event is the leader it found";

  auto& ours = add_manager(make_options(name, "our-proposal"));
  ours.start();
  run_for(1s);
  EXPECT_FALSE(ours.have_lock()) << "etcdctl leads";
  ::kill(etcdctl->pid(), SIGINT);  // etcdctl elect resigns on SIGINT (not SIGTERM): its key goes
  ASSERT_TRUE(run_until([&] { return ours.have_lock(); }, 10s)) << events_of(ours).dump();
  EXPECT_TRUE(run_until([&] { return count_of(events_of(observer), "our-proposal") == 1; }, 5s));
}

// Three members, etcd's leader frozen, our key deleted through the others: neither a proclaim nor a guarded write
// lands, whichever member our client talked to (a request stuck in the frozen one reaches etcd when it resumes,
// and the guard refuses it there).
TEST_F(election, with_etcds_leader_frozen_a_lost_leader_writes_nothing) {
  const auto name = lock_name();
  auto& c = own_cluster({.members = 3});
  auto& m = add_manager(make_options(name, "a"));
  hold_steadily(m, 0s);
  const auto key = m.key();
  const int frozen = c.leader();
  ASSERT_GE(frozen, 0);
  c.stop(frozen);
  // A write sent before the other two elect a leader is lost with the frozen one (etcdctl then times out).
  ASSERT_TRUE(run_until([&] { return c.leader() >= 0; }, 10s)) << "no new etcd leader";
  c.etcdctl({"del", key});
  const std::string data = name + "-data";
  auto out = std::make_shared<std::optional<error_code>>();
  m.async_guarded_put(data, "stale", [out](error_code ec, etcd::txn_response) { *out = ec; });
  const auto proclaimed = proclaim(m, "stale");
  ASSERT_TRUE(run_until([&] { return out->has_value(); }, 10s));
  for (auto ec : {**out, proclaimed})
    EXPECT_TRUE(ec == errc::lock_lost || ec == errc::timeout || ec == errc::unavailable) << ec.message();
  c.cont(frozen);
  c.etcdctl_at(frozen, {"get", data});  // the resumed member has caught up with what it held
  EXPECT_EQ(value_of(data), "");
  EXPECT_NE(value_of(key), "stale\n");
  EXPECT_EQ(m.value(), "a");
}

// The command's listener prints a proclaimed value as a line of its own, as `etcdctl elect -l` does.
TEST_F(election, clusterlock_elect_listen_prints_each_proclaimed_value) {
  const auto name = lock_name();
  auto& leader = add_manager(make_options(name, "v1"));
  hold_steadily(leader, 0s);
  piped_child listener({CLUSTERLOCK_CLI_PATH, "elect", "--listen", "--endpoints", cluster().endpoints_csv(), name},
                       clean_environment());
  ASSERT_TRUE(run_until([&] { return printed(listener, leader.key() + " v1"); }, 10s)) << listener.text();
  ASSERT_FALSE(proclaim(leader, "v2"));
  EXPECT_TRUE(run_until([&] { return printed(listener, leader.key() + " v2"); }, 10s)) << listener.text();
}

}  // namespace
}  // namespace clusterlock
