#pragma once
// HTTP/1.1 to one etcd endpoint: unary exchanges over a kept-alive connection, and a long-lived
// streamed reply read line by line (the watch). Status codes and bodies are handed up unread: the etcd
// layer turns them into errors.
//
// Both classes are driven from one executor without concurrency (a single-threaded io_context or a
// strand), one operation at a time, and must outlive the operation in flight. They are not movable:
// operations in flight refer to them.

#include "transport/byte_stream.hpp"
#include "transport/endpoint.hpp"
#include "transport/http_types.hpp"
#include "transport/line_splitter.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace clusterlock::transport {

/// One endpoint, one TCP (+TLS) connection kept alive across requests, one request at a time.
class http_connection {
 public:
  /// `tls`: the context for an https endpoint (make_tls_context); ignored for http. An https endpoint
  /// without one fails every exchange with errc::invalid_options.
  http_connection(boost::asio::any_io_executor executor, endpoint where,
                  std::shared_ptr<boost::asio::ssl::context> tls, transport_options options);
  http_connection(const http_connection&) = delete;
  http_connection& operator=(const http_connection&) = delete;

  /// Connects when not connected (resolve, connect, TLS handshake), writes the request and reads the
  /// whole reply, all within `deadline`. Keeps the connection for the next request unless the reply
  /// says close (or left unread bytes behind), or anything failed.
  ///
  /// `sent` (optional) becomes true once any byte of the request may have reached the server: the
  /// caller may then retry only an idempotent request.
  /// Stale keep-alive connections: before reuse the socket is checked (without blocking) for an EOF,
  /// a reset or unsolicited bytes; such a connection is replaced before anything is sent. A server that
  /// closes the connection after that check but before replying gives errc::unavailable with
  /// sent = true: from here, a server that dropped an idle connection cannot be told from one that
  /// took the request and died.
  ///
  /// Errors: errc::timeout; errc::unavailable (refused, reset, EOF before any byte of the reply,
  /// resolve failure); errc::tls_handshake_failed (certificate or host not accepted, TLS alert);
  /// errc::response_too_large (body over max_body, header over 64 KiB; detected as soon as the header
  /// or the body bytes so far exceed the bound, never after reading it all); errc::malformed_response
  /// (not HTTP: bad status line, bad chunk framing, bad header; or a reply cut short: fewer bytes than
  /// Content-Length, no last chunk); errc::invalid_options (https without a TLS context, CR or LF in
  /// the target or the token); operation_aborted after a terminal cancellation through the awaiting
  /// coroutine's cancellation slot, or close() during the exchange. After any error the connection is
  /// closed.
  boost::asio::awaitable<result<http_reply>> exchange(const http_request& request,
                                                      std::chrono::milliseconds deadline, bool* sent = nullptr);

  void close() noexcept { stream_.close(); }
  bool is_open() const noexcept { return stream_.is_open(); }
  const endpoint& where() const noexcept { return stream_.where(); }

 private:
  boost::asio::awaitable<result<http_reply>> exchange_steps(const http_request& request,
                                                            steady_clock::time_point deadline, bool* sent);

  byte_stream stream_;
  boost::beast::flat_buffer buffer_{read_buffer_limit};
};

/// A long-lived streamed reply (etcd's watch), read line by line on a connection of its own.
class http_line_stream {
 public:
  http_line_stream(boost::asio::any_io_executor executor, endpoint where,
                   std::shared_ptr<boost::asio::ssl::context> tls, transport_options options);
  http_line_stream(const http_line_stream&) = delete;
  http_line_stream& operator=(const http_line_stream&) = delete;

  /// Connects, sends, and reads the reply's header within `deadline`. Status 200: returns {200, ""};
  /// the body is then read with next_line(). Any other status: reads the body (bounded by max_body)
  /// within the same deadline, returns {status, body} and closes. Errors as http_connection::exchange.
  /// Opening again closes the previous stream first.
  boost::asio::awaitable<result<http_reply>> open(const http_request& request, std::chrono::milliseconds deadline);

  /// The next complete non-empty line of the body, without its line end. Chunk boundaries need not
  /// line up with lines. Errors, after each of which the stream is closed:
  /// errc::watch_stalled when no byte at all arrived for `idle_timeout` (0: wait forever);
  /// errc::response_too_large for a line longer than max_line (memory stays bounded by max_line plus
  /// one read buffer); errc::unavailable when the body ended, the peer closed or reset the connection
  /// (a partial last line is dropped), or the stream is not open; errc::malformed_response for bad
  /// chunk framing; operation_aborted on terminal cancellation or close().
  boost::asio::awaitable<result<std::string>> next_line(std::chrono::milliseconds idle_timeout);

  void close() noexcept { stream_.close(); }
  bool is_open() const noexcept { return stream_.is_open(); }
  const endpoint& where() const noexcept { return stream_.where(); }

 private:
  boost::asio::awaitable<result<http_reply>> open_steps(const http_request& request, steady_clock::time_point deadline);
  boost::asio::awaitable<result<std::string>> next_line_steps(std::chrono::milliseconds idle_timeout);
  // Reads what has arrived of the body into read_chunk_: how many bytes (0 when only framing arrived).
  boost::asio::awaitable<result<std::size_t>> read_body_some();

  byte_stream stream_;
  boost::beast::flat_buffer buffer_{read_buffer_limit};
  std::optional<boost::beast::http::response_parser<boost::beast::http::buffer_body>> parser_;
  std::vector<char> read_chunk_;
  line_splitter lines_;
};

}  // namespace clusterlock::transport
