// The recipe's decisions, driven without etcd: snapshots, watch events, probes and lease loss in, events out.
#include "recipe/lock_machine.hpp"

#include <gtest/gtest.h>

#include <map>

namespace clusterlock::recipe {
namespace {

using status = lock_machine::status;

queue_entry entry(std::string key, std::int64_t rev, std::string who = "other") {
  return {std::move(key), std::move(who), rev, 0x10};
}

std::vector<lock_event::kind_type> kinds(lock_machine& m, bool holder_changes = false) {
  std::vector<lock_event::kind_type> out;
  for (auto& e : m.take_events())
    if (holder_changes || e.kind != lock_event::holder_changed) out.push_back(e.kind);
  return out;
}

TEST(lock_machine, first_in_an_empty_queue_holds_the_lock_at_once) {
  lock_machine m("me");
  m.on_snapshot(5, {entry("l/a", 5, "me")}, "l/a");
  EXPECT_EQ(m.current(), status::held);
  EXPECT_EQ(m.my_token(), 5);
  auto events = m.take_events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, lock_event::acquired);
  EXPECT_EQ(events[0].fencing_token, 5);
  EXPECT_EQ(events[0].holder, "me");
  EXPECT_EQ(events[1].kind, lock_event::holder_changed);
  EXPECT_EQ(events[1].holder, "me");
}

TEST(lock_machine, a_waiter_holds_the_lock_when_the_last_key_ahead_is_deleted) {
  lock_machine m("me");
  m.on_snapshot(9, {entry("l/a", 3), entry("l/b", 6), entry("l/me", 9, "me"), entry("l/c", 12)}, "l/me");
  EXPECT_EQ(m.current(), status::waiting);
  EXPECT_EQ(kinds(m), std::vector<lock_event::kind_type>{});
  m.on_delete("l/b", 13);  // not the holder: nothing changes for us
  EXPECT_EQ(m.current(), status::waiting);
  m.on_put(entry("l/d", 14), 14);  // behind us: never matters
  m.on_delete("l/a", 15);
  EXPECT_EQ(m.current(), status::held);
  EXPECT_EQ(kinds(m), std::vector{lock_event::acquired});
  EXPECT_EQ(m.revision(), 15);
}

// One txn deleted the key ahead of ours and ours, at one revision: the events of the message are decided together,
// and no ACQUIRED is told of a hold that never stood (found by the fuzzer: ACQUIRED, then REMOVED, at revision 15).
TEST(lock_machine, a_message_that_deletes_the_key_ahead_and_ours_at_one_revision_is_no_hold) {
  lock_machine m("me");
  m.on_snapshot(9, {entry("l/a", 3), entry("l/me", 9, "me")}, "l/me");
  kinds(m);
  m.begin_batch();
  m.on_delete("l/a", 15);
  m.on_delete("l/me", 15);
  m.end_batch();
  EXPECT_EQ(kinds(m), std::vector<lock_event::kind_type>{});
  EXPECT_TRUE(m.needs_contend());
  EXPECT_EQ(m.revision(), 15);
  // The same message with only the key ahead: the hold begins at its end.
  m.on_snapshot(20, {entry("l/a", 18), entry("l/me", 19, "me")}, "l/me");
  m.begin_batch();
  m.on_delete("l/a", 21);
  EXPECT_EQ(m.current(), status::waiting) << "decided at the batch's end";
  m.end_batch();
  EXPECT_EQ(m.current(), status::held);
  EXPECT_EQ(kinds(m), std::vector{lock_event::acquired});
}

TEST(lock_machine, holder_changes_are_announced_to_observers) {
  lock_machine m("observer");
  m.on_snapshot(4, {entry("l/a", 3, "A"), entry("l/b", 4, "B")}, "");
  auto e = m.take_events();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, lock_event::holder_changed);
  EXPECT_EQ(e[0].holder, "A");
  EXPECT_EQ(e[0].fencing_token, 3);
  m.on_delete("l/a", 7);
  e = m.take_events();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].holder, "B");
  EXPECT_EQ(e[0].fencing_token, 4);
  m.on_delete("l/b", 8);
  e = m.take_events();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].holder, "");
  EXPECT_EQ(e[0].fencing_token, 0);
  EXPECT_FALSE(m.holder());
  EXPECT_EQ(m.current(), status::idle);
}

