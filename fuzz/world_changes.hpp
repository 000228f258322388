#pragma once
// The lock-machine fuzzer's changes to its model of etcd (lock_machine_fuzzer.cpp, the only file that includes this,
// directly or through partial_world.hpp): what other contenders and operators do, shared by the world modes.

#include "etcd_model.hpp"
#include "machine_checks.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

// What another contender writes: a lock's bare identity, a semaphore's `slots=N;` value (sometimes another N, or
// none), a read-write lock's `rw=read;` or `rw=write;` (sometimes a plain lock's, etcdctl's empty or a semaphore's).
std::string value_of(FuzzedDataProvider& in, const admission& rule, std::string who) {
  if (rule.kind == admission::kind_type::lock) return who;
  if (rule.kind == admission::kind_type::semaphore) {
    switch (in.ConsumeIntegralInRange<int>(0, 7)) {
      case 0: return who;                                  // a plain lock (etcdctl lock on the name)
      case 1: return encode_slots(rule.slots + 1, who);    // another N
      default: return encode_slots(rule.slots, who);
    }
  }
  switch (in.ConsumeIntegralInRange<int>(0, 7)) {
    case 0: return who;                     // a plain lock
    case 1: return "";                      // etcdctl lock
    case 2: return encode_slots(2, who);    // a semaphore on the name
    case 3: case 4: return encode_rw(false, who);
    default: return encode_rw(true, who);
  }
}

// The driver's steps that both world modes take alike.

// A probe in flight: every key under the prefix, as a linearizable read at `revision` found them.
struct pending_probe {
  std::unordered_map<std::string, std::int64_t> keys;
  std::int64_t revision;
};

pending_probe probe_now(const etcd_model& db) {
  pending_probe p{{}, db.revision};
  for (const auto& [k, v] : db.keys) p.keys[k] = v.create;
  TRACE("driver: probe reads at revision " + std::to_string(db.revision));
  return p;
}

// The reply to the read in flight arrives, or (a byte says) the read fails after etcd did it. The read, unless it
// failed or was made with a lease found gone meanwhile: then the view has a gap until the next read.
template <class Read>
std::optional<Read> read_reply(FuzzedDataProvider& in, std::optional<Read>& reading, std::int64_t lease, bool& synced) {
  Read r = std::move(*reading);
  reading.reset();
  if (in.ConsumeBool()) {
    TRACE("driver: read fails");
    synced = false;
    return std::nullopt;
  }
  if (r.lease != lease) {
    TRACE("driver: read reply for lease " + std::to_string(r.lease) + ", found gone meanwhile: dropped");
    synced = false;
    return std::nullopt;
  }
  return r;
}

// The probe's reply arrives: our key's create revision (0: none) and the probe's revision, if the lock still wants
// the probe.
std::optional<std::pair<std::int64_t, std::int64_t>> probe_reply(std::optional<pending_probe>& probing, bool wanted,
                                                                 const std::string& my_key) {
  const pending_probe p = std::move(*probing);
  probing.reset();
  if (!wanted) return std::nullopt;
  const auto it = p.keys.find(my_key);
  return std::make_pair(it == p.keys.end() ? 0 : it->second, p.revision);
}

// The watch delivers the changes of the next revision in the log as one message: held back in `early` (a read is on
// its way, or the view has a gap) or applied. Its revision; 0 when the log has nothing more (revisions start at 2).
template <class Apply>
std::int64_t deliver_message(const etcd_model& db, std::size_t& cursor, bool hold_back, std::vector<change>& early,
                             Apply& apply) {
  if (cursor >= db.log.size()) return 0;
  const std::int64_t rev = db.log[cursor].revision;
  TRACE("watch delivers revision " + std::to_string(rev));
  for (; cursor < db.log.size() && db.log[cursor].revision == rev; ++cursor) {
    if (hold_back) early.push_back(db.log[cursor]);
    else apply(db.log[cursor]);
  }
  return rev;
}

// The watch delivers 1 to 8 messages (fewer if the log runs out).
template <class DeliverOne>
void deliver_some(FuzzedDataProvider& in, DeliverOne& deliver_one) {
  const int n = in.ConsumeIntegralInRange<int>(1, 8);
  for (int i = 0; i < n && deliver_one(); ++i) {
  }
}

// Before an enqueue: the lease keeper grants a lease when it has none. A lease it does not yet know is gone makes the
// txn's put fail ("lease not found"): the driver drops it and the machine hears of it. False: no enqueue now.
bool lease_for_enqueue(std::int64_t& lease, std::int64_t& next_lease, const etcd_model& db, lock_machine& m) {
  if (lease == 0) {
    lease = next_lease++;
    TRACE("driver: lease " + std::to_string(lease) + " granted");
  }
  if (!db.dead_leases.count(lease)) return true;
  TRACE("driver: enqueue fails, lease " + std::to_string(lease) + " not found -> on_lease_lost");
  lease = 0;
  m.on_lease_lost();
  return false;
}

