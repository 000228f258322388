// The HTTP transport against a fake server that misbehaves on purpose.
#include "transport/http_connection.hpp"

#include "support/async_test.hpp"
#include "support/fake_http_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <optional>

namespace clusterlock::transport {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::canned_reply;
using test::fake_http_server;
using test::run_until_done;
using awaitable = asio::awaitable<void>;

// Upper bounds only, generous for a loaded 2-core machine.
constexpr auto prompt = 2s;

http_request post(std::string target = "/v3/kv/range", std::string body = R"({"key":"YQ=="})") {
  http_request request;
  request.target = std::move(target);
  request.body = std::move(body);
  return request;
}

struct stopwatch {
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration elapsed() const { return std::chrono::steady_clock::now() - started; }
};

class transport : public ::testing::Test {
 protected:
  transport_options options(std::size_t max_body = 4 << 20, std::size_t max_line = 4 << 20) {
    transport_options o;
    o.max_body = max_body;
    o.max_line = max_line;
    o.connects = connects;
    return o;
  }
  static endpoint at(const fake_http_server& server) { return parse_endpoint(server.url()).value(); }
  std::uint64_t connect_count() const { return *connects; }

  // Opens a watch stream on `server`, reads the first line, which must be `first_line`, and returns the error of the
  // read after it.
  boost::system::error_code error_after_first_line(const fake_http_server& server, const std::string& first_line,
                                                   std::size_t max_line = 4 << 20) {
    http_line_stream stream(io.get_executor(), at(server), nullptr, options(4 << 20, max_line));
    boost::system::error_code after_first_line;
    EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
      CO_ASSERT_TRUE(co_await stream.open(post("/v3/watch"), 2s));
      auto first = co_await stream.next_line(2s);
      CO_ASSERT_TRUE(first);
      EXPECT_EQ(*first, first_line);
      auto second = co_await stream.next_line(5s);
      CO_ASSERT_TRUE(!second);
      after_first_line = second.error();
    }));
    return after_first_line;
  }

  asio::io_context io;
  std::shared_ptr<std::uint64_t> connects = std::make_shared<std::uint64_t>(0);
};

// ---- keep-alive ----

TEST_F(transport, a_hundred_requests_share_one_tcp_connection) {
  fake_http_server server(io.get_executor(), test::answer({200, {}, R"({"ok":true})"}));
  http_connection connection(io.get_executor(), at(server), nullptr, options());
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    for (int i = 0; i < 100; ++i) {
      auto reply = co_await connection.exchange(post(), 2s);
      CO_ASSERT_TRUE(reply);
      EXPECT_EQ(reply->status, 200u);
      EXPECT_EQ(reply->body, R"({"ok":true})");
    }
  }));
  EXPECT_EQ(connect_count(), 1u);
  EXPECT_EQ(server.accepted(), 1u);
  EXPECT_EQ(server.requests(), 100u);
  EXPECT_TRUE(connection.is_open());
}

struct seen_request {
  std::string method, target, host, content_type, authorization, body;
};

asio::awaitable<void> record_and_answer(fake_http_server::connection& c, std::shared_ptr<seen_request> seen) {
  for (;;) {
    const bool got = co_await c.read_request();
    if (!got) co_return;
    const auto& r = c.last_request();
    *seen = {std::string(r.method_string()), std::string(r.target()), std::string(r["Host"]),
             std::string(r["Content-Type"]), std::string(r["Authorization"]), r.body()};
    const canned_reply empty_ok{200, {}, "{}"};  // named: GCC 12 double-frees braced temporaries in co_await
    const bool answered = co_await c.write_reply(empty_ok);
    if (!answered) co_return;
  }
}

