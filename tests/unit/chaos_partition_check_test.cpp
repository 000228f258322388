// The chaos judge's measures of a partition that cuts the holder off (log_check.hpp: isolation_result), with
// made-up logs.

#include "chaos/chaos_records.hpp"
#include "chaos/log_check.hpp"

#include <gtest/gtest.h>

namespace clusterlock::chaos::partition_test {  // its own names beside chaos_check_test.cpp's in a unity build
namespace {

constexpr long long ms = 1'000'000;
constexpr long long s = 1'000'000'000;

void act(std::vector<action>& out, const std::string& who, std::int64_t token, long long from, long long to) {
  for (long long t = from; t <= to; t += 5 * ms) out.push_back({t, token, who});
}

check_settings bounds() {
  check_settings c;
  c.log_interval_ns = 5 * ms;
  c.liveness_bound_ns = 4 * s;  // TTL + 2 s
  c.race_bound_ns = 2 * s;      // probe_interval + request_timeout
  c.run_end_ns = 100 * s;
  return c;
}

TEST(ChaosPartitionCheck, AnIsolatedHolderThatStopsAndIsReplacedInTimePasses) {
  std::vector<action> log;
  act(log, "c0.0", 10, 0, 11500 * ms);          // isolated at 10 s: stops 1.5 s later
  act(log, "c1.0", 20, 12 * s, 30 * s);         // takes over 2 s after the isolation
  const std::vector<fault_record> faults = {{1, fault_kind::isolate_holder, 10 * s, 14 * s, "c0.0"}};
  const auto r = check(log, faults, {}, bounds());
  ASSERT_EQ(r.isolations.size(), 1u);
  EXPECT_TRUE(r.isolations[0].asserted);
  EXPECT_EQ(r.isolations[0].holder_quiet_ns, 1500 * ms);
  EXPECT_EQ(r.isolations[0].takeover_ns, 2 * s);
  EXPECT_FALSE(r.isolations[0].failed);
  EXPECT_EQ(r.liveness_failures, 0u);
  EXPECT_EQ(r.worst_gap_by_kind.at(fault_kind::isolate_holder), 5 * ms);  // acting at the heal: one log interval
}

TEST(ChaosPartitionCheck, AnIsolatedHolderActingPastTheProbeBoundFails) {
  std::vector<action> log;
  act(log, "c0.0", 10, 0, 12500 * ms);  // 2.5 s after the isolation: its probe should have said UNKNOWN
  act(log, "c1.0", 20, 13 * s, 30 * s);
  const auto r = check(log, {{1, fault_kind::isolate_holder, 10 * s, 14 * s, "c0.0"}}, {}, bounds());
  ASSERT_EQ(r.isolations.size(), 1u);
  EXPECT_TRUE(r.isolations[0].failed);
  EXPECT_EQ(r.liveness_failures, 1u);
}

TEST(ChaosPartitionCheck, NoNewHolderWithinTheBoundAfterIsolatingTheHolderFails) {
  std::vector<action> log;
  act(log, "c0.0", 10, 0, 11 * s);
  act(log, "c1.0", 20, 14500 * ms, 30 * s);  // 4.5 s after the isolation (bound 4 s)
  const auto r = check(log, {{1, fault_kind::isolate_holder, 10 * s, 15 * s, "c0.0"}}, {}, bounds());
  ASSERT_EQ(r.isolations.size(), 1u);
  EXPECT_EQ(r.isolations[0].takeover_ns, 4500 * ms);
  EXPECT_TRUE(r.isolations[0].failed);
}

TEST(ChaosPartitionCheck, AfterASplitWithTheHolderAloneTheMajorityMustTakeOverInTime) {
  const std::vector<fault_record> split = {{1, fault_kind::split, 10 * s, 15 * s, "c0.0:m2+c0c1:holder-alone"}};
  std::vector<action> in_time;
  act(in_time, "c0.0", 10, 0, 11 * s);
  act(in_time, "c2.0", 20, 13500 * ms, 30 * s);  // 3.5 s into the split (bound 4 s)
  const auto ok = check(in_time, split, {}, bounds());
  ASSERT_EQ(ok.isolations.size(), 1u);
  EXPECT_TRUE(ok.isolations[0].asserted);
  EXPECT_EQ(ok.isolations[0].takeover_ns, 3500 * ms);
  EXPECT_FALSE(ok.isolations[0].failed);
  EXPECT_EQ(ok.liveness_failures, 0u);

  std::vector<action> late;
  act(late, "c0.0", 10, 0, 11 * s);
  act(late, "c2.0", 20, 14500 * ms, 30 * s);  // 4.5 s: its keepalives must not have reached the leader that long
  const auto r = check(late, split, {}, bounds());
  ASSERT_EQ(r.isolations.size(), 1u);
  EXPECT_EQ(r.isolations[0].takeover_ns, 4500 * ms);
  EXPECT_TRUE(r.isolations[0].failed);
  EXPECT_EQ(r.liveness_failures, 1u);
}

TEST(ChaosPartitionCheck, AfterASplitOnlyTheMajoritySidesActionIsATakeover) {
  const std::vector<fault_record> split = {{1, fault_kind::split, 10 * s, 15 * s, "c0.0:m2+c0c1:holder-alone"}};
  std::vector<action> log;
  act(log, "c0.0", 10, 0, 11 * s);
  act(log, "c1.0", 20, 12 * s, 12 * s);          // the lone side's other slot: not the majority's takeover
  act(log, "c12.0", 30, 16 * s, 30 * s);         // slot 12 is not slot 1; after the 4 s bound
  const auto r = check(log, split, {}, bounds());
  ASSERT_EQ(r.isolations.size(), 1u);
  EXPECT_EQ(r.isolations[0].takeover_ns, 6 * s);
  EXPECT_TRUE(r.isolations[0].failed);
}

TEST(ChaosPartitionCheck, AfterASplitWhoseLoneMemberLedTheTakeoverIsMeasuredOnly) {
  std::vector<action> log;
  act(log, "c0.0", 10, 0, 11 * s);
  act(log, "c2.0", 20, 15 * s, 30 * s);  // 5 s: the majority elected a leader first, which renewed every lease
  const auto r =
      check(log, {{1, fault_kind::split, 10 * s, 16 * s, "c0.0:m2+c0c1:holder-alone:lone-leader"}}, {}, bounds());
  ASSERT_EQ(r.isolations.size(), 1u);
  EXPECT_TRUE(r.isolations[0].asserted);
  EXPECT_FALSE(r.isolations[0].takeover_asserted);
  EXPECT_EQ(r.isolations[0].takeover_ns, 5 * s);
  EXPECT_FALSE(r.isolations[0].failed);
}

TEST(ChaosPartitionCheck, AfterASplitTheCutOffHolderMustStillStop) {
  std::vector<action> stale;
  act(stale, "c0.0", 10, 0, 12500 * ms);  // acting 2.5 s into the split: its probe should have said UNKNOWN
  act(stale, "c2.0", 20, 13 * s, 30 * s);
  const auto r = check(stale, {{1, fault_kind::split, 10 * s, 15 * s, "c0.0:m2+c0c1:holder-alone"}}, {}, bounds());
  EXPECT_TRUE(r.isolations[0].failed);
  EXPECT_EQ(r.liveness_failures, 1u);
}

TEST(ChaosPartitionCheck, AHolderThatFailsOverFromItsIsolatedMemberIsOnlyReported) {
  std::vector<action> log;
  act(log, "c0.0", 10, 0, 14 * s);  // keeps acting through other members (right), until a hand-off after the heal
  act(log, "c1.0", 20, 14 * s + 10 * ms, 30 * s);
  const auto r = check(log, {{1, fault_kind::isolate_member, 10 * s, 13 * s, "c0.0:m1"},
                             {2, fault_kind::split, 20 * s, 23 * s, "c1.0:m1+c2c3:holder-majority"}},
                       {}, bounds());
  ASSERT_EQ(r.isolations.size(), 2u);
  EXPECT_FALSE(r.isolations[0].asserted);
  EXPECT_FALSE(r.isolations[1].asserted);
  EXPECT_EQ(r.isolations[0].holder_quiet_ns, 2995 * ms);  // its last action before the heal
  EXPECT_EQ(r.isolations[0].takeover_ns, -1);           // the hand-off after the heal says nothing about the fault
  EXPECT_EQ(r.liveness_failures, 0u);
}

TEST(ChaosPartitionCheck, PartitionKindsRoundTrip) {
  for (auto k : {fault_kind::isolate_holder, fault_kind::isolate_member, fault_kind::isolate_leader,
                 fault_kind::split, fault_kind::flap}) {
    EXPECT_TRUE(is_partition(k));
    EXPECT_FALSE(is_clock_fault(k));
    EXPECT_EQ(fault_kind_from(to_string(k)), k);
  }
  EXPECT_FALSE(is_partition(fault_kind::stop_majority));
}

}  // namespace
}  // namespace clusterlock::chaos::partition_test
