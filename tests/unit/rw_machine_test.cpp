// The read-write lock's admission rule on the sans-io machine (recipe::lock_machine with admission::reader and
// writer): a reader holds while no key as old as its own or older is a writer's; a writer while no other key is as
// old or older. Any value but `rw=read;...` is a writer's.
#include "recipe/lock_machine.hpp"
#include "recipe/rw_value.hpp"

#include <gtest/gtest.h>

namespace clusterlock::recipe {
namespace {

using rw_status = lock_machine::status;
using rw_kinds_t = std::vector<lock_event::kind_type>;

queue_entry reader(std::string key, std::int64_t rev, std::string who = "other") {
  return {std::move(key), encode_rw(true, who), rev, 0x10};
}
queue_entry writer(std::string key, std::int64_t rev, std::string who = "other") {
  return {std::move(key), encode_rw(false, who), rev, 0x10};
}
queue_entry foreign(std::string key, std::int64_t rev, std::string value) {
  return {std::move(key), std::move(value), rev, 0x10};
}

rw_kinds_t rw_kinds(lock_machine& m) {
  rw_kinds_t out;
  for (auto& e : m.take_events()) out.push_back(e.kind);
  return out;
}

// The queue R1 R2 W R3, seen by each of its four contenders.
struct line {
  lock_machine r1{"me", admission::reader()}, r2{"me", admission::reader()}, w{"me", admission::writer()},
      r3{"me", admission::reader()};
  line() {
    r1.on_snapshot(6, {reader("l/r1", 3, "me"), reader("l/r2", 4), writer("l/w", 5), reader("l/r3", 6)}, "l/r1");
    r2.on_snapshot(6, {reader("l/r1", 3), reader("l/r2", 4, "me"), writer("l/w", 5), reader("l/r3", 6)}, "l/r2");
    w.on_snapshot(6, {reader("l/r1", 3), reader("l/r2", 4), writer("l/w", 5, "me"), reader("l/r3", 6)}, "l/w");
    r3.on_snapshot(6, {reader("l/r1", 3), reader("l/r2", 4), writer("l/w", 5), reader("l/r3", 6, "me")}, "l/r3");
  }
  void on_delete(const std::string& key, std::int64_t rev) {
    for (auto* m : {&r1, &r2, &w, &r3}) m->on_delete(key, rev);
  }
};

TEST(rw_machine, readers_share_a_writer_waits_and_a_reader_behind_it_waits_for_it) {
  line l;
  EXPECT_EQ(l.r1.current(), rw_status::held);
  EXPECT_EQ(l.r2.current(), rw_status::held);
  EXPECT_EQ(l.w.current(), rw_status::waiting);
  EXPECT_EQ(l.r3.current(), rw_status::waiting);  // FIFO: not admitted past the waiting writer
  auto e = l.r2.take_events();
  ASSERT_EQ(e.size(), 1u);  // ACQUIRED, no HOLDER_CHANGED: the lock has no one holder
  EXPECT_EQ(e[0].kind, lock_event::acquired);
  EXPECT_EQ(e[0].fencing_token, 4);
  EXPECT_EQ(e[0].holder, "me");  // the identity without `rw=read;`
  EXPECT_EQ(rw_kinds(l.w), rw_kinds_t{});
}

TEST(rw_machine, the_writer_is_admitted_by_the_delete_of_the_last_older_reader) {
  line l;
  l.on_delete("l/r2", 7);  // the younger reader first: r1 still holds
  EXPECT_EQ(l.w.current(), rw_status::waiting);
  l.on_delete("l/r1", 8);
  EXPECT_EQ(l.w.current(), rw_status::held);  // from the watch's DELETE, no request
  auto e = l.w.take_events();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, lock_event::acquired);
  EXPECT_EQ(e[0].fencing_token, 5);
  EXPECT_EQ(e[0].revision, 8);
  EXPECT_EQ(l.r3.current(), rw_status::waiting);
}

TEST(rw_machine, readers_behind_a_writer_are_admitted_together_by_its_delete) {
  lock_machine a("me", admission::reader()), b("me", admission::reader()), c("me", admission::reader());
  const std::vector<queue_entry> q = {writer("l/w", 3), reader("l/a", 4), reader("l/b", 5), reader("l/c", 6),
                                      writer("l/w2", 7), reader("l/d", 8)};
  a.on_snapshot(8, q, "l/a");
  b.on_snapshot(8, q, "l/b");
  c.on_snapshot(8, q, "l/c");
  lock_machine d("me", admission::reader());
  d.on_snapshot(8, q, "l/d");
  for (auto* m : {&a, &b, &c, &d}) EXPECT_EQ(m->current(), rw_status::waiting);
  for (auto* m : {&a, &b, &c, &d}) m->on_delete("l/w", 9);
  for (auto* m : {&a, &b, &c}) {
    EXPECT_EQ(m->current(), rw_status::held);
    EXPECT_EQ(rw_kinds(*m), rw_kinds_t{lock_event::acquired});
  }
  EXPECT_EQ(d.current(), rw_status::waiting);  // behind the next writer
  d.on_delete("l/w2", 10);                      // w2 gave up its place: d joins the readers holding
  EXPECT_EQ(d.current(), rw_status::held);
}

TEST(rw_machine, deletions_mid_queue_move_us_up_only_when_no_older_writer_is_left) {
  lock_machine m("me", admission::reader());
  m.on_snapshot(9, {writer("l/w1", 3), reader("l/r", 4), writer("l/w2", 5), reader("l/me", 9, "me")}, "l/me");
  m.on_delete("l/w2", 10);  // a waiting writer leaves: w1 still holds
  EXPECT_EQ(m.current(), rw_status::waiting);
  m.on_put(writer("l/late", 11), 11);  // behind us: never counts
  m.on_delete("l/w1", 12);
  EXPECT_EQ(m.current(), rw_status::held);  // beside r, an older reader
  EXPECT_EQ(rw_kinds(m), rw_kinds_t{lock_event::acquired});
  lock_machine w("me", admission::writer());
  w.on_snapshot(9, {reader("l/r", 4), writer("l/w2", 5), writer("l/me", 9, "me")}, "l/me");
  w.on_delete("l/w2", 10);
  EXPECT_EQ(w.current(), rw_status::waiting);  // a writer waits for readers too
  w.on_delete("l/r", 11);
  EXPECT_EQ(w.current(), rw_status::held);
}

TEST(rw_machine, a_plain_lock_or_etcdctl_value_counts_as_a_writer) {
  for (const std::string value : {"", "host-1", "slots=2;x", "rw=reader;x", "RW=READ;x", "rw=write;x"}) {
    SCOPED_TRACE(value);
    lock_machine m("me", admission::reader());
    m.on_snapshot(6, {foreign("l/x", 3, value), reader("l/me", 6, "me")}, "l/me");
    EXPECT_EQ(m.current(), rw_status::waiting);
    EXPECT_FALSE(m.conflict());  // never an error: counting it as a writer is safe
    m.on_delete("l/x", 7);
    EXPECT_EQ(m.current(), rw_status::held);
  }
  // A reader's key older than a plain lock's: the plain lock waits for it (etcd's rule), and we hold beside nobody.
  lock_machine r("me", admission::reader());
  r.on_snapshot(6, {reader("l/me", 3, "me"), foreign("l/x", 6, "")}, "l/me");
  EXPECT_EQ(r.current(), rw_status::held);
  // An operator's put that makes an older reader a writer takes a reader's hold away.
  lock_machine s("me", admission::reader());
  s.on_snapshot(6, {reader("l/a", 3), reader("l/me", 6, "me")}, "l/me");
  EXPECT_EQ(rw_kinds(s), rw_kinds_t{lock_event::acquired});
  s.on_put(foreign("l/a", 3, "operator"), 7);
  EXPECT_EQ(rw_kinds(s), rw_kinds_t{lock_event::removed});
  // This key never holds again (a fresh ACQUIRED must raise the token): it leaves the line, the driver deletes it and
  // contends with a new one. Found by the fuzzer: the hold came back with the same token once the value flipped back.
  EXPECT_EQ(s.current(), rw_status::releasing);
  s.on_put(reader("l/a", 3), 8);
  EXPECT_EQ(s.current(), rw_status::releasing);
  EXPECT_EQ(rw_kinds(s), rw_kinds_t{});
  s.on_delete("l/me", 9);  // the driver's delete
  s.on_released();
  EXPECT_TRUE(s.needs_contend());
}

TEST(rw_machine, keys_of_our_create_revision_count_as_older) {
  lock_machine r("me", admission::reader());
  r.on_snapshot(5, {writer("l/x", 5), reader("l/me", 5, "me")}, "l/me");
  EXPECT_EQ(r.current(), rw_status::waiting);  // a writer as old as ours blocks a reader
  lock_machine w("me", admission::writer());
  w.on_snapshot(5, {reader("l/x", 5), writer("l/me", 5, "me")}, "l/me");
  EXPECT_EQ(w.current(), rw_status::waiting);  // any key as old as ours blocks a writer
  lock_machine s("me", admission::reader());
  s.on_snapshot(5, {reader("l/x", 5), reader("l/me", 5, "me")}, "l/me");
  EXPECT_EQ(s.current(), rw_status::held);  // a reader as old as ours does not
}

TEST(rw_machine, a_resnapshot_after_compaction_keeps_the_hold_or_admits) {
  lock_machine held("me", admission::reader());
  held.on_snapshot(4, {reader("l/a", 3), reader("l/me", 4, "me")}, "l/me");
  held.take_events();
  held.on_snapshot(20, {reader("l/a", 3), reader("l/me", 4, "me"), writer("l/z", 15)}, "l/me");
  EXPECT_EQ(held.current(), rw_status::held);
  EXPECT_EQ(rw_kinds(held), rw_kinds_t{});  // the same hold, nothing to say
  lock_machine waiting("me", admission::writer());
  waiting.on_snapshot(9, {reader("l/a", 3), reader("l/b", 4), writer("l/me", 9, "me")}, "l/me");
  waiting.on_snapshot(30, {writer("l/me", 9, "me"), reader("l/c", 12)}, "l/me");  // a and b went meanwhile
  EXPECT_EQ(waiting.current(), rw_status::held);
  EXPECT_EQ(rw_kinds(waiting), rw_kinds_t{lock_event::acquired});
  lock_machine stale("me", admission::reader());
  stale.on_snapshot(9, {reader("l/me", 9, "me")}, "l/me");
  stale.take_events();
  stale.on_snapshot(30, {writer("l/w", 2), reader("l/me", 9, "me")}, "l/me");  // history rewritten (a restore)
  EXPECT_EQ(stale.current(), rw_status::releasing);  // replaced by a new key: a new hold gets a higher token
  EXPECT_EQ(rw_kinds(stale), rw_kinds_t{lock_event::removed});
}

TEST(rw_machine, lease_lost_ends_the_hold_and_admits_nobody_by_itself) {
  lock_machine m("me", admission::reader());
  m.on_snapshot(4, {reader("l/a", 3), reader("l/me", 4, "me")}, "l/me");
  m.take_events();
  m.on_lease_lost();
  EXPECT_EQ(rw_kinds(m), rw_kinds_t{lock_event::removed});
  EXPECT_TRUE(m.needs_contend());
  lock_machine w("me", admission::writer());
  w.on_snapshot(6, {reader("l/me", 4), writer("l/w", 6, "me")}, "l/w");
  EXPECT_EQ(w.current(), rw_status::waiting);
  w.on_delete("l/me", 7);  // the reader's lease expired: the watch says so
  EXPECT_EQ(w.current(), rw_status::held);
}

TEST(rw_machine, unknown_then_probe_proves_the_same_hold_and_an_unproven_lease_waits_for_a_probe) {
  lock_machine m("me", admission::reader());
  m.on_snapshot(5, {reader("l/a", 3), reader("l/me", 5, "me")}, "l/me");
  m.take_events();
  m.on_unreachable();
  EXPECT_EQ(rw_kinds(m), rw_kinds_t{lock_event::unknown});
  EXPECT_EQ(m.current(), rw_status::uncertain);
  m.on_probe(5, 40);
  auto e = m.take_events();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, lock_event::acquired);
  EXPECT_EQ(e[0].fencing_token, 5);