TEST_F(transport, sends_host_content_type_authorization_and_body) {
  auto seen = std::make_shared<seen_request>();
  fake_http_server server(io.get_executor(),
                          [seen](fake_http_server::connection& c) { return record_and_answer(c, seen); });
  http_connection connection(io.get_executor(), at(server), nullptr, options());
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    auto request = post("/v3/kv/put", R"({"key":"Zm9v","value":"YmFy"})");
    request.authorization = "token.123";
    CO_ASSERT_TRUE(co_await connection.exchange(request, 2s));
    EXPECT_EQ(seen->method, "POST");
    EXPECT_EQ(seen->target, "/v3/kv/put");
    EXPECT_EQ(seen->host, "127.0.0.1:" + std::to_string(server.port()));
    EXPECT_EQ(seen->content_type, "application/json");
    EXPECT_EQ(seen->authorization, "token.123");
    EXPECT_EQ(seen->body, R"({"key":"Zm9v","value":"YmFy"})");

    http_request get;  // no token: no Authorization header at all
    get.method = boost::beast::http::verb::get;
    get.target = "/version";
    CO_ASSERT_TRUE(co_await connection.exchange(get, 2s));
    EXPECT_EQ(seen->method, "GET");
    EXPECT_EQ(seen->authorization, "");
  }));
}

TEST_F(transport, an_idle_connection_the_server_closed_is_replaced_before_sending) {
  fake_http_server server(io.get_executor(), test::answer_then_drop({200, {}, "{}"}));
  http_connection connection(io.get_executor(), at(server), nullptr, options());
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    for (std::size_t i = 1; i <= 3; ++i) {
      bool sent = false;
      auto reply = co_await connection.exchange(post(), 2s, &sent);
      CO_ASSERT_TRUE(reply);
      EXPECT_EQ(reply->status, 200u);
      EXPECT_TRUE(sent);
      // The server has closed its end: the next exchange must notice before writing.
      CO_ASSERT_TRUE(co_await server.wait_until([&] { return server.closed() == i; }, prompt));
    }
  }));
  EXPECT_EQ(connect_count(), 3u);
  EXPECT_EQ(server.requests(), 3u);
}

constexpr std::string_view late_408 = "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

asio::awaitable<void> answer_then_complain(fake_http_server::connection& c) {
  const bool got = co_await c.read_request();
  if (!got) co_return;
  const canned_reply ok{200, {}, "{}"};
  const bool answered = co_await c.write_reply(ok);
  if (!answered) co_return;
  co_await c.pause(20ms);  // usually after the client has read the reply; either way it must not be reused
  const bool complained = co_await c.write(late_408);
  if (complained) co_await c.hold();
}

TEST_F(transport, an_idle_connection_with_unsolicited_bytes_is_replaced_before_sending) {
  fake_http_server server(io.get_executor(),
                          [](fake_http_server::connection& c) { return answer_then_complain(c); });
  http_connection connection(io.get_executor(), at(server), nullptr, options());
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    CO_ASSERT_TRUE(co_await connection.exchange(post(), 2s));
    const auto reply_and_408 = server.bytes_written() + late_408.size();
    CO_ASSERT_TRUE(co_await server.wait_until([&] { return server.bytes_written() == reply_and_408; }, prompt));
    auto second = co_await connection.exchange(post(), 2s);
    CO_ASSERT_TRUE(second);
    EXPECT_EQ(second->status, 200u);  // not the 408 meant for nobody
  }));
  EXPECT_EQ(connect_count(), 2u);
}

TEST_F(transport, a_reply_that_says_close_closes_the_connection) {
  fake_http_server server(io.get_executor(), test::answer({200, {{"Connection", "close"}}, "{}"}));
  http_connection connection(io.get_executor(), at(server), nullptr, options());
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    CO_ASSERT_TRUE(co_await connection.exchange(post(), 2s));
    EXPECT_FALSE(connection.is_open());
    CO_ASSERT_TRUE(co_await connection.exchange(post(), 2s));
  }));
  EXPECT_EQ(connect_count(), 2u);
}

TEST_F(transport, bytes_after_the_reply_keep_the_connection_from_reuse) {
  fake_http_server server(io.get_executor(),
                          test::send_raw("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n", true));
  http_connection connection(io.get_executor(), at(server), nullptr, options());
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    auto reply = co_await connection.exchange(post(), 2s);
    CO_ASSERT_TRUE(reply);
    EXPECT_EQ(reply->body, "{}");
    EXPECT_FALSE(connection.is_open());
  }));
}

asio::awaitable<void> read_then_hang_up(fake_http_server::connection& c) {
  const bool got = co_await c.read_request();
  if (got) c.close();
}

