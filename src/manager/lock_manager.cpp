// The lock manager: drives the recipe (lock_machine + lock_recipe calls) on one session, and tells users.
//
// Three coroutines on one strand share the state below:
// - contend: lease -> enqueue txn -> follow the prefix's watch until our key is gone; again.
// - probe:   while we hold (or held) the lock, prove it every probe_interval with a linearizable read.
// - the session's keepalive loop, which reports renewals and loss through session::listener.

#include <clusterlock/lock_manager.hpp>

#include "etcd/with_deadline.hpp"
#include "manager/event_queue.hpp"
#include "recipe/lock_machine.hpp"
#include "recipe/lock_recipe.hpp"
#include "session/session.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
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

std::string default_identity() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string(host) + "-" + boost::uuids::to_string(boost::uuids::random_generator()());
}

etcd::client_config client_config_of(const options& o) {
  etcd::client_config c;
  c.endpoints = o.endpoints;
  c.request_timeout = o.request_timeout;
  c.tls = o.tls;
  c.auth = o.auth;
  c.retry = o.retry;
  return c;
}

options checked(options o) {
  std::string why;
  if (auto ec = validate(o, &why)) throw boost::system::system_error(ec, why);
  if (o.identity.empty()) o.identity = default_identity();
  return o;
}

lock_entry to_entry(const recipe::queue_entry& e) { return {e.key, e.identity, e.create_revision, e.lease}; }

}  // namespace

namespace detail {

struct manager_state : std::enable_shared_from_this<manager_state>, session::listener {
  asio::any_io_executor strand;
  options opts;
  std::string prefix;
  std::shared_ptr<etcd::client> client;
  std::shared_ptr<session> sess;
  recipe::lock_machine machine;

  // Read from any thread: have_lock() and fencing_token().
  std::atomic<bool> held{false};
  std::atomic<std::int64_t> token{0};
  std::atomic<clock::rep> valid_until{0};

  mutable std::mutex view_mutex;  // queue()/holder() may be called from other threads
  std::vector<lock_entry> view;
  std::string my_key;

  std::vector<std::weak_ptr<event_queue>> subscribers;
  std::vector<lock_manager::callback> acquired_callbacks, lost_callbacks, holder_callbacks;

  bool started = false;
  bool stopping = false;
  asio::cancellation_signal stop_contend, stop_probe;
  etcd::watch_stream* watch = nullptr;  // the one follow() reads, to break it from outside
  std::mt19937_64 rng{std::random_device{}()};

  manager_state(asio::any_io_executor ex, options o)
      : strand(asio::make_strand(std::move(ex))),
        opts(checked(std::move(o))),
        prefix(opts.name + "/"),
        client(std::make_shared<etcd::client>(strand, client_config_of(opts))),
        sess(std::make_shared<session>(client, opts.ttl, opts.clock_margin, opts.request_timeout)),
        machine(opts.identity) {}

  // ---- telling users

  void publish() {
    held.store(false);  // settled below; never true while the machine says otherwise
    const bool holding = machine.current() == recipe::lock_machine::status::held;
    token.store(holding ? machine.my_token() : 0);
    held.store(holding);
    {
      std::lock_guard lock(view_mutex);
      view.clear();
      for (const auto& e : machine.queue()) view.push_back(to_entry(e));
      my_key = machine.my_key();
    }
    for (auto& e : machine.take_events()) {
      std::erase_if(subscribers, [](const auto& w) { return w.expired(); });
      for (auto& w : subscribers)
        if (auto q = w.lock()) q->push(e);
      auto& callbacks = e.kind == lock_event::acquired         ? acquired_callbacks
                        : e.kind == lock_event::holder_changed ? holder_callbacks
                                                               : lost_callbacks;
      for (auto& cb : std::vector(callbacks)) cb(e);
    }
  }

  void note_validity() { valid_until.store(sess->valid_until().time_since_epoch().count()); }

  // ---- session::listener

  void on_lease_renewed() override { note_validity(); }
  void on_lease_lost(std::int64_t) override {
    note_validity();
    machine.on_lease_lost();
    publish();
    break_watch();  // contend again, with a new lease
  }
  void on_keepalive_failed(error_code) override {
    // The member we talk to may be frozen or cut off: a watch on it would say nothing. Reopen it (the client
    // has moved on to the next endpoint).
    break_watch();
  }

  void break_watch() {
    if (watch) watch->close();
  }

  // ---- the coroutines

  asio::awaitable<void> pause(int failures) {
    auto cap = std::min<std::chrono::milliseconds>(opts.retry.max_backoff,
                                                   opts.retry.initial_backoff * (1LL << std::min(failures, 16)));
    std::uniform_int_distribution<long long> pick(cap.count() / 2, std::max<long long>(cap.count(), 1));
    asio::steady_timer t(strand, std::chrono::milliseconds(pick(rng)));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }

  asio::awaitable<void> contend() {
    auto self = shared_from_this();
    int failures = 0;
    while (!stopping) {
      result<recipe::snapshot> snap = make_error_code(errc::unavailable);
      std::string key;
      if (opts.contend) {
        auto lease = co_await sess->ensure_lease();
        if (stopping) break;
        if (!lease) {
          co_await pause(failures++);
          continue;
        }
        note_validity();
        key = recipe::lock_key(prefix, *lease);
        snap = co_await recipe::enqueue(*client, prefix, key, opts.identity, *lease);
      } else {
        snap = co_await recipe::read_queue(*client, prefix);
      }
      if (stopping) break;
      if (!snap) {
        if (snap.error() == errc::lease_not_found) sess->lease_gone(sess->lease());
        co_await pause(failures++);
        continue;
      }
      failures = 0;
      machine.on_snapshot(snap->revision, std::move(snap->keys), key);
      publish();
      co_await follow();
    }
  }

