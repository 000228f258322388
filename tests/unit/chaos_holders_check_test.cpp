// The chaos checker with several holders (holder_check.hpp): a semaphore of N permits and a read-write lock, in the
// lock log and at the resource. Made-up logs, no etcd.

#include "chaos/chaos_records.hpp"
#include "chaos/holder_check.hpp"
#include "chaos/log_check.hpp"
#include "chaos/resource_check.hpp"

#include <gtest/gtest.h>

namespace clusterlock::chaos::holders_test {  // its own names beside chaos_check_test.cpp's in a unity build
namespace {

constexpr long long ms = 1'000'000;
constexpr long long s = 1'000'000'000;

// Lines every 5 ms from `from` to `to` (inclusive) by one holder.
void act(std::vector<action>& out, const std::string& who, std::int64_t token, long long from, long long to) {
  for (long long t = from; t <= to; t += 5 * ms) out.push_back({t, token, who});
}

check_settings with_slots(std::size_t n) {
  check_settings c;
  c.run_end_ns = 100 * s;
  c.holders.slots = n;
  return c;
}

check_settings read_write(std::map<std::string, access_mode> modes) {
  check_settings c;
  c.run_end_ns = 100 * s;
  c.holders.modes = std::move(modes);
  return c;
}

// ---- a semaphore of N

TEST(ChaosHoldersCheck, InterleavedTokensOfTwoPermitsAreLegitimate) {
  // N = 2: A (1) holds throughout; B (2) releases, C (3) is admitted, A acts after C: no overlap of 3, no violation.
  // The lock's rule (tokens never decrease) would call A's lines after C's first one violations.
  std::vector<action> log;
  act(log, "A", 1, 0, 3 * s);
  act(log, "B", 2, 1 * ms, 1 * s);
  act(log, "C", 3, 1 * s + 3 * ms, 2 * s);
  act(log, "D", 4, 2 * s + 3 * ms, 4 * s);  // C released, D admitted
  const auto r = check(log, {}, {}, with_slots(2));
  EXPECT_TRUE(safe(r)) << describe(r, {}, with_slots(2));
  EXPECT_TRUE(r.races.empty());
  EXPECT_EQ(r.peak_holders, 2u);
  EXPECT_EQ(r.tenures, 4u);
  EXPECT_FALSE(safe(check(log, {}, {}, with_slots(1))));  // the same log under the lock's rule
}

TEST(ChaosHoldersCheck, ThreeHoldersOfTwoPermitsAtOnceIsAViolation) {
  std::vector<action> log;
  act(log, "A", 1, 0, 3 * s);
  act(log, "B", 2, 1 * ms, 2 * s);
  act(log, "C", 3, 1 * s, 2 * s);  // admitted while A and B both still act: 3 holders of 2 permits
  const auto r = check(log, {}, {}, with_slots(2));
  ASSERT_EQ(r.violations.size(), 1u);
  const auto& v = r.violations.front();
  EXPECT_EQ(v.identity, "A");  // the oldest of the three is the one that could not hold any more
  EXPECT_EQ(v.token, 1);
  EXPECT_EQ(v.newer_identity, "C");  // whose admission proved it
  EXPECT_EQ(v.newer_first_ns, 1 * s);
  EXPECT_EQ(v.evidence, (std::vector<std::string>{"C", "B"}));
  EXPECT_EQ(r.peak_holders, 3u);
  EXPECT_TRUE(safe(check(log, {}, {}, with_slots(3))));  // 3 permits allow it
}

TEST(ChaosHoldersCheck, AnOlderHolderActingAfterNNewerOnesHeldAtOnceIsAViolation) {
  // N = 2: B (2) and C (3) held at once, so A's (1) key was gone; A acts later, after both released, overlapping
  // nobody: no count of overlaps sees it, the floor does.
  std::vector<action> log;
  act(log, "B", 2, 0, 1 * s);
  act(log, "C", 3, 500 * ms, 1 * s);
  act(log, "A", 1, 2 * s, 2 * s + 20 * ms);
  const auto r = check(log, {}, {}, with_slots(2));
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_EQ(r.violations.front().identity, "A");
  EXPECT_EQ(r.violations.front().lines, 5u);
  EXPECT_EQ(r.peak_holders, 2u);
}

TEST(ChaosHoldersCheck, OneNewerHolderIsNotEnoughWithTwoPermits) {
  std::vector<action> log;
  act(log, "B", 2, 0, 1 * s);
  act(log, "A", 1, 2 * s, 2 * s + 20 * ms);  // only one newer token ever held: A may still hold
  EXPECT_TRUE(safe(check(log, {}, {}, with_slots(2))));
}

TEST(ChaosHoldersCheck, WithOnePermitTheVerdictsAreTheLocks) {
  // A semaphore of 1 judged as the lock: the same violation as the lock's rule finds (newer holder, lines).
  std::vector<action> log;
  act(log, "c0.0", 10, 0, 1 * s);
  act(log, "c1.0", 20, 902 * ms, 2 * s);
  const auto one = check(log, {}, {}, with_slots(1));
  ASSERT_EQ(one.violations.size(), 1u);
  EXPECT_EQ(one.violations[0].newer_identity, "c1.0");
  EXPECT_EQ(one.violations[0].lines, 20u);
  EXPECT_TRUE(one.violations[0].evidence.empty());  // one holder: nobody else to blame
}

TEST(ChaosHoldersCheck, AnOperatorTakingOneOfTheNewerKeysExplainsTheOverlap) {
  // N = 2: A (1) and B (2) hold; an operator deletes B's key; C (3) is admitted; B hears it 2 ms later. The floor
  // flags A (the oldest of three at once) although B was the stale one: the exception covers the evidence.
  std::vector<action> log;
  act(log, "A", 1, 0, 2 * s);
  act(log, "B", 2, 1 * ms, 1 * s + 1 * ms);
  act(log, "C", 3, 999 * ms, 2 * s);
  const std::vector<fault_record> took_b = {{1, fault_kind::delete_key, 990 * ms, 995 * ms, "B"}};
  const auto r = check(log, took_b, {}, with_slots(2));
  EXPECT_TRUE(safe(r)) << describe(r, took_b, with_slots(2));
  ASSERT_EQ(r.races.size(), 1u);
  EXPECT_EQ(r.races[0].cause, race_cause::operator_took_key);
  // Someone else's key (not among the three) explains nothing.
  const std::vector<fault_record> took_x = {{1, fault_kind::delete_key, 990 * ms, 995 * ms, "X"}};
  EXPECT_FALSE(safe(check(log, took_x, {}, with_slots(2))));
}

TEST(ChaosHoldersCheck, ALiarAmongSeveralHoldersIsAClockOverlap) {
  std::vector<action> log;
  act(log, "c0.3", 1, 0, 3 * s);  // the liar, frozen and woken: acts beside two newer permits
  act(log, "B", 2, 1 * ms, 3 * s);
  act(log, "C", 3, 2 * s, 3 * s);
  const std::vector<fault_record> faults = {{4, fault_kind::clock_slow, 0, 4 * s, "c0.3:x0.5:frozen2641ms"}};
  const auto r = check(log, faults, {}, with_slots(2));
  EXPECT_TRUE(safe(r));
  EXPECT_EQ(r.clock_overlaps.size(), 1u);
  EXPECT_TRUE(r.races.empty());
}

TEST(ChaosHoldersCheck, AStaleHolderDoesNotRaiseTheFloorForHonestOnes) {
  // N = 2: A (1) and B (2) hold; C (3) is admitted while both act, so A is stale and found so. Later C releases,
  // D (4) is admitted: B (2) and D hold together, honest, although A's stale stretch went on beside them.
  std::vector<action> log;
  act(log, "A", 1, 0, 3 * s);
  act(log, "B", 2, 1 * ms, 4 * s);
  act(log, "C", 3, 1 * s, 2 * s);
  act(log, "D", 4, 2 * s + 2 * ms, 4 * s);
  const auto r = check(log, {}, {}, with_slots(2));
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_EQ(r.violations[0].identity, "A");
}

TEST(ChaosHoldersCheck, AGracefulHandOffWithSeveralHoldersIsMeasuredToTheAdmission) {
  std::vector<action> log;
  act(log, "A", 1, 0, 2 * s);
  act(log, "B", 2, 1 * ms, 1 * s);
  act(log, "C", 3, 1 * s + 32 * ms, 2 * s);  // admitted 32 ms after B's SIGTERM; A acted in between
  const auto r = check(log, {}, {{1 * s + 2 * ms, "B"}}, with_slots(2));
  EXPECT_EQ(r.graceful_measured, 1u);
  EXPECT_EQ(r.worst_graceful_gap_ns, 30 * ms);
}

TEST(ChaosHoldersCheck, TheTakeoverAfterACutIsAnAdmission) {
  // N = 2: the oldest holder (A) is cut off; B goes on beside it (not a takeover), C is admitted 2.1 s later.
  std::vector<action> log;
  act(log, "A", 1, 0, 11 * s + 500 * ms);
  act(log, "B", 2, 1 * ms, 20 * s);
  act(log, "C", 3, 12 * s + 100 * ms, 20 * s);
  const std::vector<fault_record> faults = {{1, fault_kind::isolate_holder, 10 * s, 14 * s, "A"}};
  const auto r = check(log, faults, {}, with_slots(2));
  ASSERT_EQ(r.isolations.size(), 1u);
  EXPECT_EQ(r.isolations[0].takeover_ns, 2 * s + 100 * ms);
  EXPECT_FALSE(r.isolations[0].failed);
}

TEST(ChaosHoldersCheck, APermitsHandOverAfterAKillIsMeasured) {
  std::vector<action> log;
  act(log, "A", 1, 0, 1 * s);  // killed at 1 s
  act(log, "B", 2, 1 * ms, 5 * s);
  act(log, "C", 3, 3 * s + 1 * ms, 5 * s);  // admitted when A's lease ran out
  const std::vector<fault_record> faults = {{1, fault_kind::kill_holder, 1 * s, 1 * s, "A"}};
  const auto r = check(log, faults, {}, with_slots(2));
  EXPECT_EQ(r.worst_admission_by_kind.at(fault_kind::kill_holder), 2 * s + 1 * ms);
  // B acted at once: liveness alone says nothing of the permit.
  EXPECT_LE(r.liveness.at(0).first_action_ns - 1 * s, 5 * ms);
  EXPECT_TRUE(check(log, faults, {}, with_slots(1)).worst_admission_by_kind.empty());
  // A majority frozen before the lease ran out delays the admission: that one is the later fault's.
  std::vector<fault_record> two = faults;
  two.push_back({2, fault_kind::stop_majority, 2 * s + 500 * ms, 2 * s + 900 * ms, "m0+m1"});
  EXPECT_EQ(check(log, two, {}, with_slots(2)).worst_admission_by_kind.count(fault_kind::kill_holder), 0u);
}

// ---- a read-write lock

TEST(ChaosHoldersCheck, ReadersTogetherAreFine) {
  std::vector<action> log;
  act(log, "r1", 1, 0, 2 * s);
  act(log, "r2", 2, 1 * ms, 2 * s);
  act(log, "r3", 3, 2 * ms, 1 * s);
  act(log, "w4", 4, 2 * s + 3 * ms, 3 * s);  // after every older reader
  act(log, "r5", 5, 3 * s + 3 * ms, 4 * s);  // after the older writer
  act(log, "r6", 6, 3 * s + 4 * ms, 4 * s);
  const auto c = read_write({{"r1", access_mode::read}, {"r2", access_mode::read}, {"r3", access_mode::read},
                             {"w4", access_mode::write}, {"r5", access_mode::read}, {"r6", access_mode::read}});
  const auto r = check(log, {}, {}, c);
  EXPECT_TRUE(safe(r)) << describe(r, {}, c);
  EXPECT_EQ(r.peak_holders, 3u);
  EXPECT_EQ(r.writer_overlaps, 0u);
}

TEST(ChaosHoldersCheck, AWriterBesideAnyoneIsAViolation) {
  const auto c = read_write({{"r1", access_mode::read}, {"w2", access_mode::write}, {"w3", access_mode::write},
                             {"r4", access_mode::read}});
  {  // an older reader still acting when a writer acts
    std::vector<action> log;
    act(log, "r1", 1, 0, 1 * s);
    act(log, "w2", 2, 500 * ms, 2 * s);
    const auto r = check(log, {}, {}, c);
    ASSERT_EQ(r.violations.size(), 1u);
    EXPECT_EQ(r.violations[0].identity, "r1");
    EXPECT_EQ(r.writer_overlaps, 1u);
  }
  {  // an older writer still acting when a reader acts
    std::vector<action> log;
    act(log, "w3", 3, 0, 1 * s);
    act(log, "r4", 4, 500 * ms, 2 * s);
    const auto r = check(log, {}, {}, c);
    ASSERT_EQ(r.violations.size(), 1u);
    EXPECT_EQ(r.violations[0].identity, "w3");
  }
  {  // two writers
    std::vector<action> log;
    act(log, "w2", 2, 0, 1 * s);
    act(log, "w3", 3, 500 * ms, 2 * s);
    ASSERT_EQ(check(log, {}, {}, c).violations.size(), 1u);
  }
  {  // an older writer acting after a newer reader, without overlap
    std::vector<action> log;
    act(log, "r4", 4, 0, 1 * s);
    act(log, "w3", 3, 2 * s, 2 * s + 10 * ms);
    ASSERT_EQ(check(log, {}, {}, c).violations.size(), 1u);
  }
}

TEST(ChaosHoldersCheck, AnOlderReaderMayActAfterANewerReader) {
  std::vector<action> log;
  act(log, "r2", 2, 0, 1 * s);
  act(log, "r1", 1, 2 * s, 2 * s + 10 * ms);  // no writer between them: both may hold
  const auto c = read_write({{"r1", access_mode::read}, {"r2", access_mode::read}});
  EXPECT_TRUE(safe(check(log, {}, {}, c)));
}

TEST(ChaosHoldersCheck, AWriterOverlapAfterAnOperatorTookItsKeyIsARace) {
  std::vector<action> log;
  act(log, "w1", 1, 0, 1 * s + 2 * ms);
  act(log, "r2", 2, 999 * ms, 2 * s);
  const auto c = read_write({{"w1", access_mode::write}, {"r2", access_mode::read}});
  const std::vector<fault_record> faults = {{1, fault_kind::revoke_lease, 990 * ms, 995 * ms, "w1"}};
  const auto r = check(log, faults, {}, c);
  EXPECT_TRUE(safe(r));
  ASSERT_EQ(r.races.size(), 1u);
}

// ---- the resource, checking several writers by arrival

resource_write wrote(long long t, std::int64_t token, const std::string& who) { return {t, true, token, who}; }

race_rules rules_for(const holding_rule& rule) {
  race_rules r;
  r.several = rule.several();
  return r;
}

TEST(ChaosHoldersCheck, TheResourceAcceptsInterleavedPermitsAndFindsThreeWriters) {
  holding_rule two;
  two.slots = 2;
  const std::vector<resource_write> honest = {wrote(1 * ms, 1, "A"), wrote(2 * ms, 2, "B"), wrote(3 * ms, 1, "A"),
                                              wrote(4 * ms, 2, "B"), wrote(6 * ms, 3, "C"), wrote(7 * ms, 1, "A"),
                                              wrote(8 * ms, 3, "C")};
  const auto ok = check_resource_holders(honest, {}, two, rules_for(two));
  EXPECT_TRUE(fenced(ok));
  EXPECT_EQ(ok.peak_writers, 2u);
  EXPECT_EQ(ok.tokens, 3u);
  std::vector<resource_write> three = honest;
  three.push_back(wrote(9 * ms, 2, "B"));  // B writes again after C came: A, B, C writers at once
  const auto bad = check_resource_holders(three, {}, two, rules_for(two));
  EXPECT_FALSE(fenced(bad));
  EXPECT_EQ(bad.peak_writers, 3u);
  EXPECT_NE(describe(bad, {}, 0).find("RESOURCE VIOLATION"), std::string::npos);
}

TEST(ChaosHoldersCheck, TheResourceSeparatesALiarsWrites) {
  holding_rule two;
  two.slots = 2;
  const std::vector<resource_write> w = {wrote(1 * ms, 1, "c0.3"), wrote(2 * ms, 2, "B"), wrote(3 * ms, 3, "C"),
                                         wrote(4 * ms, 2, "B"), wrote(5 * ms, 1, "c0.3")};
  const std::vector<fault_record> faults = {{4, fault_kind::clock_slow, 0, 10 * ms, "c0.3:x0.5:frozen2641ms"}};
  const auto r = check_resource_holders(w, faults, two, rules_for(two));
  EXPECT_TRUE(fenced(r));
  EXPECT_EQ(r.verdicts.clock_overlaps.size(), 1u);
}

TEST(ChaosHoldersCheck, TheResourceChecksAWriterAlone) {
  holding_rule rw;
  rw.modes = {{"r1", access_mode::read}, {"r2", access_mode::read}, {"w3", access_mode::write}};
  const std::vector<resource_write> readers = {wrote(1 * ms, 1, "r1"), wrote(2 * ms, 2, "r2"), wrote(3 * ms, 1, "r1")};
  EXPECT_TRUE(fenced(check_resource_holders(readers, {}, rw, rules_for(rw))));
  std::vector<resource_write> with_writer = readers;
  with_writer.push_back(wrote(4 * ms, 3, "w3"));
  with_writer.push_back(wrote(5 * ms, 2, "r2"));  // a reader after the writer came
  EXPECT_FALSE(fenced(check_resource_holders(with_writer, {}, rw, rules_for(rw))));
}

// ---- the read-write lock at a cut-off holder, and the resource's rw fence

TEST(ChaosHoldersCheck, AWriterWaitingForAReaderOnTheMajoritySideIsNoLivenessFailure) {
  // A split cuts reader c3.0 off; reader c5.0 goes on on the majority side; writer c0.1 waits for c5.0 (a writer
  // waits for every older key) and is admitted only after it: no admission within the bound, rightly.
  const auto c = read_write({{"c3.0", access_mode::read}, {"c5.0", access_mode::read}, {"c0.1", access_mode::write}});
  const std::vector<fault_record> faults = {{1, fault_kind::split, 10 * s, 14 * s + 500 * ms, "c3.0:m2+c3c4:holder-alone"}};
  std::vector<action> log;
  act(log, "c3.0", 1, 0, 11 * s + 800 * ms);
  act(log, "c5.0", 2, 1 * ms, 15 * s + 700 * ms);
  act(log, "c0.1", 3, 16 * s + 900 * ms, 20 * s);
  const auto r = check(log, faults, {}, c);
  ASSERT_EQ(r.isolations.size(), 1u);
  EXPECT_TRUE(r.isolations[0].held_by_other);
  EXPECT_FALSE(r.isolations[0].failed) << describe(r, faults, c);
  EXPECT_NE(describe(r, faults, c).find("a writer rightly waits"), std::string::npos);
  // c5.0 released at 11 s: nothing but the cut-off reader's expiring lease kept the writer out past the bound.
  std::vector<action> released;
  act(released, "c3.0", 1, 0, 11 * s + 800 * ms);
  act(released, "c5.0", 2, 1 * ms, 11 * s);
  act(released, "c0.1", 3, 16 * s + 900 * ms, 20 * s);
  const auto late = check(released, faults, {}, c);
  ASSERT_EQ(late.isolations.size(), 1u);
  EXPECT_FALSE(late.isolations[0].held_by_other);
  EXPECT_TRUE(late.isolations[0].failed);
  // A semaphore has no such excuse: a freed permit admits the next waiter.
  check_settings two = with_slots(2);
  EXPECT_TRUE(check(log, faults, {}, two).isolations[0].failed);
}

// Writers are the slots below 2 (c0.*, c1.*), readers the others, as in a `--rw-writers 2` run.
const resource_fence rw_fence = resource_fence::read_write(2);

// Feeds writes through a fence as the register does; returns which were taken.
std::vector<bool> feed(resource_fence f, const std::vector<std::pair<std::int64_t, std::string>>& writes) {
  std::vector<bool> taken;
  for (const auto& [token, who] : writes) {
    const resource_write w{0, false, token, who};
    taken.push_back(f.allows(w));
    if (taken.back()) f.take(w);
  }
  return taken;
}

TEST(ChaosHoldersCheck, TheRwFenceTellsModesBySlot) {
  EXPECT_TRUE(rw_fence.is_writer("c0.3"));
  EXPECT_TRUE(rw_fence.is_writer("c1.0"));
  EXPECT_FALSE(rw_fence.is_writer("c2.0"));
  EXPECT_FALSE(rw_fence.is_writer("c12.4"));
  EXPECT_TRUE(rw_fence.is_writer("operator"));  // like the library: any value but rw=read; is a writer's
  EXPECT_TRUE(resource_fence{}.is_writer("c5.0"));  // the lock: everyone
  EXPECT_FALSE(resource_fence{}.read_write());
}

TEST(ChaosHoldersCheck, TheRwFenceTakesReadersTogetherInAnyOrder) {
  // Readers 3, 4, 5 interleave (the lock's fence would refuse 3 after 4); an older writer's writes came before.
  EXPECT_EQ(feed(rw_fence, {{1, "c0.0"}, {3, "c2.0"}, {4, "c3.0"}, {3, "c2.0"}, {5, "c4.0"}, {4, "c3.0"}, {3, "c2.0"}}),
            std::vector<bool>(7, true));
  // The lock's own fence on the same writes: the older readers refused.
  EXPECT_EQ(feed(resource_fence{}, {{3, "c2.0"}, {4, "c3.0"}, {3, "c2.0"}}), (std::vector<bool>{true, true, false}));
}

TEST(ChaosHoldersCheck, TheRwFenceRefusesAReaderOlderThanAnAdmittedWriter) {
  // Reader 3 held before writer 6 was admitted and still writes after it (its key gone, its watch late): once 6's
  // write is taken, 3 is refused; so is the older reader 5; a reader admitted after 6 (7) is taken, and 3 stays out.
  EXPECT_EQ(feed(rw_fence, {{3, "c2.0"}, {5, "c3.0"}, {6, "c0.0"}, {3, "c2.0"}, {5, "c3.0"}, {7, "c4.0"}, {3, "c2.0"}}),
            (std::vector<bool>{true, true, true, false, false, true, false}));
}

TEST(ChaosHoldersCheck, TheRwFenceRefusesAWriterBelowAnyTokenTaken) {
  // Writer 4 after reader 5 was taken: 5 was admitted only when 4 was gone.
  EXPECT_EQ(feed(rw_fence, {{4, "c0.0"}, {5, "c2.0"}, {4, "c0.0"}}), (std::vector<bool>{true, true, false}));
  // Two writers: the older after the newer.
  EXPECT_EQ(feed(rw_fence, {{4, "c0.0"}, {6, "c1.0"}, {4, "c0.0"}, {6, "c1.0"}}),
            (std::vector<bool>{true, true, false, true}));
  // A writer older than a reader that wrote first (the writer never wrote): refused all the same.
  EXPECT_EQ(feed(rw_fence, {{5, "c2.0"}, {4, "c0.0"}}), (std::vector<bool>{true, false}));
}

TEST(ChaosHoldersCheck, TheRwFenceRefusesATokenFromAnotherIdentity) {
  EXPECT_EQ(feed(rw_fence, {{4, "c0.0"}, {4, "c1.0"}, {4, "c2.0"}, {4, "c0.0"}}),
            (std::vector<bool>{true, false, false, true}));
}

TEST(ChaosHoldersCheck, TheRwFenceReplayFindsAcceptsOutsideTheRule) {
  // resource.log as a register without the rw fence would have it: everything accepted.
  const std::vector<resource_write> taken_all = {wrote(1 * ms, 3, "c2.0"), wrote(2 * ms, 6, "c0.0"),
                                                 wrote(3 * ms, 3, "c2.0"), wrote(4 * ms, 7, "c3.0")};
  const auto r = check_resource(taken_all, rw_fence);
  EXPECT_EQ(r.out_of_order, 1u);  // reader 3 after writer 6
  EXPECT_FALSE(fenced(r));
  // As the rw fence decided: that write refused (a stale reader stopped), nothing else.
  std::vector<resource_write> fenced_log = taken_all;
  fenced_log[2].accepted = false;
  const auto ok = check_resource(fenced_log, rw_fence);
  EXPECT_TRUE(fenced(ok));
  EXPECT_EQ(ok.stale_rejects, 1u);
  EXPECT_EQ(ok.stale_writers, 1u);
  EXPECT_EQ(ok.wrong_rejects, 0u);
  // Refusing an honest reader (4 beside 3, no writer above) is the register's bug: told, not a safety verdict.
  const std::vector<resource_write> wrong = {wrote(1 * ms, 4, "c3.0"), {2 * ms, false, 3, "c2.0"}};
  EXPECT_EQ(check_resource(wrong, rw_fence).wrong_rejects, 1u);
  // The same accepted log passes the arrival cross-check of the holders' rule only without the stale write.
  holding_rule modes;
  modes.modes = {{"c0.0", access_mode::write}, {"c2.0", access_mode::read}, {"c3.0", access_mode::read}};
  EXPECT_FALSE(fenced(check_resource_holders(taken_all, {}, modes, rules_for(modes))));
  EXPECT_TRUE(fenced(check_resource_holders(fenced_log, {}, modes, rules_for(modes))));
}

}  // namespace
}  // namespace clusterlock::chaos::holders_test
