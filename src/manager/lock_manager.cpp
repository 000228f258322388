// The lock manager: runs the recipe (lock_machine + lock_recipe calls) for one lock on a session, and tells users.
//
// On the session's strand, a coroutine contends while there is something to do: lease -> (watch ready) -> enqueue
// txn, again after our key is gone or the watch lost history. A lock that holds or waits has no coroutine (at
// 10,000 locks on a session an idle one cost 24 MB). The session delivers the rest as calls on lock_listener:
// watch events, keepalive renewals and loss, and probe results.

#include <clusterlock/lock_manager.hpp>
#include <clusterlock/session.hpp>

#include "etcd/with_deadline.hpp"
#include "manager/event_queue.hpp"
#include "recipe/lock_machine.hpp"
#include "recipe/lock_recipe.hpp"
#include "session/session_state.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include <atomic>
#include <mutex>
#include <random>

#include <unistd.h>

namespace clusterlock {

namespace asio = boost::asio;
using boost::system::error_code;
using clock = std::chrono::steady_clock;

namespace {

constexpr auto ignore_cancellation = [](asio::cancellation_type) { return asio::cancellation_type::none; };

// std::random_device costs ~23 us a construction on a VM (it traps to the hypervisor), 5% of an acquire+release's
// CPU: seed once per process, then step.
std::uint_fast32_t jitter_seed() {
  static const std::uint_fast32_t base = std::random_device{}();
  static std::atomic<std::uint_fast32_t> next{0};
  return base + 0x9e3779b9u * ++next;
}

std::string default_identity() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string(host) + "-" + boost::uuids::to_string(boost::uuids::random_generator()());
}

options checked(options o, const session_options* shared) {
  std::string why;
  auto ec = shared ? validate_lock(o, &why) : validate(o, &why);
  if (!ec && shared && !(o.name + "/").starts_with(shared->watch_prefix))
    ec = make_error_code(errc::invalid_options), why = "name: '" + o.name + "' is not under the session's watch_prefix '" +
                                                      shared->watch_prefix + "'";
  if (ec) throw boost::system::system_error(ec, why);
  if (o.identity.empty()) o.identity = default_identity();
  return o;
}

session_options session_options_of(const options& o) {
  session_options s;
  s.endpoints = o.endpoints;
  s.watch_prefix = o.name + "/";
  s.ttl = o.ttl;
  s.request_timeout = o.request_timeout;
  s.probe_interval = o.probe_interval;
  s.clock_margin = o.clock_margin;
  s.tls = o.tls;
  s.auth = o.auth;
  s.retry = o.retry;
  s.diagnostics = o.diagnostics;
  return s;
}

lock_entry to_entry(const recipe::queue_entry& e) { return {e.key, e.identity, e.create_revision, e.lease}; }

}  // namespace

namespace detail {

struct manager_state : std::enable_shared_from_this<manager_state>, lock_listener {
  const std::shared_ptr<session_state> sess;
  const asio::any_io_executor strand;
  const options opts;
  const std::string prefix;
  etcd::client& client;
  recipe::lock_machine machine;

  // Read from any thread: have_lock() and fencing_token().
  std::atomic<bool> held{false};
  std::atomic<std::int64_t> token{0};
  std::atomic<clock::rep> valid_until{0};

  mutable std::mutex view_mutex;  // queue()/holder()/key() may be called from other threads
  std::vector<lock_entry> view;
  std::string my_key;

  std::vector<std::weak_ptr<event_queue>> subscribers;
  std::vector<lock_manager::callback> acquired_callbacks, lost_callbacks, holder_callbacks;

  bool started = false;
  bool stopping = false;
  bool contending = false;  // the contend coroutine runs
  bool in_line = false;     // waiting for the session to run the contend coroutine (session_state::request_contend)
  bool have_read = false;   // a read succeeded: the view follows the watch (unless reread)
  bool claimed = false;     // we are the session's contender for this name (session_state::claim)
  bool reading = false;  // a queue read (enqueue txn) is in flight: watch events wait in `early`
  bool reread = false;   // the watch lost history: read the queue again
  // The view follows the watch without a gap: false before the first read, after the watch lost history (its new
  // stream starts from "now") and after a failed read. Until a read makes it true again, watch events wait in
  // `early` too (the next read contains them): applied to a view with a gap they made it wrong, and a waiter could
  // take the lock with a key that was gone.
  bool synced = false;
  std::uint64_t resets = 0;  // on_watch_reset calls so far
  std::vector<etcd::watch_event> early;
  std::weak_ptr<asio::cancellation_signal> stop_contend;  // the running contend coroutine's
  asio::steady_timer* contend_ended = nullptr;            // shutdown waits on it for the contend coroutine to end
  std::string maybe_enqueued;  // the key of an enqueue txn whose outcome we do not know
  error_code unsure_because;   // the error an UNKNOWN event carries
  std::minstd_rand rng{jitter_seed()};  // backoff jitter only: 8 bytes, not mt19937's 2.5 KB per lock

