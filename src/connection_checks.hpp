#pragma once
// The checks that options and session_options share: both describe one connection to etcd and one lease.

#include <clusterlock/etcd/client_config.hpp>

#include "transport/endpoint.hpp"

#include <optional>
#include <string>

namespace clusterlock::detail {

/// What is wrong with `o`'s endpoints, lease and connection settings, as "field: why"; empty when nothing is.
template <class Options>
std::optional<std::string> connection_problem(const Options& o) {
  if (o.endpoints.empty()) return "endpoints: at least one etcd endpoint is needed";
  for (const auto& url : o.endpoints) {
    if (!transport::parse_endpoint(url)) {
      return "endpoints: '" + transport::printable_url(url) + "': " + transport::describe_endpoint_error(url);
    }
  }
  if (o.ttl.count() <= 0) return "ttl: must be positive";
  if (o.ttl > etcd::max_lease_ttl)
    return "ttl: at most " + std::to_string(etcd::max_lease_ttl.count()) + " s (etcd's largest lease TTL)";
  if (o.request_timeout.count() <= 0) return "request_timeout: must be positive";
  if (o.probe_interval.count() <= 0) return "probe_interval: must be positive";
  if (o.clock_margin.count() < 0) return "clock_margin: must not be negative";
  if (o.clock_margin >= o.ttl) return "clock_margin: must be shorter than ttl";
  if (o.auth.user.empty() != o.auth.password.empty()) return "auth: needs both user and password";
  if (o.tls.cert_file.empty() != o.tls.key_file.empty()) return "tls: cert_file and key_file go together";
  return std::nullopt;
}

}  // namespace clusterlock::detail