TEST_F(transport, a_server_that_hangs_up_after_the_request_is_unavailable_and_sent) {
  fake_http_server server(io.get_executor(), [](fake_http_server::connection& c) { return read_then_hang_up(c); });
  http_connection connection(io.get_executor(), at(server), nullptr, options());
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    bool sent = false;
    auto reply = co_await connection.exchange(post(), 2s, &sent);
    CO_ASSERT_TRUE(!reply);
    EXPECT_EQ(reply.error(), make_error_code(errc::unavailable));
    EXPECT_TRUE(sent);
    EXPECT_FALSE(connection.is_open());
  }));
}

// ---- failures to connect, deadlines ----

unsigned short unused_port(asio::io_context& io) {
  asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
  return probe.local_endpoint().port();  // closed when probe goes: nobody listens there
}

TEST_F(transport, a_refused_connection_is_unavailable_at_once_and_not_sent) {
  auto where = parse_endpoint("http://127.0.0.1:" + std::to_string(unused_port(io))).value();
  http_connection connection(io.get_executor(), where, nullptr, options());
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    stopwatch clock;
    bool sent = true;
    auto reply = co_await connection.exchange(post(), 10s, &sent);
    CO_ASSERT_TRUE(!reply);
    EXPECT_EQ(reply.error(), make_error_code(errc::unavailable));
    EXPECT_FALSE(sent);
    EXPECT_LT(clock.elapsed(), prompt);
  }));
  EXPECT_EQ(connect_count(), 0u);
}

TEST_F(transport, a_server_that_never_answers_times_out_within_the_deadline) {
  fake_http_server server(io.get_executor(), test::never_answer());
  http_connection connection(io.get_executor(), at(server), nullptr, options());
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    stopwatch clock;
    bool sent = false;
    auto reply = co_await connection.exchange(post(), 200ms, &sent);
    CO_ASSERT_TRUE(!reply);
    EXPECT_EQ(reply.error(), make_error_code(errc::timeout));
    EXPECT_LT(clock.elapsed(), prompt);
    EXPECT_TRUE(sent);
    EXPECT_FALSE(connection.is_open());
    const bool server_saw_close = co_await server.wait_until([&] { return server.closed() == 1; }, prompt);
    EXPECT_TRUE(server_saw_close);
  }));
}

TEST_F(transport, an_https_endpoint_without_a_tls_context_is_invalid_options) {
  http_connection connection(io.get_executor(), parse_endpoint("https://127.0.0.1:1").value(), nullptr, options());
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    auto reply = co_await connection.exchange(post(), 1s);
    CO_ASSERT_TRUE(!reply);
    EXPECT_EQ(reply.error(), make_error_code(errc::invalid_options));
  }));
}

TEST_F(transport, a_line_break_in_a_header_value_is_refused_before_connecting) {
  fake_http_server server(io.get_executor(), test::answer({200, {}, "{}"}));
  http_connection connection(io.get_executor(), at(server), nullptr, options());
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    auto request = post();
    request.authorization = "token\r\nX-Injected: yes";
    auto reply = co_await connection.exchange(request, 1s);
    CO_ASSERT_TRUE(!reply);
    EXPECT_EQ(reply.error(), make_error_code(errc::invalid_options));
  }));
  EXPECT_EQ(connect_count(), 0u);
}

// ---- replies that break HTTP ----

struct bad_reply_case {
  const char* name;
  std::string bytes;
  bool hold_open;  // false: the server closes right after the bytes
  errc expected;
};

TEST_F(transport, replies_that_break_http_are_malformed_and_a_silent_hang_up_is_unavailable) {
  const bad_reply_case cases[] = {
      {"garbage status line", "HELLO WORLD\r\n\r\n", true, errc::malformed_response},
      {"not a number as status", "HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n", true, errc::malformed_response},
      {"body shorter than Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"cut\":", false,
       errc::malformed_response},
      {"bad Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n{}", true, errc::malformed_response},
      {"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", true,
       errc::malformed_response},
      {"chunk longer than its size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcdef\r\n0\r\n\r\n",
       true, errc::malformed_response},
      {"no last chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n", false,
       errc::malformed_response},
      {"header cut short", "HTTP/1.1 200 OK\r\nContent-Le", false, errc::malformed_response},
      {"nothing at all", "", false, errc::unavailable},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    fake_http_server server(io.get_executor(), test::send_raw(c.bytes, c.hold_open));
    http_connection connection(io.get_executor(), at(server), nullptr, options());
    EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
      stopwatch clock;
      auto reply = co_await connection.exchange(post(), 5s);
      CO_ASSERT_TRUE(!reply);
      EXPECT_EQ(reply.error(), make_error_code(c.expected)) << reply.error().message();
      EXPECT_LT(clock.elapsed(), prompt);  // found out from the bytes, not by waiting for the deadline
      EXPECT_FALSE(connection.is_open());
    }));
  }
}

