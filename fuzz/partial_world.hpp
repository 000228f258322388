#pragma once
// The lock-machine fuzzer's partial-view world mode (lock_machine_fuzzer.cpp, the only file that includes this):
// watch_scope::predecessor's machine (lock_machine(..., partial_view = true)) for a plain lock that contends, fed
// by a model of its driver (manager/work.cpp read() and apply(), manager/follow.cpp follow_ahead()) that gives it
// only what that driver can. Its operations and invariants are listed in lock_machine_fuzzer.cpp's header comment.

#include "etcd_model.hpp"
#include "machine_checks.hpp"
#include "world_changes.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

struct partial_snapshot {
  std::vector<queue_entry> keys;
  bool complete = true;
  std::size_t ahead = 0;  // keys of `keys` ahead of ours (0 or 1)
};

// recipe::read_ahead at revision `rev`: the newest other key as old as ours (create revision `mine`) or older, and
// ours if it stands with that create revision; complete when the key ahead is the only one (or there is none).
partial_snapshot read_ahead_at(const etcd_model& db, std::int64_t rev, const std::string& my_key, std::int64_t mine) {
  const keyspace& at = db.at(rev);
  partial_snapshot s;
  const std::pair<const std::string, kv>* newest = nullptr;
  std::size_t others = 0;
  for (const auto& e : at) {
    if (e.first == my_key || e.second.create > mine) continue;
    ++others;
    // Of two as new (one txn made both), either may come first in etcd's descending read: the later key here.
    if (!newest || e.second.create >= newest->second.create) newest = &e;
  }
  s.complete = others <= 1;
  if (newest) {
    s.keys.push_back({newest->first, newest->second.value, newest->second.create, newest->second.lease});
    s.ahead = 1;
  }
  auto it = at.find(my_key);
  if (it != at.end() && it->second.create == mine)
    s.keys.push_back({it->first, it->second.value, it->second.create, it->second.lease});
  return s;
}

