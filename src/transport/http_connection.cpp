#include "transport/http_connection.hpp"

#include "transport/transport_errors.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

// Every co_await result goes into a variable before it is tested: GCC 12.2 miscompiles a co_await
// written directly in an if or while condition (the program crashes), and double-destroys a braced
// temporary (e.g. `co_await f({1, "x"})`) in a co_await expression.

namespace clusterlock::transport {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Body bytes taken from the parser per read on the streamed reply.
constexpr std::size_t stream_read_chunk = 16 * 1024;
// What one socket read may take. Beast reads max(512, free capacity) bytes: an empty buffer would read every reply
// 512 bytes at a time (a small txn reply in two reads, a queue of 10,000 keys in thousands), and the parser's
// consuming keeps the capacity from ever growing.
constexpr std::size_t socket_read_size = 16 * 1024;

bool has_line_break(const std::string& text) {
  return text.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos;
}

// The header values come from the caller (and the token from etcd): a line break in them would let
// them write headers of their own.
bool is_safe(const http_request& request) {
  return !has_line_break(request.target) && !has_line_break(request.authorization) && !request.target.empty();
}

http::request<http::string_body> to_message(const endpoint& where, const http_request& request) {
  http::request<http::string_body> message{request.method, request.target, 11};
  message.set(http::field::host, host_header(where));
  message.set(http::field::content_type, "application/json");
  if (!request.authorization.empty()) message.set(http::field::authorization, request.authorization);
  message.body() = request.body;
  message.prepare_payload();
  return message;
}

// Connects when needed and writes the request, before `deadline`.
asio::awaitable<boost::system::error_code> send(byte_stream& stream, const http_request& request,
                                                steady_clock::time_point deadline, bool* sent) {
  if (!is_safe(request)) co_return make_error_code(errc::invalid_options);
  if (stream.is_open() && !stream.idle_and_alive()) stream.close();
  if (!stream.is_open()) {
    auto ec = co_await stream.connect(deadline);
    if (ec) co_return ec;
  }
  stream.tcp().expires_at(deadline);
  auto message = to_message(stream.where(), request);
  if (sent) *sent = true;
  auto [ec, written] = co_await stream.visit(
      [&](auto& s) { return http::async_write(s, message, use_tuple); });
  co_return to_transport_error(ec, io_step::write, false);
}

// Runs `steps` and closes the stream when it failed. Asio throws operation_aborted at the next co_await
// once the awaiting coroutine has been cancelled between two operations (this_coro::throw_if_cancelled
// is on by default): that too ends as an error, never as an exception, with the stream closed because
// it stopped at an unknown point of the exchange.
template <class T>
asio::awaitable<result<T>> closing_on_failure(byte_stream& stream, asio::awaitable<result<T>> steps) {
  boost::system::error_code thrown;
  try {
    auto outcome = co_await std::move(steps);
    if (!outcome) stream.close();
    co_return outcome;
  } catch (const boost::system::system_error& e) {
    thrown = e.code();
  }
  stream.close();
  co_return thrown;
}

}  // namespace

// ---- http_connection ----

http_connection::http_connection(asio::any_io_executor executor, endpoint where,
                                 std::shared_ptr<asio::ssl::context> tls, transport_options options)
    : stream_(std::move(executor), std::move(where), std::move(tls), std::move(options)) {
  buffer_.reserve(socket_read_size);
}

asio::awaitable<result<http_reply>> http_connection::exchange(const http_request& request,
                                                              std::chrono::milliseconds deadline, bool* sent) {
  if (sent) *sent = false;
  co_return co_await closing_on_failure(stream_, exchange_steps(request, deadline_after(deadline), sent));
}

asio::awaitable<result<http_reply>> http_connection::exchange_steps(const http_request& request,
                                                                    steady_clock::time_point deadline, bool* sent) {
  buffer_.clear();
  auto sent_error = co_await send(stream_, request, deadline, sent);
  if (sent_error) co_return sent_error;

  http::response_parser<http::string_body> parser;
  parser.body_limit(stream_.options().max_body);
  parser.header_limit(max_header_bytes);
  // Read by read: Beast's own deadline (tcp_stream::expires_at) only fires while a read waits for bytes, and a
  // cancellation that comes between the reads of one http::async_read is lost. A peer that never stops sending (a
  // flood up to the body limit) kept an exchange, and every with_deadline around it, running for as long as that
  // took. Here each read checks the deadline, and each co_await the coroutine's cancellation.
  while (!parser.is_done()) {
    if (steady_clock::now() >= deadline) co_return make_error_code(errc::timeout);
    auto [ec, read] =
        co_await stream_.visit([&](auto& s) { return http::async_read_some(s, buffer_, parser, use_tuple); });
    if (ec) co_return to_transport_error(ec, io_step::read, parser.got_some());
  }
  stream_.tcp().expires_never();

  // Bytes past the end of the reply would be taken for the next reply: don't reuse such a connection.
  if (!parser.keep_alive() || buffer_.size() != 0) stream_.close();
  auto& message = parser.get();
  co_return http_reply{message.result_int(), std::move(message.body())};
}