TEST_F(transport, a_server_that_closes_on_accept_is_unavailable) {
  fake_http_server server(io.get_executor(), test::close_at_once());
  http_connection connection(io.get_executor(), at(server), nullptr, options());
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    auto reply = co_await connection.exchange(post(), 5s);
    CO_ASSERT_TRUE(!reply);
    EXPECT_EQ(reply.error(), make_error_code(errc::unavailable)) << reply.error().message();
  }));
}

// ---- size bounds ----

TEST_F(transport, a_body_of_exactly_max_body_is_accepted) {
  fake_http_server server(io.get_executor(), test::answer({200, {}, std::string(1000, 'b')}));
  http_connection connection(io.get_executor(), at(server), nullptr, options(1000));
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    auto reply = co_await connection.exchange(post(), 2s);
    CO_ASSERT_TRUE(reply);
    EXPECT_EQ(reply->body.size(), 1000u);
  }));
}

TEST_F(transport, a_body_one_byte_over_max_body_is_too_large) {
  fake_http_server server(io.get_executor(), test::answer({200, {}, std::string(1001, 'b')}));
  http_connection connection(io.get_executor(), at(server), nullptr, options(1000));
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    auto reply = co_await connection.exchange(post(), 2s);
    CO_ASSERT_TRUE(!reply);
    EXPECT_EQ(reply.error(), make_error_code(errc::response_too_large));
    EXPECT_FALSE(connection.is_open());
  }));
}

// The server below never stops sending: only a bound can end these exchanges before their deadline.
TEST_F(transport, a_huge_content_length_fails_at_the_header) {
  fake_http_server server(io.get_executor(), test::flood_with_length(std::uint64_t(1) << 40));
  http_connection connection(io.get_executor(), at(server), nullptr, options(64 * 1024));
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    stopwatch clock;
    auto reply = co_await connection.exchange(post(), 20s);
    CO_ASSERT_TRUE(!reply);
    EXPECT_EQ(reply.error(), make_error_code(errc::response_too_large));
    EXPECT_LT(clock.elapsed(), prompt);
  }));
}

TEST_F(transport, an_endless_chunked_body_fails_at_max_body) {
  fake_http_server server(io.get_executor(), test::flood_chunked());
  http_connection connection(io.get_executor(), at(server), nullptr, options(64 * 1024));
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    stopwatch clock;
    auto reply = co_await connection.exchange(post(), 20s);
    CO_ASSERT_TRUE(!reply);
    EXPECT_EQ(reply.error(), make_error_code(errc::response_too_large));
    EXPECT_LT(clock.elapsed(), prompt);
  }));
}

TEST_F(transport, a_huge_header_is_too_large) {
  std::string header = "HTTP/1.1 200 OK\r\nX-Filler: " + std::string(200 * 1024, 'h');
  fake_http_server server(io.get_executor(), test::send_raw(header, true));
  http_connection connection(io.get_executor(), at(server), nullptr, options());
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    auto reply = co_await connection.exchange(post(), 5s);
    CO_ASSERT_TRUE(!reply);
    EXPECT_EQ(reply.error(), make_error_code(errc::response_too_large)) << reply.error().message();
  }));
}

// ---- cancellation ----

