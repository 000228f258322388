#include "cli/lock_options.hpp"

#include "cli/password.hpp"

namespace clusterlock::cli {

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
         ec == errc::tls_handshake_failed || ec == errc::invalid_argument || ec == errc::lease_ttl_too_large ||
         ec == errc::failed_precondition;
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

bool etcd_failed(const diagnostic& d) {
  using enum diagnostic::source_type;
  return d.error && d.error != errc::compacted && (d.source == watch || d.source == read);
}

std::chrono::milliseconds answer_bound(const options& o) {
  const int attempts = o.retry.max_attempts > 0 ? o.retry.max_attempts : 2 * static_cast<int>(o.endpoints.size());
  return o.request_timeout * (attempts + 1) + o.retry.max_backoff;
}

}  // namespace clusterlock::cli
