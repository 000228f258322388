// The etcd gateway client's public calls and the watch stream; the pool, retries and auth are client_impl.hpp's.

#include "etcd/client_impl.hpp"

namespace clusterlock::etcd {

using boost::system::error_code;
using client_detail::is_transport_failure;

client::client(executor_type ex, client_config config)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(config))) {}
client::~client() = default;

client::executor_type client::get_executor() const noexcept { return impl_->ex; }
const client_config& client::config() const noexcept { return impl_->cfg; }
std::uint64_t client::connects() const noexcept { return *impl_->topts.connects; }
const std::string& client::current_endpoint() const noexcept { return impl_->endpoints[impl_->current].url; }
void client::close() { impl_->close(); }
clusterlock::request_stats client::request_stats() const {
  std::lock_guard lock(impl_->stats_mutex);
  return impl_->stats;
}

asio::awaitable<result<range_response>> client::range(range_request req) {
  return impl_->call(http::verb::post, "/v3/kv/range", codec::encode(req), idempotency::safe, codec::decode_range);
}
asio::awaitable<result<put_response>> client::put(put_request req, idempotency safety) {
  return impl_->call(http::verb::post, "/v3/kv/put", codec::encode(req), safety, codec::decode_put);
}
asio::awaitable<result<delete_range_response>> client::delete_range(delete_range_request req, idempotency safety) {
  return impl_->call(http::verb::post, "/v3/kv/deleterange", codec::encode(req), safety, codec::decode_delete_range);
}
asio::awaitable<result<txn_response>> client::txn(txn_request req, idempotency safety) {
  return impl_->call(http::verb::post, "/v3/kv/txn", codec::encode(req), safety, codec::decode_txn);
}
asio::awaitable<result<txn_response>> client::txn_batched(txn_request req) {
  return impl_->txn_batched(std::move(req));
}
asio::awaitable<result<lease_grant_response>> client::lease_grant(std::chrono::seconds ttl, std::int64_t id) {
  // A repeated grant makes a second lease; the orphan expires on its own, so a retry is harmless.
  return impl_->call(http::verb::post, "/v3/lease/grant", codec::encode_lease_grant(ttl, id), idempotency::safe,
                     codec::decode_lease_grant);
}
asio::awaitable<result<lease_keepalive_response>> client::lease_keepalive(std::int64_t id) {
  return impl_->call(http::verb::post, "/v3/lease/keepalive", codec::encode_lease_keepalive(id), idempotency::safe,
                     codec::decode_lease_keepalive);
}
asio::awaitable<result<lease_revoke_response>> client::lease_revoke(std::int64_t id) {
  return impl_->call(http::verb::post, "/v3/lease/revoke", codec::encode_lease_revoke(id), idempotency::safe,
                     codec::decode_lease_revoke);
}
asio::awaitable<result<lease_time_to_live_response>> client::lease_time_to_live(std::int64_t id, bool keys) {
  return impl_->call(http::verb::post, "/v3/lease/timetolive", codec::encode_lease_time_to_live(id, keys),
                     idempotency::safe, codec::decode_lease_time_to_live);
}
asio::awaitable<result<compaction_response>> client::compact(std::int64_t revision, bool physical) {
  return impl_->call(http::verb::post, "/v3/kv/compaction", codec::encode_compaction(revision, physical),
                     idempotency::safe, codec::decode_compaction);
}
asio::awaitable<result<version_response>> client::version() {
  return impl_->call(http::verb::get, "/version", std::string(), idempotency::safe, codec::decode_version);
}
asio::awaitable<result<health_response>> client::health() {
  return impl_->call(http::verb::get, "/health", std::string(), idempotency::safe, codec::decode_health);
}
asio::awaitable<result<void>> client::authenticate() {
  impl_->token.clear();
  auto ec = co_await impl_->authenticate_once();
  if (ec) co_return ec;
  co_return result<void>();
}

// ---- watch_stream

struct watch_stream::impl {
  client::impl& c;
  std::unique_ptr<transport::http_line_stream> stream;
};

watch_stream::watch_stream(client& c) : executor_(c.get_executor()), impl_(std::make_unique<impl>(*c.impl_)) {}
watch_stream::~watch_stream() = default;

