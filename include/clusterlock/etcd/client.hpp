#pragma once
// A small coroutine client for etcd's v3 JSON gateway (HTTP/1.1, Boost.Beast underneath).
//
// Every async_* takes any Asio completion token and completes with (error_code, result).
// Cancellation: each operation supports terminal cancellation through the token's cancellation
// slot; a cancelled operation completes with asio::error::operation_aborted and closes the
// connection it was using (a half-done HTTP exchange cannot be reused). A cancelled write may or
// may not have been applied by etcd.
//
// Retries: requests that are safe to repeat (reads, keepalive, revoke, time-to-live, auth, and
// writes the caller marks idempotent, such as a txn guarded by compares) are retried on the next
// endpoint and then with backoff (client_config::retry). Other writes are retried only when the
// request never left this process.

#include <clusterlock/detail/async_run.hpp>
#include <clusterlock/error.hpp>
#include <clusterlock/etcd/client_config.hpp>
#include <clusterlock/etcd/types.hpp>
#include <clusterlock/stats.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <memory>

namespace clusterlock::etcd {

/// Is a write safe to send again after an ambiguous failure (sent, no reply)?
enum class idempotency { unsafe, safe };

class watch_stream;

class client {
 public:
  using executor_type = boost::asio::any_io_executor;

  /// Validates `config` (endpoints parse as http/https URLs, TLS files readable, positive
  /// timeouts) and throws boost::system::system_error(errc::invalid_options) with a message that
  /// names the bad field. Does no I/O.
  client(executor_type ex, client_config config);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  executor_type get_executor() const noexcept;
  const client_config& config() const noexcept;

  // ---- Coroutine interface: what the other layers of clusterlock use.
  boost::asio::awaitable<result<range_response>> range(range_request req);
  boost::asio::awaitable<result<put_response>> put(put_request req, idempotency = idempotency::unsafe);
  boost::asio::awaitable<result<delete_range_response>> delete_range(delete_range_request req,
                                                                     idempotency = idempotency::unsafe);
  boost::asio::awaitable<result<txn_response>> txn(txn_request req, idempotency = idempotency::unsafe);
  /// A txn that is safe to repeat, sent together with the other txn_batched calls asked while earlier ones are on
  /// their way: they run as the nested txns of one etcd txn (etcd 3.3+), in the order asked, at one revision (keys
  /// that two of them create share a create revision). Up to 4 batches are on their way at once; a call asked while
  /// fewer are is sent at once (alone, if nothing else waits): no added wait.
  /// Txns that write the same key never share a batch; one that deletes a range goes alone. When etcd refuses a
  /// batch as a whole (a permission, a size), each of its txns is sent again alone. Cancellation: terminal; a txn
  /// already sent may still be applied.
  boost::asio::awaitable<result<txn_response>> txn_batched(txn_request req);
  boost::asio::awaitable<result<lease_grant_response>> lease_grant(std::chrono::seconds ttl, std::int64_t id = 0);
  boost::asio::awaitable<result<lease_keepalive_response>> lease_keepalive(std::int64_t id);
  boost::asio::awaitable<result<lease_revoke_response>> lease_revoke(std::int64_t id);
  boost::asio::awaitable<result<lease_time_to_live_response>> lease_time_to_live(std::int64_t id, bool keys = false);
  boost::asio::awaitable<result<compaction_response>> compact(std::int64_t revision, bool physical = true);
  boost::asio::awaitable<result<version_response>> version();
  boost::asio::awaitable<result<health_response>> health();
  /// Authenticates now (normally done on demand).
  boost::asio::awaitable<result<void>> authenticate();

  // ---- Completion-token interface: the same operations for any Asio token.
  template <class Token>
  auto async_range(range_request req, Token&& token) {
    return detail::async_run<range_response>(get_executor(), range(std::move(req)), std::forward<Token>(token));
  }
  template <class Token>
  auto async_put(put_request req, Token&& token) {
    return detail::async_run<put_response>(get_executor(), put(std::move(req)), std::forward<Token>(token));
  }
  template <class Token>
  auto async_delete_range(delete_range_request req, Token&& token) {
    return detail::async_run<delete_range_response>(get_executor(), delete_range(std::move(req)),
                                                    std::forward<Token>(token));
  }
  template <class Token>
  auto async_txn(txn_request req, idempotency idem, Token&& token) {
    return detail::async_run<txn_response>(get_executor(), txn(std::move(req), idem), std::forward<Token>(token));
  }
  template <class Token>
  auto async_lease_grant(std::chrono::seconds ttl, Token&& token) {
    return detail::async_run<lease_grant_response>(get_executor(), lease_grant(ttl), std::forward<Token>(token));
  }
  template <class Token>
  auto async_lease_keepalive(std::int64_t id, Token&& token) {
    return detail::async_run<lease_keepalive_response>(get_executor(), lease_keepalive(id),
                                                       std::forward<Token>(token));
  }
  template <class Token>
  auto async_lease_revoke(std::int64_t id, Token&& token) {
    return detail::async_run<lease_revoke_response>(get_executor(), lease_revoke(id), std::forward<Token>(token));
  }

  /// Closes every connection and fails the operations in flight with operation_aborted.
  void close();

  // ---- Introspection (tests, benchmarks, logs).
  /// TCP connections opened so far (unary and watch).
  std::uint64_t connects() const noexcept;
  /// The URL of the endpoint in use now.
  const std::string& current_endpoint() const noexcept;
  /// Every call so far (watches not included) and the failed ones by error. Any thread.
  clusterlock::request_stats request_stats() const;

 private:
  friend class watch_stream;
  struct impl;
  std::shared_ptr<impl> impl_;  // shared with batched txns in flight (txn_batched)
};

/// One long-lived watch on its own HTTP connection. Messages are read incrementally as etcd's
/// newline-delimited JSON stream; each message is bounded by client_config::max_watch_message_size.
/// It does not reconnect by itself: after an error, open a new one from the last revision seen + 1.
class watch_stream {
 public:
  explicit watch_stream(client& c);
  ~watch_stream();
  watch_stream(const watch_stream&) = delete;
  watch_stream& operator=(const watch_stream&) = delete;

  /// Connects (to the client's current endpoint, moving on when it fails), sends the create
  /// request and reads up to the `created` message; returns that message's header revision (a watch
  /// from now delivers the changes after it). A compacted start_revision is reported as
  /// errc::compacted by the first next(): etcd 3.4 first confirms the watch (`created`) and
  /// cancels it with compact_revision in the message after.
  boost::asio::awaitable<result<std::int64_t>> open(watch_request req);

  /// The next message. Fails with errc::watch_stalled when nothing at all arrives for
  /// `idle_timeout` (zero: wait forever), errc::compacted / errc::watch_canceled when etcd ends
  /// the watch, and with transport errors. Cancellation: terminal; the stream is closed.
  boost::asio::awaitable<result<watch_response>> next(std::chrono::milliseconds idle_timeout);

  template <class Token>
  auto async_next(std::chrono::milliseconds idle_timeout, Token&& token) {
    return detail::async_run<watch_response>(executor_, next(idle_timeout), std::forward<Token>(token));
  }

  void close();
  bool is_open() const noexcept;

 private:
  struct impl;
  boost::asio::any_io_executor executor_;
  std::unique_ptr<impl> impl_;
};

}  // namespace clusterlock::etcd
