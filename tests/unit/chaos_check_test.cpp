// The chaos harness's judge, plan and record formats, driven with made-up logs (no etcd, no processes).

#include "chaos/chaos_records.hpp"
#include "chaos/fault_plan.hpp"
#include "chaos/log_check.hpp"
#include "chaos/resource_check.hpp"

#include <gtest/gtest.h>

#include <set>

namespace clusterlock::chaos {
namespace {

constexpr long long ms = 1'000'000;
constexpr long long s = 1'000'000'000;

// Lines every 5 ms from `from` to `to` (inclusive) by one holder.
void acting(std::vector<action>& out, const std::string& who, std::int64_t token, long long from, long long to) {
  for (long long t = from; t <= to; t += 5 * ms) out.push_back({t, token, who});
}

check_settings settings(long long end = 100 * s) {
  check_settings c;
  c.log_interval_ns = 5 * ms;
  c.liveness_bound_ns = 4 * s;
  c.run_start_ns = 0;
  c.run_end_ns = end;
  return c;
}

TEST(ChaosCheck, CleanHandOffsAreNoViolation) {
  std::vector<action> log;
  acting(log, "c0.0", 10, 0, 1 * s);
  acting(log, "c1.0", 20, 1 * s + 50 * ms, 2 * s);
  acting(log, "c2.0", 35, 2 * s + 50 * ms, 3 * s);
  const auto r = check(log, {}, {}, settings());
  EXPECT_TRUE(safe(r));
  EXPECT_EQ(r.tenures, 3u);
  EXPECT_EQ(r.handoffs, 2u);
  EXPECT_EQ(r.identities, 3u);
  EXPECT_EQ(r.close_pairs, 0u);
  EXPECT_EQ(r.actions, log.size());
}

TEST(ChaosCheck, OlderHolderActingAfterANewerOneIsAViolation) {
  std::vector<action> log;
  acting(log, "c0.0", 10, 0, 1 * s);
  acting(log, "c1.0", 20, 900 * ms + 2 * ms, 2 * s);  // overlaps the old holder's last 100 ms
  const auto r = check(log, {}, {}, settings());
  ASSERT_EQ(r.violations.size(), 1u);  // consecutive stale lines make one violation
  const auto& v = r.violations.front();
  EXPECT_EQ(v.identity, "c0.0");
  EXPECT_EQ(v.token, 10);
  EXPECT_EQ(v.newer_identity, "c1.0");
  EXPECT_EQ(v.newer_token, 20);
  EXPECT_EQ(v.newer_first_ns, 902 * ms);
  EXPECT_EQ(v.first_ns, 905 * ms);
  EXPECT_EQ(v.last_ns, 1 * s);
  EXPECT_EQ(v.lines, 20u);
  EXPECT_GT(r.close_pairs, 0u);
}

TEST(ChaosCheck, ViolationNamesTheLastFaultBeforeIt) {
  std::vector<action> log;
  acting(log, "c0.0", 10, 0, 1 * s);
  acting(log, "c1.0", 20, 990 * ms, 2 * s);
  std::vector<fault_record> faults = {{1, fault_kind::compact, 100 * ms, 100 * ms, "rev5"},
                                      {2, fault_kind::restart_member, 980 * ms, 985 * ms, "m2"},
                                      {3, fault_kind::compact, 1500 * ms, 1500 * ms, "rev9"}};
  const auto r = check(log, faults, {}, settings());
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_EQ(r.violations.front().recent_fault, 1);
  EXPECT_NE(describe(r, faults, settings()).find("restart_member"), std::string::npos);
}

// The old holder's key was taken away by hand at 990 ms; the new holder heard it first and acted at 995 ms.
std::vector<action> operator_race_log() {
  std::vector<action> log;
  acting(log, "c0.0", 10, 0, 1 * s);
  acting(log, "c1.0", 20, 995 * ms - 1 * ms, 2 * s);
  return log;
}

TEST(ChaosCheck, AnOperatorTakingTheKeyAwayIsARaceNotAViolation) {
  const std::vector<fault_record> faults = {{1, fault_kind::revoke_lease, 990 * ms, 1010 * ms, "c0.0"}};
  const auto r = check(operator_race_log(), faults, {}, settings());
  EXPECT_TRUE(safe(r));
  ASSERT_EQ(r.races.size(), 1u);
  EXPECT_EQ(r.races[0].cause, race_cause::operator_took_key);
  EXPECT_EQ(r.races[0].identity, "c0.0");
  EXPECT_EQ(r.races[0].recent_fault, 0);
}

TEST(ChaosCheck, AnOperatorRaceCountsWhenAskedTo) {
  const std::vector<fault_record> faults = {{1, fault_kind::delete_key, 990 * ms, 1010 * ms, "c0.0"}};
  auto c = settings();
  c.count_races = true;
  const auto r = check(operator_race_log(), faults, {}, c);
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_EQ(r.violations[0].cause, race_cause::operator_took_key);
  EXPECT_TRUE(r.races.empty());
}

TEST(ChaosCheck, OnlyTheHolderWhoseKeyWasTakenRaces) {
  // Another holder's key, a failed etcdctl, another kind of fault: none explains it.
  for (const auto& f : {fault_record{1, fault_kind::delete_key, 990 * ms, 1010 * ms, "c2.0"},
                        fault_record{1, fault_kind::revoke_lease, 990 * ms, 1010 * ms, "c0.0:failed"},
                        fault_record{1, fault_kind::stop_leader, 990 * ms, 1010 * ms, "c0.0"},
                        fault_record{1, fault_kind::delete_key, 997 * ms, 1010 * ms, "c0.0"}}) {  // after it acted
    const auto r = check(operator_race_log(), {f}, {}, settings());
    EXPECT_EQ(r.violations.size(), 1u) << format_fault(f);
    EXPECT_TRUE(r.races.empty()) << format_fault(f);
  }
}

TEST(ChaosCheck, AnOperatorRaceIsBoundedByTheProbe) {
  std::vector<action> log = operator_race_log();
  log.push_back({3500 * ms, 10, "c0.0"});  // 2.49 s after the delete: the probe should have told it by then
  const std::vector<fault_record> faults = {{1, fault_kind::delete_key, 990 * ms, 1010 * ms, "c0.0"}};
  const auto r = check(log, faults, {}, settings());
  EXPECT_EQ(r.violations.size(), 1u);  // the stale lines, the late one included, make one episode: past the bound
  EXPECT_TRUE(r.races.empty());
}

// The holder acted through a frozen leader (renewing through the new one); 5 ms after the old leader resumed its key
// went, and the next holder heard it first.
std::vector<action> stale_leader_log() {
  std::vector<action> log;
  acting(log, "c4.2", 38, 0, 32 * s + 741 * ms);
  acting(log, "c2.3", 40, 32 * s + 738 * ms, 40 * s);
  return log;
}

TEST(ChaosCheck, AKeyGoneJustAfterAFrozenLeaderResumedIsAnEtcdRace) {
  const std::vector<fault_record> faults = {{7, fault_kind::stop_leader, 30 * s + 249 * ms, 32 * s + 734 * ms, "m0"}};
  const auto r = check(stale_leader_log(), faults, {}, settings());
  EXPECT_TRUE(safe(r));
  ASSERT_EQ(r.races.size(), 1u);
  EXPECT_EQ(r.races[0].cause, race_cause::etcd_stale_leader);
  EXPECT_EQ(r.races[0].identity, "c4.2");
  EXPECT_EQ(r.races[0].recent_fault, 0);
  EXPECT_NE(describe(r, faults, settings()).find("etcd stale-leader race"), std::string::npos);
}

TEST(ChaosCheck, OnlyAKeyGoneSoonAfterTheLeaderResumedIsAnEtcdRace) {
  for (const auto& f : {
           // long before: the heal is 2 s before the next holder acted
           fault_record{7, fault_kind::stop_leader, 29 * s, 30 * s + 700 * ms, "m0"},
           // not a leader fault
           fault_record{7, fault_kind::restart_member, 30 * s, 32 * s + 734 * ms, "m0"},
           // healed after the next holder acted
           fault_record{7, fault_kind::stop_majority, 30 * s, 32 * s + 745 * ms, "m0+m1"},
       }) {
    const auto r = check(stale_leader_log(), {f}, {}, settings());
    EXPECT_EQ(r.violations.size(), 1u) << format_fault(f);
    EXPECT_TRUE(r.races.empty()) << format_fault(f);
  }
  // The stale holder had not acted since the fault began: its lease was not being kept alive through it.
  std::vector<action> log;
  acting(log, "c4.2", 38, 0, 29 * s);
  log.push_back({32 * s + 742 * ms, 38, "c4.2"});
  acting(log, "c2.3", 40, 32 * s + 741 * ms, 40 * s);
  const auto r = check(log, {{7, fault_kind::stop_leader, 30 * s, 32 * s + 734 * ms, "m0"}}, {}, settings());
  EXPECT_EQ(r.violations.size(), 1u);
  // It went on acting past the probe's bound: not a race.
  std::vector<action> late = stale_leader_log();
  late.push_back({35 * s, 38, "c4.2"});
  const auto r2 = check(late, {{7, fault_kind::stop_leader, 30 * s, 32 * s + 734 * ms, "m0"}}, {}, settings());
  EXPECT_EQ(r2.violations.size(), 1u);
  EXPECT_TRUE(r2.races.empty());
}

TEST(ChaosCheck, EqualTimesAreNotADecrease) {
  std::vector<action> log = {{1000, 20, "c1.0"}, {1000, 10, "c0.0"}, {2000, 20, "c1.0"}};
  const auto r = check(log, {}, {}, settings());
  EXPECT_TRUE(safe(r));
}

TEST(ChaosCheck, TwoStaleHoldersAreTwoViolations) {
  std::vector<action> log = {{1 * ms, 10, "a"}, {2 * ms, 20, "b"}, {3 * ms, 30, "c"},
                             {4 * ms, 10, "a"}, {5 * ms, 20, "b"}, {6 * ms, 20, "b"}, {7 * ms, 30, "c"}};
  const auto r = check(log, {}, {}, settings());
  ASSERT_EQ(r.violations.size(), 2u);
  EXPECT_EQ(r.violations[0].identity, "a");
  EXPECT_EQ(r.violations[0].lines, 1u);
  EXPECT_EQ(r.violations[1].identity, "b");
  EXPECT_EQ(r.violations[1].lines, 2u);
}

TEST(ChaosCheck, SameTokenAfterUnknownIsNoHandOff) {
  std::vector<action> log;
  acting(log, "c0.0", 10, 0, 1 * s);
  acting(log, "c0.0", 10, 3 * s, 4 * s);  // UNKNOWN in between, then ACQUIRED again with the same token
  const auto r = check(log, {}, {}, settings());
  EXPECT_TRUE(safe(r));
  EXPECT_EQ(r.handoffs, 0u);
  EXPECT_EQ(r.longest_idle_ns, 2 * s);
  EXPECT_EQ(r.longest_idle_from_ns, 1 * s);
}

TEST(ChaosCheck, LivenessIsMeasuredFromTheHeal) {
  std::vector<action> log;
  acting(log, "c0.0", 10, 0, 1 * s);
  acting(log, "c1.0", 20, 4 * s, 10 * s);   // 1.5 s after the first heal, until it is killed
  acting(log, "c2.0", 30, 15 * s, 30 * s);  // 5 s after the second heal: too late
  std::vector<fault_record> faults = {{1, fault_kind::stop_majority, 1 * s, 2500 * ms, "m0+m1"},
                                      {2, fault_kind::kill_holder, 10 * s, 10 * s, "c1.0"}};
  const auto r = check(log, faults, {}, settings());
  ASSERT_EQ(r.liveness.size(), 2u);
  EXPECT_EQ(r.liveness[0].status, liveness_status::ok);
  EXPECT_EQ(r.liveness[0].gap_ns, 1500 * ms);
  EXPECT_EQ(r.liveness[0].first_action_ns, 4 * s);
  EXPECT_EQ(r.liveness[1].status, liveness_status::failed);
  EXPECT_EQ(r.liveness[1].gap_ns, 5 * s);
  EXPECT_EQ(r.liveness_failures, 1u);
  EXPECT_EQ(r.worst_liveness_gap_ns, 5 * s);
  EXPECT_EQ(r.worst_liveness_fault, 1);
}

TEST(ChaosCheck, AHolderThatActsOnceAfterTheHealAndThenLosesTheLockCounts) {
  std::vector<action> log;
  acting(log, "c0.0", 10, 0, 3200 * ms);  // held through the fault, then its lease ran out
  acting(log, "c1.0", 20, 8 * s, 20 * s);
  std::vector<fault_record> faults = {{1, fault_kind::stop_majority, 1 * s, 3 * s, "m0+m1"}};
  const auto r = check(log, faults, {}, settings());
  EXPECT_EQ(r.liveness[0].status, liveness_status::failed);
  EXPECT_EQ(r.liveness[0].first_action_ns, 3 * s);
  EXPECT_EQ(r.liveness[0].gap_ns, 4800 * ms);
}

TEST(ChaosCheck, AFaultBeforeAnyoneActedTakesOverTheMeasurement) {
  std::vector<action> log;
  acting(log, "c1.0", 20, 8 * s, 20 * s);
  std::vector<fault_record> faults = {{1, fault_kind::kill_holder, 1 * s, 1 * s, "c0.0"},
                                      {2, fault_kind::stop_majority, 3 * s, 6 * s, "m0+m2"}};
  const auto r = check(log, faults, {}, settings());
  EXPECT_EQ(r.liveness[0].status, liveness_status::interrupted);
  EXPECT_EQ(r.liveness[0].interrupted_by, 1);
  EXPECT_EQ(r.liveness[1].status, liveness_status::ok);
  EXPECT_EQ(r.liveness[1].gap_ns, 2 * s);
  EXPECT_EQ(r.liveness_failures, 0u);
}

TEST(ChaosCheck, TheNextFaultEndsTheWindow) {
  std::vector<action> log;
  acting(log, "c0.0", 10, 0, 1 * s);
  acting(log, "c1.0", 20, 1010 * ms, 4900 * ms);  // frozen by the next fault
  acting(log, "c2.0", 30, 7 * s, 20 * s);         // after the frozen holder's lease ran out
  std::vector<fault_record> faults = {{1, fault_kind::delete_key, 990 * ms, 1 * s, "c0.0"},
                                      {2, fault_kind::stop_holder, 4950 * ms, 8 * s, "c1.0"}};
  const auto r = check(log, faults, {}, settings());
  EXPECT_EQ(r.liveness[0].status, liveness_status::ok);
  EXPECT_EQ(r.liveness[0].gap_ns, 50 * ms);  // the stretch from 4.9 s is cut at the next injection
  EXPECT_EQ(r.liveness[1].status, liveness_status::ok);
}

TEST(ChaosCheck, AFaultInsideAnotherIsMeasuredFromTheOuterHeal) {
  std::vector<action> log;
  acting(log, "c1.0", 20, 7 * s, 20 * s);
  std::vector<fault_record> faults = {{1, fault_kind::stop_leader, 1 * s, 5 * s, "m1"},
                                      {2, fault_kind::compact, 2 * s, 2 * s, "rev7"}};
  const auto r = check(log, faults, {}, settings());
  EXPECT_EQ(r.liveness[1].from_ns, 5 * s);
  EXPECT_EQ(r.liveness[1].status, liveness_status::ok);
  EXPECT_EQ(r.liveness[1].gap_ns, 2 * s);
}

TEST(ChaosCheck, AHealTooCloseToTheEndIsUnmeasured) {
  std::vector<action> log;
  acting(log, "c0.0", 10, 0, 1 * s);
  std::vector<fault_record> faults = {{1, fault_kind::kill_holder, 98 * s, 98 * s, "c0.0"}};
  const auto r = check(log, faults, {}, settings(100 * s));
  EXPECT_EQ(r.liveness[0].status, liveness_status::unmeasured);
  EXPECT_EQ(r.liveness_failures, 0u);
}

TEST(ChaosCheck, NobodyActingAfterAHealUntilTheEndFails) {
  std::vector<action> log;
  acting(log, "c0.0", 10, 0, 1 * s);
  std::vector<fault_record> faults = {{1, fault_kind::kill_holder, 2 * s, 2 * s, "c0.0"}};
  const auto r = check(log, faults, {}, settings(100 * s));
  EXPECT_EQ(r.liveness[0].status, liveness_status::failed);
  EXPECT_EQ(r.liveness[0].gap_ns, 98 * s);
}

TEST(ChaosCheck, GracefulHandOffGapIsToAnotherIdentity) {
  std::vector<action> log;
  acting(log, "c0.0", 10, 0, 1 * s);
  acting(log, "c1.0", 20, 1 * s + 30 * ms, 2 * s);
  const auto r = check(log, {}, {{1 * s - 2 * ms, "c0.0"}}, settings());
  EXPECT_EQ(r.drivers, 1u);
  EXPECT_EQ(r.graceful_measured, 1u);
  EXPECT_EQ(r.worst_graceful_gap_ns, 32 * ms);
  // A fault before the next holder acted: not the hand-off's doing.
  const auto disturbed =
      check(log, {{1, fault_kind::stop_majority, 1 * s, 1 * s + 20 * ms, "m0+m1"}}, {{1 * s - 2 * ms, "c0.0"}},
            settings());
  EXPECT_EQ(disturbed.drivers, 1u);
  EXPECT_EQ(disturbed.graceful_measured, 0u);
  EXPECT_EQ(disturbed.worst_graceful_gap_ns, 0);
}

TEST(ChaosRecords, ParseAndFormat) {
  auto a = parse_action("123456 42 c3.7");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->ns, 123456);
  EXPECT_EQ(a->token, 42);
  EXPECT_EQ(a->identity, "c3.7");
  EXPECT_FALSE(parse_action("123456 42"));       // torn
  EXPECT_FALSE(parse_action("123456 4x c1.0"));  // torn inside a number
  EXPECT_FALSE(parse_action("123456 0 c1.0"));   // token 0 is "no lock"
  EXPECT_FALSE(parse_action(""));

