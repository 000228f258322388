#include <clusterlock/session.hpp>

#include "session/session_state.hpp"
#include "transport/endpoint.hpp"

#include <boost/asio/dispatch.hpp>

namespace clusterlock {

boost::system::error_code validate(const session_options& o, std::string* why) {
  auto fail = [&](std::string message) {
    if (why) *why = std::move(message);
    return make_error_code(errc::invalid_options);
  };
  if (o.endpoints.empty()) return fail("endpoints: at least one etcd endpoint is needed");
  for (const auto& url : o.endpoints) {
    if (!transport::parse_endpoint(url))
      return fail("endpoints: '" + url + "': " + transport::describe_endpoint_error(url));
  }
  if (o.watch_prefix.empty()) return fail("watch_prefix: must not be empty");
  if (o.ttl.count() <= 0) return fail("ttl: must be positive");
  if (o.ttl > etcd::max_lease_ttl) return fail("ttl: at most 9000000000 s (etcd's largest lease TTL)");
  if (o.request_timeout.count() <= 0) return fail("request_timeout: must be positive");
  if (o.probe_interval.count() <= 0) return fail("probe_interval: must be positive");
  if (o.clock_margin.count() < 0) return fail("clock_margin: must not be negative");
  if (o.clock_margin >= o.ttl) return fail("clock_margin: must be shorter than ttl");
  if (o.max_response_size == 0) return fail("max_response_size: must be positive");
  if (o.auth.user.empty() != o.auth.password.empty()) return fail("auth: needs both user and password");
  if (o.tls.cert_file.empty() != o.tls.key_file.empty()) return fail("tls: cert_file and key_file go together");
  return {};
}

session::session(executor_type ex, session_options opts)
    : state_(std::make_shared<detail::session_state>(std::move(ex), std::move(opts), true)) {}

session::session(boost::asio::io_context& io, session_options opts) : session(io.get_executor(), std::move(opts)) {}

// Coroutine parameters live in the frame: the state lives as long as the operation, whatever happens to *this.
boost::asio::awaitable<result<void>> session::close_op(std::shared_ptr<detail::session_state> state) {
  co_return co_await state->close();
}

boost::asio::awaitable<result<std::int64_t>> session::wait_lease_lost_op(std::shared_ptr<detail::session_state> state) {
  co_return co_await state->wait_lease_lost();
}

session::~session() {
  boost::asio::dispatch(state_->strand, [s = state_] { s->handle_dropped(); });
}

session::executor_type session::get_executor() const noexcept { return state_->strand; }
std::int64_t session::lease() const noexcept { return state_->lease->lease(); }
const session_options& session::options() const noexcept { return state_->opts; }

}  // namespace clusterlock