TEST(lock_machine, our_key_deleted_by_hand_means_removed_and_contend_again) {
  lock_machine m("me");
  m.on_snapshot(5, {entry("l/me", 5, "me")}, "l/me");
  m.take_events();
  m.on_delete("l/me", 8);
  EXPECT_EQ(kinds(m), std::vector{lock_event::removed});
  EXPECT_TRUE(m.needs_contend());
  EXPECT_EQ(m.my_token(), 0);
}

TEST(lock_machine, a_waiters_key_deleted_means_contend_again_without_an_event) {
  lock_machine m("me");
  m.on_snapshot(6, {entry("l/a", 3), entry("l/me", 6, "me")}, "l/me");
  m.take_events();
  m.on_delete("l/me", 8);
  EXPECT_EQ(kinds(m), std::vector<lock_event::kind_type>{});
  EXPECT_TRUE(m.needs_contend());
}

TEST(lock_machine, unreachable_then_probe_finds_our_key_gives_acquired_with_the_same_token) {
  lock_machine m("me");
  m.on_snapshot(5, {entry("l/me", 5, "me")}, "l/me");
  m.take_events();
  m.on_unreachable();
  EXPECT_EQ(m.current(), status::uncertain);
  auto e = m.take_events();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, lock_event::unknown);
  EXPECT_EQ(e[0].fencing_token, 5);
  m.on_unreachable();  // said once
  EXPECT_TRUE(m.take_events().empty());
  m.on_probe(5, 30);
  e = m.take_events();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, lock_event::acquired);
  EXPECT_EQ(e[0].fencing_token, 5);
  EXPECT_EQ(m.current(), status::held);
}

TEST(lock_machine, unreachable_then_probe_finds_our_key_gone_gives_removed) {
  lock_machine m("me");
  m.on_snapshot(5, {entry("l/me", 5, "me")}, "l/me");
  m.on_unreachable();
  m.take_events();
  m.on_probe(0, 30);
  EXPECT_EQ(kinds(m), std::vector{lock_event::removed});
  EXPECT_TRUE(m.needs_contend());
}

TEST(lock_machine, a_probe_that_sees_a_newer_key_of_the_same_name_is_not_ours) {
  lock_machine m("me");
  m.on_snapshot(5, {entry("l/me", 5, "me")}, "l/me");
  m.take_events();
  m.on_probe(40, 41);  // deleted and re-created by someone else: another create revision
  EXPECT_EQ(kinds(m), std::vector{lock_event::removed});
  EXPECT_TRUE(m.needs_contend());
}

TEST(lock_machine, lease_lost_while_holding_gives_removed) {
  lock_machine m("me");
  m.on_snapshot(5, {entry("l/me", 5, "me")}, "l/me");
  m.take_events();
  m.on_lease_lost();
  EXPECT_EQ(kinds(m), std::vector{lock_event::removed});
  EXPECT_TRUE(m.needs_contend());
  m.on_lease_lost();  // nothing left to lose
  EXPECT_TRUE(m.take_events().empty());
}

TEST(lock_machine, resnapshot_after_compaction_keeps_the_lock_when_our_key_stands) {
  lock_machine m("me");
  m.on_snapshot(5, {entry("l/me", 5, "me")}, "l/me");
  m.take_events();
  m.on_snapshot(50, {entry("l/me", 5, "me"), entry("l/x", 44)}, "l/me");
  EXPECT_EQ(kinds(m), std::vector<lock_event::kind_type>{});
  EXPECT_EQ(m.current(), status::held);
  EXPECT_EQ(m.revision(), 50);
  m.on_snapshot(60, {entry("l/x", 44)}, "l/me");
  EXPECT_EQ(kinds(m), std::vector{lock_event::removed});
}

TEST(lock_machine, a_resnapshot_while_uncertain_proves_the_lock_again) {
  lock_machine m("me");
  m.on_snapshot(5, {entry("l/me", 5, "me")}, "l/me");
  m.on_unreachable();
  m.take_events();
  m.on_snapshot(70, {entry("l/me", 5, "me")}, "l/me");
  EXPECT_EQ(kinds(m), std::vector{lock_event::acquired});
}

