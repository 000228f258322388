// The work coroutine: makes etcd match what the user wants, one step at a time. Release our key when we no longer
// want it (before anything else: a new key must never meet an old one of ours); else read the queue, creating our
// key when we want one. It runs on the session's strand only while there is such work, at most
// session_state::max_contending of them at once.

#include "manager/manager_state.hpp"

#include "etcd/with_deadline.hpp"
#include "recipe/lock_recipe.hpp"
#include "recipe/predecessor.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <utility>

namespace clusterlock::detail {

using from = diagnostic::source_type;
using level = diagnostic::severity_type;

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr auto ignore_cancellation = [](asio::cancellation_type) { return asio::cancellation_type::none; };

// Errors that another try cannot cure: contention stops and the operations waiting for it are told.
bool is_fatal(const error_code& ec) {
  return is_refusal(ec) || ec == errc::invalid_options || ec == errc::not_started || ec == errc::slots_mismatch;
}

}  // namespace

bool manager_state::wants_key() const { return hold && stage == phase::active && !session_closed; }

// Our key may stand while we no longer want it, or a release has begun (it ends before a new key is made).
bool manager_state::must_release() const {
  if (session_closed) return false;
  if (machine.current() == recipe::lock_machine::status::releasing) return true;
  return !wants_key() && (machine.has_key() || !maybe_enqueued.empty());
}

// A read is due: the first, one after the watch lost history, or a new key after ours went.
bool manager_state::must_read() const {
  if (stage != phase::active || session_closed) return false;
  if (follows_predecessor() && !wants_key()) return false;  // it reads only what is ahead of a key of its own
  return !have_read || reread || (wants_key() && !fatal && machine.needs_contend());
}

bool manager_state::has_work() const { return must_release() || must_read() || stage == phase::shutting_down; }

void manager_state::kick() {
  if (working || in_line || !has_work() || !joined) return;
  if (opts.contend && !claimed && wants_key()) {
    // One contender per name on a session: two would share one key (name/<lease>) and both believe they hold.
    in_claim_line = true;
    if (!sess->claim(opts.name, this)) return;  // on_claim_turn() comes when the one before has let go
    claimed = true;
  }
  in_line = true;
  line_ticket = shared_from_this();  // the session's line holds a plain pointer: we must outlive our place in it
  sess->request_contend(this);
}

void manager_state::wake() {
  if (auto signal = interrupt.lock()) signal->emit(asio::cancellation_type::terminal);
}

void manager_state::on_claim_turn() { kick(); }

void manager_state::run_contend() {
  in_line = false;
  auto self = std::exchange(line_ticket, nullptr);
  if (!has_work()) return sess->contend_ended();
  working = true;
  // A signal of its own per coroutine: rebinding one signal's slot under a coroutine that has not fully ended
  // frees its cancellation state (the lease keeper's use-after-free).
  auto signal = std::make_shared<asio::cancellation_signal>();
  interrupt = signal;
  asio::co_spawn(strand, work(), asio::bind_cancellation_slot(signal->slot(), [self = shared_from_this(), signal](std::exception_ptr) {
    self->working = false;
    self->sess->contend_ended();
    self->kick();  // work that came after the loop's last check
  }));
}

asio::awaitable<void> manager_state::pause(int failures) {
  auto cap = std::min<std::chrono::milliseconds>(opts.retry.max_backoff,
                                                 opts.retry.initial_backoff * (1LL << std::min(failures, 16)));
  std::uniform_int_distribution<long long> pick(cap.count() / 2, std::max<long long>(cap.count(), 1));
  asio::steady_timer t(strand, std::chrono::milliseconds(pick(rng)));
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));  // wake() ends it early
}

asio::awaitable<void> manager_state::work() {
  auto self = shared_from_this();
  int failures = 0;
  for (;;) {
    // wake() may have cancelled the last wait: start every step with a clean state (else the next co_await throws).
    co_await asio::this_coro::reset_cancellation_state(asio::enable_terminal_cancellation());
    if (must_release()) {
      const error_code ec = co_await release_key();
      // A lock's own session goes with the lock: its lease's revoke (or end) takes the key along.
      if (ec && stage == phase::shutting_down && own_session) {
        co_await finish_shutdown();
        break;
      }
      if (ec && must_release()) co_await pause(failures++);
      else failures = 0;
      continue;
    }
    if (stage == phase::shutting_down) {
      co_await finish_shutdown();
      break;
    }
    if (!must_read()) break;
    // The watch must stand before we read: then nothing between the read and the watch is missed. A lock that
    // follows only the key ahead of its own learns from the read which key that is, and watches it after.
    result<void> ready;
    if (!follows_predecessor()) ready = co_await sess->hub->ready();
    error_code ec = ready ? co_await read() : ready.error();
    after_read(ec);
    if (!ec && follows_predecessor()) ec = co_await follow_ahead();
    // No backoff when woken (a release is due) or when nothing is left to read.
    if (ec && ec != asio::error::operation_aborted && !fatal && !must_release() && must_read()) co_await pause(failures++);
    else if (!ec) failures = 0;
  }
}