// Starts `operation` with a cancellation slot, waits until `started()` holds, emits terminal
// cancellation, and waits (bounded) for the operation to complete. Returns its outcome.
template <class T>
asio::awaitable<std::optional<result<T>>> cancel_in_flight(asio::awaitable<result<T>> operation,
                                                           fake_http_server& server, std::function<bool()> started) {
  auto executor = co_await asio::this_coro::executor;
  asio::cancellation_signal signal;
  auto outcome = std::make_shared<std::optional<result<T>>>();
  auto finished = std::make_shared<asio::steady_timer>(executor, std::chrono::steady_clock::time_point::max());
  asio::co_spawn(executor, std::move(operation),
                 asio::bind_cancellation_slot(signal.slot(), [outcome, finished](std::exception_ptr e, result<T> r) {
                   if (e) r = make_error_code(errc::server_error);  // the operation must not throw
                   *outcome = std::move(r);
                   finished->cancel();
                 }));
  // Let the operation run up to its first wait (no I/O needed for that, so a few turns are enough),
  // then until the server has seen what the test waits for.
  for (int turn = 0; turn < 10; ++turn) co_await asio::post(executor, asio::use_awaitable);
  const bool began = co_await server.wait_until(started, prompt);
  if (!began) co_return std::nullopt;
  signal.emit(asio::cancellation_type::terminal);
  finished->expires_after(prompt);
  co_await finished->async_wait(asio::as_tuple(asio::use_awaitable));
  co_return *outcome;
}

TEST_F(transport, cancelling_an_exchange_in_flight_aborts_it_and_closes_the_connection) {
  fake_http_server server(io.get_executor(), test::never_answer());
  http_connection connection(io.get_executor(), at(server), nullptr, options());
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    stopwatch clock;
    const auto request = post();
    auto outcome = co_await cancel_in_flight(connection.exchange(request, 20s), server,
                                             [&] { return server.requests() == 1; });
    CO_ASSERT_TRUE(outcome.has_value());
    CO_ASSERT_TRUE(!*outcome);
    EXPECT_EQ(outcome->error(), asio::error::operation_aborted);
    EXPECT_LT(clock.elapsed(), prompt);
    EXPECT_FALSE(connection.is_open());
    const bool server_saw_close = co_await server.wait_until([&] { return server.closed() == 1; }, prompt);
    EXPECT_TRUE(server_saw_close);
  }));
}

// Found by tests/integration/hostile_server_test.cpp: a peer that never stops sending kept an exchange running past
// its deadline (Beast's deadline fires only while a read waits for bytes), until the body limit ended it.
TEST_F(transport, an_endless_chunked_body_ends_at_the_deadline_when_the_body_limit_is_far) {
  fake_http_server server(io.get_executor(), test::flood_chunked());
  http_connection connection(io.get_executor(), at(server), nullptr, options(std::size_t(64) << 30));
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    stopwatch clock;
    auto reply = co_await connection.exchange(post(), 300ms);
    CO_ASSERT_TRUE(!reply);
    EXPECT_EQ(reply.error(), make_error_code(errc::timeout)) << reply.error().message();
    EXPECT_LT(clock.elapsed(), 300ms + prompt);
    EXPECT_FALSE(connection.is_open());
  }));
}

TEST_F(transport, cancelling_an_exchange_during_a_flood_aborts_it) {
  fake_http_server server(io.get_executor(), test::flood_chunked());
  http_connection connection(io.get_executor(), at(server), nullptr, options(std::size_t(64) << 30));
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    const auto request = post();
    auto outcome = co_await cancel_in_flight(connection.exchange(request, 60s), server,
                                             [&] { return server.bytes_written() > (1u << 20); });
    CO_ASSERT_TRUE(outcome.has_value());  // completed within `prompt` of the cancellation
    CO_ASSERT_TRUE(!*outcome);
    EXPECT_EQ(outcome->error(), asio::error::operation_aborted);
    EXPECT_FALSE(connection.is_open());
  }));
}

TEST_F(transport, cancelling_a_stream_read_aborts_it_and_closes_the_stream) {
  fake_http_server server(io.get_executor(), test::stream_chunks({"{\"a\":1}\n"}));
  http_line_stream stream(io.get_executor(), at(server), nullptr, options());
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    CO_ASSERT_TRUE(co_await stream.open(post("/v3/watch"), 2s));
    CO_ASSERT_TRUE(co_await stream.next_line(2s));
    auto outcome = co_await cancel_in_flight(stream.next_line(0ms), server, [] { return true; });
    CO_ASSERT_TRUE(outcome.has_value());
    CO_ASSERT_TRUE(!*outcome);
    EXPECT_EQ(outcome->error(), asio::error::operation_aborted);
    EXPECT_FALSE(stream.is_open());
    const bool server_saw_close = co_await server.wait_until([&] { return server.closed() == 1; }, prompt);
    EXPECT_TRUE(server_saw_close);
  }));
}

