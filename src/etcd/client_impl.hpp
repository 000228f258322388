#pragma once
// The etcd client's state and policy: endpoint choice, the keep-alive connection pool (slots granted first come, first
// served), retries, auth. client.cpp has the public calls and the watch stream, txn_batch.cpp the batched txns.
// Encoding lives in codec.cpp and HTTP in transport/.

#include <clusterlock/etcd/client.hpp>

#include "error_label.hpp"
#include "etcd/codec.hpp"
#include "etcd/scope_exit.hpp"
#include "transport/endpoint.hpp"
#include "transport/http_connection.hpp"
#include "transport/tls_context.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <deque>
#include <memory>
#include <mutex>
#include <random>

namespace clusterlock::etcd {

namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace client_detail {

using boost::system::error_code;

[[noreturn]] inline void throw_invalid(const std::string& what) {
  throw boost::system::system_error(make_error_code(errc::invalid_options), what);
}

// Errors of the exchange itself (no usable reply): another endpoint may do better.
inline bool is_transport_failure(const error_code& ec) {
  return ec == errc::unavailable || ec == errc::timeout || ec == errc::tls_handshake_failed ||
         ec == errc::not_tls || ec == errc::malformed_response;
}

}  // namespace client_detail

struct client::impl : std::enable_shared_from_this<client::impl> {
  using error_code = boost::system::error_code;
  asio::any_io_executor ex;
  client_config cfg;
  std::vector<transport::endpoint> endpoints;
  std::size_t current = 0;  // index into endpoints: where new connections go
  std::shared_ptr<asio::ssl::context> tls;
  transport::transport_options topts;

  // Unary connections: idle ones wait here, the most recently used last; `open_count` counts idle and busy ones.
  struct idle_connection {
    std::unique_ptr<transport::http_connection> conn;
    std::chrono::steady_clock::time_point since;
  };
  std::vector<idle_connection> idle;
  // Busy ones, lent out by acquire() until release(): close() must reach them too, to abort their exchanges.
  std::vector<transport::http_connection*> lent;
  std::size_t open_count = 0;
  // Coroutines waiting for a connection slot, first come first served. A freed slot is granted to the first of them
  // (taken out of the line, counted in `granted`) and is not free to anyone else until it runs and takes it: a
  // request asked later (a coroutine resumed at once by its reply, asking again) took it first, and the waiter went
  // to the back of the line, starving a lease keepalive behind a burst until the lease expired.
  struct slot_waiter {
    asio::steady_timer timer;
    bool granted = false;
  };
  std::deque<slot_waiter*> waiters;
  std::size_t granted = 0;

  std::string token;  // auth token; empty: none yet
  std::mt19937_64 rng{std::random_device{}()};
  std::uint64_t generation = 0;  // bumped by close(): in-flight work sees it and stops
  // Every call and its outcome (request_stats()): read from any thread, so under a lock (taken once a call).
  mutable std::mutex stats_mutex;
  clusterlock::request_stats stats;

  impl(asio::any_io_executor e, client_config c) : ex(std::move(e)), cfg(std::move(c)) {
    using client_detail::throw_invalid;
    if (cfg.endpoints.empty()) throw_invalid("no etcd endpoints given");
    bool any_tls = false;
    for (const auto& url : cfg.endpoints) {
      auto ep = transport::parse_endpoint(url);
      if (!ep) throw_invalid("bad etcd endpoint '" + url + "': " + transport::describe_endpoint_error(url));
      any_tls = any_tls || ep->tls;
      endpoints.push_back(std::move(*ep));
    }
    if (cfg.request_timeout.count() <= 0) throw_invalid("request_timeout must be positive");
    if (cfg.max_connections == 0) throw_invalid("max_connections must be at least 1");
    if (cfg.max_response_size == 0 || cfg.max_watch_message_size == 0) throw_invalid("size bounds must be positive");
    if (cfg.retry.initial_backoff.count() < 0 || cfg.retry.max_backoff < cfg.retry.initial_backoff)
      throw_invalid("retry backoff: need 0 <= initial_backoff <= max_backoff");
    if (cfg.retry.max_attempts < 0) throw_invalid("retry.max_attempts must not be negative");
    if (cfg.auth.user.empty() != cfg.auth.password.empty()) throw_invalid("auth needs both user and password");
    if (any_tls) {
      std::string message;
      auto ctx = transport::make_tls_context(cfg.tls, &message);
      if (!ctx) throw_invalid("TLS: " + message);
      tls = std::move(*ctx);
    }
    topts.max_body = cfg.max_response_size;
    topts.max_line = cfg.max_watch_message_size;
    topts.connects = std::make_shared<std::uint64_t>(0);
  }