  manager_state(std::shared_ptr<session_state> s, options o)
      : sess(std::move(s)),
        strand(sess->strand),
        opts(std::move(o)),
        prefix(opts.name + "/"),
        client(*sess->client),
        machine(opts.identity) {}

  // ---- telling users

  void publish() {
    const bool holding = machine.current() == recipe::lock_machine::status::held;
    held.store(false);  // token first, then held: a reader never sees held with a stale token
    token.store(holding ? machine.my_token() : 0);
    held.store(holding);
    {
      std::lock_guard lock(view_mutex);
      view.clear();
      for (const auto& e : machine.queue()) view.push_back(to_entry(e));
      my_key = machine.my_key();
    }
    auto events = machine.take_events();
    if (events.empty()) return;
    for (auto& e : events)
      if (e.kind == lock_event::unknown) e.error = unsure_because;
    std::erase_if(subscribers, [](const auto& w) { return w.expired(); });
    for (auto& e : events) {
      for (auto& w : subscribers)
        if (auto q = w.lock()) q->push(e);
      auto& callbacks = e.kind == lock_event::acquired         ? acquired_callbacks
                        : e.kind == lock_event::holder_changed ? holder_callbacks
                                                               : lost_callbacks;
      for (auto& cb : std::vector(callbacks)) cb(e);
    }
    if (machine.needs_contend()) kick();
  }

  void note_validity() { valid_until.store(sess->lease->valid_until().time_since_epoch().count()); }

  // ---- lock_listener (the session tells us)

  void on_watch_event(const etcd::watch_event& e) override {
    if (reading || !synced) {
      early.push_back(e);  // applied after the read, which they may or may not be part of
      return;
    }
    apply(e);
  }
  void on_watch_batch_end() override {
    if (!reading && synced) publish();
  }
  void on_watch_reset() override {
    reread = true;
    synced = false;
    ++resets;
    kick();
  }
  void on_lease_renewed() override { note_validity(); }
  void on_lease_lost(std::int64_t) override {
    note_validity();
    machine.on_lease_lost();
    publish();
  }
  bool wants_probe() const override {
    using status = recipe::lock_machine::status;
    return machine.current() == status::held || machine.current() == status::uncertain;
  }
  void on_probe(const probe_keys& keys, std::int64_t revision) override {
    if (!wants_probe()) return;
    const auto before = machine.current();
    if (clock::now() >= sess->lease->valid_until()) {
      // The lease may have expired: we can no longer claim the lock.
      unsure_because = sess->last_failure ? sess->last_failure : make_error_code(errc::timeout);
      machine.on_unreachable();
    } else {
      machine.on_probe(keys.create_revision(machine.my_key()), revision);
    }
    // A probe that confirms what we knew changes nothing: no view to rebuild (for every lock of a session, every
    // probe_interval).
    if (machine.current() != before || machine.has_events()) publish();
  }
  void on_probe_failed(error_code why) override {
    unsure_because = why;
    machine.on_unreachable();
    publish();
  }

  void apply(const etcd::watch_event& e) {
    if (e.type == etcd::event_type::del) {
      machine.on_delete(e.kv.key, e.kv.mod_revision);
    } else {
      machine.on_put({e.kv.key, e.kv.value, e.kv.create_revision, e.kv.lease}, e.kv.mod_revision);
    }
  }

  // ---- the contend loop

  asio::awaitable<void> pause(int failures) {
    auto cap = std::min<std::chrono::milliseconds>(opts.retry.max_backoff,
                                                   opts.retry.initial_backoff * (1LL << std::min(failures, 16)));
    std::uniform_int_distribution<long long> pick(cap.count() / 2, std::max<long long>(cap.count(), 1));
    asio::steady_timer t(strand, std::chrono::milliseconds(pick(rng)));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }

