#include <clusterlock/error.hpp>

#include <clusterlock/etcd/client_config.hpp>

#include "error_label.hpp"

#include <boost/asio/error.hpp>

#include <string>

namespace clusterlock {
namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "clusterlock"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::invalid_options: return "invalid options";
      case errc::unavailable: return "etcd unavailable: no endpoint answered";
      case errc::timeout: return "request deadline passed";
      case errc::tls_handshake_failed: return "TLS handshake failed (certificate or host name not accepted)";
      case errc::not_tls: return "the endpoint does not speak TLS (a plain-HTTP port?): try http://";
      case errc::not_etcd: return "the endpoint is not etcd's v3 JSON gateway (wrong URL or port?)";
      case errc::watch_stalled: return "watch stream silent for longer than its idle deadline";
      case errc::lease_not_found: return "lease not found (expired or revoked)";
      case errc::compacted: return "requested revision has been compacted";
      case errc::future_revision: return "requested revision is in the future";
      case errc::unauthenticated: return "not authenticated: auth token missing or invalid";
      case errc::auth_failed: return "authentication failed: wrong user name or password";
      case errc::permission_denied: return "permission denied";
      case errc::invalid_argument: return "etcd rejected the request as invalid";
      case errc::lease_ttl_too_large:
        return "etcd refused the lease TTL as too large (its maximum is " +
               std::to_string(etcd::max_lease_ttl.count()) + " s)";
      case errc::failed_precondition: return "etcd: failed precondition";
      case errc::resource_exhausted: return "etcd: resource exhausted";
      case errc::server_error: return "etcd returned an error";
      case errc::watch_canceled: return "etcd canceled the watch";
      case errc::malformed_response: return "malformed response from etcd";
      case errc::response_too_large: return "response exceeds the configured size bound";
      case errc::lock_lost: return "lock lost";
      case errc::not_started: return "lock manager not running";
      case errc::events_dropped: return "events dropped: the subscriber fell behind its backlog";
      case errc::slots_mismatch:
        return "an older contender of this semaphore has another number of slots (or is a plain lock)";
    }
    return "unknown clusterlock error";
  }
};

}  // namespace

std::string detail::error_label(const boost::system::error_code& ec) {
  if (ec.category() == error_category()) {
    switch (static_cast<errc>(ec.value())) {
      case errc::invalid_options: return "invalid_options";
      case errc::unavailable: return "unavailable";
      case errc::timeout: return "timeout";
      case errc::tls_handshake_failed: return "tls_handshake_failed";
      case errc::not_tls: return "not_tls";
      case errc::not_etcd: return "not_etcd";
      case errc::watch_stalled: return "watch_stalled";
      case errc::lease_not_found: return "lease_not_found";
      case errc::compacted: return "compacted";
      case errc::future_revision: return "future_revision";
      case errc::unauthenticated: return "unauthenticated";
      case errc::auth_failed: return "auth_failed";
      case errc::permission_denied: return "permission_denied";
      case errc::invalid_argument: return "invalid_argument";
      case errc::lease_ttl_too_large: return "lease_ttl_too_large";
      case errc::failed_precondition: return "failed_precondition";
      case errc::resource_exhausted: return "resource_exhausted";
      case errc::server_error: return "server_error";
      case errc::watch_canceled: return "watch_canceled";
      case errc::malformed_response: return "malformed_response";
      case errc::response_too_large: return "response_too_large";
      case errc::lock_lost: return "lock_lost";
      case errc::not_started: return "not_started";
      case errc::events_dropped: return "events_dropped";
      case errc::slots_mismatch: return "slots_mismatch";
    }
  }
  if (ec == boost::asio::error::operation_aborted) return "operation_aborted";
  return std::string(ec.category().name()) + ":" + std::to_string(ec.value());
}

const boost::system::error_category& error_category() noexcept {
  static const category instance;
  return instance;
}

bool is_transient(const boost::system::error_code& ec) noexcept {
  if (ec.category() == error_category()) {
    switch (static_cast<errc>(ec.value())) {
      case errc::unavailable:
      case errc::timeout:
      case errc::watch_stalled:
      case errc::resource_exhausted:
      case errc::malformed_response:
      case errc::response_too_large:
      case errc::tls_handshake_failed:
      case errc::not_tls:
      case errc::not_etcd:
        return true;
      default:
        return false;
    }
  }
  return ec && ec != boost::asio::error::operation_aborted;
}

bool is_refusal(const boost::system::error_code& ec) noexcept {
  if (ec.category() != error_category()) return false;
  switch (static_cast<errc>(ec.value())) {
    case errc::auth_failed:
    case errc::unauthenticated:
    case errc::permission_denied:
    case errc::tls_handshake_failed:
    case errc::not_tls:
    case errc::not_etcd:
    case errc::invalid_argument:
    case errc::lease_ttl_too_large:
    case errc::failed_precondition:
      return true;
    default:
      return false;
  }
}

}  // namespace clusterlock
