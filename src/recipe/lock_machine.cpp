#include "recipe/lock_machine.hpp"

#include "recipe/rw_value.hpp"
#include "recipe/slots_value.hpp"

#include <utility>

namespace clusterlock::recipe {

std::string lock_machine::identity_of(const std::string& value) const {
  if (rule_.kind == admission::kind_type::semaphore) return std::string(decode_slots(value).identity);
  if (rule_.rw()) return std::string(decode_rw(value).identity);
  return value;
}

void lock_machine::on_snapshot(std::int64_t revision, std::vector<queue_entry> keys, const std::string& my_key) {
  snapshot_revision_ = revision;
  stale_ahead_ = watched_ahead_ = false;
  by_revision_.clear();
  by_key_.clear();
  writers_.clear();
  note_change(queue_change::kind_type::cleared, {});
  for (auto& e : keys) insert(std::move(e));
  auto mine = by_key_.find(my_key);
  std::int64_t found = (my_key.empty() || mine == by_key_.end()) ? 0 : mine->second;
  // A read sent before we learned that this very key is gone (a probe or the lease said so while the read was on its
  // way) must not bring it back: a create revision names one incarnation of a key, never reused.
  if (found != 0 && lost_ == std::make_pair(my_key, found)) found = 0;
  if (my_revision_ != 0 && found != my_revision_) lose(lock_event::removed, revision);  // our old key is gone
  my_key_ = my_key;
  my_revision_ = found;
  my_lease_ = found != 0 ? by_revision_.at({found, my_key}).lease : 0;
  if (found != 0) my_identity_ = identity_of(by_revision_.at({found, my_key}).identity);  // what etcd has
  // Sticky for the key (lose() clears it): an older key that disagreed and agrees again (an operator's puts) must not
  // give back a permit we said was gone, and the driver deletes this key anyway.
  if (found != 0 && rule_.kind == admission::kind_type::semaphore && !conflict_) find_conflict();
  if (found != 0 && status_ == status::idle) status_ = status::waiting;
  if (found != 0 && (status_ == status::uncertain || status_ == status::unproven) && oldest() && lease_proven_) {
    // A linearizable read found our key: we held the lock and still do, with the same token.
    status_ = status::held;
    emit_mine(lock_event::acquired, revision);
  }
  settle(revision);
}

void lock_machine::on_put(queue_entry entry, std::int64_t revision) {
  if (revision <= snapshot_revision_) return;
  if (entry.key == my_key_ && my_revision_ != 0 && entry.create_revision != my_revision_) {
    lose(lock_event::removed, revision);  // deleted and re-created behind our back: not the key we contended with
  }
  // A put of our own key that keeps its create revision changed its value (async_proclaim): events about us say it.
  if (entry.key == my_key_ && entry.create_revision == my_revision_) my_identity_ = identity_of(entry.identity);
  // Only an operator's put can make a key as old as ours disagree now (later keys are behind us): never hold with it.
  if (my_revision_ != 0 && entry.key != my_key_ && entry.create_revision <= my_revision_ && disagrees(entry) &&
      !conflict_)
    conflict_ = entry;
  insert(std::move(entry));
  decide(revision);
}

void lock_machine::on_delete(const std::string& key, std::int64_t revision) {
  if (revision <= snapshot_revision_) return;
  if (partial_ && !watched_ahead_ && my_revision_ != 0 && key != my_key_) {
    const auto it = by_key_.find(key);
    if (it != by_key_.end() && it->second <= my_revision_) stale_ahead_ = true;
  }
  erase(key);
  if (key == my_key_ && my_revision_ != 0) lose(lock_event::removed, revision);
  decide(revision);
}

void lock_machine::decide(std::int64_t revision) {
  if (batching_) undecided_ = std::max(undecided_, revision);
  else settle(revision);
}

void lock_machine::end_batch() {
  batching_ = false;
  if (undecided_ != 0) settle(std::exchange(undecided_, 0));
}

void lock_machine::on_progress(std::int64_t revision) {
  if (revision > revision_) revision_ = revision;
}

void lock_machine::on_probe(std::int64_t create_revision, std::int64_t revision) {
  if (my_revision_ == 0) return;
  // A probe that read etcd before our key was made says nothing about it (a probe sent before a re-read can be
  // answered after it: it would call our new key gone).
  if (revision < my_revision_) return;
  if (create_revision != my_revision_) {
    // Our key is gone even if the watch has not said so yet (it may lag, or serve a stale member). The view stays
    // what the watch says, etcd's state at revision(): mixing in what the probe saw at a later revision made the
    // holder seem to go back and forth once the watch caught up.
    lose(lock_event::removed, revision);
    return;
  }
  if ((status_ == status::uncertain || status_ == status::unproven) && lease_proven_ && oldest()) {
    // Our key still stands: keys made later are behind it, so we (still) hold the lock, with the same token.
    status_ = status::held;
    emit_mine(lock_event::acquired, revision);
  }
}

void lock_machine::on_unreachable() {
  if (status_ != status::held) return;
  status_ = status::uncertain;
  emit_mine(lock_event::unknown, 0);
}

void lock_machine::on_lease_lost() {
  // Our key is gone with the lease, or (put again by someone without it) no longer ours to keep. The view keeps it
  // until the watch says so: it is etcd's state at revision(), and the lease's keys may have been changed since
  // the view last heard of them.
  if (my_revision_ != 0) lose(lock_event::removed, revision_);
}

void lock_machine::begin_release() {
  if (my_revision_ == 0) return;
  if (status_ == status::held || status_ == status::uncertain) emit_mine(lock_event::removed, revision_);
  status_ = status::releasing;
}

void lock_machine::on_released() {
  if (my_revision_ == 0) return;
  erase_mine();
  lose(lock_event::removed, revision_);
  my_key_.clear();
  settle(revision_);
}

std::vector<queue_entry> lock_machine::queue() const {
  std::vector<queue_entry> out;
  out.reserve(by_revision_.size());
  for (const auto& [rev, e] : by_revision_) out.push_back(e);
  return out;
}

std::vector<std::string> lock_machine::keys_ahead() const {
  std::vector<std::string> out;
  walk_ahead([&](std::int64_t, const std::string& key) {
    out.push_back(key);
    return true;
  });
  return out;
}

bool lock_machine::disagrees(const queue_entry& e) const {
  return rule_.kind == admission::kind_type::semaphore && decode_slots(e.identity).slots != rule_.slots;
}

void lock_machine::find_conflict() {
  for (auto it = by_revision_.begin(); it != by_revision_.end() && it->first.first <= my_revision_; ++it) {
    if (it->second.key != my_key_ && disagrees(it->second)) {
      conflict_ = it->second;
      return;
    }
  }
}

std::optional<queue_entry> lock_machine::holder() const {
  if (by_revision_.empty()) return std::nullopt;
  return by_revision_.begin()->second;
}

void lock_machine::insert(queue_entry e) {
  erase(e.key);
  // Every key etcd stores has a positive create revision (0 is etcd's "no such key"); a reply that says otherwise is
  // not etcd's, and such an entry would hold the lock with token 0, "nobody".
  if (e.create_revision <= 0) return;
  by_key_[e.key] = e.create_revision;
  note_change(queue_change::kind_type::added, e);
  if (rule_.kind == admission::kind_type::read && !decode_rw(e.identity).reader) writers_.emplace(e.create_revision, e.key);
  auto position = std::make_pair(e.create_revision, e.key);
  by_revision_[std::move(position)] = std::move(e);
}

void lock_machine::erase(const std::string& key) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  note_change(queue_change::kind_type::erased, {key, {}, it->second, 0});
  by_revision_.erase({it->second, key});
  writers_.erase({it->second, key});
  by_key_.erase(it);
}

