#include <clusterlock/session.hpp>

#include "connection_checks.hpp"
#include "session/session_state.hpp"

#include <boost/asio/dispatch.hpp>

namespace clusterlock {

boost::system::error_code validate(const session_options& o, std::string* why) {
  auto fail = [&](std::string message) {
    if (why) *why = std::move(message);
    return make_error_code(errc::invalid_options);
  };
  if (auto problem = detail::connection_problem(o)) return fail(std::move(*problem));
  if (o.watch_prefix.empty()) return fail("watch_prefix: must not be empty");
  if (o.max_response_size == 0) return fail("max_response_size: must be positive");
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
session_stats session::stats() const { return state_->stats(); }

}  // namespace clusterlock
