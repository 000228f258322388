// What the session tells a lock (watch events, lease renewals and loss, probe results), and how the lock tells its
// users: state first (have_lock(), the view), then events and callbacks, posted.

#include "manager/manager_state.hpp"

#include "recipe/rw_value.hpp"
#include "recipe/slots_value.hpp"

#include <boost/asio/post.hpp>

namespace clusterlock::detail {

using from = diagnostic::source_type;
using level = diagnostic::severity_type;

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// std::random_device costs ~23 us a construction on a VM (it traps to the hypervisor), 5% of an acquire+release's
// CPU: seed once per process, then step.
std::uint_fast32_t jitter_seed() {
  static const std::uint_fast32_t base = std::random_device{}();
  static std::atomic<std::uint_fast32_t> next{0};
  return base + 0x9e3779b9u * ++next;
}

lock_entry to_entry(const recipe::queue_entry& e, const recipe::lock_machine& m) {
  return {e.key, m.identity_of(e.identity), e.create_revision, e.lease};
}

}  // namespace

manager_state::manager_state(std::shared_ptr<session_state> s, options o, bool own, recipe::admission rule)
    : sess(std::move(s)),
      strand(sess->strand),
      opts(std::move(o)),
      prefix(opts.name + "/"),
      own_session(own),
      client(*sess->client),
      machine(opts.identity, rule, opts.watch == watch_scope::predecessor),
      value(opts.identity),
      rng(jitter_seed()) {}

manager_state::~manager_state() { drop_own_watch(); }

// ---- telling users

bool manager_state::lease_proven() const {
  return clock::now() < sess->lease->valid_until();
}

bool manager_state::may_hold() const { return wants_key() && lease_proven(); }

void manager_state::note_validity() { valid_until.store(sess->lease->valid_until().time_since_epoch().count()); }

std::string manager_state::key_value() const {
  using kind = recipe::admission::kind_type;
  switch (machine.rule().kind) {
    case kind::semaphore: return recipe::encode_slots(machine.slots(), current_value());
    case kind::read: return recipe::encode_rw(true, current_value());
    case kind::write: return recipe::encode_rw(false, current_value());
    case kind::lock: break;
  }
  return current_value();
}

// Called where a conflict can appear, once each: after a read (its snapshot, and the watch events held during it)
// and after a watch batch. publish() itself does not look: the other inputs (probes, the lease) cannot make one.
error_code manager_state::check_slots() {
  const auto& c = machine.conflict();
  if (!c || fatal || stage != phase::active) return {};
  const auto theirs = recipe::decode_slots(c->identity);
  report(from::contention, level::error,
         "key " + c->key + " (create revision " + std::to_string(c->create_revision) + ") " +
             (theirs.slots == 0 ? std::string("is a plain lock's (its value has no slots=N;)")
                                : "was made with " + std::to_string(theirs.slots) + " slots") +
             ", ours with " + std::to_string(machine.slots()) +
             ": every contender of one semaphore must give the same number of slots; leaving the line",
         make_error_code(errc::slots_mismatch));
  return make_error_code(errc::slots_mismatch);
}

void manager_state::publish() {
  const bool holding = machine.current() == recipe::lock_machine::status::held && stage == phase::active;
  held.store(false);  // token first, then held: a reader never sees held with a stale token
  token.store(holding ? machine.my_token() : 0);
  held.store(holding);
  {
    std::lock_guard lock(view_mutex);
    using change = recipe::lock_machine::queue_change::kind_type;
    const bool rw = machine.rule().rw();
    for (auto& c : machine.take_queue_changes()) {
      auto position = std::make_pair(c.entry.create_revision, c.entry.key);
      if (c.kind == change::cleared) {
        view.clear();
        view_readers.clear();
      } else if (c.kind == change::erased) {
        view.erase(position);
        if (rw) view_readers.erase(position);
      } else {
        if (rw && recipe::decode_rw(c.entry.identity).reader) view_readers.insert(position);
        else if (rw) view_readers.erase(position);
        view.insert_or_assign(std::move(position), to_entry(c.entry, machine));
      }
    }
    my_key = machine.my_key();
  }
  auto events = machine.take_events();
  if (!events.empty()) deliver(std::move(events));
  settle_operations();
  kick();
}

