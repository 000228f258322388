// Fuzzes the lock recipe's decisions (recipe::lock_machine) with random sequences of inputs.
//
// The last byte picks the mode (FuzzedDataProvider takes integers from the end); the rest is a sequence of
// operations and their arguments.
//
// World mode (bit 0 clear): a small model of etcd (revisions, keys under "l/" with create revisions and leases,
// the watch log, lease expiry) changed at random by other contenders and operators, and a model of the driver
// (lock_manager + session) that feeds the machine only what etcd and the driver really can: snapshots that are
// the truth at their revision (the enqueue txn creates our key first when we contend), watch events in revision
// order with no gap (delayed at will; those arriving during a read, or while the view is not in step with the
// watch -- before the first read, after history was lost, after a failed read -- wait for the next read), probes
// that are the truth at their revision (delivered late at will), lease loss only once etcd lost the lease,
// compaction (the watch restarts from now and the driver reads the queue again), unreachability at any time, reads
// that fail after etcd applied them, and release.
// Bit 1 of the mode: contend (else observe). Bit 2: a semaphore of N = 1 + bits 3-4 slots (1 to 4): keys carry
// `slots=N;` values, other contenders' sometimes another N or none (a plain lock's), and the invariants count.
// Bit 7 (bit 2 clear): a read-write lock, we a reader (bit 6) or a writer: keys carry `rw=read;` or `rw=write;` values, other
// contenders' sometimes a plain lock's, etcdctl's empty one or a semaphore's (writers all).
// Bit 6 alone (bits 1, 2 and 7 clear; without bit 7 it was never a reader's, and no seed set it): the partial view
// (partial_world.hpp), watch_scope::predecessor's machine for a plain lock that contends, fed only what its driver
// (manager/work.cpp, manager/follow.cpp) can: snapshots as recipe::read_ahead reads them (our key if it stands and the
// newest other key as old as ours or older, `complete` when that one is the only one; enqueue_behind's first read
// alone when none is as old as ours, else a second read at any later revision), watch events in revision order,
// delayed at will, of the keys in the view (ours not always: a snapshot that was not complete may have a watch on
// the key ahead alone), a read again whenever needs_reread(), and trust_watch_ahead() only after a complete snapshot
// whose watch has had no gap since (op 16; as the driver, at any point after it, some events delivered or not), and
// a lease whose lifetime is proven, or not (op 17; set_lease_proven before each input, on_unreachable at a probe).
// Bit 5 is not free: seeds (regression-reset-gap, regression-tie) set it, without meaning.
//
// Free mode (bit 0 set): every entry point with arbitrary arguments, contradictions included.
//
// Invariants, checked after every operation:
//  (1) the view is a queue: keys are unique, ordered by create revision, holder() is its first entry;
//  (2) status held => our key is in the view with our token, and it is the oldest entry (one holder at most);
//  (3) our own events follow  out --ACQUIRED--> holding --UNKNOWN--> uncertain --ACQUIRED--> holding,
//      holding|uncertain --REMOVED--> out: no ACQUIRED while holding, UNKNOWN only while holding, REMOVED only
//      after an ACQUIRED; UNKNOWN and REMOVED carry the token of the hold; the grammar's state matches status();
//  (4) an ACQUIRED after UNKNOWN is the same hold again: same token; a fresh ACQUIRED (after REMOVED, or the
//      first) -- world mode only -- has a token above every earlier one (a new key is a newer revision);
//  (5) HOLDER_CHANGED is sent only on a change, and the last one sent names the view's holder (0: none);
//      world mode: its non-zero tokens never decrease (nobody can take a place ahead of the holder; equal only
//      for keys that one txn created together);
//  (6) world mode: status held => in etcd at the machine's revision(), our key stood with our token and no key
//      was older (never a false claim from what was applied, whatever the delays);
//  (7) world mode: when revision() is the last revision applied from the watch or a read, the view is etcd's
//      state at that revision (what a probe or the lease says changes our status, not the view);
//  (8) world mode: status held => our key is on the lease the driver keeps (not one it already knows is gone);
//  (9) the queue's changes (take_queue_changes), applied in order to a copy, give the queue;
// (10) a waiter's keys_ahead() are the keys its probe must read: the first min(N, 3) keys ahead of it (semaphore),
//      the first key (lock, writer), the first three writers ahead of it (reader); nothing unless waiting.
// Semaphore (world mode, bit 2), in place of (2), (5) and (6):
//  (2s) status held => our key is in the view with our token, fewer than N other keys of the view are as old as
//       ours or older, and none of those has another N than ours (or none);
//  (5s) no HOLDER_CHANGED at all;
//  (6s) status held => in etcd at the machine's revision(), our key stood with our token, fewer than N other keys
//       were as old or older, and all of those agreed on N ("we say held only when fewer than N older keys").
// Read-write lock (bit 7), in place of (2), (5) and (6), from the rule's statement (machine_checks.hpp):
//  (2r) status held => our key is in the view with our token; a reader: no key of the view as old as ours or older
//       is a writer's (any value but `rw=read;...`); a writer: no other key is as old or older;
//  (5r) no HOLDER_CHANGED at all;
//  (6r) status held => the same held in etcd at the machine's revision().
// Partial view (bit 6 alone): (1) to (4), (6), (8), (9), (10) as in world mode; in place of (5) and (7):
//  (5p) no HOLDER_CHANGED at all;
//  (7p) the view has our key and at most one other; when revision() is the last revision applied from the watch or
//       a read, each of its keys stood in etcd at revision() with that create revision (ours only while the watch
//       tells of it). A partial view is not etcd's whole state: (7) itself does not hold.
// (11p) a hold begins (status becomes held) only while the lease's lifetime is proven.
// Liveness is not checked here (the integration tests do): delays are unbounded in this model.

