// The lock machine with a partial view (watch_scope::predecessor): snapshots of our key and the one ahead of it, a
// watch on that one key; our turn comes from a snapshot, never from the watch's DELETE alone.
#include "recipe/lock_machine.hpp"

#include <gtest/gtest.h>

namespace clusterlock::recipe {
namespace {

using status = lock_machine::status;

queue_entry key_at(std::string key, std::int64_t rev, std::string who = "other") {
  return {std::move(key), std::move(who), rev, 0x10};
}

lock_machine partial() { return lock_machine("me", admission::lock(), true); }

TEST(partial_machine, a_snapshot_with_nobody_ahead_holds_and_announces_no_holder_change) {
  auto m = partial();
  m.on_snapshot(7, {key_at("l/me", 7, "me")}, "l/me");
  EXPECT_EQ(m.current(), status::held);
  const auto events = m.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, lock_event::acquired);
  EXPECT_EQ(events[0].fencing_token, 7);
}

// Keys further ahead are not in the view: the DELETE of the one ahead asks for a read, and does not admit.
TEST(partial_machine, the_delete_of_the_key_ahead_asks_for_a_read_instead_of_holding) {
  auto m = partial();
  m.on_snapshot(9, {key_at("l/b", 6), key_at("l/me", 9, "me")}, "l/me");
  EXPECT_EQ(m.current(), status::waiting);
  EXPECT_FALSE(m.needs_reread());
  EXPECT_EQ(m.keys_ahead(), std::vector<std::string>{"l/b"});
  m.on_delete("l/b", 12);
  EXPECT_EQ(m.current(), status::waiting);
  EXPECT_TRUE(m.needs_reread());
  EXPECT_TRUE(m.take_events().empty());
  m.on_progress(14);
  EXPECT_TRUE(m.needs_reread());
  // The read finds another key ahead (it was hidden behind l/b's): wait for it.
  m.on_snapshot(14, {key_at("l/a", 3), key_at("l/me", 9, "me")}, "l/me");
  EXPECT_FALSE(m.needs_reread());
  EXPECT_EQ(m.current(), status::waiting);
  EXPECT_EQ(m.keys_ahead(), std::vector<std::string>{"l/a"});
  m.on_delete("l/a", 15);
  EXPECT_TRUE(m.needs_reread());
  m.on_snapshot(15, {key_at("l/me", 9, "me")}, "l/me");
  EXPECT_EQ(m.current(), status::held);
  ASSERT_EQ(m.take_events().size(), 1u);
}

// Second in line, with one watch over the key ahead and ours since the snapshot: the DELETE is our turn (no read).
TEST(partial_machine, a_trusted_watch_over_the_only_key_ahead_and_ours_takes_its_turn_from_the_delete) {
  auto m = partial();
  m.on_snapshot(9, {key_at("l/b", 6), key_at("l/me", 9, "me")}, "l/me");
  m.trust_watch_ahead();
  m.on_delete("l/b", 12);
  EXPECT_EQ(m.current(), status::held);
  EXPECT_FALSE(m.needs_reread());
  ASSERT_EQ(m.take_events().size(), 1u);
  // A new snapshot takes the trust back: it holds until the driver says so again.
  m.on_snapshot(13, {key_at("l/me", 9, "me")}, "l/me");
  EXPECT_EQ(m.current(), status::held);
}

TEST(partial_machine, trust_comes_too_late_for_a_delete_seen_before_it) {
  auto m = partial();
  m.on_snapshot(9, {key_at("l/b", 6), key_at("l/me", 9, "me")}, "l/me");
  m.on_delete("l/b", 12);  // while the watch was being made
  m.trust_watch_ahead();
  EXPECT_EQ(m.current(), status::waiting);
  EXPECT_TRUE(m.needs_reread());
}

TEST(partial_machine, our_key_deleted_before_the_key_ahead_on_a_trusted_watch_never_holds) {
  auto m = partial();
  m.on_snapshot(9, {key_at("l/b", 6), key_at("l/me", 9, "me")}, "l/me");
  m.trust_watch_ahead();
  m.on_delete("l/me", 11);
  m.on_delete("l/b", 12);
  EXPECT_NE(m.current(), status::held);
  EXPECT_TRUE(m.needs_contend());
  EXPECT_TRUE(m.take_events().empty());
}

TEST(partial_machine, a_line_view_takes_its_turn_from_the_delete_alone) {
  lock_machine m("me");  // the default: the whole line, watched
  m.on_snapshot(9, {key_at("l/b", 6), key_at("l/me", 9, "me")}, "l/me");
  m.on_delete("l/b", 12);
  EXPECT_EQ(m.current(), status::held);
  EXPECT_FALSE(m.needs_reread());
}

TEST(partial_machine, a_read_that_finds_our_key_gone_contends_again_without_an_event) {
  auto m = partial();
  m.on_snapshot(9, {key_at("l/b", 6), key_at("l/me", 9, "me")}, "l/me");
  m.on_delete("l/b", 12);
  m.on_snapshot(13, {}, "l/me");  // our key went too (by hand), unwatched
  EXPECT_TRUE(m.needs_contend());
  EXPECT_FALSE(m.needs_reread());
  EXPECT_TRUE(m.take_events().empty());
}

TEST(partial_machine, the_holders_own_key_deleted_is_removed) {
  auto m = partial();
  m.on_snapshot(7, {key_at("l/me", 7, "me")}, "l/me");
  m.take_events();
  m.on_delete("l/me", 10);
  const auto events = m.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, lock_event::removed);
  EXPECT_TRUE(m.needs_contend());
}

TEST(partial_machine, a_key_behind_ours_going_asks_for_nothing) {
  auto m = partial();
  m.on_snapshot(9, {key_at("l/b", 6), key_at("l/me", 9, "me")}, "l/me");
  m.on_put(key_at("l/z", 20), 20);  // never in a partial view's watch; and if it were, behind us
  m.on_delete("l/z", 21);
  EXPECT_FALSE(m.needs_reread());
  EXPECT_EQ(m.current(), status::waiting);
}

}  // namespace
}  // namespace clusterlock::recipe
