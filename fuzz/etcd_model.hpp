#pragma once
// The lock-machine fuzzer's model of etcd (lock_machine_fuzzer.cpp, the only file that includes this): revisions,
// keys under "l/" with create revisions and leases, the log of every change (the watch's source) and the keyspace
// after each revision (what a read or a probe at that revision sees).

#include "recipe/lock_machine.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace {

using clusterlock::recipe::queue_entry;

struct kv {
  std::int64_t create = 0;
  std::int64_t lease = 0;
  std::string value;
  bool operator==(const kv&) const = default;
};
using keyspace = std::map<std::string, kv>;

struct change {
  bool deleted = false;
  std::string key;
  kv value;  // for a put
  std::int64_t revision = 0;
};

struct etcd_model {
  std::int64_t revision = 1;
  keyspace keys;
  std::vector<change> log;                         // every change, in order
  std::map<std::int64_t, keyspace> history{{1, {}}};  // the keyspace after each revision
  std::set<std::int64_t> dead_leases;

  // A write txn: the ops share one revision; no revision when nothing changed.
  struct txn {
    etcd_model& db;
    bool wrote = false;
    explicit txn(etcd_model& d) : db(d) {}
    void put(const std::string& key, std::string value, std::int64_t lease) {
      if (!wrote) ++db.revision, wrote = true;
      auto it = db.keys.find(key);
      kv v{it == db.keys.end() ? db.revision : it->second.create, lease, std::move(value)};
      db.keys[key] = v;
      db.log.push_back({false, key, v, db.revision});
    }
    void del(const std::string& key) {
      if (!db.keys.count(key)) return;
      if (!wrote) ++db.revision, wrote = true;
      db.log.push_back({true, key, {}, db.revision});
      db.keys.erase(key);
    }
    ~txn() {
      if (wrote) db.history[db.revision] = db.keys;
    }
  };

  const keyspace& at(std::int64_t rev) const {
    auto it = history.upper_bound(rev);
    return std::prev(it)->second;
  }
};

const char* const other_names[] = {"l/a", "l/b", "l/c", "l/d", "l/e", "l/f"};

std::string lock_key(std::int64_t lease) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(lease));
  return std::string("l/") + hex;
}

std::vector<queue_entry> as_queue(const keyspace& keys) {
  std::vector<queue_entry> q;
  for (const auto& [k, v] : keys) q.push_back({k, v.value, v.create, v.lease});
  std::stable_sort(q.begin(), q.end(),
                   [](const queue_entry& a, const queue_entry& b) { return a.create_revision < b.create_revision; });
  return q;  // as the txn's range returns it: sorted by create revision
}

}  // namespace