  int attempts() const {
    if (cfg.retry.max_attempts > 0) return cfg.retry.max_attempts;
    return static_cast<int>(std::max<std::size_t>(2, 2 * endpoints.size()));
  }

  // After a failure on endpoint `failed`, new connections go to the next one (unless someone moved on already).
  void move_on_from(std::size_t failed) {
    if (current == failed) current = (current + 1) % endpoints.size();
  }

  asio::awaitable<void> backoff(int attempt) {
    // Full jitter: uniform in [0, min(max, initial * 2^n)].
    auto cap = cfg.retry.initial_backoff * (1LL << std::min(attempt, 20));
    cap = std::min<std::chrono::milliseconds>(cap, cfg.retry.max_backoff);
    std::uniform_int_distribution<long long> pick(0, cap.count());
    asio::steady_timer t(ex, std::chrono::milliseconds(pick(rng)));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }

  std::size_t free_slots() const {
    return (open_count < cfg.max_connections ? cfg.max_connections - open_count : 0) + idle.size();
  }

  // Grants the slots that are free and not yet granted to the first waiters.
  void grant_waiters() {
    while (!waiters.empty() && free_slots() > granted) {
      auto* w = waiters.front();
      waiters.pop_front();
      w->granted = true;
      ++granted;
      w->timer.cancel();
    }
  }

  // A connection to the current endpoint, waiting in line for a slot when max_connections are busy.
  // `gen`: the generation the caller started in; a close() while it waits here ends the wait.
  asio::awaitable<result<std::unique_ptr<transport::http_connection>>> acquire(std::uint64_t gen) {
    if (!waiters.empty() || free_slots() <= granted) {
      slot_waiter w{asio::steady_timer(ex, asio::steady_timer::time_point::max())};
      waiters.push_back(&w);
      // Leaving without the slot (closed, cancelled, or ended by an exception at a co_await): out of the line, and
      // a slot granted to us goes to the next waiter.
      detail::scope_exit leave_line([&] {
        if (!w.granted) {
          std::erase(waiters, &w);
          return;
        }
        --granted;
        grant_waiters();
      });
      while (!w.granted) {
        // Ends with operation_aborted when granted, closed or cancelled: the flags tell which.
        co_await w.timer.async_wait(asio::as_tuple(asio::use_awaitable));
        if (gen != generation) co_return error_code(asio::error::operation_aborted);
        auto cs = co_await asio::this_coro::cancellation_state;
        if (cs.cancelled() != asio::cancellation_type::none) co_return error_code(asio::error::operation_aborted);
      }
      leave_line.dismiss();
      --granted;
    }
    const auto& ep = endpoints[current];
    std::unique_ptr<transport::http_connection> conn;
    while (!idle.empty() && !conn) {
      auto candidate = std::move(idle.back().conn);
      idle.pop_back();
      if (candidate->is_open() && candidate->where().url == ep.url) {
        conn = std::move(candidate);
      } else {
        --open_count;  // idle connection to an endpoint we left, or closed by the peer
      }
    }
    if (!conn) {
      ++open_count;
      conn = std::make_unique<transport::http_connection>(ex, ep, tls, topts);
    }
    lent.push_back(conn.get());
    co_return conn;
  }

  // `gen`: the generation the connection was acquired in. One lent out before a close() is no longer counted
  // (close() reset the count and closed it): counting it down again would wrap open_count around and make every
  // later acquire() wait forever.
  void release(std::unique_ptr<transport::http_connection> conn, std::uint64_t gen) {
    std::erase(lent, conn.get());
    if (gen != generation) {
      conn.reset();
    } else if (conn && conn->is_open()) {
      idle.push_back({std::move(conn), std::chrono::steady_clock::now()});
    } else {
      --open_count;
    }
    trim_idle();
    grant_waiters();
  }