TEST(lock_machine, release_while_holding_gives_removed_and_hands_over) {
  lock_machine m("me");
  m.on_snapshot(6, {entry("l/me", 5, "me"), entry("l/b", 6, "B")}, "l/me");
  m.take_events();
  m.on_released();
  auto e = m.take_events();
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].kind, lock_event::removed);
  EXPECT_EQ(e[1].kind, lock_event::holder_changed);
  EXPECT_EQ(e[1].holder, "B");
}

TEST(lock_machine, watch_events_the_snapshot_already_contains_are_skipped) {
  // The shared watch may deliver events from before our read; the read already contains them.
  lock_machine m("me");
  m.on_snapshot(20, {entry("l/a", 3), entry("l/me", 20, "me")}, "l/me");
  m.take_events();
  m.on_delete("l/me", 19);  // an older key of the same name, deleted before our read
  m.on_put(entry("l/zz", 12), 12);
  EXPECT_EQ(m.current(), status::waiting);
  EXPECT_EQ(m.queue().size(), 2u);
  m.on_delete("l/a", 21);
  EXPECT_EQ(kinds(m), std::vector{lock_event::acquired});
}

TEST(lock_machine, several_events_of_one_revision_all_apply) {
  lock_machine m("me");
  m.on_snapshot(20, {entry("l/a", 3), entry("l/b", 4), entry("l/me", 20, "me")}, "l/me");
  m.take_events();
  m.on_delete("l/a", 21);  // one txn deleted both
  m.on_delete("l/b", 21);
  EXPECT_EQ(kinds(m), std::vector{lock_event::acquired});
}

TEST(lock_machine, tokens_strictly_increase_across_holders) {
  lock_machine a("A"), b("B");
  const std::vector<queue_entry> keys{entry("l/a", 5, "A"), entry("l/b", 9, "B")};
  a.on_snapshot(9, keys, "l/a");
  b.on_snapshot(9, keys, "l/b");
  EXPECT_EQ(a.current(), status::held);
  EXPECT_EQ(b.current(), status::waiting);
  a.on_released();
  b.on_delete("l/a", 10);
  EXPECT_EQ(b.current(), status::held);
  EXPECT_GT(b.my_token(), 5);
}


// Found by fuzz/lock_machine_fuzzer.cpp (each was a broken invariant there).

TEST(lock_machine, keys_one_txn_created_share_a_create_revision_and_each_stays_ahead_of_us) {
  lock_machine m("me");
  m.on_snapshot(9, {entry("l/a", 5), entry("l/b", 5), entry("l/me", 9, "me")}, "l/me");
  EXPECT_EQ(m.queue().size(), 3u);
  m.on_delete("l/a", 10);
  EXPECT_EQ(m.current(), status::waiting) << "l/b is still ahead of us";
  ASSERT_TRUE(m.holder());
  EXPECT_EQ(m.holder()->key, "l/b");
  m.on_delete("l/b", 11);
  EXPECT_EQ(m.current(), status::held);
}

TEST(lock_machine, a_key_as_old_as_ours_means_we_do_not_hold_the_lock) {
  lock_machine m("me");
  m.on_snapshot(6, {entry("l/a", 6), entry("l/me", 6, "me")}, "l/me");
  EXPECT_EQ(m.current(), status::waiting);
}

TEST(lock_machine, a_key_older_than_ours_appearing_while_held_gives_removed_and_we_wait) {
  // etcd never does that unless its history was rewritten (a restore from a backup).
  lock_machine m("me");
  m.on_snapshot(9, {entry("l/me", 9, "me")}, "l/me");
  m.take_events();
  m.on_put(entry("l/old", 4), 12);
  EXPECT_EQ(kinds(m), std::vector{lock_event::removed});
  EXPECT_EQ(m.current(), status::waiting);
  m.on_delete("l/old", 13);
  EXPECT_EQ(kinds(m), std::vector{lock_event::acquired});
}