  // Reads the queue (creating our key first when contending) and hands it to the machine, with the watch events
  // that arrived meanwhile.
  asio::awaitable<error_code> read() {
    std::string key;
    result<recipe::snapshot> snap = make_error_code(errc::unavailable);
    reading = true;
    reread = false;
    early.clear();  // they arrived before the read was sent: it contains them
    const std::uint64_t epoch = resets;
    if (opts.contend) {
      auto lease = co_await sess->lease->ensure_lease();
      if (lease) {
        note_validity();
        key = recipe::lock_key(prefix, *lease);
        maybe_enqueued = key;
        // Not cancelled by shutdown: a txn cut off on its way may still create our key, and shutdown could not
        // know to delete it (on a shared session the lease, and so the key, would outlive this lock).
        co_await asio::this_coro::reset_cancellation_state(ignore_cancellation);
        snap = co_await recipe::enqueue(client, prefix, key, opts.identity, *lease);
        co_await asio::this_coro::reset_cancellation_state(asio::enable_terminal_cancellation());
        if (!snap && snap.error() == errc::lease_not_found) sess->lease->lease_gone(*lease);
        // The lease was found gone while the txn was on its way: our key went with it, whatever the reply says.
        if (snap && sess->lease->lease() != *lease) snap = make_error_code(errc::lease_not_found);
      } else {
        snap = lease.error();
      }
    } else {
      snap = co_await recipe::read_queue(client, prefix);
    }
    reading = false;
    if (!snap) {
      synced = false;  // the events that came meanwhile are not applied: the next read has them
      reread = true;
      co_return snap.error();
    }
    have_read = true;
    maybe_enqueued.clear();
    machine.on_snapshot(snap->revision, std::move(snap->keys), key);
    if (epoch == resets) {
      for (const auto& e : early) apply(e);  // the machine skips those the read already saw
      synced = true;
    }  // else the watch lost history during the read: the view is the read's, until the next read (reread is set)
    early.clear();
    publish();
    co_return error_code{};
  }

  // Whether the contend coroutine has work: the first read, a read after the watch lost history, or a new key
  // after ours went.
  bool must_contend() const { return !stopping && (!have_read || reread || (opts.contend && machine.needs_contend())); }

  asio::awaitable<void> contend() {
    int failures = 0;
    while (must_contend()) {
      // The watch must stand before we read: then nothing between the read and the watch is missed.
      const auto ready = co_await sess->hub->ready();
      const error_code ec = ready ? co_await read() : ready.error();
      if (stopping) break;
      if (ec) {
        co_await pause(failures++);
        continue;
      }
      failures = 0;
    }
  }

  // Has the contend coroutine run when there is work for it (it checks must_contend() again before it ends).
  void kick() {
    if (contending || in_line || !must_contend()) return;
    if (opts.contend && !claimed) {
      // One contender per name on a session: two would share one key (name/<lease>) and both believe they hold.
      if (!sess->claim(opts.name, this)) return;  // on_claim_turn() comes when the one before has shut down
      claimed = true;
    }
    in_line = true;
    sess->request_contend(this);
  }

  // ---- lock_listener: the session's turns

  void on_claim_turn() override { kick(); }

  void run_contend() override {
    in_line = false;
    if (!must_contend()) return sess->contend_ended();
    contending = true;
    // A signal of its own per coroutine: rebinding one signal's slot under a coroutine that has not fully ended
    // frees its cancellation state (the lease keeper's use-after-free).
    auto signal = std::make_shared<asio::cancellation_signal>();
    stop_contend = signal;
    asio::co_spawn(strand, contend(),
                   asio::bind_cancellation_slot(signal->slot(), [self = shared_from_this(), signal](std::exception_ptr) {
                     self->contending = false;
                     if (self->contend_ended) self->contend_ended->cancel();
                     self->sess->contend_ended();
                     self->kick();  // work that came after the loop's last check
                   }));
  }

  void start() {
    if (started || stopping) return;
    started = true;
    sess->join(this, prefix);
    kick();
  }

