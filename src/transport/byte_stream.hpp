#pragma once
// One TCP (or TLS over TCP) connection to one endpoint: connecting within a deadline, telling a live
// idle connection from a dead one, closing. The HTTP classes build on it; a std::variant keeps one code
// path for http and https.

#include "transport/endpoint.hpp"
#include "transport/http_types.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <variant>
#include <vector>

namespace clusterlock::transport {

using steady_clock = std::chrono::steady_clock;

/// Bounds of what is held in memory besides a body or a line: the reply header, and the read buffer
/// (which holds at most unparsed framing: a header, a chunk header).
inline constexpr std::size_t max_header_bytes = 64 * 1024;
inline constexpr std::size_t read_buffer_limit = 2 * max_header_bytes;

/// now + timeout, without overflowing for huge timeouts.
steady_clock::time_point deadline_after(std::chrono::milliseconds timeout) noexcept;

class byte_stream {
 public:
  using plain_stream = boost::beast::tcp_stream;
  using tls_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

  byte_stream(boost::asio::any_io_executor executor, endpoint where, std::shared_ptr<boost::asio::ssl::context> tls,
              transport_options options);
  byte_stream(const byte_stream&) = delete;
  byte_stream& operator=(const byte_stream&) = delete;

  /// Closes any previous connection, then resolves, connects (TCP_NODELAY) and, for https, does the TLS
  /// handshake with SNI and the host-name (or IP) check, all before `deadline`. Errors as
  /// to_transport_error; errc::invalid_options for an https endpoint without a TLS context.
  /// A host name is resolved by the system resolver, which cannot be interrupted: the deadline (or a
  /// cancellation) still ends this call on time, but the lookup itself runs on to its own end.
  boost::asio::awaitable<boost::system::error_code> connect(steady_clock::time_point deadline);

  bool is_open() const noexcept;

  /// For an idle keep-alive connection: true when the peer has neither closed it nor sent anything
  /// since the last reply. Anything else (EOF, reset, unsolicited bytes such as a 408 or a TLS alert)
  /// means it must not carry another request.
  bool idle_and_alive() noexcept;

  /// The TCP layer, for deadlines. Precondition: connect() was called.
  boost::beast::tcp_stream& tcp() noexcept;

  /// Calls f(plain_stream&) or f(tls_stream&). Precondition: connect() was called.
  template <class F>
  decltype(auto) visit(F&& f) {
    return std::visit(std::forward<F>(f), *stream_);
  }

  /// Closes the socket (no TLS close_notify: nothing waits for it). Pending operations complete with
  /// operation_aborted; the stream object stays until the next connect() replaces it.
  void close() noexcept;

  const endpoint& where() const noexcept { return where_; }
  const transport_options& options() const noexcept { return options_; }

 private:
  boost::asio::awaitable<result<std::vector<boost::asio::ip::tcp::endpoint>>> resolve(steady_clock::time_point deadline);

  boost::asio::any_io_executor executor_;
  endpoint where_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  transport_options options_;
  std::optional<std::variant<plain_stream, tls_stream>> stream_;
};

}  // namespace clusterlock::transport