void run_partial(FuzzedDataProvider& in) {
  const admission rule = admission::lock();
  etcd_model db;
  lock_machine m("me", rule, /*partial_view=*/true);
  checker check;
  check.strict_tokens = true;

  // The driver's state (lock_manager in watch_scope::predecessor, session, its own watch).
  std::int64_t lease = 0;  // our lease as the lease keeper knows it (0: none)
  std::int64_t next_lease = 0x100;
  std::set<std::string> our_names;  // every key name we ever contended with
  std::size_t cursor = 0;           // next change of db.log the watch delivers
  bool read_once = false;
  bool synced = false;  // the view follows the watch without a gap since its snapshot
  int resets = 0;       // watch resets so far
  int read_epoch = 0;   // `resets` when the read in flight began
  // After a complete snapshot (one key ahead, or none) whose watch has had no gap since: trust_watch_ahead() allowed.
  bool trustable = false;
  struct pending_read {
    std::int64_t start;  // etcd's revision when the read began (after the enqueue txn's put, if any)
    std::string key;
    std::int64_t lease;
    std::int64_t mine;  // our key's create revision, as the enqueue txn (or the machine) knows it
    bool alone;         // enqueue_behind's first read found no key as old as ours: that read is the snapshot
  };
  std::optional<pending_read> reading;
  std::vector<change> early;  // watch events that arrived during the read
  std::optional<pending_probe> probing;
  std::int64_t applied = 0;  // the last revision given to the machine by a read or the watch
  bool proven = true;        // our lease's lifetime is proven now (may_hold(): the driver says so before each input)

  // manager_state::apply: the watch tells of keys the view does not have (a span's keys between ours and the one
  // ahead, keys that left the view); follows() drops them.
  // Whether the watch tells of our key: follow_ahead() watches the key ahead alone while the snapshot was not
  // complete (a watch kept from before may cover ours too).
  bool watch_mine = true;
  auto apply = [&](const change& c) {
    if (c.key == m.my_key() ? !watch_mine : !m.in_view(c.key)) return;
    m.set_lease_proven(proven);
    if (c.deleted) {
      TRACE("    watch: delete " + c.key + " at " + std::to_string(c.revision));
      m.on_delete(c.key, c.revision);
    } else {
      TRACE("    watch: put " + c.key + "@" + std::to_string(c.value.create) + " at " + std::to_string(c.revision));
      m.on_put({c.key, c.value.value, c.value.create, c.value.lease}, c.revision);
    }
    applied = std::max(applied, c.revision);
  };
  auto read_due = [&] { return !synced || m.needs_contend() || m.needs_reread(); };

  // Delivers the changes of the next revision in the log, as one watch message.
  auto deliver_one = [&] { return deliver_message(db, cursor, reading || !synced, early, apply) != 0; };

  while (in.remaining_bytes() > 0) {
    const int op = in.ConsumeIntegralInRange<int>(0, 17);
    const status before = m.current();
    switch (op) {
      case 0: case 1: case 2: case 3: case 4: case 5:
        other_change(op, in, db, rule, lease, our_names);
        break;
      case 6:
        deliver_one();
        break;
      case 7:
        deliver_some(in, deliver_one);
        break;
      case 8: {  // the work loop reads: read_ahead for the key the machine has, else enqueue_behind
        if (reading || !read_due()) break;
        if (!lease_for_enqueue(lease, next_lease, db, m)) break;
        const std::string key = lock_key(lease);
        pending_read r{0, key, lease, 0, false};
        if (m.has_key() && m.my_key() == key) {
          r.mine = m.my_token();
          TRACE("driver: read_ahead of " + key + "@" + std::to_string(r.mine));
        } else {
          our_names.insert(key);
          etcd_model::txn t(db);
          if (!db.keys.count(key)) t.put(key, our_value(rule), lease);
          r.mine = db.keys.at(key).create;
          r.alone = true;
          for (const auto& [k, v] : db.keys)
            if (k != key && v.create <= r.mine) r.alone = false;
          TRACE("driver: enqueue_behind " + key + "@" + std::to_string(r.mine) + (r.alone ? ", oldest" : ""));
        }
        r.start = db.revision;
        reading = std::move(r);
        read_epoch = resets;
        trustable = false;
        early.clear();  // they came before the read was sent: the read has them
        break;
      }
      case 9: {  // the read's reply arrives (or the read fails after etcd did it)
        if (!reading) break;
        const auto reply = read_reply(in, reading, lease, synced);
        if (!reply) break;
        const auto& r = *reply;
        // enqueue_behind's second read (read_ahead) and a re-read happen at any revision up to now.
        const std::int64_t rev = r.alone ? r.start : in.ConsumeIntegralInRange<std::int64_t>(r.start, db.revision);
        auto s = read_ahead_at(db, rev, r.key, r.mine);
        watch_mine = s.ahead == 0 || s.complete || in.ConsumeBool();
        TRACE("driver: read reply -> on_snapshot(" + std::to_string(rev) + ", " + describe(s.keys) + ")" +
              (s.complete ? " complete" : "") + (watch_mine ? "" : ", our key unwatched"));
        m.set_lease_proven(proven);
        m.on_snapshot(rev, std::move(s.keys), r.key);
        applied = std::max(applied, rev);
        if (read_epoch == resets) {
          for (const auto& c : early) apply(c);
          synced = true;
          trustable = s.complete;  // s.ahead <= 1 by construction
        }
        early.clear();
        read_once = true;
        break;
      }
      case 10: {  // the probe asks (a linearizable read; a waiter's too in this scope)
        if (probing || !m.wants_probe()) break;
        probing = probe_now(db);
        break;
      }
      case 11: {  // the probe's reply arrives
        if (!probing) break;
        const auto reply = probe_reply(probing, m.wants_probe(), m.my_key());
        if (!reply) break;
        const auto [create, revision] = *reply;
        if (!proven) {  // manager_state::on_probe: the lease may have expired
          TRACE("driver: probe reply, lease unproven -> on_unreachable");
          m.on_unreachable();
          break;
        }
        TRACE("driver: probe reply -> on_probe(" + std::to_string(create) + ", " + std::to_string(revision) + ")");
        m.set_lease_proven(true);
        m.on_probe(create, revision);
        break;
      }
      case 12:
        TRACE("driver: on_unreachable");
        probing.reset();
        m.on_unreachable();
        break;
      case 13:  // a keepalive finds the lease gone
        keepalive(lease, db, m);
        break;
      case 14:  // the watch's history was compacted (or it broke): it restarts from now, and the driver reads again
        TRACE("driver: watch reset at revision " + std::to_string(db.revision));
        cursor = db.log.size();
        synced = false;
        trustable = false;
        ++resets;
        break;
      case 15: {  // shutdown: delete our key if it is still ours, then tell the machine
        if (reading) break;
        delete_if_ours(db, m.my_key(), m.my_token());
        TRACE("driver: release -> on_released");
        m.on_released();
        check.events(m);
        check.state_of(m);
        return;
      }
      case 16:  // follow_ahead: the snapshot was complete, and one watch has told of both keys since it, no gap
        if (reading || !trustable) break;
        TRACE("driver: trust_watch_ahead");
        m.trust_watch_ahead();
        break;
      case 17:  // the lease's lifetime is proven no longer (keepalives are late), or again
        proven = !proven;
        TRACE(std::string("driver: lease ") + (proven ? "proven again" : "unproven"));
        break;
    }
    check.events(m);
    check.state_of(m);

    // (11p) A hold begins only while the lease's lifetime is proven (ACQUIRED promises have_lock()).
    if (m.current() == status::held && before != status::held)
      require(proven, "held while the lease's lifetime was not proven");
    // (8) A hold is on the lease the driver keeps alive (not one it knows is gone).
    if (m.current() == status::held) require(lease != 0 && m.my_key() == lock_key(lease), "held on a lost lease");
    // (6) A claim is true at the revision it was made of.
    if (m.current() == status::held) {
      const keyspace& then = db.at(m.revision());
      auto it = then.find(m.my_key());
      require(it != then.end() && it->second.create == m.my_token(),
              "held, but our key did not stand at revision " + std::to_string(m.revision()));
      for (const auto& [k, v] : then)
        require(k == m.my_key() || v.create > m.my_token(),
                "held, but " + k + " was older than our key at revision " + std::to_string(m.revision()));
    }
    // (7p) The view is a part of etcd's state at the revision applied: ours and at most one other key, each of them
    // standing then with that create revision (ours only while the watch tells of it: else its DELETE never comes).
    const auto view = m.queue();
    std::size_t others = 0;
    for (const auto& e : view) others += e.key != m.my_key();
    require(others <= 1, "a partial view with more than one key besides ours " + describe(view));
    if (read_once && !reading && m.revision() == applied) {
      const keyspace& then = db.at(applied);
      for (const auto& e : view) {
        if (e.key == m.my_key() && !watch_mine) continue;
        auto it = then.find(e.key);
        require(it != then.end() && it->second.create == e.create_revision,
                "the view has " + e.key + "@" + std::to_string(e.create_revision) + ", not in etcd at revision " +
                    std::to_string(applied));
      }
    }
  }
}

}  // namespace
