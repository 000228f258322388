// A blocking one-shot HTTP/1.1 request over a POSIX socket (TLS with OpenSSL), bounded by one deadline.
// Independent of the library's transport on purpose: the harness must work while that is being written, and a test
// of the transport must not depend on the transport.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace clusterlock::testing::detail {

struct tls_client_files {
  std::string ca_file;    // verifies the server, including that its certificate names 127.0.0.1
  std::string cert_file;  // optional client certificate
  std::string key_file;
};

struct http_response {
  int status = 0;
  std::string body;  // de-chunked
};

struct http_request_options {
  std::string_view method = "GET";
  std::string_view target = "/health";
  std::string_view body;
  std::string_view authorization;           // raw value of an Authorization header (etcd tokens), or empty
  const tls_client_files* tls = nullptr;    // required for https URLs
  std::chrono::milliseconds timeout{1000};  // connect + TLS handshake + request + whole reply
};

// `url` is "http://IPV4:PORT" or "https://IPV4:PORT". Sends one request with "Connection: close" and reads the
// whole reply. Returns nothing on any failure (refused, timed out, TLS error, malformed reply) and then puts the
// reason into `*error` when given; a timeout's reason contains "timed out".
std::optional<http_response> http_request(const std::string& url, const http_request_options& options,
                                          std::string* error = nullptr);

}  // namespace clusterlock::testing::detail
