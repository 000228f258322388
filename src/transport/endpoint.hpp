#pragma once
// An etcd endpoint URL, checked once and split into what a connection needs.

#include <clusterlock/error.hpp>

#include <string>
#include <string_view>

namespace clusterlock::transport {

struct endpoint {
  std::string url;   ///< as the user gave it
  std::string host;  ///< for the resolver, SNI and certificate checks: IPv6 without brackets
  std::string port;  ///< always set: the URL's, or 80 / 443
  bool tls = false;  ///< https
};

/// Accepts `http://HOST[:PORT][/]` and `https://...` only: a host is required (name, IPv4 or bracketed
/// IPv6), no user info, no path beyond "/", no query or fragment. Anything else is errc::invalid_options,
/// with the reason in `*error_message` when given. The message never repeats the URL (it could carry a
/// password in its user info); callers name the endpoint by its position.
result<endpoint> parse_endpoint(std::string_view url, std::string* error_message = nullptr);

/// `url` to print: its user info (which may hold a password) replaced by "...".
std::string printable_url(std::string_view url);

/// What is wrong with `url`, or "" when it is a valid endpoint.
std::string describe_endpoint_error(std::string_view url);

/// The Host header value: host and port, with brackets around an IPv6 host.
std::string host_header(const endpoint& where);

/// True when `host` is an IPv4 or IPv6 literal (no SNI for those; certificates are checked for the address).
bool is_ip_literal(const std::string& host) noexcept;

}  // namespace clusterlock::transport