TEST(lock_machine, entries_without_a_create_revision_are_not_keys) {
  lock_machine m("me");
  m.on_snapshot(9, {entry("l/bogus", 0), entry("l/me", 9, "me")}, "l/me");
  EXPECT_EQ(m.current(), status::held);
  EXPECT_EQ(m.queue().size(), 1u);
}

TEST(lock_machine, a_probe_that_read_etcd_before_our_key_was_made_is_ignored) {
  // Sent before a re-read that made our key anew, answered after it: it would call the new key gone.
  lock_machine m("me");
  m.on_snapshot(20, {entry("l/me", 20, "me")}, "l/me");
  m.take_events();
  m.on_probe(0, 15);
  EXPECT_EQ(m.current(), status::held);
  EXPECT_TRUE(m.take_events().empty());
}

TEST(lock_machine, a_read_sent_before_our_key_was_found_gone_does_not_bring_it_back) {
  lock_machine m("me");
  m.on_snapshot(5, {entry("l/me", 5, "me")}, "l/me");
  m.on_unreachable();
  m.take_events();
  m.on_probe(0, 30);  // gone at 30
  EXPECT_EQ(kinds(m), std::vector{lock_event::removed});
  m.on_snapshot(25, {entry("l/me", 5, "me")}, "l/me");  // a read from before that
  EXPECT_EQ(kinds(m), std::vector<lock_event::kind_type>{});
  EXPECT_NE(m.current(), status::held);
  EXPECT_TRUE(m.needs_contend());
  m.on_snapshot(31, {entry("l/me", 31, "me")}, "l/me");  // our key made anew
  EXPECT_EQ(kinds(m), std::vector{lock_event::acquired});
  EXPECT_EQ(m.my_token(), 31);
}

TEST(lock_machine, the_view_stays_the_watchs_when_the_probe_or_the_lease_says_our_key_is_gone) {
  // The view is etcd's state at revision(); what the probe saw later changes our status only. (Erasing our key
  // early made the holder seem to go back and forth once the watch caught up.)
  lock_machine m("me");
  m.on_snapshot(6, {entry("l/me", 5, "me"), entry("l/b", 6, "B")}, "l/me");
  m.take_events();
  m.on_probe(0, 30);
  EXPECT_EQ(kinds(m, true), std::vector{lock_event::removed});
  EXPECT_EQ(m.queue().size(), 2u);
  m.on_delete("l/me", 7);  // the watch catches up
  auto e = m.take_events();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, lock_event::holder_changed);
  EXPECT_EQ(e[0].holder, "B");

  lock_machine n("me");
  n.on_snapshot(6, {entry("l/me", 5, "me"), entry("l/b", 6, "B")}, "l/me");
  n.take_events();
  n.on_lease_lost();
  EXPECT_EQ(kinds(n, true), std::vector{lock_event::removed});
  EXPECT_EQ(n.queue().size(), 2u);
  EXPECT_TRUE(n.needs_contend());
}

// ---- the lifecycle (issue 10): releasing, and no ACQUIRED without a proven lease

TEST(lock_machine, once_a_release_begins_no_watch_event_makes_us_hold_again) {
  lock_machine m("me");
  m.on_snapshot(5, {entry("l/me", 5, "me")}, "l/me");
  ASSERT_EQ(m.current(), status::held);
  m.take_events();
  m.begin_release();
  EXPECT_EQ(m.current(), status::releasing);
  EXPECT_EQ(kinds(m), std::vector{lock_event::removed});  // at once: from here on we do not claim the lock
  // Someone writes keys under the prefix while our delete is on its way (the bug: a batch republished held).
  m.on_put(entry("l/w1", 6), 6);
  m.on_delete("l/w1", 7);
  m.on_probe(5, 8);
  EXPECT_EQ(m.current(), status::releasing);
  EXPECT_EQ(kinds(m), std::vector<lock_event::kind_type>{});
  EXPECT_TRUE(m.has_key());
  m.on_released();
  EXPECT_EQ(m.current(), status::idle);
  EXPECT_FALSE(m.has_key());
  EXPECT_EQ(kinds(m), std::vector<lock_event::kind_type>{});  // REMOVED was said once, at the start
}