  // Closes the connections beyond max_idle_connections that nobody took for idle_linger: the oldest idle ones,
  // as acquire() takes the most recent. Nobody waits for a slot then: every one of them is free.
  void trim_idle() {
    const auto stale = std::chrono::steady_clock::now() - cfg.idle_linger;
    std::size_t drop = 0;
    while (idle.size() - drop > std::max<std::size_t>(cfg.max_idle_connections, 1) && idle[drop].since <= stale) ++drop;
    if (drop == 0) return;
    idle.erase(idle.begin(), idle.begin() + static_cast<std::ptrdiff_t>(drop));
    open_count -= drop;
  }

  void report(diagnostic::severity_type severity, std::string message, error_code ec, std::string endpoint = {},
              unsigned http_status = 0) const {
    if (!cfg.diagnostics) return;
    diagnostic d;
    d.severity = severity;
    d.message = std::move(message);
    d.error = ec;
    d.endpoint = std::move(endpoint);
    d.http_status = http_status;
    try {
      cfg.diagnostics(d);
    } catch (...) {  // a diagnostics handler must not break a request
    }
  }

  // A failed attempt of a request, said once with what happens next. Cancellations are not failures: whoever
  // cancelled knows.
  // `http_status`: what the endpoint answered, when it answered (0: no reply).
  void report_attempt(http::verb method, const std::string& target, std::size_t endpoint, const error_code& ec,
                      int attempt, int max, bool again, unsigned http_status = 0) const {
    if (!cfg.diagnostics || ec == asio::error::operation_aborted) return;
    std::string m = "etcd request " + std::string(http::to_string(method)) + " " + target + " to " +
                    endpoints[endpoint].url + " failed (attempt " + std::to_string(attempt + 1) + " of " +
                    std::to_string(max) + "): ";
    if (http_status != 0) m += "HTTP " + std::to_string(http_status) + ": ";
    m += ec.message();
    m += again ? "; trying again" + (endpoints.size() > 1 ? " on " + endpoints[current].url : std::string())
               : "; giving up on this call (the caller retries if it can)";
    report(diagnostic::severity_type::warning, std::move(m), ec, endpoints[endpoint].url, http_status);
  }

  void report_reauthentication(const std::string& target) const {
    report(diagnostic::severity_type::info, "etcd refused the auth token for " + target + " (expired or revoked): authenticating as '" +
                                 cfg.auth.user + "' again",
           make_error_code(errc::unauthenticated));
  }

  // One request, counted once (request_stats()) whatever its attempts.
  template <class T>
  asio::awaitable<result<T>> call(http::verb method, std::string target, std::string body, idempotency safety,
                                  result<T> (*decode)(std::string_view)) {
    // A cancelled call may end by an exception at a co_await (Asio's way with a cancelled coroutine): counted too.
    detail::scope_exit cancelled([this] { count(asio::error::operation_aborted); });
    result<T> r = co_await attempt_call(method, std::move(target), std::move(body), safety, decode);
    cancelled.dismiss();
    count(r ? error_code{} : r.error());
    co_return r;
  }

  void count(const error_code& ec) {
    std::lock_guard lock(stats_mutex);
    ++stats.requests;
    if (!ec) return;
    ++stats.failures;
    ++stats.failures_by_error[detail::error_label(ec)];
  }