// ---- the streamed reply (watch) ----

TEST_F(transport, lines_split_across_chunks_arrive_whole) {
  fake_http_server server(io.get_executor(),
                          test::stream_chunks({"{\"a\":", "1}\n{\"b\"", ":2}\n", "\n", "{\"c\":3}\r\n{\"d\":4", "}\n"}, 5ms));
  http_line_stream stream(io.get_executor(), at(server), nullptr, options());
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    auto opened = co_await stream.open(post("/v3/watch"), 2s);
    CO_ASSERT_TRUE(opened);
    EXPECT_EQ(opened->status, 200u);
    EXPECT_EQ(opened->body, "");
    for (const char* expected : {"{\"a\":1}", "{\"b\":2}", "{\"c\":3}", "{\"d\":4}"}) {
      auto line = co_await stream.next_line(5s);
      CO_ASSERT_TRUE(line);
      EXPECT_EQ(*line, expected);
    }
  }));
}

TEST_F(transport, a_stream_that_stalls_is_watch_stalled_after_the_idle_timeout) {
  fake_http_server server(io.get_executor(), test::stream_chunks({"{\"a\":1}\n"}));
  http_line_stream stream(io.get_executor(), at(server), nullptr, options());
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    CO_ASSERT_TRUE(co_await stream.open(post("/v3/watch"), 2s));
    CO_ASSERT_TRUE(co_await stream.next_line(200ms));
    stopwatch clock;
    auto line = co_await stream.next_line(200ms);
    CO_ASSERT_TRUE(!line);
    EXPECT_EQ(line.error(), make_error_code(errc::watch_stalled));
    EXPECT_LT(clock.elapsed(), prompt);
    EXPECT_FALSE(stream.is_open());
  }));
}

TEST_F(transport, every_byte_that_arrives_restarts_the_idle_timeout) {
  // One line trickling in a byte every 50 ms takes about 700 ms, longer than the 400 ms idle timeout.
  const std::string line = "{\"key\":\"abc\"}";
  std::vector<std::string> bytes;
  for (char c : line + "\n") bytes.emplace_back(1, c);
  fake_http_server server(io.get_executor(), test::stream_chunks(bytes, 50ms));
  http_line_stream stream(io.get_executor(), at(server), nullptr, options());
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    CO_ASSERT_TRUE(co_await stream.open(post("/v3/watch"), 2s));
    auto got = co_await stream.next_line(400ms);
    CO_ASSERT_TRUE(got);
    EXPECT_EQ(*got, line);
  }));
}

// Endless floods: only the line bound can end these reads (an unbounded reader would read forever).
TEST_F(transport, a_chunked_flood_without_newline_is_too_large_at_max_line) {
  fake_http_server server(io.get_executor(), test::flood_chunked());
  http_line_stream stream(io.get_executor(), at(server), nullptr, options(4 << 20, 64 * 1024));
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    CO_ASSERT_TRUE(co_await stream.open(post("/v3/watch"), 2s));
    stopwatch clock;
    auto line = co_await stream.next_line(10s);
    CO_ASSERT_TRUE(!line);
    EXPECT_EQ(line.error(), make_error_code(errc::response_too_large));
    EXPECT_LT(clock.elapsed(), prompt);
    EXPECT_FALSE(stream.is_open());
  }));
}

TEST_F(transport, a_flood_with_content_length_without_newline_is_too_large_at_max_line) {
  fake_http_server server(io.get_executor(), test::flood_with_length(std::uint64_t(1) << 40));
  http_line_stream stream(io.get_executor(), at(server), nullptr, options(64 * 1024, 64 * 1024));
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    auto opened = co_await stream.open(post("/v3/watch"), 2s);
    CO_ASSERT_TRUE(opened);  // max_body bounds error replies only
    auto line = co_await stream.next_line(10s);
    CO_ASSERT_TRUE(!line);
    EXPECT_EQ(line.error(), make_error_code(errc::response_too_large));
  }));
}

TEST_F(transport, a_complete_line_over_max_line_is_too_large) {
  fake_http_server server(io.get_executor(),
                          test::stream_chunks({"{\"ok\":1}\n" + std::string(100, 'x') + "\n{\"late\":1}\n"}));
  EXPECT_EQ(error_after_first_line(server, "{\"ok\":1}", 50), make_error_code(errc::response_too_large));
}