TEST(lock_machine, a_waiter_whose_release_began_never_takes_its_turn) {
  lock_machine m("me");
  m.on_snapshot(9, {entry("l/a", 3), entry("l/me", 9, "me")}, "l/me");
  m.begin_release();
  m.on_delete("l/a", 10);
  EXPECT_EQ(m.current(), status::releasing);
  EXPECT_EQ(kinds(m), std::vector<lock_event::kind_type>{});
}

TEST(lock_machine, a_turn_that_comes_while_the_lease_is_unproven_waits_for_a_probe) {
  lock_machine m("me");
  m.on_snapshot(9, {entry("l/a", 3), entry("l/me", 9, "me")}, "l/me");
  m.take_events();
  // A frozen waiter wakes up past its lease's proven lifetime and handles the buffered DELETE of its predecessor.
  m.set_lease_proven(false);
  m.on_delete("l/a", 10);
  EXPECT_EQ(m.current(), status::unproven);
  EXPECT_EQ(kinds(m), std::vector<lock_event::kind_type>{});
  EXPECT_TRUE(m.wants_probe());
  // Its lease is gone (the next buffered event): nothing was announced, so nothing is lost.
  m.on_delete("l/me", 11);
  EXPECT_EQ(m.current(), status::idle);
  EXPECT_EQ(kinds(m), std::vector<lock_event::kind_type>{});
}

TEST(lock_machine, an_unproven_turn_becomes_held_when_a_probe_with_a_proven_lease_finds_our_key) {
  lock_machine m("me");
  m.on_snapshot(9, {entry("l/a", 3), entry("l/me", 9, "me")}, "l/me");
  m.take_events();
  m.set_lease_proven(false);
  m.on_delete("l/a", 10);
  EXPECT_EQ(kinds(m), std::vector<lock_event::kind_type>{});  // (the holder change to us is announced)
  m.on_probe(9, 11);  // still unproven: a probe alone proves the key, not the lease
  EXPECT_EQ(m.current(), status::unproven);
  m.set_lease_proven(true);
  m.on_probe(9, 12);
  EXPECT_EQ(m.current(), status::held);
  auto e = m.take_events();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, lock_event::acquired);
  EXPECT_EQ(e[0].fencing_token, 9);
  EXPECT_EQ(e[0].key, "l/me");
  EXPECT_EQ(e[0].lease, 0x10);
}

TEST(lock_machine, the_view_is_behind_when_a_probe_misses_a_key_ahead_of_ours) {
  lock_machine m("me");
  m.on_snapshot(9, {entry("l/a", 3), entry("l/b", 6), entry("l/me", 9, "me"), entry("l/c", 12)}, "l/me");
  auto probe_has = [](std::map<std::string, std::int64_t> keys) {
    return [keys](const std::string& k) {
      auto it = keys.find(k);
      return it == keys.end() ? std::int64_t{0} : it->second;
    };
  };
  EXPECT_FALSE(m.view_behind(probe_has({{"l/a", 3}, {"l/b", 6}, {"l/me", 9}})));  // l/c behind us: no matter
  EXPECT_TRUE(m.view_behind(probe_has({{"l/b", 6}, {"l/me", 9}, {"l/c", 12}})));  // l/a went, unseen
  EXPECT_TRUE(m.view_behind(probe_has({{"l/a", 30}, {"l/b", 6}, {"l/me", 9}})));  // l/a is another key now
}

// Issue 12: a waiter's probe reads only its own key and the holder as its view has it (not the whole queue: n
// waiters read n^2 keys a second). The holder decides: while it stands, nothing behind it makes our turn come.
TEST(lock_machine, only_the_holder_ahead_of_us_tells_whether_the_view_is_behind) {
  lock_machine m("me");
  m.on_snapshot(9, {entry("l/a", 3), entry("l/b", 6), entry("l/me", 9, "me")}, "l/me");
  auto probe_read = [](std::map<std::string, std::int64_t> keys) {  // -1: the probe did not read it
    return [keys](const std::string& k) {
      auto it = keys.find(k);
      return it == keys.end() ? std::int64_t{-1} : it->second;
    };
  };
  EXPECT_FALSE(m.view_behind(probe_read({{"l/a", 3}, {"l/me", 9}})));  // l/b not read: the holder stands
  EXPECT_TRUE(m.view_behind(probe_read({{"l/a", 0}, {"l/me", 9}})));   // the holder went, unseen
  EXPECT_FALSE(m.view_behind(probe_read({{"l/me", 9}})));              // a probe that did not read it says nothing
}