#include "etcd_model.hpp"
#include "world_changes.hpp"
#include "partial_world.hpp"
#include "machine_checks.hpp"
#include "recipe/lock_machine.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <unordered_map>

namespace {

// ---- World mode --------------------------------------------------------------------------------------------

void run_world(FuzzedDataProvider& in, bool contend, const admission& rule) {
  etcd_model db;
  lock_machine m("me", rule);
  checker check;
  check.strict_tokens = true;

  // The driver's state (lock_manager, session, watch hub).
  std::int64_t lease = 0;  // our lease as the lease keeper knows it (0: none)
  std::int64_t next_lease = 0x100;
  std::set<std::string> our_names;  // every key name we ever contended with
  std::size_t cursor = 0;           // next change of db.log the watch delivers
  bool read_once = false;
  bool synced = false;              // the view follows the watch without a gap: events are applied as they come
  int resets = 0;                   // watch resets so far
  int read_epoch = 0;               // `resets` when the read in flight began
  struct pending_read {
    std::int64_t revision;
    std::vector<queue_entry> keys;
    std::string key;
    std::int64_t lease;
  };
  std::optional<pending_read> reading;
  std::vector<change> early;        // watch events that arrived during the read
  std::optional<pending_probe> probing;
  std::int64_t applied = 0;  // the last revision applied from a read or the watch
  // Our keys (name, create revision) the machine let go of (on_released): its view drops them at once, and a PUT the
  // watch brings before their DELETE puts them back; (7) does not look at them.
  std::set<std::pair<std::string, std::int64_t>> let_go;

  auto apply = [&](const change& c) {
    if (c.deleted) {
      m.on_delete(c.key, c.revision);
    } else {
      m.on_put({c.key, c.value.value, c.value.create, c.value.lease}, c.revision);
    }
  };
  auto wants_probe = [&] { return m.current() == status::held || m.current() == status::uncertain; };
  auto read_due = [&] { return !synced || (contend && m.needs_contend()); };

  // Delivers the changes of the next revision in the log, as one watch message.
  auto deliver_one = [&] {
    const bool hold_back = reading || !synced;
    const std::int64_t rev = deliver_message(db, cursor, hold_back, early, apply);
    if (rev != 0 && !hold_back) applied = std::max(applied, rev);
    return rev != 0;
  };

  while (in.remaining_bytes() > 0) {
    const int op = in.ConsumeIntegralInRange<int>(0, 15);
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
      case 8: {  // the contend loop reads: enqueue txn (contending) or a plain range (observing)
        if (reading || !read_due()) break;
        std::string key;
        if (contend) {
          if (!lease_for_enqueue(lease, next_lease, db, m)) break;
          key = lock_key(lease);
          our_names.insert(key);
          etcd_model::txn t(db);
          if (!db.keys.count(key)) t.put(key, our_value(rule), lease);
        }
        TRACE("driver: read at revision " + std::to_string(db.revision) + " " + describe(as_queue(db.keys)) +
                        " my key " + key);
        reading = pending_read{db.revision, as_queue(db.keys), key, lease};
        read_epoch = resets;
        early.clear();  // they came before the read was sent: the read has them
        break;
      }
      case 9: {  // the read's reply arrives (or, the last input byte odd, the read fails after etcd did it)
        if (!reading) break;
        const auto reply = read_reply(in, reading, lease, synced);  // an observer's lease is always 0
        if (!reply) break;
        const auto& r = *reply;
        TRACE("driver: read reply -> on_snapshot(" + std::to_string(r.revision) + ")");
        m.on_snapshot(r.revision, r.keys, r.key);
        applied = std::max(applied, r.revision);
        if (read_epoch == resets) {
          for (const auto& c : early) {
            apply(c);
            applied = std::max(applied, c.revision);
          }
          synced = true;
        }
        early.clear();
        read_once = true;
        break;
      }
      case 10: {  // the probe asks (a linearizable read of every key under the prefix)
        if (probing || !wants_probe()) break;
        probing = probe_now(db);
        break;
      }
      case 11: {  // the probe's reply arrives
        if (!probing) break;
        const auto reply = probe_reply(probing, wants_probe(), m.my_key());
        if (!reply) break;
        const auto [create, revision] = *reply;
        TRACE("driver: probe reply -> on_probe(" + std::to_string(create) + ", " + std::to_string(revision) + ")");
        m.on_probe(create, revision);
        break;
      }
      case 12:  // a probe failed, or the lease's proven lifetime ran out
        TRACE("driver: on_unreachable");
        probing.reset();
        m.on_unreachable();
        break;
      case 13:  // a keepalive finds the lease gone
        keepalive(lease, db, m);
        break;
      case 14: {  // the watch's history was compacted: it restarts from now, and the queue is read again
        TRACE("driver: watch compacted at revision " + std::to_string(db.revision) + ", restarts from now");
        cursor = db.log.size();
        synced = false;
        ++resets;
        break;
      }
      case 15: {  // shutdown: delete our key if it is still ours, then tell the machine
        if (reading) break;
        if (m.current() == status::releasing) {  // the machine gave up its key (rw): delete it, contend again
          delete_if_ours(db, m.my_key(), m.my_token());
          TRACE("driver: the machine released its key -> deleted, on_released");
          let_go.emplace(m.my_key(), m.my_token());
          m.on_released();
          break;
        }
        delete_if_ours(db, m.my_key(), m.my_token());
        TRACE("driver: release -> on_released");
        m.on_released();
        check.events(m);
        check.state_of(m);
        return;  // the manager stops here
      }
    }
    check.events(m);
    check.state_of(m);

    // (8) A hold is on the lease the driver keeps alive (not one it knows is gone).
    if (m.current() == status::held) require(lease != 0 && m.my_key() == lock_key(lease), "held on a lost lease");
    // (6s), (6r) A permit, a read or a write is true at the revision it was claimed of.
    if (m.current() == status::held && rule.kind != admission::kind_type::lock) {
      const keyspace& then = db.at(m.revision());
      auto it = then.find(m.my_key());
      require(it != then.end() && it->second.create == m.my_token(),
              "held, but our key did not stand at revision " + std::to_string(m.revision()));
      std::vector<std::pair<std::int64_t, std::string>> others;
      for (const auto& [k, v] : then)
        if (k != m.my_key()) others.emplace_back(v.create, v.value);
      const std::string why = breaks_rule(rule, m.my_token(), others);
      require(why.empty(), "held, but at revision " + std::to_string(m.revision()) + ": " + why);
    }
    // (6) A claim is true at the revision it was made of.
    if (m.current() == status::held && rule.kind == admission::kind_type::lock) {
      const keyspace& then = db.at(m.revision());
      auto it = then.find(m.my_key());
      require(it != then.end() && it->second.create == m.my_token(),
              "held, but our key did not stand at revision " + std::to_string(m.revision()));
      for (const auto& [k, v] : then)
        require(k == m.my_key() || v.create > m.my_token(),
                "held, but " + k + " was older than our key at revision " + std::to_string(m.revision()));
    }
    // (7) The view is etcd's state at the revision applied.
    if (read_once && !reading && m.revision() == applied) {
      const std::vector<queue_entry> view = m.queue(), truth = as_queue(db.at(applied));
      auto same = [&](const std::vector<queue_entry>& a, const std::vector<queue_entry>& b) {
        std::map<std::string, std::int64_t> x, y;
        for (const auto& e : a)
          if (!let_go.count({e.key, e.create_revision})) x[e.key] = e.create_revision;
        for (const auto& e : b)
          if (!let_go.count({e.key, e.create_revision})) y[e.key] = e.create_revision;
        return x == y;
      };
      require(same(view, truth), "the view " + describe(view) + " is not etcd's state " + describe(truth) +
                                     " at revision " + std::to_string(applied));
    }
  }
}