  const fault_record f{7, fault_kind::revoke_lease, 100, 250, "c2.1"};
  auto back = parse_fault(format_fault(f));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->id, 7);
  EXPECT_EQ(back->kind, fault_kind::revoke_lease);
  EXPECT_EQ(back->inject_ns, 100);
  EXPECT_EQ(back->heal_ns, 250);
  EXPECT_EQ(back->detail, "c2.1");
  EXPECT_FALSE(parse_fault("7 no_such_kind 1 2 x"));

  auto d = parse_driver(format_driver({99, "c0.3"}));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->ns, 99);
  EXPECT_EQ(d->identity, "c0.3");
  EXPECT_FALSE(d->requeue);
  auto r = parse_driver(format_driver({100, "c1.2", true}));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->requeue);
  EXPECT_EQ(r->identity, "c1.2");

  for (auto k : all_fault_kinds) EXPECT_EQ(fault_kind_from(to_string(k)), k);
  EXPECT_EQ(slot_of("c3.7"), 3);
  EXPECT_EQ(slot_of("c12"), 12);
  EXPECT_EQ(slot_of("x3.7"), -1);
  EXPECT_EQ(slot_of("c.7"), -1);
}

TEST(ChaosPlan, SameSeedSamePlan) {
  plan_settings p;
  p.seed = 42;
  fault_plan a(p), b(p);
  p.seed = 43;
  fault_plan c(p);
  bool differs = false;
  for (int i = 0; i < 200; ++i) {
    const auto x = a.next(), y = b.next(), z = c.next();
    EXPECT_EQ(format_step(x), format_step(y));
    EXPECT_EQ(x.churn_s, y.churn_s);
    differs = differs || format_step(x) != format_step(z);
  }
  EXPECT_TRUE(differs);
}

