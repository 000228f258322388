// watch_scope::predecessor: a lock that watches only the key just ahead of its own while it waits, and its own while
// it holds, as etcd's Go recipe does. A watch of the whole prefix sends every enqueue and release to every contender
// (etcd's work per hand-off grows with the line); this one reaches one waiter per release. The price: a waiter's
// turn comes from a read after the DELETE (other keys ahead, and ours, are not watched), one round trip; except for
// the second in line, whose one watch spans the key ahead and its own (the keys between them in key order come
// along, and are ignored): that DELETE alone is its turn, as with the whole line.

#include "manager/manager_state.hpp"

#include "recipe/predecessor.hpp"

#include <algorithm>
#include <utility>

namespace clusterlock::detail {

using boost::system::error_code;

// The view is the key ahead and ours: other keys the watch tells of are not its business.
bool manager_state::follows(const std::string& key) const { return key == machine.my_key() || machine.in_view(key); }

void manager_state::drop_own_watch() {
  park_own_watch();
  for (auto& w : spare_watches) w->close();
  spare_watches.clear();
}

// A watch through the gateway costs etcd more than a request (its own connection and stream), and a lock taken in
// turns needs the same keys again: its own while it holds and, while it waits, the key ahead, most often that of
// whoever queued again just before it. So a watch it no longer follows stays open, unsubscribed, as a spare: two
// watches a lock at most (each is a connection), the oldest closed first; all dropped once the lock wants no key at
// a probe round.
void manager_state::park_own_watch() {
  if (!own_watch) return;
  own_watch->remove(this);
  spare_watches.push_back(std::exchange(own_watch, nullptr));
  trim_spares(kept_watches);
}

void manager_state::trim_spares(std::size_t keep) {
  while (spare_watches.size() > keep) {
    spare_watches.front()->close();
    spare_watches.erase(spare_watches.begin());
  }
}

void manager_state::on_probe_round() {
  if (!spare_watches.empty() && !own_watch && !wants_key()) drop_own_watch();
}

// After a read: watch the keys the machine must hear of. A watch that started after the read (etcd moved on while it
// was made), or a spare that delivered past it while we were not listening, may have missed a change in between: a
// read now, with the watch standing, has no gap.
boost::asio::awaitable<error_code> manager_state::follow_ahead() {
  auto self = shared_from_this();
  if (!machine.has_key()) {
    park_own_watch();
    co_return error_code{};
  }
  if (machine.needs_reread()) co_return error_code{};  // the key ahead went already: the next read says which is next
  const std::string& mine = machine.my_key();
  const auto ahead = machine.keys_ahead();  // a waiter's: the one key ahead its partial view has
  // Second in line: one watch on both keys, so that the DELETE ahead comes after any change to ours.
  const bool span = !ahead.empty() && ahead_complete;
  const auto fits = [&](const std::shared_ptr<watch_hub>& w) {
    return w && (ahead.empty() ? w->covers(mine) : w->covers(ahead.front()) && (!span || w->covers(mine)));
  };
  std::int64_t unheard = 0;  // the last revision the watch delivered while we were not listening
  if (!fits(own_watch)) {
    const auto spare = std::find_if(spare_watches.begin(), spare_watches.end(), fits);
    std::shared_ptr<watch_hub> next;
    if (spare != spare_watches.end()) {
      next = std::move(*spare);
      spare_watches.erase(spare);
      unheard = next->revision();
    }
    park_own_watch();
    if (!next) {
      trim_spares(kept_watches - 1);
      std::string from = ahead.empty() ? mine : ahead.front(), end;
      if (span) {
        from = std::min(mine, ahead.front());
        end = std::max(mine, ahead.front()) + '\0';
      }
      next = watch_hub::for_range(sess->client, std::move(from), std::move(end), sess->diagnostics, sess->metrics);
    }
    own_watch = std::move(next);
    own_watch->add(prefix, this);
  }
  const auto watch = own_watch;  // it may be dropped (a release, a new key) while we wait
  const auto ready = co_await watch->ready();
  if (watch != own_watch) co_return error_code{};  // dropped meanwhile (a reopen, a release): whoever made it goes on
  if (!ready) {
    reread = true;  // cut short (a release woke us, etcd is away): whoever goes on reads first
    co_return ready.error();
  }
  if (std::max(unheard, watch->created_revision()) > machine.snapshot_revision() && !co_await unchanged_since_read()) {
    reread = true;
  } else if (span && watch->covers(mine)) {
    machine.trust_watch_ahead();  // without a gap since the read: its DELETE ahead is our turn (if it came while the
  }                               // watch was made, the machine asked for a read, and trusts nothing)
  co_return error_code{};
}

// The watch started after the read: did the view's keys (the one ahead, and ours) change in between? One read of
// just those keys, not of the queue; if they stand as they were, the view is the same at the later revision, and the
// watch tells of every change after it. Watch events during the read wait for it, as during read().
boost::asio::awaitable<bool> manager_state::unchanged_since_read() {
  const auto view = machine.queue();
  struct reading_guard {
    manager_state& s;
    ~reading_guard() { s.reading = false; }
  } guard{*this};
  reading = true;
  early.clear();  // the read contains them
  const std::uint64_t epoch = resets;
  auto now = co_await recipe::read_keys(client, view);
  const auto same = [](const recipe::queue_entry& a, const recipe::queue_entry& b) {
    return a.key == b.key && a.create_revision == b.create_revision;
  };
  if (epoch != resets) co_return false;  // the watch lost history meanwhile: its events wait for the next read
  const bool unchanged =
      now && std::equal(view.begin(), view.end(), now->keys.begin(), now->keys.end(), same);
  machine.set_lease_proven(may_hold());
  if (unchanged) machine.on_snapshot(now->revision, std::move(now->keys), machine.my_key());
  machine.begin_batch();
  for (const auto& e : early) apply(e);  // as they would have been without this read
  machine.end_batch();
  early.clear();
  if (machine.needs_reread()) reread = true;
  co_return unchanged;  // else something changed, or we cannot tell: read the queue
}

}  // namespace clusterlock::detail
