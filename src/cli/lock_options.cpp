#include "cli/lock_options.hpp"

#include "cli/password.hpp"

namespace clusterlock::cli {

using boost::system::error_code;

std::string join_endpoints(const std::vector<std::string>& urls) {
  std::string joined;
  for (const auto& url : urls) joined += (joined.empty() ? "" : ",") + url;
  return joined;
}

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

void etcd_trouble::note(const diagnostic& d) {
  if (d.source == diagnostic::source_type::request && d.error) last_request_[d.error] = d;
}

std::string etcd_trouble::describe(const error_code& ec, const options& o) const {
  const auto found = last_request_.find(ec);
  const diagnostic* last = found == last_request_.end() ? nullptr : &found->second;
  if (ec == errc::not_etcd && last && last->http_status != 0) {
    return last->endpoint + " answered HTTP " + std::to_string(last->http_status) +
           ", not as etcd's v3 JSON gateway does: is it etcd's client URL (see etcd's --advertise-client-urls)?";
  }
  if (ec == errc::not_tls && last && last->endpoint.starts_with("https://")) {
    return last->endpoint + " does not speak TLS: try http://" + last->endpoint.substr(8);
  }
  const std::string where = join_endpoints(o.endpoints);
  // etcd answers "authentication is not enabled" with a bare failed precondition, which says little.
  const std::string hint =
      ec == errc::failed_precondition && !o.auth.user.empty() ? " (is authentication enabled on etcd?)" : "";
  if (is_refusal(ec)) return "etcd at " + where + " refused us: " + ec.message() + hint;
  if (ec == errc::unavailable || ec == errc::timeout) return "cannot reach etcd at " + where + ": " + ec.message();
  return "etcd at " + where + ": " + ec.message();
}

bool etcd_failed(const diagnostic& d) {
  using enum diagnostic::source_type;
  return d.error && d.error != errc::compacted && (d.source == watch || d.source == read);
}

std::chrono::milliseconds answer_bound(const options& o) {
  const int attempts = o.retry.max_attempts > 0 ? o.retry.max_attempts : 2 * static_cast<int>(o.endpoints.size());
  return o.request_timeout * (attempts + 1) + o.retry.max_backoff;
}

}  // namespace clusterlock::cli