TEST(ChaosPlan, StepsAreWithinTheirBounds) {
  plan_settings p;
  p.seed = 7;
  p.ttl_s = 2;
  fault_plan plan(p);
  std::set<fault_kind> seen;
  for (int i = 0; i < 500; ++i) {
    const auto st = plan.next();
    seen.insert(st.kind);
    EXPECT_GE(st.gap_s, p.gap_min_s);
    EXPECT_LT(st.gap_s, p.gap_max_s);
    for (double t : st.churn_s) EXPECT_LT(t, st.gap_s);
    if (st.kind == fault_kind::stop_holder) {
      EXPECT_GT(st.hold_s, p.ttl_s);  // the lease must run out
    }
    if (st.kind == fault_kind::clock_slow || st.kind == fault_kind::clock_fast) {
      EXPECT_GT(st.hold_s, p.ttl_s);      // frozen past its lease in real time ...
      EXPECT_LT(st.hold_s, 2 * p.ttl_s);  // ... but not by a clock at half speed
    }
    if (st.kind == fault_kind::clock_jump) {
      EXPECT_GT(st.hold_s, p.ttl_s);  // back by more than the lease
    }
    if (st.kind == fault_kind::stop_majority) {
      EXPECT_NE(st.member, st.other_member);
      EXPECT_GE(st.member, 0);
      EXPECT_LT(st.other_member, 3);
    }
    if (st.kind == fault_kind::restart_member) {
      EXPECT_GE(st.member, 0);
    }
  }
  EXPECT_EQ(seen.size(), std::size(all_fault_kinds));
}

