#include "recipe/lock_machine.hpp"

#include <utility>

namespace clusterlock::recipe {

void lock_machine::on_snapshot(std::int64_t revision, std::vector<queue_entry> keys, const std::string& my_key) {
  snapshot_revision_ = revision;
  by_revision_.clear();
  by_key_.clear();
  for (auto& e : keys) insert(std::move(e));
  auto mine = by_key_.find(my_key);
  const std::int64_t found = (my_key.empty() || mine == by_key_.end()) ? 0 : mine->second;
  if (my_revision_ != 0 && found != my_revision_) lose(lock_event::removed, revision);  // our old key is gone
  my_key_ = my_key;
  my_revision_ = found;
  if (found != 0 && status_ == status::idle) status_ = status::waiting;
  if (found != 0 && status_ == status::uncertain) {
    // A linearizable read found our key: we held the lock and still do, with the same token.
    status_ = status::held;
    emit(lock_event::acquired, my_revision_, my_identity_, revision);
  }
  settle(revision);
}

void lock_machine::on_put(queue_entry entry, std::int64_t revision) {
  if (revision <= snapshot_revision_) return;
  if (entry.key == my_key_ && my_revision_ != 0 && entry.create_revision != my_revision_) {
    lose(lock_event::removed, revision);  // deleted and re-created behind our back: not the key we contended with
  }
  insert(std::move(entry));
  settle(revision);
}

void lock_machine::on_delete(const std::string& key, std::int64_t revision) {
  if (revision <= snapshot_revision_) return;
  erase(key);
  if (key == my_key_ && my_revision_ != 0) lose(lock_event::removed, revision);
  settle(revision);
}

void lock_machine::on_progress(std::int64_t revision) {
  if (revision > revision_) revision_ = revision;
}

void lock_machine::on_probe(std::int64_t create_revision, std::int64_t revision) {
  if (my_revision_ == 0) return;
  if (create_revision != my_revision_) {
    // Our key is gone even if the watch has not said so yet (it may lag, or serve a stale member).
    erase(my_key_);
    lose(lock_event::removed, revision);
    settle(revision);
    return;
  }
  if (status_ == status::uncertain) {
    // Our key still stands: keys made later are behind it, so we still hold the lock, with the same token.
    status_ = status::held;
    emit(lock_event::acquired, my_revision_, my_identity_, revision);
  }
}

void lock_machine::on_unreachable() {
  if (status_ != status::held) return;
  status_ = status::uncertain;
  emit(lock_event::unknown, my_revision_, my_identity_, 0);
}

void lock_machine::on_lease_lost() {
  if (my_revision_ == 0) return;
  erase(my_key_);
  lose(lock_event::removed, revision_);
  settle(revision_);
}

void lock_machine::on_released() {
  if (my_revision_ == 0) return;
  erase(my_key_);
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

std::optional<queue_entry> lock_machine::holder() const {
  if (by_revision_.empty()) return std::nullopt;
  return by_revision_.begin()->second;
}

void lock_machine::insert(queue_entry e) {
  erase(e.key);
  by_key_[e.key] = e.create_revision;
  by_revision_[e.create_revision] = std::move(e);
}

void lock_machine::erase(const std::string& key) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  by_revision_.erase(it->second);
  by_key_.erase(it);
}

void lock_machine::lose(lock_event::kind_type why, std::int64_t revision) {
  if (status_ == status::held || status_ == status::uncertain) emit(why, my_revision_, my_identity_, revision);
  status_ = status::idle;
  my_revision_ = 0;
}

void lock_machine::settle(std::int64_t revision) {
  if (revision > revision_) revision_ = revision;
  const bool oldest = my_revision_ != 0 && !by_revision_.empty() && by_revision_.begin()->first == my_revision_;
  if (oldest && status_ == status::waiting) {
    status_ = status::held;
    emit(lock_event::acquired, my_revision_, my_identity_, revision);
  }
  const std::int64_t holder_revision = by_revision_.empty() ? 0 : by_revision_.begin()->first;
  if (holder_revision != announced_holder_) {
    announced_holder_ = holder_revision;
    std::string who = holder_revision == 0 ? std::string() : by_revision_.begin()->second.identity;
    emit(lock_event::holder_changed, holder_revision, std::move(who), revision);
  }
}

void lock_machine::emit(lock_event::kind_type kind, std::int64_t token, std::string holder, std::int64_t revision) {
  events_.push_back(lock_event{kind, token, std::move(holder), revision});
}

}  // namespace clusterlock::recipe
