#pragma once
// Maps what Asio, Beast and OpenSSL report to clusterlock's errors, by the step that failed.

#include <clusterlock/error.hpp>

namespace clusterlock::transport {

enum class io_step { resolve, connect, handshake, write, read };

/// - operation_aborted stays operation_aborted (cancellation, or close() during the operation);
/// - a deadline (Beast's timeout) is errc::timeout;
/// - TLS errors (certificate, host name, protocol, a peer's alert such as "certificate required") are
///   errc::tls_handshake_failed in every step: TLS 1.3 reports a rejected client certificate only on the
///   first read;
/// - a reply too large for its bounds (body, header, read buffer) is errc::response_too_large;
/// - a reply that breaks HTTP is errc::malformed_response, and so is one the peer cut short after it had
///   started: a body shorter than its Content-Length, a chunked body without its last chunk;
/// - everything else (refused, reset, EOF before any byte of the reply, resolve failure) is
///   errc::unavailable.
/// `reply_started`: some byte of the reply had arrived (tells a cut-short reply from a peer that left).
boost::system::error_code to_transport_error(boost::system::error_code ec, io_step step, bool reply_started);

}  // namespace clusterlock::transport