  lock_machine u("me", admission::reader());
  u.on_snapshot(6, {writer("l/w", 3), reader("l/me", 6, "me")}, "l/me");
  u.set_lease_proven(false);
  u.on_delete("l/w", 7);  // our turn, but the lease is not proven: nothing announced
  EXPECT_EQ(u.current(), rw_status::unproven);
  EXPECT_EQ(rw_kinds(u), rw_kinds_t{});
  u.set_lease_proven(true);
  u.on_probe(6, 8);
  EXPECT_EQ(u.current(), rw_status::held);
  EXPECT_EQ(rw_kinds(u), rw_kinds_t{lock_event::acquired});
  u.on_probe(0, 9);  // a probe finds our key gone
  EXPECT_EQ(rw_kinds(u), rw_kinds_t{lock_event::removed});
  EXPECT_TRUE(u.needs_contend());
}

TEST(rw_machine, a_readers_probe_reads_the_oldest_writers_ahead_and_a_writers_the_holder) {
  lock_machine m("me", admission::reader());
  m.on_snapshot(12, {reader("l/r0", 2), writer("l/w1", 3), reader("l/r1", 4), writer("l/w2", 5), writer("l/w3", 6),
                     reader("l/r2", 7), writer("l/w4", 8), reader("l/me", 12, "me"), writer("l/w5", 13)},
                "l/me");
  EXPECT_EQ(m.current(), rw_status::waiting);
  // Writers only (readers ahead never block a reader), oldest first, at most 3; none behind us.
  EXPECT_EQ(m.keys_ahead(), (std::vector<std::string>{"l/w1", "l/w2", "l/w3"}));
  auto gone = [](const std::string& victim) {
    return [victim](const std::string& k) -> std::int64_t { return k == victim ? 0 : -1; };
  };
  EXPECT_TRUE(m.view_behind(gone("l/w2")));
  EXPECT_FALSE(m.view_behind(gone("l/r1")));  // not read
  EXPECT_FALSE(m.view_behind([](const std::string& k) -> std::int64_t {
    return k == "l/w1" ? 3 : k == "l/w2" ? 5 : k == "l/w3" ? 6 : -1;  // all as the view has them
  }));
  EXPECT_TRUE(m.view_behind([](const std::string& k) -> std::int64_t { return k == "l/w3" ? 99 : -1; }));  // another
  m.on_delete("l/w1", 14);
  EXPECT_EQ(m.keys_ahead(), (std::vector<std::string>{"l/w2", "l/w3", "l/w4"}));

  lock_machine w("me", admission::writer());
  w.on_snapshot(9, {reader("l/a", 3), reader("l/b", 4), writer("l/me", 9, "me")}, "l/me");
  EXPECT_EQ(w.keys_ahead(), std::vector<std::string>{"l/a"});  // as the lock's: the first in line
  lock_machine h("me", admission::reader());
  h.on_snapshot(9, {reader("l/a", 3), reader("l/me", 9, "me")}, "l/me");
  EXPECT_EQ(h.current(), rw_status::held);
  EXPECT_TRUE(h.keys_ahead().empty());  // not waiting
}

TEST(rw_machine, release_and_values) {
  lock_machine m("me", admission::writer());
  m.on_snapshot(4, {writer("l/me", 4, "me"), reader("l/r", 5)}, "l/me");
  EXPECT_EQ(m.queue()[1].identity, "rw=read;other");  // the machine keeps values whole
  EXPECT_EQ(m.identity_of("rw=read;other"), "other");
  EXPECT_EQ(m.identity_of("plain"), "plain");
  m.take_events();
  m.begin_release();
  EXPECT_EQ(rw_kinds(m), rw_kinds_t{lock_event::removed});
  m.on_delete("l/me", 6);  // the watch's echo of our delete: no second REMOVED, never held again
  m.on_released();
  EXPECT_EQ(rw_kinds(m), rw_kinds_t{});
  EXPECT_TRUE(m.needs_contend());
  EXPECT_EQ(encode_rw(true, "a"), "rw=read;a");
  EXPECT_EQ(encode_rw(false, "a"), "rw=write;a");
  EXPECT_TRUE(decode_rw("rw=read;").reader);
  EXPECT_FALSE(decode_rw("rw=read").reader);
  EXPECT_EQ(decode_rw("rw=write;b").identity, "b");
}

}  // namespace
}  // namespace clusterlock::recipe