TEST(lock_machine, events_about_us_carry_our_key_and_lease_and_holder_changes_the_holders) {
  lock_machine m("me");
  m.on_snapshot(5, {entry("l/a", 3, "A"), entry("l/me", 5, "me")}, "l/me");
  auto e = m.take_events();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, lock_event::holder_changed);
  EXPECT_EQ(e[0].key, "l/a");
  EXPECT_EQ(e[0].lease, 0x10);
  m.on_delete("l/a", 6);
  e = m.take_events();
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].kind, lock_event::acquired);
  EXPECT_EQ(e[0].key, "l/me");
}

// An election's leader proclaims: its key is put again with a new value and the same create revision.
TEST(lock_machine, a_holders_new_value_is_announced_and_a_waiters_is_not) {
  lock_machine m("observer");
  m.on_snapshot(4, {entry("l/a", 3, "A"), entry("l/b", 4, "B")}, "");
  m.take_events();
  m.on_put(entry("l/a", 3, "A at 10.0.0.1:80"), 7);
  auto e = m.take_events();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, lock_event::holder_changed);
  EXPECT_EQ(e[0].holder, "A at 10.0.0.1:80");
  EXPECT_EQ(e[0].fencing_token, 3);
  EXPECT_EQ(e[0].revision, 7);
  m.on_put(entry("l/a", 3, "A at 10.0.0.1:80"), 8);  // the same value again: nothing changed
  m.on_put(entry("l/b", 4, "B2"), 9);                 // a waiter's value is nobody's business yet
  EXPECT_TRUE(m.take_events().empty());
  m.on_delete("l/a", 10);
  e = m.take_events();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].holder, "B2");
}

// After a compaction the observer reads the keys again: a value proclaimed while it was away is one event.
TEST(lock_machine, a_reread_that_finds_the_holder_with_a_new_value_announces_it) {
  lock_machine m("observer");
  m.on_snapshot(4, {entry("l/a", 3, "v1")}, "");
  m.take_events();
  m.on_snapshot(20, {entry("l/a", 3, "v3")}, "");
  auto e = m.take_events();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].holder, "v3");
  EXPECT_EQ(e[0].revision, 20);
  m.on_snapshot(21, {entry("l/a", 3, "v3")}, "");
  EXPECT_TRUE(m.take_events().empty());
}

// Our key as a read finds it (a new key made with a proclaimed value, or a re-read after a proclaim whose watch event
// we never saw): its value is what events about us carry.
TEST(lock_machine, events_about_us_carry_the_value_a_read_found_on_our_key) {
  lock_machine m("first");
  m.on_snapshot(5, {entry("l/me", 5, "proclaimed")}, "l/me");
  auto e = m.take_events();
  ASSERT_GE(e.size(), 1u);
  EXPECT_EQ(e[0].kind, lock_event::acquired);
  EXPECT_EQ(e[0].holder, "proclaimed");
}

TEST(lock_machine, our_own_proclaimed_value_is_what_events_about_us_carry) {
  lock_machine m("me");
  m.on_snapshot(5, {entry("l/me", 5, "me")}, "l/me");
  m.take_events();
  m.on_put(entry("l/me", 5, "me, now at :81"), 6);
  auto e = m.take_events();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, lock_event::holder_changed);
  EXPECT_EQ(e[0].holder, "me, now at :81");
  EXPECT_EQ(m.current(), status::held);
  m.on_delete("l/me", 7);
  e = m.take_events();
  ASSERT_GE(e.size(), 1u);
  EXPECT_EQ(e[0].kind, lock_event::removed);
  EXPECT_EQ(e[0].holder, "me, now at :81");
}

}  // namespace
}  // namespace clusterlock::recipe
