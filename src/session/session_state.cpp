#include "session/session_state.hpp"

#include "etcd/with_deadline.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>

namespace clusterlock::detail {

namespace asio = boost::asio;

namespace {

session_options checked(session_options o) {
  std::string why;
  if (auto ec = validate(o, &why)) throw boost::system::system_error(ec, why);
  return o;
}

}  // namespace

etcd::client_config client_config_of(const session_options& o) {
  etcd::client_config c;
  c.endpoints = o.endpoints;
  c.request_timeout = o.request_timeout;
  c.tls = o.tls;
  c.auth = o.auth;
  c.retry = o.retry;
  c.max_response_size = o.max_response_size;
  return c;
}

session_state::session_state(asio::any_io_executor ex, session_options o, bool has_handle)
    : strand(asio::make_strand(std::move(ex))),
      opts(checked(std::move(o))),
      client(std::make_shared<etcd::client>(strand, client_config_of(opts))),
      lease(std::make_shared<lease_keeper>(client, opts.ttl, opts.clock_margin, opts.request_timeout)),
      hub(std::make_shared<watch_hub>(client, opts.watch_prefix)),
      handle_alive_(has_handle) {
  lease->add_listener(this);
}

probe_keys::probe_keys(std::vector<etcd::key_value> kvs) {
  keys_.reserve(kvs.size());
  for (auto& kv : kvs) keys_.emplace_back(std::move(kv.key), kv.create_revision);
  // etcd returns a range in key order; sorting again costs little and does not rely on it.
  if (!std::is_sorted(keys_.begin(), keys_.end())) std::sort(keys_.begin(), keys_.end());
}

std::int64_t probe_keys::create_revision(const std::string& key) const {
  auto it = std::lower_bound(keys_.begin(), keys_.end(), key, [](const auto& e, const std::string& k) { return e.first < k; });
  return it != keys_.end() && it->first == key ? it->second : 0;
}

bool session_state::claim(const std::string& name, lock_listener* l) {
  auto& line = claims_[name];
  if (std::find(line.begin(), line.end(), l) == line.end()) line.push_back(l);
  return line.front() == l;
}

void session_state::unclaim(const std::string& name, lock_listener* l) {
  auto it = claims_.find(name);
  if (it == claims_.end()) return;
  auto& line = it->second;
  const bool was_first = line.front() == l;
  std::erase(line, l);
  if (line.empty()) {
    claims_.erase(it);
  } else if (was_first) {
    line.front()->on_claim_turn();
  }
}

void session_state::request_contend(lock_listener* l) {
  if (contending_ < max_contending) {
    ++contending_;
    l->run_contend();
  } else {
    contend_line_.push_back(l);
  }
}

void session_state::contend_ended() {
  --contending_;
  if (contend_line_.empty()) return;
  auto* next = contend_line_.front();
  contend_line_.pop_front();
  ++contending_;
  next->run_contend();
}

void session_state::leave_contend_line(lock_listener* l) { std::erase(contend_line_, l); }

void session_state::join(lock_listener* l, const std::string& prefix) {
  listeners_.push_back(l);
  hub->add(prefix, l);
  if (!probing_ && !closed_) {
    probing_ = true;
    asio::co_spawn(strand, probe_loop(), asio::bind_cancellation_slot(stop_probe_.slot(), asio::detached));
  }
}

asio::awaitable<void> session_state::leave(lock_listener* l) {
  auto self = shared_from_this();
  std::erase(listeners_, l);
  hub->remove(l);
  if (listeners_.empty() && !handle_alive_) co_await close();
}

void session_state::handle_dropped() {
  handle_alive_ = false;
  if (listeners_.empty()) asio::co_spawn(strand, close(), asio::detached);
}

asio::awaitable<void> session_state::close() {
  auto self = shared_from_this();
  if (closed_) co_return;
  closed_ = true;
  stop_probe_.emit(asio::cancellation_type::terminal);
  hub->close();
  lease->remove_listener(this);
  co_await lease->close();
}

void session_state::on_lease_renewed() {
  for (auto* l : std::vector(listeners_)) l->on_lease_renewed();
}

void session_state::on_lease_lost(std::int64_t id) {
  for (auto* l : std::vector(listeners_)) l->on_lease_lost(id);
}

void session_state::on_keepalive_failed(boost::system::error_code why) {
  last_failure = why;
  // The member we talk to may be frozen or cut off: a watch on it would say nothing. Reopen it (the client has
  // moved on to the next endpoint).
  hub->reopen();
}

// One probe within one request_timeout. With several endpoints the first try gets half of it: a frozen member
// answers nothing, the client moves on after the timeout, and the second half reaches another member. (With one
// try a frozen member in use meant an UNKNOWN, for about a probe interval, for a lock that stood all along.)
// After every failed try the watch is reopened: it may sit on the same cut-off member, and would stay silent.
asio::awaitable<result<etcd::range_response>> session_state::probe_range(const etcd::range_request& req) {
  using steady = std::chrono::steady_clock;
  const auto deadline = steady::now() + opts.request_timeout;
  const int tries = opts.endpoints.size() > 1 ? 2 : 1;
  steady::duration budget = tries == 1 ? opts.request_timeout : opts.request_timeout / 2;
  for (int attempt = 1;; ++attempt) {
    auto r = co_await etcd::with_deadline(client->range(req), budget);
    if (r || closed_) co_return r;
    hub->reopen();
    budget = deadline - steady::now();
    if (attempt == tries || budget <= steady::duration::zero()) co_return r;
  }
}

asio::awaitable<void> session_state::probe_loop() {
  auto self = shared_from_this();
  asio::steady_timer timer(strand);
  etcd::range_request everything;
  everything.key = opts.watch_prefix;
  everything.range_end = etcd::prefix_range_end(opts.watch_prefix);
  everything.keys_only = true;  // linearizable (the default): proves quorum, and that the keys stood after we asked
  while (!closed_) {
    timer.expires_after(opts.probe_interval);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec || closed_) break;
    // Sorted, for binary search: with thousands of locks a linear search per lock made every probe quadratic.
    std::vector<lock_listener*> asking;
    for (auto* l : listeners_)
      if (l->wants_probe()) asking.push_back(l);
    if (asking.empty()) continue;
    std::sort(asking.begin(), asking.end());
    auto was_asking = [&](lock_listener* l) { return std::binary_search(asking.begin(), asking.end(), l); };
    auto r = co_await probe_range(everything);
    if (closed_) break;
    if (!r) {
      last_failure = r.error();
      for (auto* l : listeners_)
        if (was_asking(l)) l->on_probe_failed(r.error());
      continue;
    }
    const probe_keys keys(std::move(r->kvs));
    for (auto* l : std::vector(listeners_))
      if (was_asking(l)) l->on_probe(keys, r->header.revision);
  }
}

}  // namespace clusterlock::detail