// ---- clock faults: a liar's stale lines are clock overlaps, not violations

TEST(ChaosCheck, ALiarsStaleLinesDuringItsClockFaultAreClockOverlaps) {
  std::vector<action> log;
  acting(log, "c0.3", 10, 0, 1 * s);
  acting(log, "c1.0", 20, 900 * ms, 2 * s);  // the liar went on 100 ms after the next holder acted
  const std::vector<fault_record> faults = {{4, fault_kind::clock_slow, 0, 3 * s, "c0.3:x0.5:frozen2641ms"}};
  const auto r = check(log, faults, {}, settings());
  EXPECT_TRUE(safe(r));
  EXPECT_TRUE(r.races.empty());
  ASSERT_EQ(r.clock_overlaps.size(), 1u);
  EXPECT_EQ(r.clock_overlaps.front().cause, race_cause::clock_fault);
  EXPECT_EQ(r.clock_overlaps.front().recent_fault, 0);
  EXPECT_NE(describe(r, faults, settings()).find("clock overlaps:    1"), std::string::npos);
}

TEST(ChaosCheck, StaleLinesOfAnotherIdentityOrOutsideTheClockFaultStayViolations) {
  std::vector<action> log;
  acting(log, "c0.3", 10, 0, 1 * s);
  acting(log, "c1.0", 20, 900 * ms, 2 * s);
  for (const auto& f : {fault_record{4, fault_kind::clock_jump, 0, 3 * s, "c2.1:jump:back3000ms"},
                        fault_record{4, fault_kind::clock_fast, 950 * ms, 3 * s, "c0.3:x2:frozen3000ms"},
                        fault_record{4, fault_kind::clock_slow, 0, 800 * ms, "c0.3:x0.5:frozen2000ms"}}) {
    const auto r = check(log, {f}, {}, settings());
    EXPECT_FALSE(safe(r)) << format_fault(f);
    EXPECT_TRUE(r.clock_overlaps.empty()) << format_fault(f);
  }
}

