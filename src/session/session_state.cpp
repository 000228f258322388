#include "session/session_state.hpp"

#include "etcd/scope_exit.hpp"
#include "etcd/with_deadline.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <cstdio>

namespace clusterlock::detail {

using from = diagnostic::source_type;
using level = diagnostic::severity_type;

namespace asio = boost::asio;

namespace {

session_options checked(session_options o) {
  std::string why;
  if (auto ec = validate(o, &why)) throw boost::system::system_error(ec, why);
  return o;
}

}  // namespace

std::string lease_hex(std::int64_t lease) {
  char text[24];
  std::snprintf(text, sizeof text, "%llx", static_cast<unsigned long long>(lease));
  return text;
}

etcd::client_config client_config_of(const session_options& o, std::shared_ptr<diagnostics_sink> diagnostics) {
  etcd::client_config c;
  if (diagnostics && diagnostics->enabled())
    c.diagnostics = [d = std::move(diagnostics)](const diagnostic& what) { d->report(from::request, what); };
  c.endpoints = o.endpoints;
  c.request_timeout = o.request_timeout;
  c.tls = o.tls;
  c.auth = o.auth;
  c.retry = o.retry;
  c.max_response_size = o.max_response_size;
  // The contend coroutines' enqueue and release txns beyond max_connections share requests (etcd::client::txn_batched).
  c.max_connections = session_state::max_connections;
  c.max_idle_connections = 2;
  return c;
}

session_state::session_state(asio::any_io_executor ex, session_options o, bool has_handle)
    : strand(asio::make_strand(std::move(ex))),
      opts(checked(std::move(o))),
      diagnostics(std::make_shared<diagnostics_sink>(strand, opts.diagnostics)),
      metrics(std::make_shared<session_metrics>()),
      client(std::make_shared<etcd::client>(strand, client_config_of(opts, diagnostics))),
      lease(std::make_shared<lease_keeper>(client, opts.ttl, opts.clock_margin, opts.request_timeout, metrics)),
      hub(std::make_shared<watch_hub>(client, opts.watch_prefix, diagnostics, metrics)),
      handle_alive_(has_handle),
      // A keys-only entry takes about 100 bytes of JSON plus the key in base64: 256 leaves room for keys of
      // 100 characters. A page that is still too large makes the next ones smaller (probe_all()).
      probe_page_limit_(std::clamp<std::int64_t>(static_cast<std::int64_t>(opts.max_response_size / 256), 1, 5000)) {
  lease->add_listener(this);
}

session_stats session_state::stats() const {
  auto out = metrics->snapshot(std::chrono::steady_clock::now());
  out.watch_prefix = opts.watch_prefix;
  out.requests = client->request_stats();
  return out;
}

probe_keys::probe_keys(std::vector<etcd::key_value> kvs) {
  keys_.reserve(kvs.size());
  for (auto& kv : kvs) keys_.emplace_back(std::move(kv.key), kv.create_revision);
  // etcd returns a range in key order; sorting again costs little and does not rely on it.
  if (!std::is_sorted(keys_.begin(), keys_.end())) std::sort(keys_.begin(), keys_.end());
}

probe_keys::probe_keys(std::vector<etcd::key_value> kvs, std::vector<std::string> asked) : probe_keys(std::move(kvs)) {
  std::sort(asked.begin(), asked.end());
  asked_ = std::move(asked);
}

bool probe_keys::covers(const std::string& key) const {
  return !asked_ || std::binary_search(asked_->begin(), asked_->end(), key);
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

std::vector<session_state::member> session_state::members() const {
  std::vector<member> ms;
  ms.reserve(listeners_.size());
  for (auto* l : listeners_) ms.push_back({l, joined_.at(l)});
  return ms;
}

bool session_state::still_joined(const member& m) const {
  auto it = joined_.find(m.l);
  return it != joined_.end() && it->second == m.joined;
}

void session_state::join(lock_listener* l, const std::string& prefix, bool follow_prefix) {
  if (joined_.contains(l)) return;
  listeners_.push_back(l);
  joined_[l] = ++joins_;
  if (follow_prefix) hub->add(prefix, l);
  if (closed_) {
    // A lock started on a closed session would otherwise ask for a lease (errc::not_started) forever, unaware.
    asio::post(strand, [self = shared_from_this(), m = member{l, joins_}] {
      if (self->still_joined(m)) m.l->on_session_closed();
    });
    return;
  }
  if (!probing_) {
    probing_ = true;
    asio::co_spawn(strand, probe_loop(), asio::bind_cancellation_slot(stop_probe_.slot(), asio::detached));
  }
}

asio::awaitable<void> session_state::leave(lock_listener* l) {
  auto self = shared_from_this();
  std::erase(listeners_, l);
  joined_.erase(l);
  hub->remove(l);
  if (listeners_.empty() && !handle_alive_) co_await close();
}

void session_state::handle_dropped() {
  handle_alive_ = false;
  if (listeners_.empty()) asio::co_spawn(strand, close(), asio::detached);
}

asio::awaitable<result<void>> session_state::close() {
  auto self = shared_from_this();
  if (closed_) {
    // Idempotent: the first call's result, once it is over.
    if (!close_done_) {
      asio::steady_timer done(strand, asio::steady_timer::time_point::max());
      close_waiters_.push_back(&done);
      detail::scope_exit leave_line([&] { std::erase(close_waiters_, &done); });
      co_await done.async_wait(asio::as_tuple(asio::use_awaitable));
      leave_line.run();
      if (!close_done_) co_return boost::system::error_code(asio::error::operation_aborted);
    }
    if (close_error_) co_return close_error_;
    co_return result<void>();
  }
  closed_ = true;
  close_error_ = asio::error::operation_aborted;  // until the revoke says otherwise (a cancelled close keeps it)
  detail::scope_exit finished([this] {
    close_done_ = true;
    for (auto* w : close_waiters_) w->cancel();
  });
  // Everything that needs no I/O first, before any co_await: a cancelled close() still stops the session.
  stop_probe_.emit(asio::cancellation_type::terminal);
  hub->close();
  lease->remove_listener(this);
  const std::int64_t lost = lease->stop();
  // Every lock: its lease is gone (its key goes with the revoke), and the session is over. Posted, outside this
  // bookkeeping; each lock checked before it is told, as it may have left (and gone) meanwhile.
  asio::post(strand, [self, ms = members(), lost] {
    for (const auto& m : ms) {
      if (lost != 0 && self->still_joined(m)) m.l->on_lease_lost(lost);
      if (self->still_joined(m)) m.l->on_session_closed();
    }
  });
  for (auto* w : std::exchange(loss_waiters_, {})) {
    w->outcome = make_error_code(errc::not_started);
    w->timer->cancel();
  }
  const auto ec = co_await lease->revoke(lost);
  close_error_ = ec;
  if (ec)
    diagnostics->report(from::close, level::warning,
                        "closing the session: revoking lease " + lease_hex(lost) + " failed: " + ec.message() +
                            "; it lives until its TTL runs out (" + std::to_string(lease->granted_ttl().count()) +
                            " s at most), and so do the keys on it",
                        ec);
  if (ec) co_return ec;
  co_return result<void>();
}

void session_state::report_loss(std::int64_t id) {
  if (!loss_waiters_.empty()) {
    for (auto* w : std::exchange(loss_waiters_, {})) {
      w->outcome = id;
      w->timer->cancel();
    }
    return;
  }
  unreported_losses_.push_back(id);
  if (unreported_losses_.size() > max_unreported_losses) unreported_losses_.pop_front();
}

asio::awaitable<result<std::int64_t>> session_state::wait_lease_lost() {
  auto self = shared_from_this();
  // Partial and total cancellation end the wait too (nothing is lost: the next wait reports what this one did not).
  co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
  co_await asio::this_coro::throw_if_cancelled(false);
  if (!unreported_losses_.empty()) {
    const auto id = unreported_losses_.front();
    unreported_losses_.pop_front();
    co_return id;
  }
  if (closed_) co_return make_error_code(errc::not_started);
  asio::steady_timer wake(strand, asio::steady_timer::time_point::max());
  loss_waiter w{&wake, std::nullopt};
  loss_waiters_.push_back(&w);
  detail::scope_exit leave_line([&] { std::erase(loss_waiters_, &w); });
  co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
  leave_line.run();
  // A loss that came before this wait ran again is reported even when the wait was cancelled meanwhile.
  if (w.outcome) co_return *w.outcome;
  co_return boost::system::error_code(asio::error::operation_aborted);
}

void session_state::on_lease_renewed() {
  tell_each(members(), [](lock_listener* l) { l->on_lease_renewed(); });
}

void session_state::on_lease_lost(std::int64_t id) {
  diagnostics->report(from::lease, level::warning,
                      "lease " + lease_hex(id) + " is gone (etcd says it expired or was revoked): every lock on it is "
                      "REMOVED; the next lock that needs a lease gets a new one",
                      make_error_code(errc::lease_not_found));
  report_loss(id);
  tell_each(members(), [id](lock_listener* l) { l->on_lease_lost(id); });
}

void session_state::reopen_watches() {
  hub->reopen();
  tell_each(members(), [](lock_listener* l) { l->reopen_watch(); });
}

void session_state::on_keepalive_failed(boost::system::error_code why) {
  last_failure = why;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(lease->valid_until() -
                                                                          std::chrono::steady_clock::now());
  diagnostics->report(from::keepalive, level::warning,
                      "keepalive of lease " + lease_hex(lease->lease()) + " failed: " + why.message() +
                          "; trying again (the lease is proven alive for " +
                          std::to_string(std::max<long long>(left.count(), 0)) + " ms more); the watch is reopened",
                      why);
  // The member we talk to may be frozen or cut off: a watch on it would say nothing. Reopen it (the client has
  // moved on to the next endpoint).
  reopen_watches();
}

// One probe page within what is left of the probe's deadline. With several endpoints the first try gets half of
// it: a frozen member answers nothing, the client moves on after the timeout, and the second half reaches another
// member. (With one try a frozen member in use meant an UNKNOWN, for about a probe interval, for a lock that stood
// all along.) After every failed try the watch is reopened: it may sit on the same cut-off member, and would stay
// silent.
template <class Reply, class Call>
asio::awaitable<result<Reply>> session_state::probe_call(Call call, std::chrono::steady_clock::time_point deadline) {
  using steady = std::chrono::steady_clock;
  const int tries = opts.endpoints.size() > 1 ? 2 : 1;
  steady::duration budget = deadline - steady::now();
  if (tries == 2) budget /= 2;
  for (int attempt = 1;; ++attempt) {
    if (budget <= steady::duration::zero()) co_return make_error_code(errc::timeout);
    result<Reply> r = co_await etcd::with_deadline(call(), budget);
    if (r || closed_) co_return r;
    if (r.error() == errc::response_too_large) co_return r;  // the next page is made smaller; another try is not
    reopen_watches();
    budget = deadline - steady::now();
    if (attempt == tries) co_return r;
  }
}

asio::awaitable<result<etcd::range_response>> session_state::probe_range(const etcd::range_request& req,
                                                                         std::chrono::steady_clock::time_point deadline) {
  return probe_call<etcd::range_response>([&] { return client->range(req); }, deadline);
}

// Just these keys, in one linearizable read (a txn of ranges, one revision), whatever the length of their queues.
asio::awaitable<result<session_state::probe_result>> session_state::probe_some(const std::vector<std::string>& keys) {
  etcd::txn_request txn;
  for (const auto& key : keys) {
    etcd::range_request r;
    r.key = key;
    r.keys_only = true;
    txn.success.emplace_back(std::move(r));
  }
  auto r = co_await probe_call<etcd::txn_response>([&] { return client->txn(txn, etcd::idempotency::safe); },
                                                   std::chrono::steady_clock::now() + opts.request_timeout);
  if (closed_) co_return make_error_code(errc::not_started);
  if (!r) co_return r.error();
  probe_result out;
  out.revision = r->header.revision;
  for (auto& reply : r->responses)
    if (auto* range = std::get_if<etcd::range_response>(&reply))
      for (auto& kv : range->kvs) out.kvs.push_back(std::move(kv));
  co_return out;
}

// Every key under the watch prefix, in pages of probe_page_limit_ keys, all read at the first page's revision, the
// whole within one request_timeout. (One range of everything failed for good once the reply outgrew
// max_response_size: at many locks, held locks stayed UNKNOWN.) The first page is a linearizable read: it proves
// quorum and currency; the later ones read the same revision.
asio::awaitable<result<session_state::probe_result>> session_state::probe_all() {
  const auto deadline = std::chrono::steady_clock::now() + opts.request_timeout;
  etcd::range_request page;
  page.key = opts.watch_prefix;
  page.range_end = etcd::prefix_range_end(opts.watch_prefix);
  page.keys_only = true;
  probe_result out;
  for (;;) {
    page.limit = probe_page_limit_;
    auto r = co_await probe_range(page, deadline);
    if (closed_) co_return make_error_code(errc::not_started);
    if (!r) {
      if (r.error() == errc::response_too_large && probe_page_limit_ > 1) {
        probe_page_limit_ = std::max<std::int64_t>(1, probe_page_limit_ / 4);  // kept for later probes
        continue;
      }
      co_return r.error();
    }
    if (out.revision == 0) {
      out.revision = r->header.revision;
      page.revision = out.revision;
    }
    const bool more = r->more && !r->kvs.empty();
    for (auto& kv : r->kvs) out.kvs.push_back(std::move(kv));
    if (!more) co_return out;
    page.key = out.kvs.back().key + '\0';  // the next key after the last one read
  }
}

asio::awaitable<void> session_state::probe_loop() {
  auto self = shared_from_this();
  detail::scope_exit stopped([this] { probing_ = false; });
  asio::steady_timer timer(strand);
  while (!closed_) {
    timer.expires_after(opts.probe_interval);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec || closed_) break;
    // Sorted, for binary search: with thousands of locks a linear search per lock made every probe quadratic.
    std::vector<member> asking;
    for (const auto& m : members()) {
      m.l->on_probe_round();
      if (m.l->wants_probe()) asking.push_back(m);
    }
    if (asking.empty()) continue;
    // Linearizable: proves quorum, and that the keys stood after we asked.
    std::optional<std::vector<std::string>> targets = std::vector<std::string>{};
    for (const auto& m : asking)
      if (!m.l->probe_targets(*targets) || targets->size() > max_probe_targets) {
        targets.reset();
        break;
      }
    result<probe_result> r = make_error_code(errc::not_started);
    const auto probe_sent = std::chrono::steady_clock::now();
    if (targets) r = co_await probe_some(*targets);
    else r = co_await probe_all();
    if (closed_) break;
    metrics->probe_done(std::chrono::steady_clock::now() - probe_sent, !r);
    // Each asking lock is told, if it is still there: a lock may leave (and be destroyed), or make others join or
    // leave, inside its callback.
    if (!r) {
      last_failure = r.error();
      diagnostics->report(from::probe, level::warning,
                          "probe of '" + opts.watch_prefix + "' failed: " + r.error().message() +
                              "; the locks held on this session are UNKNOWN until a probe succeeds (next in " +
                              std::to_string(opts.probe_interval.count()) + " ms)",
                          r.error());
      tell_each(asking, [&](lock_listener* l) { l->on_probe_failed(r.error()); });
      continue;
    }
    const probe_keys keys = targets ? probe_keys(std::move(r->kvs), std::move(*targets)) : probe_keys(std::move(r->kvs));
    tell_each(asking, [&](lock_listener* l) { l->on_probe(keys, r->revision); });
  }
}

}  // namespace clusterlock::detail
