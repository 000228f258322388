#pragma once
// A loopback HTTP/1.1 server (plain or TLS) for transport tests, with scripted misbehaviour.
//
// It runs on the test's own executor, the same thread as the client under test: the test drives one
// io_context, nothing needs a lock, and counters are read directly. Each accepted connection runs the
// server's behaviour: a coroutine given a `connection` to read requests from and write bytes to.
// Canned behaviours below cover the usual cases; a test can write its own.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace clusterlock::test {

struct canned_reply {
  unsigned status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  ///< besides Content-Length (always sent)
  std::string body;
};

class fake_http_server {
 public:
  /// One accepted connection, as a behaviour sees it. Every call reports failure (false) rather than
  /// throwing: the client closing is a normal event in these tests.
  class connection {
   public:
    virtual ~connection() = default;
    /// Reads one whole request (counted in requests()). False when the client closed or sent garbage.
    virtual boost::asio::awaitable<bool> read_request() = 0;
    virtual const boost::beast::http::request<boost::beast::http::string_body>& last_request() const = 0;
    /// Writes bytes as they are: a way to send anything, HTTP or not.
    virtual boost::asio::awaitable<bool> write(std::string_view bytes) = 0;
    /// Writes a well-formed reply with Content-Length.
    boost::asio::awaitable<bool> write_reply(const canned_reply& reply);
    /// Writes one chunk of a chunked body ("" writes the last chunk).
    boost::asio::awaitable<bool> write_chunk(std::string_view data);
    boost::asio::awaitable<void> pause(std::chrono::milliseconds duration);
    /// Keeps the connection open, reading and discarding, until the client closes it (or stop()).
    virtual boost::asio::awaitable<void> hold() = 0;
    virtual void close() = 0;
  };
  using behaviour = std::function<boost::asio::awaitable<void>(connection&)>;

  /// Listens on 127.0.0.1 on a free port. `tls`: a server context (make_server_tls_context) for https.
  fake_http_server(boost::asio::any_io_executor executor, behaviour what_to_do,
                   std::shared_ptr<boost::asio::ssl::context> tls = nullptr);
  ~fake_http_server();
  fake_http_server(const fake_http_server&) = delete;
  fake_http_server& operator=(const fake_http_server&) = delete;

  unsigned short port() const;
  /// "http://127.0.0.1:PORT" (or https).
  std::string url() const;
  /// The behaviour for connections accepted from now on.
  void set_behaviour(behaviour what_to_do);

  std::size_t accepted() const;            ///< TCP connections accepted
  std::size_t requests() const;            ///< whole requests read
  std::size_t closed() const;              ///< connections finished (the behaviour ended or the client left)
  std::size_t handshake_failures() const;  ///< TLS handshakes that failed
  std::uint64_t bytes_written() const;     ///< bytes written, all connections

  /// Waits until `condition()` holds, re-checking after every server event (accept, request read, bytes
  /// written, connection finished); false after `timeout`.
  boost::asio::awaitable<bool> wait_until(std::function<bool()> condition, std::chrono::milliseconds timeout);

  /// Stops accepting and closes every connection.
  void stop();

  struct state;

 private:
  std::shared_ptr<state> state_;
};

/// A server-side TLS context with this certificate chain and key; with `client_ca`, clients must present
/// a certificate signed by it.
std::shared_ptr<boost::asio::ssl::context> make_server_tls_context(const std::string& cert_file,
                                                                   const std::string& key_file,
                                                                   const std::string& client_ca = {});

// Canned behaviours.
using behaviour = fake_http_server::behaviour;
/// Answers every request on the connection with `reply` (keep-alive).
behaviour answer(canned_reply reply);
/// Answers one request, then closes the connection without saying so (an idle keep-alive timeout).
behaviour answer_then_drop(canned_reply reply);
/// Reads a request, writes `bytes`, then closes (or, with hold_open, keeps the connection open).
behaviour send_raw(std::string bytes, bool hold_open = false);
/// Reads a request and never answers.
behaviour never_answer();
/// Closes each connection as soon as it is accepted.
behaviour close_at_once();
/// Reads a request, answers 200 with a chunked body made of `chunks` (one HTTP chunk each, `gap` apart),
/// then stalls with the connection open.
behaviour stream_chunks(std::vector<std::string> chunks, std::chrono::milliseconds gap = {});
/// Reads a request, answers 200 chunked, then writes chunks of 'x' (no newline) until the client leaves.
behaviour flood_chunked();
/// Reads a request, answers 200 with `declared` as Content-Length, then writes 'x' until the client leaves.
behaviour flood_with_length(std::uint64_t declared);

}  // namespace clusterlock::test
