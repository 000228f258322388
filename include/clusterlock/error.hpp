#pragma once
// clusterlock's error codes: one category, values that say what happened.

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <type_traits>

namespace clusterlock {

/// Every error clusterlock reports, in the `clusterlock` category.
/// Cancellation is reported as `boost::asio::error::operation_aborted`, as Asio does.
enum class errc {
  // Configuration (reported before any I/O).
  invalid_options = 1,  ///< a config or option value is wrong (the message-bearing exception says which)

  // Reaching etcd.
  unavailable,           ///< no endpoint answered (refused, reset, 5xx, gRPC 14 "unavailable")
  timeout,               ///< a request's deadline passed (gRPC 4 counts too)
  tls_handshake_failed,  ///< TLS handshake failed: wrong CA, wrong host name, bad client certificate
  not_tls,               ///< an https:// endpoint answered without TLS (a plain-HTTP port): try http://
  not_etcd,              ///< an endpoint answered HTTP, but not as etcd's v3 JSON gateway does (wrong URL or port)
  watch_stalled,         ///< a watch stream sent nothing for longer than its idle deadline

  // What etcd said.
  lease_not_found,     ///< "requested lease not found" (gRPC 5 on a lease call)
  compacted,           ///< the requested revision has been compacted (gRPC 11 "out of range")
  future_revision,     ///< the requested revision is in the future
  unauthenticated,     ///< no or invalid auth token (gRPC 16), after one re-authentication
  auth_failed,         ///< wrong user name or password
  permission_denied,   ///< the user lacks the permission (gRPC 7)
  invalid_argument,    ///< etcd rejected the request as malformed (gRPC 3)
  lease_ttl_too_large, ///< etcd refused the lease TTL: above etcd::max_lease_ttl (gRPC 11 "too large lease TTL")
  failed_precondition, ///< gRPC 9
  resource_exhausted,  ///< gRPC 8 (e.g. too many requests, quota)
  server_error,        ///< any other gRPC or HTTP error status
  watch_canceled,      ///< etcd canceled the watch

  // What came over the wire.
  malformed_response,  ///< not the JSON etcd's gateway sends (bad syntax, wrong types, bad base64, cut short)
  response_too_large,  ///< a reply or watch message exceeded its configured size bound

  // Locks.
  lock_lost,           ///< the lock was lost while an operation needed it
  not_started,         ///< the manager was not started, or already shut down
  events_dropped,      ///< a subscriber fell behind by more than its backlog; the oldest events were dropped
  slots_mismatch,      ///< a semaphore's older key was made with another number of slots (or by a plain lock)
};

const boost::system::error_category& error_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

/// True for errors after which the same request may succeed on another endpoint or a later try.
bool is_transient(const boost::system::error_code& ec) noexcept;

/// True when etcd (or what answers in its place) refuses us in a way that trying again will not cure until
/// someone changes a setting: credentials, permissions, TLS, an endpoint that is not etcd, a request etcd rejects
/// (a TTL above its maximum, say). A lock stops contending on these; the `clusterlock` command exits 1.
bool is_refusal(const boost::system::error_code& ec) noexcept;

template <class T>
using result = boost::system::result<T>;

}  // namespace clusterlock

namespace boost::system {
template <>
struct is_error_code_enum<clusterlock::errc> : std::true_type {};
}  // namespace boost::system
