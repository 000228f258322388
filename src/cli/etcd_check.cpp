#include "cli/etcd_check.hpp"

#include "cli/password.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace clusterlock::cli {

namespace asio = boost::asio;
using boost::system::error_code;

options make_options(const common_arguments& args, const std::string& name, bool contend) {
  options o;
  o.endpoints = args.endpoints;
  o.name = name;
  o.ttl = args.ttl;
  o.request_timeout = args.request_timeout;
  o.identity = args.identity;
  o.contend = contend;
  o.tls.ca_file = args.cacert;
  o.tls.cert_file = args.cert;
  o.tls.key_file = args.key;
  if (!args.user.empty()) {
    o.auth.user = args.user;
    o.auth.password = read_password(args.user);
  }
  return o;
}

bool is_refusal(const error_code& ec) {
  return ec == errc::auth_failed || ec == errc::unauthenticated || ec == errc::permission_denied ||
         ec == errc::tls_handshake_failed || ec == errc::invalid_argument || ec == errc::failed_precondition;
}

std::string describe_etcd_error(const error_code& ec, const options& o) {
  std::string where;
  for (const auto& e : o.endpoints) where += (where.empty() ? "" : ",") + e;
  // etcd answers "authentication is not enabled" with a bare failed precondition, which says little.
  const std::string hint =
      ec == errc::failed_precondition && !o.auth.user.empty() ? " (is authentication enabled on etcd?)" : "";
  if (is_refusal(ec)) return "etcd at " + where + " refused us: " + ec.message() + hint;
  if (ec == errc::unavailable || ec == errc::timeout) return "cannot reach etcd at " + where + ": " + ec.message();
  return "etcd at " + where + ": " + ec.message();
}

struct etcd_check::state : std::enable_shared_from_this<state> {
  etcd::client client;
  std::string prefix;
  asio::steady_timer timer;
  bool stopped = false;

  state(asio::any_io_executor ex, const options& o)
      : client(ex,
               etcd::client_config{.endpoints = o.endpoints,
                                   .request_timeout = o.request_timeout,
                                   .tls = o.tls,
                                   .auth = o.auth,
                                   .retry = o.retry}),
        prefix(o.name + "/"),
        timer(ex) {}

  asio::awaitable<void> loop(callback on_result, std::optional<std::chrono::milliseconds> every) {
    auto self = shared_from_this();
    for (;;) {
      etcd::range_request read{.key = prefix, .range_end = etcd::prefix_range_end(prefix), .limit = 1,
                               .keys_only = true};
      auto r = co_await client.range(std::move(read));
      if (stopped) co_return;
      on_result(r ? error_code{} : r.error());
      if (stopped || !every) co_return;
      timer.expires_after(*every);
      auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec || stopped) co_return;
    }
  }
};

etcd_check::etcd_check(asio::any_io_executor ex, const options& o) : state_(std::make_shared<state>(ex, o)) {}

etcd_check::~etcd_check() { stop(); }

void etcd_check::start(callback on_result, std::optional<std::chrono::milliseconds> every) {
  asio::co_spawn(state_->timer.get_executor(), state_->loop(std::move(on_result), every), asio::detached);
}

void etcd_check::stop() {
  if (state_->stopped) return;
  state_->stopped = true;
  state_->timer.cancel();
  state_->client.close();
}

std::chrono::milliseconds etcd_check::bound(const options& o) {
  const int attempts = o.retry.max_attempts > 0 ? o.retry.max_attempts : 2 * static_cast<int>(o.endpoints.size());
  return o.request_timeout * attempts + o.retry.max_backoff;
}

}  // namespace clusterlock::cli
