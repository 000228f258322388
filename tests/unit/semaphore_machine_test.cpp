// The semaphore's admission rule on the sans-io machine (recipe::lock_machine with admission::semaphore): a key holds
// a permit while fewer than N other keys are as old as it or older, and every key's value must carry the same N.
#include "recipe/lock_machine.hpp"
#include "recipe/slots_value.hpp"

#include <gtest/gtest.h>

namespace clusterlock::recipe {
namespace {

using status = lock_machine::status;
using kinds_t = std::vector<lock_event::kind_type>;

// A contender's key of a semaphore of `slots` permits (0: a plain lock's key, its value the bare identity).
queue_entry sem(std::string key, std::int64_t rev, std::size_t slots = 2, std::string who = "other") {
  return {std::move(key), slots == 0 ? who : encode_slots(slots, who), rev, 0x10};
}

kinds_t permit_kinds(lock_machine& m) {
  kinds_t out;
  for (auto& e : m.take_events()) out.push_back(e.kind);
  return out;
}

TEST(semaphore_machine, the_first_n_contenders_hold_at_once) {
  lock_machine a("me", admission::semaphore(2)), b("me", admission::semaphore(2)), c("me", admission::semaphore(2));
  a.on_snapshot(3, {sem("s/a", 3, 2, "me")}, "s/a");
  b.on_snapshot(4, {sem("s/a", 3), sem("s/b", 4, 2, "me")}, "s/b");
  c.on_snapshot(5, {sem("s/a", 3), sem("s/b", 4), sem("s/c", 5, 2, "me")}, "s/c");
  EXPECT_EQ(a.current(), status::held);
  EXPECT_EQ(b.current(), status::held);
  EXPECT_EQ(c.current(), status::waiting);
  auto e = b.take_events();
  ASSERT_EQ(e.size(), 1u);  // ACQUIRED, and no HOLDER_CHANGED: a semaphore has no one holder
  EXPECT_EQ(e[0].kind, lock_event::acquired);
  EXPECT_EQ(e[0].fencing_token, 4);
  EXPECT_EQ(e[0].holder, "me");  // the identity, without `slots=2;`
  EXPECT_EQ(e[0].key, "s/b");
  EXPECT_EQ(permit_kinds(c), kinds_t{});
}

TEST(semaphore_machine, any_permit_that_frees_admits_exactly_the_first_waiter) {
  lock_machine first("me", admission::semaphore(2)), second("me", admission::semaphore(2));
  const std::vector<queue_entry> q = {sem("s/a", 3), sem("s/b", 4), sem("s/c", 5, 2, "me"), sem("s/d", 6)};
  first.on_snapshot(6, q, "s/c");
  auto q2 = q;
  q2[2].identity = encode_slots(2, "other");
  q2[3].identity = encode_slots(2, "me");
  second.on_snapshot(6, q2, "s/d");
  first.on_delete("s/b", 7);  // the younger holder leaves: the first waiter is in
  second.on_delete("s/b", 7);
  EXPECT_EQ(first.current(), status::held);
  EXPECT_EQ(permit_kinds(first), kinds_t{lock_event::acquired});
  EXPECT_EQ(second.current(), status::waiting);  // still two keys ahead: a and c
  EXPECT_EQ(permit_kinds(second), kinds_t{});
  second.on_delete("s/a", 8);
  EXPECT_EQ(second.current(), status::held);
}

TEST(semaphore_machine, a_waiter_ahead_of_us_that_leaves_moves_us_up) {
  lock_machine m("me", admission::semaphore(2));
  m.on_snapshot(9, {sem("s/a", 3), sem("s/b", 4), sem("s/w", 5), sem("s/me", 9, 2, "me")}, "s/me");
  m.on_delete("s/w", 10);  // a waiter, not a holder: two still ahead
  EXPECT_EQ(m.current(), status::waiting);
  m.on_put(sem("s/late", 11), 11);  // behind us: never counts
  m.on_delete("s/a", 12);
  EXPECT_EQ(m.current(), status::held);
  EXPECT_EQ(permit_kinds(m), kinds_t{lock_event::acquired});
  EXPECT_EQ(m.my_token(), 9);
}

TEST(semaphore_machine, keys_of_our_create_revision_count_as_older) {
  lock_machine m("me", admission::semaphore(2));
  // One txn made s/x and s/y at revision 5 (ours too, in this contrived view): both count against us.
  m.on_snapshot(5, {sem("s/a", 3), sem("s/x", 5), sem("s/me", 5, 2, "me")}, "s/me");
  EXPECT_EQ(m.current(), status::waiting);
  m.on_delete("s/a", 6);
  EXPECT_EQ(m.current(), status::held);  // one left as old as ours: fewer than 2
}

TEST(semaphore_machine, one_slot_admits_as_the_lock_does) {
  lock_machine m("me", admission::semaphore(1));
  m.on_snapshot(6, {sem("s/a", 3, 1), sem("s/me", 6, 1, "me")}, "s/me");
  EXPECT_EQ(m.current(), status::waiting);
  m.on_delete("s/a", 7);
  EXPECT_EQ(m.current(), status::held);
}

TEST(semaphore_machine, a_resnapshot_after_compaction_keeps_the_permit_or_gives_it) {
  lock_machine held("me", admission::semaphore(2)), waiting("me", admission::semaphore(2));
  held.on_snapshot(4, {sem("s/a", 3), sem("s/me", 4, 2, "me")}, "s/me");
  held.take_events();
  held.on_snapshot(20, {sem("s/a", 3), sem("s/me", 4, 2, "me"), sem("s/z", 15)}, "s/me");
  EXPECT_EQ(held.current(), status::held);
  EXPECT_EQ(permit_kinds(held), kinds_t{});  // the same permit, nothing to say
  waiting.on_snapshot(9, {sem("s/a", 3), sem("s/b", 4), sem("s/me", 9, 2, "me")}, "s/me");
  waiting.on_snapshot(30, {sem("s/b", 4), sem("s/me", 9, 2, "me")}, "s/me");  // s/a went while the watch was out
  EXPECT_EQ(waiting.current(), status::held);
  EXPECT_EQ(permit_kinds(waiting), kinds_t{lock_event::acquired});
}

TEST(semaphore_machine, lease_lost_frees_our_permit_and_admits_nobody_else_by_itself) {
  lock_machine m("me", admission::semaphore(2));
  m.on_snapshot(4, {sem("s/a", 3), sem("s/me", 4, 2, "me")}, "s/me");
  m.take_events();
  m.on_lease_lost();
  EXPECT_EQ(permit_kinds(m), kinds_t{lock_event::removed});
  EXPECT_TRUE(m.needs_contend());
  // A waiter sees the permit free only when the watch says the key is gone.
  lock_machine w("me", admission::semaphore(2));
  w.on_snapshot(6, {sem("s/a", 3), sem("s/b", 4), sem("s/me", 6, 2, "me")}, "s/me");
  EXPECT_EQ(w.current(), status::waiting);
  w.on_delete("s/b", 7);  // b's lease expired
  EXPECT_EQ(w.current(), status::held);
}

TEST(semaphore_machine, unknown_then_probe_proves_the_same_permit_again) {
  lock_machine m("me", admission::semaphore(3));
  m.on_snapshot(5, {sem("s/a", 3, 3), sem("s/me", 5, 3, "me")}, "s/me");
  m.take_events();
  m.on_unreachable();
  EXPECT_EQ(permit_kinds(m), kinds_t{lock_event::unknown});
  m.on_probe(5, 40);  // our key stands: keys made later are behind it, so the permit is still ours
  auto e = m.take_events();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, lock_event::acquired);
  EXPECT_EQ(e[0].fencing_token, 5);
}

TEST(semaphore_machine, an_older_key_with_another_n_is_a_conflict_and_we_never_hold) {
  lock_machine m("me", admission::semaphore(2));
  m.on_snapshot(6, {sem("s/a", 3, 3), sem("s/me", 6, 2, "me")}, "s/me");  // one key ahead, fewer than 2...
  ASSERT_TRUE(m.conflict());
  EXPECT_EQ(m.conflict()->key, "s/a");
  EXPECT_EQ(m.current(), status::waiting);  // ...but it says 3 slots: no permit by a rule we do not share
  EXPECT_EQ(permit_kinds(m), kinds_t{});
  m.begin_release();
  m.on_released();
  EXPECT_FALSE(m.conflict());  // a new key looks again
}

TEST(semaphore_machine, a_plain_locks_older_key_is_a_conflict) {
  lock_machine m("me", admission::semaphore(2));
  m.on_snapshot(6, {sem("s/a", 3, 0, ""), sem("s/me", 6, 2, "me")}, "s/me");  // etcdctl lock's empty value
  ASSERT_TRUE(m.conflict());
  EXPECT_EQ(m.current(), status::waiting);
  lock_machine n("me", admission::semaphore(2));
  n.on_snapshot(6, {sem("s/a", 3, 0, "slots=02;x"), sem("s/me", 6, 2, "me")}, "s/me");  // not our format: plain
  EXPECT_TRUE(n.conflict());
}

TEST(semaphore_machine, a_younger_key_with_another_n_is_its_own_problem) {
  lock_machine m("me", admission::semaphore(2));
  m.on_snapshot(6, {sem("s/me", 6, 2, "me"), sem("s/z", 7, 3)}, "s/me");
  EXPECT_FALSE(m.conflict());
  EXPECT_EQ(m.current(), status::held);
  m.on_put(sem("s/y", 8, 0), 8);
  EXPECT_FALSE(m.conflict());
  EXPECT_EQ(m.current(), status::held);
}

TEST(semaphore_machine, an_older_key_rewritten_with_another_n_while_we_hold_takes_the_permit_away) {
  lock_machine m("me", admission::semaphore(2));
  m.on_snapshot(6, {sem("s/a", 3), sem("s/me", 6, 2, "me")}, "s/me");
  m.take_events();
  auto a = sem("s/a", 3, 5);  // an operator's put keeps the create revision, changes the value
  m.on_put(a, 9);
  EXPECT_TRUE(m.conflict());
  EXPECT_EQ(m.current(), status::waiting);
  EXPECT_EQ(permit_kinds(m), kinds_t{lock_event::removed});
}

// Found by the fuzzer: an older key rewritten with another N, then back with ours. The permit was given back with
// the same token after its REMOVED (a fresh ACQUIRED must raise the token); a conflict now lasts as long as our key.
TEST(semaphore_machine, a_conflict_lasts_as_long_as_our_key) {
  lock_machine m("me", admission::semaphore(2));
  m.on_snapshot(6, {sem("s/a", 3), sem("s/me", 6, 2, "me")}, "s/me");
  m.take_events();
  m.on_snapshot(9, {sem("s/a", 3, 0), sem("s/me", 6, 2, "me")}, "s/me");  // a re-read: a's value lost its N
  EXPECT_EQ(permit_kinds(m), kinds_t{lock_event::removed});
  m.on_snapshot(10, {sem("s/a", 3), sem("s/me", 6, 2, "me")}, "s/me");  // and has it back
  EXPECT_EQ(permit_kinds(m), kinds_t{});
  EXPECT_NE(m.current(), status::held);
  m.on_put(sem("s/a", 3), 11);
  EXPECT_NE(m.current(), status::held);
  EXPECT_TRUE(m.conflict());
}

TEST(semaphore_machine, a_waiters_probe_reads_the_first_keys_ahead) {
  lock_machine m("me", admission::semaphore(5));
  m.on_snapshot(9, {sem("s/a", 3, 5), sem("s/b", 4, 5), sem("s/c", 5, 5), sem("s/d", 6, 5), sem("s/e", 7, 5),
                    sem("s/me", 9, 5, "me")},
                "s/me");
  EXPECT_EQ(m.current(), status::waiting);
  EXPECT_EQ(m.keys_ahead(), (std::vector<std::string>{"s/a", "s/b", "s/c"}));
  auto gone = [](const std::string& victim) {
    return [victim](const std::string& k) -> std::int64_t { return k == victim ? 0 : -1; };
  };
  EXPECT_TRUE(m.view_behind(gone("s/c")));
  EXPECT_FALSE(m.view_behind(gone("s/e")));  // not read: -1 from a real probe, and 0 here is not looked at
  lock_machine lock("me");
  lock.on_snapshot(9, {sem("s/a", 3, 0), sem("s/b", 4, 0), sem("s/me", 9, 0, "me")}, "s/me");
  EXPECT_EQ(lock.keys_ahead(), std::vector<std::string>{"s/a"});  // a lock's: the holder alone, as before
}

TEST(semaphore_machine, slots_values_decode_strictly) {
  EXPECT_EQ(decode_slots("slots=3;host-1").slots, 3u);
  EXPECT_EQ(decode_slots("slots=3;host-1").identity, "host-1");
  EXPECT_EQ(decode_slots("slots=1000000;").slots, 1000000u);
  EXPECT_EQ(decode_slots("slots=1000001;x").slots, 0u);
  EXPECT_EQ(decode_slots("slots=0;x").slots, 0u);
  EXPECT_EQ(decode_slots("slots=;x").slots, 0u);
  EXPECT_EQ(decode_slots("slots=3").slots, 0u);
  EXPECT_EQ(decode_slots("slots=99999999;x").slots, 0u);
  EXPECT_EQ(decode_slots("host-1").identity, "host-1");
  EXPECT_EQ(decode_slots("").slots, 0u);
  EXPECT_EQ(encode_slots(7, "me"), "slots=7;me");
}

}  // namespace
}  // namespace clusterlock::recipe
