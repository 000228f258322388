#include "transport/transport_errors.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace clusterlock::transport {

boost::system::error_code to_transport_error(boost::system::error_code ec, io_step step, bool reply_started) {
  namespace asio = boost::asio;
  namespace http = boost::beast::http;
  if (!ec) return ec;
  if (ec == asio::error::operation_aborted) return ec;
  if (ec == boost::beast::error::timeout) return errc::timeout;

  // The peer left: before the reply it is unavailable, in the middle of it the reply is cut short.
  // TLS reports a peer that closed without close_notify as stream_truncated.
  bool peer_left = ec == asio::error::eof || ec == asio::ssl::error::stream_truncated ||
                   ec == http::error::end_of_stream;
  // A plain-HTTP port closes on our ClientHello (etcd does: with a FIN, or with a reset when it closes before
  // reading all of it) or answers it in plain text, which OpenSSL reads as a record of a wrong version: the
  // endpoint does not speak TLS.
  const bool reset = ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
  if ((peer_left || reset) && step == io_step::handshake) return errc::not_tls;
  if (peer_left) return reply_started && step == io_step::read ? errc::malformed_response : errc::unavailable;
  if (ec == http::error::partial_message) return errc::malformed_response;

  if (ec.category() == asio::error::get_ssl_category()) {
    const int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
    if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG) return errc::not_tls;
    return errc::tls_handshake_failed;
  }
  if (ec.category() == asio::ssl::error::get_stream_category()) return errc::tls_handshake_failed;

  if (ec == http::error::body_limit || ec == http::error::header_limit || ec == http::error::buffer_overflow)
    return errc::response_too_large;
  if (ec.category() == http::make_error_code(http::error::bad_version).category()) return errc::malformed_response;

  return errc::unavailable;
}

}  // namespace clusterlock::transport