void lock_machine::note_change(queue_change::kind_type kind, const queue_entry& e) {
  // Nobody took them for long (a machine driven without a manager): the queue itself says as much, in fewer.
  if (changes_.size() > 2 * by_revision_.size() + 64) {
    changes_.clear();
    changes_.push_back({queue_change::kind_type::cleared, {}});
    for (const auto& [position, entry] : by_revision_) changes_.push_back({queue_change::kind_type::added, entry});
  }
  changes_.push_back({kind, e});
}

void lock_machine::erase_mine() {
  auto it = by_key_.find(my_key_);
  if (it != by_key_.end() && it->second == my_revision_) erase(my_key_);
}

void lock_machine::lose(lock_event::kind_type why, std::int64_t revision) {
  if (status_ == status::held || status_ == status::uncertain) emit_mine(why, revision);
  if (my_revision_ != 0) lost_ = {my_key_, my_revision_};
  status_ = status::idle;
  my_revision_ = 0;
  my_lease_ = 0;
  conflict_.reset();
}

bool lock_machine::oldest() const {
  // Ours, and fewer than limit() other keys as old or older block it (a lock: none). A key of the same create revision
  // counts: etcd's recipe would let it believe it holds too (only a txn that made both could do that; ours makes one
  // key). At most limit() + 1 entries are looked at; a reader looks at writers only (and at most two).
  if (my_revision_ == 0 || conflict_ || stale_ahead_) return false;
  if (rule_.kind == admission::kind_type::read) {
    const auto mine = by_key_.find(my_key_);
    if (mine == by_key_.end() || mine->second != my_revision_) return false;
    for (auto it = writers_.begin(); it != writers_.end() && it->first <= my_revision_; ++it)
      if (it->second != my_key_) return false;  // a writer as old as ours, or older (ours only if an operator put it)
    return true;
  }
  std::size_t ahead = 0;
  bool mine = false;
  for (auto it = by_revision_.begin(); it != by_revision_.end() && it->first.first <= my_revision_; ++it) {
    if (it->first.first == my_revision_ && it->first.second == my_key_) mine = true;
    else if (++ahead >= rule_.limit()) return false;
  }
  return mine;
}