  // Follows the prefix's watch from the machine's revision until our key is gone (or we stop).
  asio::awaitable<void> follow() {
    int failures = 0;
    while (!stopping && !(opts.contend && machine.needs_contend())) {
      etcd::watch_stream stream(*client);
      watch = &stream;
      etcd::watch_request req{prefix, etcd::prefix_range_end(prefix), machine.revision() + 1, false, true};
      auto opened = co_await stream.open(req);
      auto ec = opened ? error_code{} : opened.error();
      while (!ec && !stopping) {
        auto message = co_await stream.next(std::chrono::milliseconds::zero());
        if (!message) {
          ec = message.error();
          break;
        }
        failures = 0;
        apply(*message);
        publish();
        if (opts.contend && machine.needs_contend()) break;
      }
      watch = nullptr;
      if (stopping || (opts.contend && machine.needs_contend())) break;
      if (ec == errc::compacted) {
        // History we had not seen is gone: read the queue afresh and watch on from there.
        auto snap = co_await recipe::read_queue(*client, prefix);
        if (snap) {
          machine.on_snapshot(snap->revision, std::move(snap->keys), machine.my_key());
          publish();
          continue;
        }
      }
      co_await pause(failures++);
    }
  }

  void apply(const etcd::watch_response& m) {
    if (m.events.empty()) machine.on_progress(m.header.revision);
    for (const auto& e : m.events) {
      if (e.type == etcd::event_type::del) {
        machine.on_delete(e.kv.key, e.kv.mod_revision);
      } else {
        machine.on_put({e.kv.key, e.kv.value, e.kv.create_revision, e.kv.lease}, e.kv.mod_revision);
      }
    }
  }

  asio::awaitable<void> probe() {
    auto self = shared_from_this();
    asio::steady_timer timer(strand);
    while (!stopping) {
      timer.expires_after(opts.probe_interval);
      auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec || stopping) break;
      using status = recipe::lock_machine::status;
      if (machine.current() != status::held && machine.current() != status::uncertain) continue;
      if (clock::now() >= sess->valid_until()) {
        machine.on_unreachable();  // the lease may have expired: we can no longer claim the lock
        publish();
      }
      const auto key = machine.my_key();
      const auto mine = machine.my_token();
      auto r = co_await etcd::with_deadline(recipe::probe(*client, key), opts.request_timeout);
      if (stopping) break;
      if (machine.my_token() != mine) continue;  // the world moved on while we asked
      if (!r) {
        machine.on_unreachable();
        break_watch();  // the member may be cut off: a watch on it would stay silent; reopen elsewhere
      } else if (r->create_revision != mine || clock::now() < sess->valid_until()) {
        machine.on_probe(r->create_revision, r->revision);
      }
      publish();
    }
  }

  void start() {
    if (started) return;
    started = true;
    sess->add_listener(this);
    asio::co_spawn(strand, contend(), asio::bind_cancellation_slot(stop_contend.slot(), asio::detached));
    if (opts.contend)
      asio::co_spawn(strand, probe(), asio::bind_cancellation_slot(stop_probe.slot(), asio::detached));
  }

  asio::awaitable<result<void>> shutdown() {
    auto self = shared_from_this();
    if (stopping) co_return result<void>();
    stopping = true;
    stop_contend.emit(asio::cancellation_type::terminal);
    stop_probe.emit(asio::cancellation_type::terminal);
    break_watch();
    held.store(false);
    token.store(0);
    error_code failed;
    if (started && machine.my_token() != 0) {
      const std::string key = machine.my_key();
      const std::int64_t mine = machine.my_token();
      auto r = co_await etcd::with_deadline(recipe::release(*client, key, mine), opts.request_timeout);
      if (!r) failed = r.error();
    }
    machine.on_released();
    publish();
    sess->remove_listener(this);
    co_await sess->close();
    for (auto& w : subscribers)
      if (auto q = w.lock()) q->close();
    if (failed) co_return failed;
    co_return result<void>();
  }
};

}  // namespace detail

lock_manager::lock_manager(executor_type ex, options opts)
    : state_(std::make_shared<detail::manager_state>(std::move(ex), std::move(opts))),
      default_subscription_(subscribe()) {}

lock_manager::~lock_manager() {
  if (!state_) return;
  asio::dispatch(state_->strand, [s = state_] {
    if (!s->started || s->stopping) {
      for (auto& w : s->subscribers)
        if (auto q = w.lock()) q->close();
      return;
    }
    asio::co_spawn(s->strand, s->shutdown(), asio::detached);
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
  asio::dispatch(state_->strand, [s = state_, cb = std::move(cb)]() mutable { s->acquired_callbacks.push_back(std::move(cb)); });
}
void lock_manager::on_lost(callback cb) {
  asio::dispatch(state_->strand, [s = state_, cb = std::move(cb)]() mutable { s->lost_callbacks.push_back(std::move(cb)); });
}
void lock_manager::on_holder_changed(callback cb) {
  asio::dispatch(state_->strand, [s = state_, cb = std::move(cb)]() mutable { s->holder_callbacks.push_back(std::move(cb)); });
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
