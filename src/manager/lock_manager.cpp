// The lock manager's public face: checks options, makes (or joins) the session, and hands each operation to the
// state behind it (manager_state.hpp) on its strand.

#include <clusterlock/lock_manager.hpp>
#include <clusterlock/session.hpp>

#include "manager/manager_state.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include <unistd.h>

namespace clusterlock {

namespace asio = boost::asio;
using boost::system::error_code;
using clock = std::chrono::steady_clock;
using detail::manager_state;

namespace {

std::string default_identity() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string(host) + "-" + boost::uuids::to_string(boost::uuids::random_generator()());
}

options checked(options o, const session_options* shared, const recipe::admission& rule) {
  std::string why;
  auto ec = shared ? validate_lock(o, &why) : validate(o, &why);
  if (!ec && o.watch == watch_scope::predecessor && rule.kind != recipe::admission::kind_type::lock)
    ec = make_error_code(errc::invalid_options),
    why = "watch: predecessor is for plain locks (a semaphore's or a read-write lock's waiter may be admitted by any "
          "key ahead of it going)";
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

}  // namespace


lock_manager::lock_manager(executor_type ex, options opts)
    : lock_manager(std::move(ex), std::move(opts), recipe::admission::lock()) {}

lock_manager::lock_manager(session& s, options opts) : lock_manager(s, std::move(opts), recipe::admission::lock()) {}

lock_manager::lock_manager(executor_type ex, options opts, const recipe::admission& rule)
    : state_([&] {
        auto checked_opts = checked(std::move(opts), nullptr, rule);
        auto s = std::make_shared<detail::session_state>(std::move(ex), session_options_of(checked_opts), false);
        return std::make_shared<manager_state>(std::move(s), std::move(checked_opts), true, rule);
      }()),
      default_subscription_(subscribe()) {}

lock_manager::lock_manager(session& s, options opts, const recipe::admission& rule)
    : state_(std::make_shared<manager_state>(s.state_, checked(std::move(opts), &s.state_->opts, rule), false, rule)),
      default_subscription_(subscribe()) {}

lock_manager::~lock_manager() {
  state_->handle_gone.store(true);  // no callback runs after this, not even one already on its way
  // Posted, never inline: the destructor may run inside one of our own callbacks.
  asio::post(state_->strand, [s = state_] { s->shutdown([](error_code) {}); });
}

void lock_manager::start() {
  asio::dispatch(state_->strand, [s = state_] { s->start(); });
}

void lock_manager::shutdown() {
  asio::dispatch(state_->strand, [s = state_] { s->shutdown([](error_code) {}); });
}

bool lock_manager::have_lock() const noexcept {
  // Checked at the call: a process frozen past its lease's lifetime must not wake up believing.
  return state_->held.load() && clock::now().time_since_epoch().count() < state_->valid_until.load();
}

std::int64_t lock_manager::fencing_token() const noexcept { return have_lock() ? state_->token.load() : 0; }

const std::string& lock_manager::identity() const noexcept { return state_->opts.identity; }

std::string lock_manager::value() const { return state_->current_value(); }

std::string lock_manager::key() const { return state_->current_key(); }

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

lock_stats lock_manager::stats() const { return state_->stats(); }

std::vector<lock_entry> lock_manager::queue() const {
  std::lock_guard lock(state_->view_mutex);
  std::vector<lock_entry> out;
  out.reserve(state_->view.size());
  for (const auto& [position, e] : state_->view) out.push_back(e);
  return out;
}

std::optional<lock_entry> lock_manager::holder() const {
  std::lock_guard lock(state_->view_mutex);
  if (state_->view.empty()) return std::nullopt;
  const auto& first = state_->view.begin()->second;
  // Following only the key ahead, the first key seen is the holder only when it is ours and we hold.
  if (state_->follows_predecessor() && (first.key != state_->my_key || !state_->held.load())) return std::nullopt;
  return first;
}

namespace detail {

void initiate_acquire(const std::shared_ptr<manager_state>& s, done_handler h) {
  asio::dispatch(s->strand, [s, h = std::move(h)]() mutable { s->acquire(std::move(h)); });
}

void initiate_try_acquire(const std::shared_ptr<manager_state>& s, try_handler h) {
  asio::dispatch(s->strand, [s, h = std::move(h)]() mutable { s->try_acquire(std::move(h)); });
}

void initiate_release(const std::shared_ptr<manager_state>& s, done_handler h) {
  asio::dispatch(s->strand, [s, h = std::move(h)]() mutable { s->release(std::move(h)); });
}

void initiate_shutdown(const std::shared_ptr<manager_state>& s, done_handler h) {
  asio::dispatch(s->strand, [s, h = std::move(h)]() mutable { s->shutdown(std::move(h)); });
}

}  // namespace detail

lock_manager::executor_type lock_manager::get_executor() const noexcept { return state_->strand; }

etcd::client& lock_manager::etcd_client() const noexcept { return state_->client; }

}  // namespace clusterlock