void lock_machine::settle(std::int64_t revision) {
  if (revision > revision_) revision_ = revision;
  const bool first = oldest();
  if (first && status_ == status::waiting) {
    take_turn(revision);
  } else if (!first && (status_ == status::held || status_ == status::uncertain || status_ == status::unproven)) {
    // A key older than ours appeared. etcd never does that unless its history was rewritten (a restore from a
    // backup); whoever it is, by the recipe's rule we no longer hold the lock. Say so, and wait our turn.
    // A read-write lock's reader also loses its hold when an older reader's key is rewritten as a writer's (an
    // operator's put). Announced holds must not come back with the same token (a fresh ACQUIRED raises it): such a
    // key leaves the line, and the driver puts a new one at its end (found by the fuzzer).
    if (status_ != status::unproven) emit_mine(lock_event::removed, revision);
    status_ = rule_.rw() && status_ != status::unproven ? status::releasing : status::waiting;
  }
  // The holder changed, or its value did (a proclaim): observers learn both. A semaphore or a read-write lock has
  // no one holder.
  if (!rule_.announces_holder() || partial_) return;
  holder_view holder;
  if (!by_revision_.empty()) {
    const auto& e = by_revision_.begin()->second;
    holder = {e.create_revision, e.key, e.identity};
  }
  if (holder != announced_holder_) {
    announced_holder_ = holder;
    if (holder.token == 0) {
      emit(lock_event::holder_changed, 0, {}, revision);
    } else {
      const auto& e = by_revision_.begin()->second;
      events_.push_back(lock_event{lock_event::holder_changed, e.create_revision, e.identity, revision, {}, e.key,
                                   e.lease});
    }
  }
}

void lock_machine::take_turn(std::int64_t revision) {
  if (!lease_proven_) {
    status_ = status::unproven;  // the probe decides, once the lease is proven again
    return;
  }
  status_ = status::held;
  emit_mine(lock_event::acquired, revision);
}

void lock_machine::emit(lock_event::kind_type kind, std::int64_t token, std::string holder, std::int64_t revision) {
  events_.push_back(lock_event{kind, token, std::move(holder), revision, {}, {}, 0});
}

void lock_machine::emit_mine(lock_event::kind_type kind, std::int64_t revision) {
  events_.push_back(lock_event{kind, my_revision_, my_identity_, revision, {}, my_key_, my_lease_});
}

}  // namespace clusterlock::recipe