// ---- the fenced resource's verdict

resource_write wrote(long long t, bool accepted, std::int64_t token, const std::string& who) {
  return {t, accepted, token, who};
}

TEST(ChaosResourceCheck, InOrderAcceptsAndStaleRejectsAreFenced) {
  const std::vector<resource_write> w = {
      wrote(1 * ms, true, 10, "c0.0"),  wrote(2 * ms, true, 10, "c0.0"),   // one holder writing again
      wrote(3 * ms, true, 20, "c1.0"),  wrote(4 * ms, false, 10, "c0.0"),  // the old one, refused
      wrote(5 * ms, false, 10, "c0.0"), wrote(6 * ms, true, 35, "c2.0")};
  const auto r = check_resource(w);
  EXPECT_TRUE(fenced(r));
  EXPECT_EQ(r.writes, 6u);
  EXPECT_EQ(r.accepted, 4u);
  EXPECT_EQ(r.rejected, 2u);
  EXPECT_EQ(r.tokens_accepted, 3u);
  EXPECT_EQ(r.stale_rejects, 2u);
  EXPECT_EQ(r.stale_writers, 1u);
  EXPECT_EQ(r.wrong_rejects, 0u);
}

TEST(ChaosResourceCheck, AnAcceptBelowTheHighestTokenIsOutOfOrder) {
  const std::vector<resource_write> w = {wrote(1 * ms, true, 10, "c0.0"), wrote(2 * ms, true, 20, "c1.0"),
                                         wrote(3 * ms, true, 10, "c0.0"),  // the stale holder got through
                                         wrote(4 * ms, true, 20, "c1.0")};
  const auto r = check_resource(w);
  EXPECT_FALSE(fenced(r));
  EXPECT_EQ(r.out_of_order, 1u);
  ASSERT_EQ(r.out_of_order_writes.size(), 1u);
  EXPECT_EQ(r.out_of_order_writes.front().ns, 3 * ms);
  EXPECT_EQ(r.out_of_order_writes.front().identity, "c0.0");
  EXPECT_NE(describe(r).find("OUT OF ORDER: 3000000 accept 10 c0.0"), std::string::npos);
}

