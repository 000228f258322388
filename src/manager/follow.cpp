// watch_scope::predecessor: a lock that watches only the key just ahead of its own while it waits, and its own while
// it holds, as etcd's Go recipe does. A watch of the whole prefix sends every enqueue and release to every contender
// (etcd's work per hand-off grows with the line); this one reaches one waiter per release. The price: a waiter's
// turn comes from a read after the DELETE (other keys ahead, and ours, are not watched), one round trip.

#include "manager/manager_state.hpp"

namespace clusterlock::detail {

using boost::system::error_code;

bool manager_state::follows(const std::string& key) const {
  return key == machine.my_key() || (own_watch && key == own_watch->key());
}

void manager_state::drop_own_watch() {
  if (!own_watch) return;
  own_watch->remove(this);
  own_watch->close();
  own_watch.reset();
}

// After a read: watch the key the machine must hear of. A watch that started after the read (etcd moved on while it
// was made) may have missed a change in between: a read now, with the watch standing, has no gap.
boost::asio::awaitable<error_code> manager_state::follow_ahead() {
  auto self = shared_from_this();
  if (!machine.has_key()) {
    drop_own_watch();
    co_return error_code{};
  }
  if (machine.needs_reread()) co_return error_code{};  // the key ahead went already: the next read says which is next
  const auto ahead = machine.keys_ahead();  // a waiter's: the one key ahead its partial view has
  const std::string target = ahead.empty() ? machine.my_key() : ahead.front();
  if (!own_watch || own_watch->key() != target) {
    drop_own_watch();
    own_watch = watch_hub::for_key(sess->client, target, sess->diagnostics, sess->metrics);
    own_watch->add(prefix, this);
  }
  const auto watch = own_watch;  // it may be dropped (a release, a new key) while we wait
  const auto ready = co_await watch->ready();
  if (watch != own_watch) co_return error_code{};  // dropped meanwhile (a reopen, a release): whoever made it goes on
  if (!ready) {
    reread = true;  // cut short (a release woke us, etcd is away): whoever goes on reads first
    co_return ready.error();
  }
  if (watch->created_revision() > machine.snapshot_revision()) reread = true;
  co_return error_code{};
}

}  // namespace clusterlock::detail