// ---- Free mode ---------------------------------------------------------------------------------------------

void run_free(FuzzedDataProvider& in, const admission& rule) {
  const char* const names[] = {"l/a", "l/b", "l/c", "l/me", "l/me2", ""};
  lock_machine m("me", rule);
  const std::size_t slots = rule.slots;
  checker check;
  auto pick_name = [&] { return std::string(names[in.ConsumeIntegralInRange<int>(0, 5)]); };
  auto pick_rev = [&] { return in.ConsumeIntegralInRange<std::int64_t>(0, 40); };
  auto pick_entry = [&] {
    queue_entry e;
    e.key = pick_name();
    e.identity = in.ConsumeBool() ? "me" : "other";
    if (slots != 0) e.identity = encode_slots(in.ConsumeIntegralInRange<std::size_t>(slots - 1, slots + 1), e.identity);
    if (rule.rw()) e.identity = value_of(in, rule, e.identity);
    e.create_revision = pick_rev();
    e.lease = in.ConsumeIntegralInRange<int>(0, 3);
    return e;
  };
  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 7)) {
      case 0: {
        const std::int64_t rev = pick_rev();
        std::vector<queue_entry> keys(in.ConsumeIntegralInRange<std::size_t>(0, 5));
        for (auto& e : keys) e = pick_entry();
        const std::string mine = pick_name();
        TRACE("on_snapshot(" + std::to_string(rev) + ", " + describe(keys) + ", " + mine + ")");
        m.on_snapshot(rev, keys, mine);
        break;
      }
      case 1: {
        auto e = pick_entry();
        const std::int64_t rev = pick_rev();
        TRACE("on_put(" + e.key + "@" + std::to_string(e.create_revision) + ", " + std::to_string(rev) + ")");
        m.on_put(e, rev);
        break;
      }
      case 2: {
        const std::string key = pick_name();
        const std::int64_t rev = pick_rev();
        TRACE("on_delete(" + key + ", " + std::to_string(rev) + ")");
        m.on_delete(key, rev);
        break;
      }
      case 3: {
        const std::int64_t rev = pick_rev();
        TRACE("on_progress(" + std::to_string(rev) + ")");
        m.on_progress(rev);
        break;
      }
      case 4: {
        const std::int64_t create = pick_rev(), rev = pick_rev();
        TRACE("on_probe(" + std::to_string(create) + ", " + std::to_string(rev) + ")");
        m.on_probe(create, rev);
        break;
      }
      case 5:
        TRACE("on_unreachable()");
        m.on_unreachable();
        break;
      case 6:
        TRACE("on_lease_lost()");
        m.on_lease_lost();
        break;
      case 7:
        TRACE("on_released()");
        m.on_released();
        break;
    }
    check.events(m);
    check.state_of(m);
  }
}