TEST(ChaosResourceCheck, TheHighestTokenFromAnotherIdentityIsOutOfOrder) {
  // Two holders with one token: the lock handed one tenure to two processes.
  const std::vector<resource_write> w = {wrote(1 * ms, true, 20, "c1.0"), wrote(2 * ms, true, 20, "c2.0")};
  EXPECT_EQ(check_resource(w).out_of_order, 1u);
}

TEST(ChaosResourceCheck, ARefusedWriteTheRuleAllowsIsCountedApart) {
  const std::vector<resource_write> w = {wrote(1 * ms, true, 10, "c0.0"), wrote(2 * ms, false, 20, "c1.0")};
  const auto r = check_resource(w);
  EXPECT_TRUE(fenced(r));
  EXPECT_EQ(r.wrong_rejects, 1u);
  EXPECT_EQ(r.stale_rejects, 0u);
}

TEST(ChaosResourceCheck, ResourceLinesRoundTrip) {
  const auto w = wrote(123456789, false, 42, "c3.7");
  const auto back = parse_resource_write(format_resource_write(w));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->ns, w.ns);
  EXPECT_FALSE(back->accepted);
  EXPECT_EQ(back->token, 42);
  EXPECT_EQ(back->identity, "c3.7");
  EXPECT_FALSE(parse_resource_write("123 maybe 42 c3.7"));
  EXPECT_FALSE(parse_resource_write("123 accept 42"));
}

}  // namespace
}  // namespace clusterlock::chaos