void watch_stream::close() {
  // Only the socket: a next() in flight still uses the stream object and completes with an error.
  if (impl_->stream) impl_->stream->close();
}
bool watch_stream::is_open() const noexcept { return impl_->stream && impl_->stream->is_open(); }

asio::awaitable<result<std::int64_t>> watch_stream::open(watch_request req) {
  auto& c = impl_->c;
  impl_->stream.reset();  // nobody reads it while it is being reopened
  const std::string body = codec::encode_watch_create(req);
  error_code last = make_error_code(errc::unavailable);
  bool reauthenticated = false;
  const int max = c.attempts();
  for (int attempt = 0; attempt < max; ++attempt) {
    if (attempt >= static_cast<int>(c.endpoints.size())) co_await c.backoff(attempt - static_cast<int>(c.endpoints.size()));
    if (c.needs_token()) {
      const error_code ec = co_await c.authenticate_once();
      if (ec) {
        last = ec;
        if (!is_transport_failure(ec) && ec != errc::unavailable) co_return ec;
        continue;
      }
    }
    const std::size_t used = c.current;
    auto stream = std::make_unique<transport::http_line_stream>(c.ex, c.endpoints[used], c.tls, c.topts);
    transport::http_request http_req{http::verb::post, "/v3/watch", body, c.cfg.auth.user.empty() ? std::string() : c.token};
    auto reply = co_await stream->open(http_req, c.cfg.request_timeout);
    if (!reply) {
      last = reply.error();
      if (last == asio::error::operation_aborted) co_return last;
      if (is_transport_failure(last)) {
        c.move_on_from(used);
        c.report_attempt(http::verb::post, "/v3/watch", used, last, attempt, max, attempt + 1 < max);
        continue;
      }
      co_return last;
    }
    if (reply->status != 200) {
      last = codec::decode_error(reply->status, reply->body);
      if (last == errc::unauthenticated && !c.cfg.auth.user.empty() && !reauthenticated) {
        reauthenticated = true;
        c.token.clear();
        c.report_reauthentication("/v3/watch");
        --attempt;
        continue;
      }
      if (last == errc::unavailable || last == errc::timeout || last == errc::not_etcd) {
        c.move_on_from(used);
        c.report_attempt(http::verb::post, "/v3/watch", used, last, attempt, max, attempt + 1 < max, reply->status);
        continue;
      }
      co_return last;
    }
    // The first message says whether the watch was created (or already compacted away).
    auto line = co_await stream->next_line(c.cfg.request_timeout);
    if (!line) {
      last = line.error() == errc::watch_stalled ? make_error_code(errc::timeout) : line.error();
      if (last == asio::error::operation_aborted) co_return last;
      c.move_on_from(used);
      c.report_attempt(http::verb::post, "/v3/watch", used, last, attempt, max, attempt + 1 < max);
      continue;
    }
    auto first = codec::decode_watch_message(*line);
    if (!first) co_return first.error();
    if (auto ec = codec::watch_cancel_error(*first); ec) {
      // A stale token does not fail the HTTP request: etcd answers 200 and cancels the watch in its first
      // message ("rpc error: code = Unauthenticated desc = etcdserver: invalid auth token"). Authenticate
      // again once, as call() does for a 401.
      if (ec == errc::unauthenticated && !c.cfg.auth.user.empty() && !reauthenticated) {
        reauthenticated = true;
        c.token.clear();
        c.report_reauthentication("/v3/watch");
        --attempt;
        continue;
      }
      co_return ec;
    }
    if (!first->created) co_return make_error_code(errc::malformed_response);
    impl_->stream = std::move(stream);
    co_return first->header.revision;
  }
  co_return last;
}

asio::awaitable<result<watch_response>> watch_stream::next(std::chrono::milliseconds idle_timeout) {
  if (!impl_->stream) co_return make_error_code(errc::unavailable);
  // Closed on every way out but a good message, also when a cancelled caller ends with an exception at the
  // co_await: a half-read stream cannot be read again.
  detail::scope_exit close_it([this] { close(); });
  auto line = co_await impl_->stream->next_line(idle_timeout);
  if (!line) co_return line.error();
  auto message = codec::decode_watch_message(*line);
  if (!message) co_return message.error();
  if (auto ec = codec::watch_cancel_error(*message); ec) co_return ec;
  close_it.dismiss();
  co_return message;
}

}  // namespace clusterlock::etcd