TEST_F(transport, a_non_200_stream_reply_returns_status_and_body_and_closes) {
  const std::string body = R"({"error":"etcdserver: user name is empty","code":3})";
  fake_http_server server(io.get_executor(), test::answer({400, {}, body}));
  http_line_stream stream(io.get_executor(), at(server), nullptr, options());
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    auto opened = co_await stream.open(post("/v3/watch"), 2s);
    CO_ASSERT_TRUE(opened);
    EXPECT_EQ(opened->status, 400u);
    EXPECT_EQ(opened->body, body);
    EXPECT_FALSE(stream.is_open());
    auto line = co_await stream.next_line(1s);
    CO_ASSERT_TRUE(!line);
    EXPECT_EQ(line.error(), make_error_code(errc::unavailable));
  }));
}

TEST_F(transport, a_non_200_chunked_stream_reply_is_read_whole) {
  fake_http_server server(io.get_executor(),
                          test::send_raw("HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
                                         "6\r\n{\"a\":1\r\n1\r\n}\r\n0\r\n\r\n",
                                         true));
  http_line_stream stream(io.get_executor(), at(server), nullptr, options());
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    auto opened = co_await stream.open(post("/v3/watch"), 2s);
    CO_ASSERT_TRUE(opened);
    EXPECT_EQ(opened->status, 503u);
    EXPECT_EQ(opened->body, "{\"a\":1}");
  }));
}

TEST_F(transport, a_non_200_stream_reply_over_max_body_is_too_large) {
  fake_http_server server(io.get_executor(),
                          test::send_raw("HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n"
                                         "800\r\n" + std::string(0x800, 'e') + "\r\n",
                                         true));
  http_line_stream stream(io.get_executor(), at(server), nullptr, options(1000));
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    auto opened = co_await stream.open(post("/v3/watch"), 5s);
    CO_ASSERT_TRUE(!opened);
    EXPECT_EQ(opened.error(), make_error_code(errc::response_too_large));
  }));
}

// A 200 reply whose chunked body follows.
const std::string chunked_ok = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

TEST_F(transport, a_stream_whose_body_ends_is_unavailable_after_its_last_line) {
  fake_http_server server(io.get_executor(), test::send_raw(chunked_ok + "8\r\n{\"a\":1}\n\r\n0\r\n\r\n", true));
  EXPECT_EQ(error_after_first_line(server, "{\"a\":1}"), make_error_code(errc::unavailable));
}

TEST_F(transport, a_stream_whose_server_hangs_up_mid_line_is_unavailable) {
  fake_http_server server(io.get_executor(), test::send_raw(chunked_ok + "8\r\n{\"a\":1}\n\r\n10\r\n{\"cut", false));
  EXPECT_EQ(error_after_first_line(server, "{\"a\":1}"), make_error_code(errc::unavailable));
}

TEST_F(transport, a_stream_with_bad_chunk_framing_is_malformed) {
  fake_http_server server(io.get_executor(), test::send_raw(chunked_ok + "8\r\n{\"a\":1}\n\r\nnot-hex\r\n", true));
  EXPECT_EQ(error_after_first_line(server, "{\"a\":1}"), make_error_code(errc::malformed_response));
}

TEST_F(transport, opening_a_stream_on_a_silent_server_times_out) {
  fake_http_server server(io.get_executor(), test::never_answer());
  http_line_stream stream(io.get_executor(), at(server), nullptr, options());
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    stopwatch clock;
    auto opened = co_await stream.open(post("/v3/watch"), 200ms);
    CO_ASSERT_TRUE(!opened);
    EXPECT_EQ(opened.error(), make_error_code(errc::timeout));
    EXPECT_LT(clock.elapsed(), prompt);
  }));
}

TEST_F(transport, reading_a_stream_never_opened_is_unavailable) {
  http_line_stream stream(io.get_executor(), parse_endpoint("http://127.0.0.1:1").value(), nullptr, options());
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    auto line = co_await stream.next_line(1s);
    CO_ASSERT_TRUE(!line);
    EXPECT_EQ(line.error(), make_error_code(errc::unavailable));
  }));
}

}  // namespace
}  // namespace clusterlock::transport
