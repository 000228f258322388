#pragma once
// The lock recipe's decisions, without I/O: what the snapshot, watch events, probes and the lease say about who
// holds the lock, and which events that means for us. The driver (lock_manager) feeds it and carries out its
// actions; unit tests feed it directly.
//
// Ownership follows etcd's recipe: the key under the prefix with the lowest create revision holds the lock.
// The snapshot (the acquire txn's range at revision R) plus the watch from R + 1 give every change in order
// with no gap, so we know we hold the lock the moment the last key ahead of ours is deleted.

#include <clusterlock/lock_event.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace clusterlock::recipe {

struct queue_entry {
  std::string key;
  std::string identity;           // the key's value
  std::int64_t create_revision = 0;
  std::int64_t lease = 0;
};

class lock_machine {
 public:
  enum class status {
    idle,       // no key of ours stands (observer, not started, or our key is gone: contend again)
    waiting,    // our key stands, keys ahead of it
    held,       // our key is the oldest: we hold the lock
    uncertain,  // we held it, and cannot prove it now (probe failed, lease validity ran out)
  };

  /// `my_identity` is what events carry as holder when it is us.
  explicit lock_machine(std::string my_identity) : my_identity_(std::move(my_identity)) {}

  /// Every key under the prefix at `revision` (from the acquire txn, or a re-read after compaction), and our key
  /// (empty when we have none: observers, or before contending).
  void on_snapshot(std::int64_t revision, std::vector<queue_entry> keys, const std::string& my_key);
  /// A watch event. Those at or before the last snapshot's revision are already in it and are skipped.
  void on_put(queue_entry entry, std::int64_t revision);
  void on_delete(const std::string& key, std::int64_t revision);
  /// The watch is at `revision` with nothing new (a progress notification).
  void on_progress(std::int64_t revision);
  /// A linearizable read at `revision` found our key with `create_revision` (0: not there).
  void on_probe(std::int64_t create_revision, std::int64_t revision);
  /// We cannot reach etcd, or the lease's proven lifetime ran out: while we held the lock, we no longer know.
  void on_unreachable();
  /// etcd says our lease is gone: so is our key.
  void on_lease_lost();
  /// We deleted our key ourselves (shutdown).
  void on_released();

  status current() const noexcept { return status_; }
  /// Our key must be (re)created: it is gone, or was never made.
  bool needs_contend() const noexcept { return status_ == status::idle; }
  std::int64_t my_token() const noexcept { return my_revision_; }
  const std::string& my_key() const noexcept { return my_key_; }
  /// The last etcd revision applied: a broken watch resumes at this + 1.
  std::int64_t revision() const noexcept { return revision_; }
  /// Holder first, then waiters in order.
  std::vector<queue_entry> queue() const;
  std::optional<queue_entry> holder() const;

  /// Events produced since the last call, in order.
  std::vector<lock_event> take_events() { return std::exchange(events_, {}); }
  bool has_events() const noexcept { return !events_.empty(); }

 private:
  void insert(queue_entry e);
  void erase(const std::string& key);
  void erase_mine();  // our key, if the view still has the one we contended with
  bool oldest() const;                 // our key is first in the queue, and alone at its create revision
  void settle(std::int64_t revision);  // recompute status and holder after a change; emit events
  void lose(lock_event::kind_type why, std::int64_t revision);
  void emit(lock_event::kind_type kind, std::int64_t token, std::string holder, std::int64_t revision);

  std::string my_identity_;
  std::string my_key_;
  std::int64_t my_revision_ = 0;
  status status_ = status::idle;
  std::int64_t revision_ = 0;
  std::int64_t snapshot_revision_ = 0;
  std::pair<std::string, std::int64_t> lost_;  // key and create revision of our last key known to be gone
  // The ordered queue. Keyed by create revision and key: one txn can create several keys, which then share a
  // create revision (a map by revision alone kept one of them and lost track of the other).
  std::map<std::pair<std::int64_t, std::string>, queue_entry> by_revision_;
  std::unordered_map<std::string, std::int64_t> by_key_;  // key -> create revision
  // Create revision and key of the holder last announced by holder_changed ({0, ""}: none); empty before the first.
  std::optional<std::pair<std::int64_t, std::string>> announced_holder_;
  std::vector<lock_event> events_;
};

}  // namespace clusterlock::recipe
