#pragma once
// The lock recipe's decisions, without I/O: what the snapshot, watch events, probes and the lease say about who
// holds the lock, and which events that means for us. The driver (lock_manager) feeds it and carries out its
// actions; unit tests feed it directly.
//
// Ownership follows etcd's recipe: the key under the prefix with the lowest create revision holds the lock.
// The snapshot (the acquire txn's range at revision R) plus the watch from R + 1 give every change in order
// with no gap, so we know we hold the lock the moment the last key ahead of ours is deleted.
//
// A semaphore (slots N > 0) generalizes the rule: our key holds a permit while fewer than N other keys are as old
// as ours or older (a key of the same create revision counts as older: the pessimistic reading; for N = 1 it is
// exactly the lock's rule). Its values carry N (slots_value.hpp); an older key with another N (or none: a plain
// lock) is a conflict: we never hold, and the driver refuses with errc::slots_mismatch and deletes our key.
// Slots 0 is the plain lock: values are not parsed, and holder changes are announced.

#include <clusterlock/lock_event.hpp>

#include <cstddef>

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
  std::string identity;           // the key's value (the contender's identity, or its proclaimed value)
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
    unproven,   // our key became the oldest while our lease's lifetime was not proven: no ACQUIRED until a probe
                // (with the lease proven again) finds our key; nothing was announced, so nothing is lost quietly
    releasing,  // we are deleting our key (release, shutdown): never held again, whatever the watch says
  };

  /// `my_identity` is what events carry as holder when it is us. `slots`: 0 for a lock, N for a semaphore of N
  /// permits (whose key values are `slots=N;<identity>`, see slots_value.hpp).
  explicit lock_machine(std::string my_identity, std::size_t slots = 0)
      : my_identity_(std::move(my_identity)), slots_(slots) {}

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
  /// We decided to delete our key (release, shutdown): from now on we do not hold the lock (REMOVED if we did),
  /// and no event may say we do, until on_released() and a new key.
  void begin_release();
  /// Our key is deleted (by us, or found gone).
  void on_released();
  /// Whether our lease is proven alive now (the driver says so before each input). A waiter whose turn comes
  /// while it is not becomes `unproven`, not `held`: ACQUIRED promises have_lock(), which needs a proven lease.
  void set_lease_proven(bool proven) noexcept { lease_proven_ = proven; }

  status current() const noexcept { return status_; }
  /// Our key must be (re)created: it is gone, or was never made.
  bool needs_contend() const noexcept { return status_ == status::idle; }
  /// Our key may stand (we know its create revision).
  bool has_key() const noexcept { return my_revision_ != 0; }
  /// Whether a probe helps: we hold (or held, or should hold) the lock and must prove it, or we wait and the probe
  /// shows whether our watch is behind.
  bool wants_probe() const noexcept { return status_ != status::idle && status_ != status::releasing; }
  /// A probe found `create_revision(key)` for keys (-1: it did not read that key): is the key the view has as holder,
  /// ahead of ours, gone or another by a linearizable read that the watch has not caught up with? Then the watch
  /// serves a stale member. The holder alone is enough, and all a probe of one waiter reads: while it stands, no key
  /// behind it can make our turn come; once it is gone, the next probe sees that.
  /// A semaphore's waiter reads the first keys_ahead() keys ahead of it (the permit holders whose release admits the
  /// first waiter): any of them gone by the probe and not by the watch means the same.
  template <class Lookup>
  bool view_behind(Lookup create_revision_of) const {
    if (status_ != status::waiting) return false;
    std::size_t n = 0;
    for (auto it = by_revision_.begin(); it != by_revision_.end() && n < probe_ahead(); ++it, ++n) {
      if (it->first.first >= my_revision_) return false;
      const std::int64_t found = create_revision_of(it->second.key);
      if (found != -1 && found != it->first.first) return true;
    }
    return false;
  }
  /// The keys a waiter's probe reads beside its own (view_behind): the holder for a lock, the first min(N, 3) keys
  /// ahead of ours for a semaphore. Empty unless waiting.
  std::vector<std::string> keys_ahead() const;
  /// A semaphore's number of permits (0: a lock).
  std::size_t slots() const noexcept { return slots_; }
  /// An older key (or one as old) whose value has another number of slots than ours, or none (a plain lock): we
  /// never hold while it stands, and the driver gives up (errc::slots_mismatch). Semaphores only.
  const std::optional<queue_entry>& conflict() const noexcept { return conflict_; }
  std::int64_t my_token() const noexcept { return my_revision_; }
  std::int64_t my_lease() const noexcept { return my_lease_; }
  const std::string& my_key() const noexcept { return my_key_; }
  /// The last etcd revision applied: a broken watch resumes at this + 1.
  std::int64_t revision() const noexcept { return revision_; }
  /// Holder first, then waiters in order.
  std::vector<queue_entry> queue() const;

  /// How the queue changed since the last call, in order: a copy kept elsewhere (the manager's, which other threads
  /// read) follows it at the cost of the change, not of the queue's length. With many contenders, a copy of the whole
  /// queue after every event cost each of them O(queue) per event: O(n^2) in a process with n contenders.
  struct queue_change {
    enum class kind_type { cleared, added, erased };
    kind_type kind = kind_type::cleared;
    queue_entry entry;  // added: the entry; erased: its key and create revision
  };
  std::vector<queue_change> take_queue_changes() { return std::exchange(changes_, {}); }
  std::optional<queue_entry> holder() const;

  /// Events produced since the last call, in order.
  std::vector<lock_event> take_events() { return std::exchange(events_, {}); }
  bool has_events() const noexcept { return !events_.empty(); }

 private:
  void insert(queue_entry e);
  void erase(const std::string& key);
  void erase_mine();  // our key, if the view still has the one we contended with
  bool oldest() const;                 // admitted: fewer than max(slots, 1) other keys are as old as ours, or older
  std::size_t probe_ahead() const noexcept { return slots_ <= 1 ? 1 : (slots_ < 3 ? slots_ : 3); }
  bool disagrees(const queue_entry& e) const;  // a semaphore's key with another N than ours (or a plain lock's)
  std::string own_identity(const std::string& value) const;  // a semaphore's value without its `slots=N;`
  void find_conflict();                       // scans the keys as old as ours, or older, for one that disagrees
  void settle(std::int64_t revision);  // recompute status and holder after a change; emit events
  void lose(lock_event::kind_type why, std::int64_t revision);
  void emit(lock_event::kind_type kind, std::int64_t token, std::string holder, std::int64_t revision);
  void emit_mine(lock_event::kind_type kind, std::int64_t revision);  // acquired/removed/unknown, about our key
  void take_turn(std::int64_t revision);  // our key is the oldest: held (ACQUIRED) or, unproven lease, unproven

  std::string my_identity_;
  std::size_t slots_ = 0;
  std::optional<queue_entry> conflict_;
  std::string my_key_;
  std::int64_t my_revision_ = 0;
  std::int64_t my_lease_ = 0;
  bool lease_proven_ = true;
  status status_ = status::idle;
  std::int64_t revision_ = 0;
  std::int64_t snapshot_revision_ = 0;
  std::pair<std::string, std::int64_t> lost_;  // key and create revision of our last key known to be gone
  // The ordered queue. Keyed by create revision and key: one txn can create several keys, which then share a
  // create revision (a map by revision alone kept one of them and lost track of the other).
  std::map<std::pair<std::int64_t, std::string>, queue_entry> by_revision_;
  std::unordered_map<std::string, std::int64_t> by_key_;  // key -> create revision
  // The holder last announced by holder_changed (token 0: none); empty before the first.
  struct holder_view {
    std::int64_t token = 0;
    std::string key;
    std::string value;
    bool operator==(const holder_view&) const = default;
  };
  std::optional<holder_view> announced_holder_;
  std::vector<lock_event> events_;
  std::vector<queue_change> changes_;
  void note_change(queue_change::kind_type kind, const queue_entry& e);
};

}  // namespace clusterlock::recipe