// ---- http_line_stream ----

http_line_stream::http_line_stream(asio::any_io_executor executor, endpoint where,
                                   std::shared_ptr<asio::ssl::context> tls, transport_options options)
    : stream_(std::move(executor), std::move(where), std::move(tls), std::move(options)),
      read_chunk_(stream_read_chunk),
      lines_(stream_.options().max_line) {
  buffer_.reserve(socket_read_size);
}

asio::awaitable<result<http_reply>> http_line_stream::open(const http_request& request,
                                                           std::chrono::milliseconds deadline) {
  co_return co_await closing_on_failure(stream_, open_steps(request, deadline_after(deadline)));
}

asio::awaitable<result<http_reply>> http_line_stream::open_steps(const http_request& request,
                                                                 steady_clock::time_point deadline) {
  stream_.close();  // a new stream, never a kept-alive one: the old one may be anywhere in its body
  buffer_.clear();
  lines_ = line_splitter(stream_.options().max_line);
  parser_.emplace();
  parser_->body_limit(boost::none);  // the body is a stream: each line has its own bound
  parser_->header_limit(max_header_bytes);

  auto sent_error = co_await send(stream_, request, deadline, nullptr);
  if (sent_error) co_return sent_error;
  auto [ec, read] = co_await stream_.visit(
      [&](auto& s) { return http::async_read_header(s, buffer_, *parser_, use_tuple); });
  if (ec) co_return to_transport_error(ec, io_step::read, parser_->got_some());

  const unsigned status = parser_->get().result_int();
  if (status == 200) {
    stream_.tcp().expires_never();  // next_line() sets its own idle deadline per read
    co_return http_reply{200, {}};
  }

  // An error reply: its body says why. Bounded, and within the same deadline.
  const std::size_t max_body = stream_.options().max_body;
  if (auto length = parser_->content_length(); length && *length > max_body)
    co_return make_error_code(errc::response_too_large);
  std::string body;
  while (!parser_->is_done()) {
    if (steady_clock::now() >= deadline) co_return make_error_code(errc::timeout);  // as in exchange_steps
    auto got = co_await read_body_some();
    if (!got) co_return to_transport_error(got.error(), io_step::read, true);
    if (body.size() + *got > max_body) co_return make_error_code(errc::response_too_large);
    body.append(read_chunk_.data(), *got);
  }
  stream_.close();
  co_return http_reply{status, std::move(body)};
}

asio::awaitable<result<std::size_t>> http_line_stream::read_body_some() {
  auto& body = parser_->get().body();
  body.data = read_chunk_.data();
  body.size = read_chunk_.size();
  auto [ec, read] = co_await stream_.visit(
      [&](auto& s) { return http::async_read_some(s, buffer_, *parser_, use_tuple); });
  if (ec && ec != http::error::need_buffer) co_return ec;
  co_return read_chunk_.size() - body.size;
}

asio::awaitable<result<std::string>> http_line_stream::next_line(std::chrono::milliseconds idle_timeout) {
  co_return co_await closing_on_failure(stream_, next_line_steps(idle_timeout));
}

asio::awaitable<result<std::string>> http_line_stream::next_line_steps(std::chrono::milliseconds idle_timeout) {
  if (!parser_ || !stream_.is_open()) co_return make_error_code(errc::unavailable);
  for (;;) {
    if (auto line = lines_.next_line()) co_return std::move(*line);
    if (auto ec = lines_.error()) co_return ec;
    if (parser_->is_done()) co_return make_error_code(errc::unavailable);

    // Per read: any byte that arrives (framing included) proves the stream alive.
    if (idle_timeout.count() > 0) {
      stream_.tcp().expires_after(idle_timeout);
    } else {
      stream_.tcp().expires_never();
    }
    auto got = co_await read_body_some();
    if (!got) {
      const auto ec = got.error();
      if (ec == beast::error::timeout) co_return make_error_code(errc::watch_stalled);
      // For a stream, a peer that leaves (even within a chunk or a line) is gone, not malformed.
      if (ec == http::error::partial_message || ec == http::error::end_of_stream || ec == asio::error::eof ||
          ec == asio::ssl::error::stream_truncated)
        co_return make_error_code(errc::unavailable);
      co_return to_transport_error(ec, io_step::read, true);
    }
    if (auto ec = lines_.feed(std::string_view(read_chunk_.data(), *got))) co_return ec;
  }
}

}  // namespace clusterlock::transport
