#pragma once
// What goes into and comes out of one HTTP exchange, and the bounds every connection honours.

#include <boost/beast/http/verb.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace clusterlock::transport {

struct http_request {
  boost::beast::http::verb method = boost::beast::http::verb::post;
  std::string target;         ///< "/v3/kv/range"
  std::string body;           ///< JSON
  std::string authorization;  ///< sent as the Authorization header when non-empty (raw token, no "Bearer")
};

struct http_reply {
  unsigned status = 0;
  std::string body;
};

struct transport_options {
  std::size_t max_body = 4 << 20;  ///< a larger reply body fails with errc::response_too_large
  std::size_t max_line = 4 << 20;  ///< a longer line of a streamed body fails with errc::response_too_large
  std::shared_ptr<std::uint64_t> connects;  ///< optional: incremented per successful TCP connect (tests)
};

}  // namespace clusterlock::transport