void manager_state::publish_removal(lock_metrics::cause why) {
  removal_cause = why;
  publish();
  removal_cause = lock_metrics::cause::removed;
}

lock_stats manager_state::stats() const {
  lock_stats out;
  out.name = opts.name;
  const auto now = clock::now();
  out.have_lock = held.load() && now.time_since_epoch().count() < valid_until.load();
  out.fencing_token = out.have_lock ? token.load() : 0;
  metrics.fill(out, now);
  {
    std::lock_guard lock(view_mutex);
    out.queue_length = view.size();
    if (!my_key.empty()) {
      std::size_t i = 0;
      for (const auto& [position, e] : view) {
        if (e.key == my_key) {
          out.queue_position = i;
          break;
        }
        ++i;
      }
    }
  }
  out.session = sess->stats();
  return out;
}

std::vector<lock_entry> manager_state::rw_holders() const {
  std::lock_guard lock(view_mutex);
  std::vector<lock_entry> out;
  for (const auto& [position, e] : view) {
    const bool reader = view_readers.contains(position);
    if (!reader && !out.empty()) break;  // the first writer, behind readers: they hold, it waits
    out.push_back(e);
    if (!reader) break;  // a writer first in line holds alone
  }
  return out;
}

void manager_state::deliver(std::vector<lock_event> events) {
  bool lost = false;
  const auto now = clock::now();
  for (auto& e : events) {
    metrics.on_event(e.kind, removal_cause, now);
    if (e.kind == lock_event::unknown) e.error = unsure_because;
    lost = lost || e.kind == lock_event::removed || e.kind == lock_event::unknown;
  }
  if (lost) {
    // Leadership scopes end the moment the lock is lost.
    for (auto& w : std::exchange(leaders, {}))
      if (auto signal = w.lock()) signal->emit(asio::cancellation_type::terminal);
  }
  std::erase_if(subscribers, [](const auto& w) { return w.expired(); });
  for (const auto& e : events)
    for (auto& w : subscribers)
      if (auto q = w.lock()) q->push(e);  // completes a waiting handler by post
  if (acquired_callbacks.empty() && lost_callbacks.empty() && holder_callbacks.empty()) return;
  // Callbacks run later, on the strand, outside this bookkeeping: one may destroy the manager or start others.
  asio::post(strand, [self = shared_from_this(), events = std::move(events)] {
    for (const auto& e : events) {
      auto& callbacks = e.kind == lock_event::acquired         ? self->acquired_callbacks
                        : e.kind == lock_event::holder_changed ? self->holder_callbacks
                                                               : self->lost_callbacks;
      for (auto& cb : std::vector(callbacks)) {
        if (self->handle_gone.load()) return;  // destroyed by a callback: it wants no more
        try {
          cb(e);
        } catch (const std::exception& x) {
          self->report(from::callback, level::error,
                       std::string("a ") + to_string(e.kind) + " callback threw: " + x.what());
        } catch (...) {
          self->report(from::callback, level::error, std::string("a ") + to_string(e.kind) + " callback threw");
        }
      }
    }
  });
}

void manager_state::report(diagnostic::source_type source, diagnostic::severity_type severity,
                           std::string message, error_code ec) {
  // The session's sink: rate-limited per source and error, posted, a throwing hook dropped.
  sess->diagnostics->report(source, severity, opts.name + ": " + std::move(message), ec);
}

// ---- lock_listener (the session tells us)

void manager_state::on_watch_event(const etcd::watch_event& e) {
  if (reading) {
    early.push_back(e);  // applied after the read, which they may or may not be part of
  } else if (synced) {
    machine.set_lease_proven(may_hold());
    machine.begin_batch();  // decided at the message's end (on_watch_batch_end)
    apply(e);
  }  // else a read will come and contain it: keeping it would grow without bound while we wait for our turn
}

