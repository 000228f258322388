#include "transport/endpoint.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include <algorithm>

namespace clusterlock::transport {
namespace {

bool is_port_number(std::string_view port) {
  if (port.empty() || port.size() > 5) return false;
  if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
  unsigned value = 0;
  for (char c : port) value = value * 10 + static_cast<unsigned>(c - '0');
  return value >= 1 && value <= 65535;
}

// The reason `url` is not an endpoint, or "" with `out` filled in.
std::string check(std::string_view url, endpoint& out) {
  namespace urls = boost::urls;
  auto parsed = urls::parse_uri(url);
  if (!parsed) return "not an absolute URL (expected http://host:port or https://host:port)";
  const urls::url_view& u = *parsed;

  if (u.scheme_id() == urls::scheme::http) {
    out.tls = false;
  } else if (u.scheme_id() == urls::scheme::https) {
    out.tls = true;
  } else {
    return "scheme '" + std::string(u.scheme()) + "' not supported (only http and https)";
  }
  if (!u.has_authority()) return "no host (expected http://host:port or https://host:port)";
  if (u.has_userinfo()) return "user info in the URL is not allowed (give the user and password in auth)";

  switch (u.host_type()) {
    case urls::host_type::ipv4:
    case urls::host_type::ipv6:
      out.host = std::string(u.encoded_host_address());
      break;
    case urls::host_type::name:
      if (u.encoded_host().empty()) return "no host";
      // A percent-encoded host name is legal URL syntax but no resolver takes it: refuse rather than guess.
      if (u.encoded_host().find('%') != std::string_view::npos) return "percent-encoded host name not supported";
      out.host = std::string(u.encoded_host());
      break;
    default:
      return "host is not a name, an IPv4 address or an IPv6 address";
  }

  if (u.has_port()) {
    // Checked by hand: port_number() silently wraps values above 65535.
    if (!is_port_number(u.port())) return "port must be a number from 1 to 65535";
    out.port = std::string(u.port());
  } else {
    out.port = out.tls ? "443" : "80";
  }

  if (!u.encoded_path().empty() && u.encoded_path() != "/")
    return "URL has a path; give only scheme, host and port (the client adds /v3/...)";
  if (u.has_query()) return "URL has a query; give only scheme, host and port";
  if (u.has_fragment()) return "URL has a fragment; give only scheme, host and port";

  out.url = std::string(url);
  return {};
}

}  // namespace

result<endpoint> parse_endpoint(std::string_view url, std::string* error_message) {
  endpoint out;
  std::string why = check(url, out);
  if (!why.empty()) {
    if (error_message) *error_message = std::move(why);
    return make_error_code(errc::invalid_options);
  }
  return out;
}

std::string printable_url(std::string_view url) {
  auto parsed = boost::urls::parse_uri_reference(url);
  if (!parsed || !parsed->has_userinfo()) return std::string(url);
  boost::urls::url u(*parsed);
  u.set_userinfo("...");
  return std::string(u.buffer());
}

std::string describe_endpoint_error(std::string_view url) {
  endpoint ignored;
  return check(url, ignored);
}

std::string host_header(const endpoint& where) {
  bool ipv6 = where.host.find(':') != std::string::npos;
  std::string value = ipv6 ? "[" + where.host + "]" : where.host;
  return value + ":" + where.port;
}

bool is_ip_literal(const std::string& host) noexcept {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace clusterlock::transport