  asio::awaitable<result<void>> shutdown() {
    auto self = shared_from_this();
    if (stopping) co_return result<void>();
    stopping = true;
    held.store(false);
    token.store(0);
    if (in_line) {
      sess->leave_contend_line(this);
      in_line = false;
    }
    if (contending) {
      // Interrupts its waits; an enqueue txn in flight completes first, so that we know which key to delete.
      if (auto signal = stop_contend.lock()) signal->emit(asio::cancellation_type::terminal);
      asio::steady_timer ended(strand, asio::steady_timer::time_point::max());
      contend_ended = &ended;
      co_await ended.async_wait(asio::as_tuple(asio::use_awaitable));
      contend_ended = nullptr;
    }
    error_code failed;
    std::string key = machine.my_key();
    std::int64_t mine = machine.my_token();
    if (mine == 0 && !maybe_enqueued.empty()) {
      // The last enqueue failed (a timeout, a lost connection): it may have created our key all the same.
      key = maybe_enqueued;
      auto r = co_await etcd::with_deadline(recipe::probe(client, key), opts.request_timeout);
      if (r) mine = r->create_revision;
      else failed = r.error();
    }
    if (mine != 0) {
      auto r = co_await etcd::with_deadline(recipe::release(client, key, mine), opts.request_timeout);
      if (!r) failed = r.error();
    }
    machine.on_released();
    publish();
    if (opts.contend) sess->unclaim(opts.name, this);
    if (started) co_await sess->leave(this);
    for (auto& w : subscribers)
      if (auto q = w.lock()) q->close();
    if (failed) co_return failed;
    co_return result<void>();
  }
};

}  // namespace detail

lock_manager::lock_manager(executor_type ex, options opts)
    : state_([&] {
        auto checked_opts = checked(std::move(opts), nullptr);
        auto s = std::make_shared<detail::session_state>(std::move(ex), session_options_of(checked_opts), false);
        return std::make_shared<detail::manager_state>(std::move(s), std::move(checked_opts));
      }()),
      default_subscription_(subscribe()) {}

lock_manager::lock_manager(session& s, options opts)
    : state_(std::make_shared<detail::manager_state>(s.state_, checked(std::move(opts), &s.state_->opts))),
      default_subscription_(subscribe()) {}

lock_manager::~lock_manager() {
  asio::dispatch(state_->strand, [s = state_] {
    if (s->started && !s->stopping) {
      asio::co_spawn(s->strand, s->shutdown(), asio::detached);
      return;
    }
    for (auto& w : s->subscribers)
      if (auto q = w.lock()) q->close();
  });
}

void lock_manager::start() {
  asio::dispatch(state_->strand, [s = state_] { s->start(); });
}

void lock_manager::initiate_shutdown(detail::done_handler handler) {
  asio::dispatch(state_->strand, [s = state_, h = std::move(handler)]() mutable {
    auto slot = asio::get_associated_cancellation_slot(h);
    asio::co_spawn(s->strand, s->shutdown(),
                   asio::bind_cancellation_slot(slot, [h = std::move(h), s](std::exception_ptr, result<void> r) mutable {
                     asio::post(s->strand, asio::append(std::move(h), r ? error_code{} : r.error()));
                   }));
  });
}

void lock_manager::shutdown() {
  async_shutdown([](error_code) {});
}

bool lock_manager::have_lock() const noexcept {
  // Checked at the call: a process frozen past its lease's lifetime must not wake up believing.
  return state_->held.load() && clock::now().time_since_epoch().count() < state_->valid_until.load();
}

std::int64_t lock_manager::fencing_token() const noexcept { return have_lock() ? state_->token.load() : 0; }

const std::string& lock_manager::identity() const noexcept { return state_->opts.identity; }

std::string lock_manager::key() const {
  std::lock_guard lock(state_->view_mutex);
  return state_->my_key;
}

event_subscription lock_manager::subscribe() {
  auto q = std::make_shared<detail::event_queue>(state_->strand, state_->opts.event_backlog);
  asio::dispatch(state_->strand, [s = state_, w = std::weak_ptr(q)] { s->subscribers.push_back(w); });
  return event_subscription(std::move(q));
}

void lock_manager::on_acquired(callback cb) {
  asio::dispatch(state_->strand,
                 [s = state_, cb = std::move(cb)]() mutable { s->acquired_callbacks.push_back(std::move(cb)); });
}
void lock_manager::on_lost(callback cb) {
  asio::dispatch(state_->strand, [s = state_, cb = std::move(cb)]() mutable { s->lost_callbacks.push_back(std::move(cb)); });
}
void lock_manager::on_holder_changed(callback cb) {
  asio::dispatch(state_->strand,
                 [s = state_, cb = std::move(cb)]() mutable { s->holder_callbacks.push_back(std::move(cb)); });
}

std::vector<lock_entry> lock_manager::queue() const {
  std::lock_guard lock(state_->view_mutex);
  return state_->view;
}

std::optional<lock_entry> lock_manager::holder() const {
  std::lock_guard lock(state_->view_mutex);
  if (state_->view.empty()) return std::nullopt;
  return state_->view.front();
}

lock_manager::executor_type lock_manager::get_executor() const noexcept { return state_->strand; }

}  // namespace clusterlock