  // One request with endpoint fail-over, backoff, and one re-authentication.
  template <class T>
  asio::awaitable<result<T>> attempt_call(http::verb method, std::string target, std::string body, idempotency safety,
                                  result<T> (*decode)(std::string_view)) {
    const auto gen = generation;
    error_code last = make_error_code(errc::unavailable);
    bool reauthenticated = false;
    const int max = attempts();
    for (int attempt = 0; attempt < max; ++attempt) {
      if (attempt >= static_cast<int>(endpoints.size())) co_await backoff(attempt - static_cast<int>(endpoints.size()));
      if (gen != generation) co_return error_code(asio::error::operation_aborted);
      if (needs_token() && target != "/v3/auth/authenticate") {
        // (GCC 12 miscompiles co_await inside an if's condition or init-statement: keep it a statement.)
        const error_code ec = co_await authenticate_once();
        if (ec) {
          if (!client_detail::is_transport_failure(ec) && ec != errc::unavailable) co_return ec;
          last = ec;
          continue;
        }
      }
      auto conn = co_await acquire(gen);
      if (!conn) co_return conn.error();
      // Given back on every exit, also when the exchange ends by an exception: a connection lost here would keep
      // its slot (and its entry in `lent`) for good, and with max_connections of them every later call waits.
      auto held = std::move(*conn);
      detail::scope_exit give_back([&] {
        if (held) release(std::move(held), gen);
      });
      const std::size_t used = current;
      transport::http_request req{method, target, body, cfg.auth.user.empty() ? std::string() : token};
      bool sent = false;
      auto reply = co_await held->exchange(req, cfg.request_timeout, &sent);
      give_back.run();
      if (!reply) {
        last = reply.error();
        if (last == asio::error::operation_aborted) {
          // Cancelled mid-exchange, usually by the caller's deadline (with_deadline with the same request_timeout
          // fires just before our own timeout would). The connection is closed anyway, so the next one may as
          // well go to the next endpoint: otherwise a frozen member (socket open, no answer) gets every later
          // request too, and a short lease expires although a quorum is up.
          move_on_from(used);
          co_return last;
        }
        if (client_detail::is_transport_failure(last) || last == errc::response_too_large) {
          move_on_from(used);
          const bool again = (safety == idempotency::safe || !sent) && attempt + 1 < max;
          report_attempt(method, target, used, last, attempt, max, again);
          if (safety == idempotency::safe || !sent) continue;
        }
        co_return last;
      }
      if (reply->status == 200) co_return decode(reply->body);
      last = codec::decode_error(reply->status, reply->body);
      if (last == errc::unauthenticated && !cfg.auth.user.empty() && !reauthenticated) {
        reauthenticated = true;
        token.clear();  // stale: authenticate again before the retry
        report_reauthentication(target);
        --attempt;      // the retry after a re-authentication is free
        continue;
      }
      if (last == errc::unavailable || last == errc::timeout || last == errc::not_etcd) {
        move_on_from(used);
        // etcd says unavailable/timeout also after it may have applied a write: only safe ones go again. What is
        // not etcd applied nothing, and another endpoint may be etcd.
        const bool again = safety == idempotency::safe || last == errc::not_etcd;
        report_attempt(method, target, used, last, attempt, max, again && attempt + 1 < max, reply->status);
        if (again) continue;
      }
      co_return last;
    }
    co_return last;
  }

  bool needs_token() const { return !cfg.auth.user.empty() && token.empty(); }

  asio::awaitable<error_code> authenticate_once() {
    auto r = co_await call<std::string>(http::verb::post, "/v3/auth/authenticate",
                                        codec::encode_authenticate(cfg.auth.user, cfg.auth.password),
                                        idempotency::safe, codec::decode_authenticate);
    if (!r) co_return r.error() == errc::invalid_argument ? make_error_code(errc::auth_failed) : r.error();
    token = std::move(*r);
    co_return error_code{};
  }

  // ---- Batched txns (txn_batch.cpp)
  struct batch_member;
  std::deque<std::shared_ptr<batch_member>> batch_pending;  // asked, not yet sent
  int batches_in_flight = 0;
  asio::awaitable<result<txn_response>> txn_batched(txn_request req);
  void pump_batches();
  static asio::awaitable<void> send_batch(std::shared_ptr<impl> self, std::vector<std::shared_ptr<batch_member>> batch);
  void fail_pending_batches();

  void close() {
    fail_pending_batches();
    ++generation;
    idle.clear();
    // Closing the busy ones makes their exchanges end now with operation_aborted (release() then drops them).
    for (auto* conn : lent) conn->close();
    lent.clear();
    open_count = 0;
    for (auto* w : waiters) w->timer.cancel();
  }
};

}  // namespace clusterlock::etcd