void manager_state::on_watch_batch_end() {
  machine.end_batch();
  if (!reading && synced) {
    // An operator's put can make an older key disagree (a read's snapshot is checked in after_read): refuse before
    // the state is published, so that we never claim a permit.
    if (auto ec = check_slots()) fail_contention(ec);
    if (machine.needs_reread()) reread = true;  // a partial view's key ahead went: who is ahead now? (publish kicks)
    publish();
  }
}

void manager_state::on_watch_reset() {
  reread = true;
  synced = false;
  ++resets;
  kick();
}

void manager_state::on_lease_renewed() { note_validity(); }

void manager_state::on_lease_lost(std::int64_t) {
  note_validity();
  maybe_enqueued.clear();  // whatever that txn did, its key went with the lease
  machine.on_lease_lost();
  publish_removal(lock_metrics::cause::lease_lost);
}

// A waiter that follows only the key ahead claims nothing: its probe shows whether its watch is behind, which is a
// matter of liveness (and a failed keepalive reopens the watch as well). Each waiter's probe every second cost etcd
// more than the hand-offs of a long line (1,000 waiters: 1,000 probes a second): it asks one round in
// quiet_probe_every.
bool manager_state::wants_probe() const {
  if (!machine.wants_probe()) return false;
  if (!follows_predecessor() || machine.current() != recipe::lock_machine::status::waiting) return true;
  return ++quiet_probe_rounds % quiet_probe_every == 0;
}

// Our key, and a waiter's holder as its view has it (whether the watch is behind): all the probe must read for us.
bool manager_state::probe_targets(std::vector<std::string>& out) const {
  if (!machine.has_key()) return false;
  out.push_back(machine.my_key());
  for (auto& k : machine.keys_ahead()) out.push_back(std::move(k));
  return true;
}

void manager_state::on_probe(const probe_keys& keys, std::int64_t revision) {
  if (!machine.wants_probe()) return;
  // Keys chosen before our key changed (a release and a new key while the probe was on its way): nothing about ours.
  if (!keys.covers(machine.my_key())) return;
  if (synced && !reading &&
      machine.view_behind([&](const std::string& key) { return keys.covers(key) ? keys.create_revision(key) : -1; })) {
    // A key ahead of ours is gone (or another) by a linearizable read, and the watch has not said so: it may sit
    // on a member that is frozen or cut off, while keepalives go elsewhere. Reopen it, from where it was.
    report(from::watch, level::warning, "the watch is behind a linearizable read: reopening it");
    if (own_watch) reopen_watch();
    else sess->hub->reopen();
  }
  const auto before = machine.current();
  if (!lease_proven()) {
    // The lease may have expired: we can no longer claim the lock.
    unsure_because = sess->last_failure ? sess->last_failure : make_error_code(errc::timeout);
    machine.on_unreachable();
  } else {
    machine.set_lease_proven(may_hold());
    machine.on_probe(keys.create_revision(machine.my_key()), revision);
  }
  // A probe that confirms what we knew changes nothing: no view to rebuild (for every lock of a session, every
  // probe_interval).
  if (machine.current() != before || machine.has_events()) publish();
}

void manager_state::on_probe_failed(error_code why) {
  unsure_because = why;
  machine.on_unreachable();
  publish();
}

// A watch of one key has delivered little: resumed from its last event it could ask etcd for a long history. It
// starts again from now instead, after a read (follow_ahead), which also tells at once who is ahead.
void manager_state::reopen_watch() {
  if (!own_watch) return;
  drop_own_watch();
  reread = true;
  kick();
}

void manager_state::on_session_closed() {
  if (session_closed) return;
  session_closed = true;
  drop_own_watch();
  maybe_enqueued.clear();
  machine.on_lease_lost();
  fail_contention(make_error_code(errc::not_started));
  publish_removal(lock_metrics::cause::lease_lost);
}

}  // namespace clusterlock::detail