void run(const std::uint8_t* data, std::size_t size) {
  trace.clear();
  FuzzedDataProvider in(data, size);
  const auto mode = in.ConsumeIntegral<std::uint8_t>();
  // Bit 7 for the read-write lock, and only without bit 2: every seed made before keeps its meaning.
  const admission rule = (mode & 4)     ? admission::semaphore(1 + ((mode >> 3) & 3))
                         : (mode & 128) ? ((mode & 64) ? admission::reader() : admission::writer())
                                        : admission::lock();
  if (mode & 1) {
    run_free(in, rule);
  } else if ((mode & (2 | 4 | 64 | 128)) == 64) {
    run_partial(in);  // bit 6 (a reader's without bit 7): a partial view; seeds made before never set it thus
  } else {
    run_world(in, (mode & 2) == 0, rule);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // CLUSTERLOCK_FUZZ_TRACE=1 fuzz_lock_machine FILE...: what the inputs did (for writing seeds, reading crashes).
  static const bool print = std::getenv("CLUSTERLOCK_FUZZ_TRACE") != nullptr;
  tracing = print;
  try {
    run(data, size);
  } catch (const run_again_with_trace&) {
    tracing = true;
    run(data, size);  // fails again, and prints what happened
    fail("the input broke an invariant only once");
  }
  if (print) {
    for (const auto& t : trace) std::fprintf(stderr, "  %s\n", t.c_str());
    std::fprintf(stderr, "--\n");
  }
  return 0;
}