// A keepalive finds the lease gone: the driver drops it and the machine hears of it.
void keepalive(std::int64_t& lease, const etcd_model& db, lock_machine& m) {
  if (lease == 0 || !db.dead_leases.count(lease)) return;
  TRACE("driver: keepalive says lease " + std::to_string(lease) + " is gone -> on_lease_lost");
  lease = 0;
  m.on_lease_lost();
}

// The driver's release: deletes `key` if it is still the incarnation we made (`mine`, its create revision; 0: none).
void delete_if_ours(etcd_model& db, const std::string& key, std::int64_t mine) {
  if (mine == 0) return;
  auto it = db.keys.find(key);
  if (it == db.keys.end() || it->second.create != mine) return;
  etcd_model::txn t(db);
  t.del(key);
}

// Operations 0 to 5 of a world mode: etcd changed by others (and an operator at our key's name). `lease` is ours as the
// driver knows it (0: none), `our_names` every key name we ever contended with.
void other_change(int op, FuzzedDataProvider& in, etcd_model& db, const admission& rule, std::int64_t lease,
                  const std::set<std::string>& our_names) {
  switch (op) {
    case 0: {  // another contender (or anyone) puts a key
      const std::string key = other_names[in.ConsumeIntegralInRange<int>(0, 5)];
      const std::int64_t owner = in.ConsumeIntegralInRange<int>(0, 3);  // 0: no lease
      if (owner != 0 && db.dead_leases.count(owner)) break;
      TRACE("etcd: put " + key + " lease " + std::to_string(owner));
      std::string value = value_of(in, rule, "other" + std::to_string(owner));
      etcd_model::txn t(db);
      t.put(key, std::move(value), owner);
      break;
    }
    case 1: {  // someone deletes a key (ours too)
      if (db.keys.empty()) break;
      const std::string key =
          std::next(db.keys.begin(), in.ConsumeIntegralInRange<std::size_t>(0, db.keys.size() - 1))->first;
      TRACE("etcd: delete " + key);
      etcd_model::txn t(db);
      t.del(key);
      break;
    }
    case 2: {  // one txn puts two keys: the same create revision for both if new
      const int a = in.ConsumeIntegralInRange<int>(0, 5), b = in.ConsumeIntegralInRange<int>(0, 5);
      if (a == b) break;
      TRACE(std::string("etcd: txn put ") + other_names[a] + " and " + other_names[b]);
      std::string va = value_of(in, rule, "pair"), vb = value_of(in, rule, "pair");
      etcd_model::txn t(db);
      t.put(other_names[a], std::move(va), 0);
      t.put(other_names[b], std::move(vb), 0);
      break;
    }
    case 3: {  // one txn deletes two keys
      if (db.keys.size() < 2) break;
      auto a = std::next(db.keys.begin(), in.ConsumeIntegralInRange<std::size_t>(0, db.keys.size() - 1));
      auto b = std::next(db.keys.begin(), in.ConsumeIntegralInRange<std::size_t>(0, db.keys.size() - 1));
      if (a == b) break;
      const std::string ka = a->first, kb = b->first;
      TRACE("etcd: txn delete " + ka + " and " + kb);
      etcd_model::txn t(db);
      t.del(ka);
      t.del(kb);
      break;
    }
    case 4: {  // a lease expires (or is revoked): its keys go, in one revision
      const bool ours = in.ConsumeBool();
      const std::int64_t id = ours ? lease : in.ConsumeIntegralInRange<int>(1, 3);
      if (id == 0 || db.dead_leases.count(id)) break;
      TRACE("etcd: lease " + std::to_string(id) + " expires");
      db.dead_leases.insert(id);
      etcd_model::txn t(db);
      std::vector<std::string> doomed;
      for (const auto& [k, v] : db.keys)
        if (v.lease == id) doomed.push_back(k);
      for (const auto& k : doomed) t.del(k);
      break;
    }
    case 5: {  // an operator writes at our key's name (a put keeps an existing key's create revision)
      if (our_names.empty()) break;
      const std::string key = *std::next(our_names.begin(), in.ConsumeIntegralInRange<std::size_t>(0, our_names.size() - 1));
      TRACE("etcd: operator puts " + key);
      etcd_model::txn t(db);
      t.put(key, "operator", 0);
      break;
    }
  }
}

}  // namespace
