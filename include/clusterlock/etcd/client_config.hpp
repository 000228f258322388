#pragma once
// Everything the etcd gateway client can be told, with its default.

#include <clusterlock/diagnostics.hpp>

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace clusterlock::etcd {

/// etcd's largest lease TTL (its MaxLeaseTTL, 9,000,000,000 s in 3.4 and 3.5): it refuses a longer one.
inline constexpr std::chrono::seconds max_lease_ttl{9'000'000'000};

struct tls_config {
  /// PEM file of the CA that signed the servers' certificates. Empty: the system's default CAs.
  std::string ca_file;
  /// Client certificate and key (PEM), for etcd started with --client-cert-auth. Both or neither.
  std::string cert_file;
  std::string key_file;
  /// Verify the server's certificate and that it names the endpoint's host. Leave on: off is for tests only.
  bool verify = true;
};

struct auth_config {
  /// Empty: no authentication. Otherwise the client authenticates on first use and again once
  /// whenever etcd says the token is invalid. Neither the password nor the token is ever logged
  /// or put in an error message.
  std::string user;
  std::string password;
};

struct retry_config {
  /// Backoff before a retry: full jitter over min(max_backoff, initial_backoff * 2^attempt).
  /// The first pass over the endpoints moves on without waiting.
  std::chrono::milliseconds initial_backoff{50};
  std::chrono::milliseconds max_backoff{2000};
  /// Attempts per call, all endpoints counted; 0: two passes over the endpoint list.
  int max_attempts = 0;
};

struct client_config {
  /// `http://host:port` or `https://host:port` URLs, tried in order; at least one.
  std::vector<std::string> endpoints;
  /// Deadline of one HTTP exchange, connect and TLS handshake included.
  std::chrono::milliseconds request_timeout{1000};
  tls_config tls;
  auth_config auth;
  retry_config retry;
  /// Largest reply body accepted; a larger one fails with errc::response_too_large.
  std::size_t max_response_size = 4 * 1024 * 1024;
  /// Largest single watch message (one line of the stream) accepted.
  std::size_t max_watch_message_size = 4 * 1024 * 1024;
  /// Keep-alive connections for unary requests; more requests than this wait their turn (the gateway speaks
  /// HTTP/1.1: one request in flight per connection). Each watch uses a connection of its own on top.
  std::size_t max_connections = 2;
  /// Of those, how many may stay open unused for longer than `idle_linger`: the others are closed once they have
  /// been idle that long (checked whenever a request ends). A burst of requests opens up to max_connections, and
  /// the connections it needed no more go after it. At least 1; at max_connections (or more), none is closed.
  std::size_t max_idle_connections = 2;
  std::chrono::milliseconds idle_linger{2000};
  /// Told of every failed attempt of a request that is not a cancellation (saying whether the client tries again)
  /// and of every re-authentication. Called inline on the client's executor, without rate limiting (a session
  /// posts and rate-limits what it passes on); exceptions are caught and dropped. Empty: nobody is told.
  diagnostics_handler diagnostics{};
};

}  // namespace clusterlock::etcd
