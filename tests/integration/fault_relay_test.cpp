// The testing kit's fault relay between a real lock_manager and a real etcd: blackhole and cut make the holder
// unsure (UNKNOWN) within probe_interval + request_timeout; pass brings it back, holding the same lock while the
// lease lived, or with a newer one (after REMOVED) when the lease expired in etcd meanwhile.
#include <clusterlock/testing/fault_relay.hpp>

#include "support/lock_fixture.hpp"

namespace clusterlock::test {
namespace {

using clusterlock::testing::fault_relay;

// Probe 1 s + request timeout 1 s (the defaults), and a margin for a loaded machine.
constexpr double unknown_bound_ms = 1000.0 + 1000.0 + 1000.0;

class fault_relay_it : public lock_manager_it {
 protected:
  // A holder whose every connection to etcd goes through `relay`.
  lock_manager& holder_through(fault_relay& relay, std::chrono::seconds ttl) {
    auto o = make_options(lock_name(), "relayed", ttl);
    o.endpoints = {relay.url()};
    return add_manager(o);
  }
};

TEST_F(fault_relay_it, blackhole_makes_the_holder_unknown_and_pass_makes_it_hold_the_same_lock_again) {
  fault_relay relay("127.0.0.1", cluster().client_port(0));
  auto& m = holder_through(relay, 10s);  // a long lease: it outlives the blackhole
  const auto token = hold_steadily(m, 1500ms);
  ASSERT_NE(token, 0);

  const auto t_blackhole = now_ns();
  relay.blackhole();
  ASSERT_TRUE(run_until([&] { return events_of(m).count(lock_event::unknown, t_blackhole) > 0; }, 6s))
      << events_of(m).dump();
  const auto unknown = *events_of(m).first(lock_event::unknown, t_blackhole);
  measure("blackhole -> UNKNOWN", ms_between(t_blackhole, unknown.ns));
  EXPECT_LT(ms_between(t_blackhole, unknown.ns), unknown_bound_ms);
  EXPECT_EQ(unknown.event.error, errc::timeout) << unknown.event.error.message();  // nothing answered
  EXPECT_FALSE(m.have_lock());
  EXPECT_EQ(relay.resets(), 0u);

  const auto t_pass = now_ns();
  relay.pass();
  ASSERT_TRUE(run_until([&] { return events_of(m).count(lock_event::acquired, t_pass) > 0; }, 10s))
      << events_of(m).dump();
  measure("pass -> ACQUIRED again", ms_between(t_pass, events_of(m).first(lock_event::acquired, t_pass)->ns));
  EXPECT_TRUE(m.have_lock());
  EXPECT_EQ(m.fencing_token(), token);
  EXPECT_EQ(events_of(m).count(lock_event::removed), 0u) << events_of(m).dump();
}

TEST_F(fault_relay_it, blackhole_past_the_lease_ends_in_removed_then_a_newer_lock_after_pass) {
  fault_relay relay("127.0.0.1", cluster().client_port(0));
  const auto name = lock_name();
  auto o = make_options(name, "expiring", 2s);
  o.endpoints = {relay.url()};
  auto& m = add_manager(o);
  const auto token = hold_steadily(m, 1s);
  ASSERT_NE(token, 0);
  ASSERT_EQ(keys_under(name + "/").size(), 1u);

  const auto t_blackhole = now_ns();
  relay.blackhole();
  ASSERT_TRUE(run_until([&] { return events_of(m).count(lock_event::unknown, t_blackhole) > 0; }, 6s))
      << events_of(m).dump();
  EXPECT_LT(ms_between(t_blackhole, events_of(m).first(lock_event::unknown, t_blackhole)->ns), unknown_bound_ms);
  // etcd, which the blackhole does not touch, lets the lease expire: wait (bounded) until the key is gone.
  bool expired = false;
  for (int i = 0; i < 50 && !expired; ++i) {
    run_for(200ms);
    expired = keys_under(name + "/").empty();
  }
  ASSERT_TRUE(expired) << "the lease did not expire in etcd within 10 s";
  EXPECT_FALSE(m.have_lock());

  const auto t_pass = now_ns();
  relay.pass();
  ASSERT_TRUE(run_until([&] { return events_of(m).count(lock_event::acquired, t_pass) > 0; }, 10s))
      << events_of(m).dump();
  EXPECT_GT(events_of(m).count(lock_event::removed, t_blackhole), 0u) << events_of(m).dump();
  EXPECT_GT(m.fencing_token(), token) << events_of(m).dump();
  EXPECT_TRUE(m.have_lock());
}

TEST_F(fault_relay_it, cut_makes_the_holder_unknown_and_pass_makes_it_hold_the_same_lock_again) {
  fault_relay relay("127.0.0.1", cluster().client_port(0));
  auto& m = holder_through(relay, 10s);
  const auto token = hold_steadily(m, 1500ms);
  ASSERT_NE(token, 0);

  const auto t_cut = now_ns();
  relay.cut();
  EXPECT_GT(relay.resets(), 0u);  // the watch's connection at least
  ASSERT_TRUE(run_until([&] { return events_of(m).count(lock_event::unknown, t_cut) > 0; }, 6s))
      << events_of(m).dump();
  const auto unknown = *events_of(m).first(lock_event::unknown, t_cut);
  measure("cut -> UNKNOWN", ms_between(t_cut, unknown.ns));
  EXPECT_LT(ms_between(t_cut, unknown.ns), unknown_bound_ms);
  EXPECT_FALSE(m.have_lock());

  const auto t_pass = now_ns();
  relay.pass();
  ASSERT_TRUE(run_until([&] { return events_of(m).count(lock_event::acquired, t_pass) > 0; }, 10s))
      << events_of(m).dump();
  measure("pass after cut -> ACQUIRED again", ms_between(t_pass, events_of(m).first(lock_event::acquired, t_pass)->ns));
  EXPECT_EQ(m.fencing_token(), token);
  EXPECT_EQ(events_of(m).count(lock_event::removed), 0u) << events_of(m).dump();
}

}  // namespace
}  // namespace clusterlock::test
