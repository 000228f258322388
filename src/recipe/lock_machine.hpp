#pragma once
// The lock recipe's decisions, without I/O: what the snapshot, watch events, probes and the lease say about who
// holds the lock, and which events that means for us. The driver (lock_manager) feeds it and carries out its
// actions; unit tests feed it directly.
//
// Ownership follows etcd's recipe: the key under the prefix with the lowest create revision holds the lock.
// The snapshot (the acquire txn's range at revision R) plus the watch from R + 1 give every change in order
// with no gap, so we know we hold the lock the moment the last key ahead of ours is deleted.
//
// The semaphore and the read-write lock generalize the rule (admission.hpp): our key holds while fewer than
// limit() keys as old as ours or older block it. A semaphore's values carry N (slots_value.hpp); an older key with
// another N (or none: a plain lock) is a conflict: we never hold, and the driver refuses with errc::slots_mismatch
// and deletes our key. A read-write lock's values say read or write (rw_value.hpp); a reader is blocked only by
// writers, and any value that is not a reader's is a writer's: never a conflict. The plain lock does not parse
// values, and announces holder changes.

#include <clusterlock/lock_event.hpp>

#include "recipe/admission.hpp"

#include <algorithm>
#include <cstddef>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
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
    releasing,  // we are deleting our key (release, shutdown; or a read-write lock's hold taken away while its key
                // stands): never held again, whatever the watch says
  };

  /// `my_identity` is what events carry as holder when it is us. `rule`: the lock's, a semaphore's of N permits
  /// (values `slots=N;<identity>`, slots_value.hpp) or a read-write lock's reader or writer (values
  /// `rw=read;<identity>`, `rw=write;<identity>`, rw_value.hpp).
  /// `partial_view`: the snapshots hold only our key and the one just ahead of it, and the watch follows only those
  /// (watch_scope::predecessor). Our turn then comes from a snapshot: the watch's DELETE of the key ahead asks for a
  /// new one (needs_reread()), since other keys ahead may stand unseen, and our own key may not be watched; unless
  /// the driver says that the view has every key ahead and one watch tells of them and of ours, without a gap since
  /// the snapshot (trust_watch_ahead()). No holder_changed: the view does not know the holder.
  explicit lock_machine(std::string my_identity, admission rule = admission::lock(), bool partial_view = false)
      : my_identity_(std::move(my_identity)), rule_(rule), partial_(partial_view) {}

  /// Every key under the prefix at `revision` (from the acquire txn, or a re-read after compaction), and our key
  /// (empty when we have none: observers, or before contending).
  void on_snapshot(std::int64_t revision, std::vector<queue_entry> keys, const std::string& my_key);
  /// A watch event. Those at or before the last snapshot's revision are already in it and are skipped.
  void on_put(queue_entry entry, std::int64_t revision);
  void on_delete(const std::string& key, std::int64_t revision);
  /// The events of one watch message are one step: after begin_batch(), on_put and on_delete change the view and
  /// end_batch() decides, once. A txn that deleted the key ahead of ours and ours, in one revision, otherwise made an
  /// ACQUIRED (for the first DELETE) and a REMOVED (for the second) of a hold that never stood. (etcd never splits a
  /// revision's events across messages.) Outside a batch each event is decided alone.
  void begin_batch() noexcept { batching_ = true; }
  void end_batch();
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
  /// A partial view's key ahead of ours is gone: only a new snapshot can say whether another stands before us.
  bool needs_reread() const noexcept { return stale_ahead_ && status_ == status::waiting; }
  bool partial_view() const noexcept { return partial_; }
  /// A partial view's snapshot had every key ahead of ours (one, or none), and since it one watch tells of those keys
  /// and of ours, in order: the DELETE of the last one ahead is our turn, as in a whole view. Until the next snapshot.
  void trust_watch_ahead() noexcept { watched_ahead_ = partial_ && !stale_ahead_; }
  /// Whether `key` is in the view (ours included).
  bool in_view(const std::string& key) const { return by_key_.contains(key); }
  /// Our key must be (re)created: it is gone, or was never made.
  bool needs_contend() const noexcept { return status_ == status::idle; }
  /// Our key may stand (we know its create revision).
  bool has_key() const noexcept { return my_revision_ != 0; }
  /// Whether a probe helps: we hold (or held, or should hold) the lock and must prove it, or we wait and the probe
  /// shows whether our watch is behind.
  bool wants_probe() const noexcept { return status_ != status::idle && status_ != status::releasing; }
  /// A probe found `create_revision(key)` for keys (-1: it did not read that key): is a key the view has ahead of
  /// ours, among those keys_ahead() names, gone or another by a linearizable read that the watch has not caught up
  /// with? Then the watch serves a stale member. For a lock (and a writer) the holder alone is enough, and all a
  /// probe of one waiter reads: while it stands, no key behind it can make our turn come; once it is gone, the next
  /// probe sees that. A semaphore's waiter reads the first keys ahead of it (the permit holders whose release admits
  /// the first waiter), a reader the oldest writers ahead of it (see keys_ahead()).
  template <class Lookup>
  bool view_behind(Lookup create_revision_of) const {
    bool behind = false;
    walk_ahead([&](std::int64_t revision, const std::string& key) {
      const std::int64_t found = create_revision_of(key);
      behind = found != -1 && found != revision;
      return !behind;
    });
    return behind;
  }
  /// The keys a waiter's probe reads beside its own (view_behind), oldest first: the holder for a lock and a writer,
  /// the first min(N, 3) keys ahead of ours for a semaphore, and for a reader the first (up to 3) writers ahead of
  /// it: every one of them must go before the reader is admitted, and in line they go oldest first, so the oldest
  /// is the first whose departure a stale watch would hide (reading the nearest instead would notice only once the
  /// last had gone). Readers ahead never block a reader: reading them would say nothing. Empty unless waiting.
  std::vector<std::string> keys_ahead() const;
  /// The admission rule this machine applies.
  const admission& rule() const noexcept { return rule_; }
  /// A semaphore's number of permits (0: not a semaphore).
  std::size_t slots() const noexcept { return rule_.slots; }
  /// A key's value without what the recipe added to it (`slots=N;`, `rw=read;`): the contender's identity.
  std::string identity_of(const std::string& value) const;
  /// An older key (or one as old) whose value has another number of slots than ours, or none (a plain lock): we
  /// never hold while it stands, and the driver gives up (errc::slots_mismatch). Semaphores only.
  const std::optional<queue_entry>& conflict() const noexcept { return conflict_; }
  std::int64_t my_token() const noexcept { return my_revision_; }
  std::int64_t my_lease() const noexcept { return my_lease_; }
  const std::string& my_key() const noexcept { return my_key_; }
  /// The revision of the last snapshot: the view has every change up to it.
  std::int64_t snapshot_revision() const noexcept { return snapshot_revision_; }
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
  bool oldest() const;  // admitted: fewer than rule_.limit() other keys as old as ours, or older, block us
  std::size_t probe_ahead() const noexcept {
    return rule_.kind == admission::kind_type::semaphore ? std::clamp<std::size_t>(rule_.slots, 1, 3)
           : rule_.kind == admission::kind_type::read    ? 3
                                                         : 1;
  }
  // Calls visit(create revision, key) for the keys a waiter's probe reads (keys_ahead()), oldest first, until it
  // returns false. Nothing unless waiting.
  template <class Visit>
  void walk_ahead(Visit visit) const {
    if (status_ != status::waiting) return;
    if (rule_.kind == admission::kind_type::read) walk_ahead(writers_, visit);
    else walk_ahead(by_revision_, visit);
  }
  template <class Keys, class Visit>
  void walk_ahead(const Keys& keys, Visit& visit) const {
    std::size_t n = 0;
    for (auto it = keys.begin(); it != keys.end() && n++ < probe_ahead(); ++it) {
      const auto& [revision, key] = position_of(*it);
      if (revision >= my_revision_ || !visit(revision, key)) return;
    }
  }
  using position = std::pair<std::int64_t, std::string>;
  static const position& position_of(const position& p) noexcept { return p; }
  static const position& position_of(const std::pair<const position, queue_entry>& e) noexcept { return e.first; }
  bool disagrees(const queue_entry& e) const;  // a semaphore's key with another N than ours (or a plain lock's)
  void find_conflict();                       // scans the keys as old as ours, or older, for one that disagrees
  void settle(std::int64_t revision);  // recompute status and holder after a change; emit events
  void lose(lock_event::kind_type why, std::int64_t revision);
  void emit(lock_event::kind_type kind, std::int64_t token, std::string holder, std::int64_t revision);
  void emit_mine(lock_event::kind_type kind, std::int64_t revision);  // acquired/removed/unknown, about our key
  void take_turn(std::int64_t revision);  // our key is the oldest: held (ACQUIRED) or, unproven lease, unproven

  std::string my_identity_;
  admission rule_;
  std::optional<queue_entry> conflict_;
  std::string my_key_;
  std::int64_t my_revision_ = 0;
  std::int64_t my_lease_ = 0;
  bool lease_proven_ = true;
  bool partial_ = false;
  bool stale_ahead_ = false;  // partial view: a key ahead of ours went, and a snapshot must tell who is ahead now
  bool watched_ahead_ = false;  // partial view: see trust_watch_ahead()
  bool batching_ = false;
  std::int64_t undecided_ = 0;  // in a batch: the revision of its last change, decided at end_batch()
  void decide(std::int64_t revision);  // settle(), or later in a batch
  status status_ = status::idle;
  std::int64_t revision_ = 0;
  std::int64_t snapshot_revision_ = 0;
  std::pair<std::string, std::int64_t> lost_;  // key and create revision of our last key known to be gone
  // The ordered queue. Keyed by create revision and key: one txn can create several keys, which then share a
  // create revision (a map by revision alone kept one of them and lost track of the other).
  std::map<std::pair<std::int64_t, std::string>, queue_entry> by_revision_;
  std::unordered_map<std::string, std::int64_t> by_key_;  // key -> create revision
  // A reader's: the keys of by_revision_ that are writers' (every value but `rw=read;`), so that its admission and
  // its probe look at writers alone, not at every reader in line.
  std::set<std::pair<std::int64_t, std::string>> writers_;
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