// Reads the queue (creating our key first when we want one) and hands it to the machine, with the watch events
// that arrived meanwhile.
asio::awaitable<error_code> manager_state::read() {
  std::string key;
  result<recipe::snapshot> snap = make_error_code(errc::unavailable);
  struct reading_guard {  // on every way out, cancellation included
    manager_state& s;
    ~reading_guard() { s.reading = false; }
  } guard{*this};
  reading = true;
  reread = false;
  early.clear();  // they arrived before the read was sent: it contains them
  const std::uint64_t epoch = resets;
  if (wants_key()) {
    auto lease = co_await sess->lease->ensure_lease();
    if (lease && wants_key()) {
      note_validity();
      key = recipe::lock_key(prefix, *lease);
      maybe_enqueued = key;
      // Not cancelled: a txn cut off on its way may still create our key, and we could not know to delete it (on a
      // shared session the lease, and so the key, would outlive this lock).
      co_await asio::this_coro::reset_cancellation_state(ignore_cancellation);
      if (!follows_predecessor())
        snap = co_await recipe::enqueue(client, prefix, key, key_value(), *lease);
      else if (machine.has_key() && machine.my_key() == key)  // it stands: who is ahead of it now?
        snap = co_await recipe::read_ahead(client, prefix, key, machine.my_token());
      else
        snap = co_await recipe::enqueue_behind(client, prefix, key, key_value(), *lease);
      co_await asio::this_coro::reset_cancellation_state(asio::enable_terminal_cancellation());
      if (!snap && snap.error() == errc::lease_not_found) sess->lease->lease_gone(*lease);
      // The lease was found gone while the txn was on its way: our key went with it, whatever the reply says.
      if (snap && sess->lease->lease() != *lease) snap = make_error_code(errc::lease_not_found);
    } else if (!lease) {
      snap = lease.error();
    } else {
      snap = make_error_code(asio::error::operation_aborted);  // released while the lease was being granted
    }
  } else {
    snap = co_await recipe::read_queue(client, prefix);
  }
  if (!snap) {
    synced = false;  // the events that came meanwhile are not applied: the next read has them
    reread = true;
    co_return snap.error();
  }
  have_read = true;
  ahead_complete = snap->complete;
  maybe_enqueued.clear();
  machine.set_lease_proven(may_hold());
  machine.on_snapshot(snap->revision, std::move(snap->keys), key);
  if (epoch == resets) {
    machine.begin_batch();
    for (const auto& e : early) apply(e);  // the machine skips those the read already saw
    machine.end_batch();
    synced = true;
    if (machine.needs_reread()) reread = true;  // the key ahead went meanwhile: who is ahead now?
  }  // else the watch lost history during the read: the view is the read's, until the next read (reread is set)
  early.clear();
  co_return error_code{};
}

void manager_state::apply(const etcd::watch_event& e) {
  if (!recipe::in_queue(prefix, e.kv.key)) return;  // a nested name's key (the hub tells every prefix above it)
  if (follows_predecessor() && !follows(e.kv.key)) return;  // a key the partial view does not have
  if (e.type == etcd::event_type::del) {
    machine.on_delete(e.kv.key, e.kv.mod_revision);
  } else {
    machine.on_put({e.kv.key, e.kv.value, e.kv.create_revision, e.kv.lease}, e.kv.mod_revision);
  }
}

// After a read (or its failure): tell the waiting operations, or stop contending on an error retrying cannot cure.
void manager_state::after_read(error_code ec) {
  const bool mismatch = !ec && (ec = check_slots());  // reported by check_slots, with the key that disagrees
  if (ec && is_fatal(ec)) {
    if (!mismatch) report(from::contention, level::error, "contention stopped: " + ec.message(), ec);
    fail_contention(ec);
  } else if (ec && ec != asio::error::operation_aborted) {
    report(from::read, level::warning, "reading the queue failed, will retry: " + ec.message(), ec);
  }
  if (!tries.empty()) {  // one try: its first read decides, an error included
    const bool first = !ec && machine.current() == recipe::lock_machine::status::held;
    for (auto& t : tries) {
      if (t.decided) continue;
      t.decided = true;
      t.result = ec;
      t.acquired = first;
    }
    if (!first && try_owned) {
      hold = false;  // a failed try leaves the line
      begin_release();
    }
    try_owned = false;
  }
  publish();
}

// Deletes our key if it is still the one we created; finds out first whether an enqueue of unknown outcome made it.
asio::awaitable<error_code> manager_state::release_key() {
  co_await asio::this_coro::reset_cancellation_state(ignore_cancellation);  // see read(): the outcome matters
  std::string key = machine.has_key() ? machine.my_key() : maybe_enqueued;
  std::int64_t mine = machine.my_token();
  error_code failed;
  if (mine == 0) {
    auto r = co_await etcd::with_deadline(recipe::probe(client, key), opts.request_timeout);
    if (r) mine = r->create_revision;
    else failed = r.error();
  }
  if (mine != 0) {
    auto r = co_await etcd::with_deadline(recipe::release(client, key, mine), opts.request_timeout);
    if (!r) failed = r.error();
  }
  co_await asio::this_coro::reset_cancellation_state(asio::enable_terminal_cancellation());
  release_failed = failed;
  decide(releases, failed);  // told of this attempt; a failed delete is retried in the background
  if (!failed) {
    maybe_enqueued.clear();
    machine.on_released();
    park_own_watch();  // our next key, if any, may need it again
  } else {
    report(from::release, level::warning, "deleting our key failed, will retry: " + failed.message(), failed);
  }
  publish();  // completes the releases (and shutdowns) waiting for this
  co_return failed;
}

}  // namespace clusterlock::detail
