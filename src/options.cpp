#include <clusterlock/options.hpp>

#include "transport/endpoint.hpp"

namespace clusterlock {

namespace {
boost::system::error_code fail(std::string* why, std::string message) {
  if (why) *why = std::move(message);
  return make_error_code(errc::invalid_options);
}
}  // namespace

boost::system::error_code validate_lock(const options& o, std::string* why) {
  if (o.name.empty()) return fail(why, "name: the lock needs a name");
  if (o.event_backlog == 0) return fail(why, "event_backlog: must be at least 1");
  return {};
}

boost::system::error_code validate(const options& o, std::string* why) {
  auto fail = [&](std::string message) { return clusterlock::fail(why, std::move(message)); };
  if (o.endpoints.empty()) return fail("endpoints: at least one etcd endpoint is needed");
  for (const auto& url : o.endpoints) {
    if (!transport::parse_endpoint(url))
      return fail("endpoints: '" + url + "': " + transport::describe_endpoint_error(url));
  }
  if (o.name.empty()) return fail("name: the lock needs a name");
  if (o.ttl.count() <= 0) return fail("ttl: must be positive");
  if (o.ttl > etcd::max_lease_ttl) return fail("ttl: at most 9000000000 s (etcd's largest lease TTL)");
  if (o.request_timeout.count() <= 0) return fail("request_timeout: must be positive");
  if (o.probe_interval.count() <= 0) return fail("probe_interval: must be positive");
  if (o.clock_margin.count() < 0) return fail("clock_margin: must not be negative");
  if (o.clock_margin >= o.ttl) return fail("clock_margin: must be shorter than ttl");
  if (o.event_backlog == 0) return fail("event_backlog: must be at least 1");
  if (o.auth.user.empty() != o.auth.password.empty()) return fail("auth: needs both user and password");
  if (o.tls.cert_file.empty() != o.tls.key_file.empty()) return fail("tls: cert_file and key_file go together");
  // As the etcd client checks them when the lock_manager makes it.
  if (o.retry.initial_backoff.count() < 0 || o.retry.max_backoff < o.retry.initial_backoff)
    return fail("retry: need 0 <= initial_backoff <= max_backoff");
  if (o.retry.max_attempts < 0) return fail("retry.max_attempts: must not be negative");
  return {};
}

}  // namespace clusterlock
