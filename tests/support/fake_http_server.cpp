#include "support/fake_http_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <array>
#include <list>
#include <sstream>

namespace clusterlock::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
}

struct fake_http_server::state {
  explicit state(asio::any_io_executor ex) : executor(ex), acceptor(ex) {}
  void notify() {
    for (auto* waiter : waiters) waiter->cancel();
  }

  asio::any_io_executor executor;
  tcp::acceptor acceptor;
  std::shared_ptr<asio::ssl::context> tls;
  behaviour what_to_do;
  bool stopped = false;
  std::size_t accepted = 0, requests = 0, closed = 0, handshake_failures = 0;
  std::uint64_t bytes_written = 0;
  std::vector<std::weak_ptr<connection>> live;
  std::list<asio::steady_timer*> waiters;
};

namespace {

template <class Stream>
class stream_connection final : public fake_http_server::connection {
 public:
  template <class... Args>
  stream_connection(std::shared_ptr<fake_http_server::state> server, Args&&... args)
      : server_(std::move(server)), stream_(std::forward<Args>(args)...) {}

  Stream& stream() { return stream_; }

  asio::awaitable<bool> read_request() override {
    http::request_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    auto [ec, n] = co_await http::async_read(stream_, buffer_, parser, use_tuple);
    if (ec) co_return false;
    last_ = parser.release();
    ++server_->requests;
    server_->notify();
    co_return true;
  }

  const http::request<http::string_body>& last_request() const override { return last_; }

  asio::awaitable<bool> write(std::string_view bytes) override {
    auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(bytes.data(), bytes.size()), use_tuple);
    server_->bytes_written += n;
    server_->notify();
    co_return !ec;
  }

  asio::awaitable<void> hold() override {
    std::array<char, 4096> scratch;
    for (;;) {
      auto [ec, n] = co_await stream_.async_read_some(asio::buffer(scratch), use_tuple);
      if (ec) co_return;
    }
  }

  void close() override { beast::get_lowest_layer(stream_).close(); }

 private:
  std::shared_ptr<fake_http_server::state> server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> last_;
};

using plain_connection = stream_connection<beast::tcp_stream>;
using tls_connection = stream_connection<beast::ssl_stream<beast::tcp_stream>>;

asio::awaitable<void> serve(std::shared_ptr<fake_http_server::state> server, tcp::socket socket) {
  // The frame owns a copy of the behaviour: the server's may be replaced while this one runs.
  auto what_to_do = server->what_to_do;
  std::shared_ptr<fake_http_server::connection> connection;
  if (server->tls) {
    auto tls = std::make_shared<tls_connection>(server, std::move(socket), *server->tls);
    auto [ec] = co_await tls->stream().async_handshake(asio::ssl::stream_base::server, use_tuple);
    if (ec) {
      tls->close();
      ++server->handshake_failures;
      ++server->closed;
      server->notify();
      co_return;
    }
    connection = tls;
  } else {
    connection = std::make_shared<plain_connection>(server, std::move(socket));
  }
  server->live.push_back(connection);
  if (!server->stopped) co_await what_to_do(*connection);
  connection->close();
  ++server->closed;
  server->notify();
}

asio::awaitable<void> accept_loop(std::shared_ptr<fake_http_server::state> server) {
  for (;;) {
    auto [ec, socket] = co_await server->acceptor.async_accept(use_tuple);
    if (server->stopped || !server->acceptor.is_open()) co_return;
    if (ec) continue;
    ++server->accepted;
    server->notify();
    asio::co_spawn(server->executor, serve(server, std::move(socket)), asio::detached);
  }
}

}  // namespace

asio::awaitable<bool> fake_http_server::connection::write_reply(const canned_reply& reply) {
  std::ostringstream out;
  out << "HTTP/1.1 " << reply.status << ' ' << http::obsolete_reason(http::int_to_status(reply.status)) << "\r\n";
  bool has_content_type = false;
  for (const auto& [name, value] : reply.headers) {
    out << name << ": " << value << "\r\n";
    if (beast::iequals(name, "Content-Type")) has_content_type = true;
  }
  if (!has_content_type) out << "Content-Type: application/json\r\n";
  out << "Content-Length: " << reply.body.size() << "\r\n\r\n" << reply.body;
  co_return co_await write(out.str());
}

asio::awaitable<bool> fake_http_server::connection::write_chunk(std::string_view data) {
  std::ostringstream out;
  out << std::hex << data.size() << "\r\n" << data << "\r\n";
  co_return co_await write(out.str());
}

asio::awaitable<void> fake_http_server::connection::pause(std::chrono::milliseconds duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  co_await timer.async_wait(use_tuple);
}

fake_http_server::fake_http_server(asio::any_io_executor executor, behaviour what_to_do,
                                   std::shared_ptr<asio::ssl::context> tls)
    : state_(std::make_shared<state>(executor)) {
  state_->tls = std::move(tls);
  state_->what_to_do = std::move(what_to_do);
  tcp::endpoint loopback(asio::ip::make_address("127.0.0.1"), 0);
  state_->acceptor.open(loopback.protocol());
  state_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  state_->acceptor.bind(loopback);
  state_->acceptor.listen();
  asio::co_spawn(executor, accept_loop(state_), asio::detached);
}

fake_http_server::~fake_http_server() { stop(); }

void fake_http_server::stop() {
  state_->stopped = true;
  boost::system::error_code ignored;
  state_->acceptor.close(ignored);
  for (auto& weak : state_->live)
    if (auto connection = weak.lock()) connection->close();
  state_->live.clear();
  state_->notify();
}

unsigned short fake_http_server::port() const { return state_->acceptor.local_endpoint().port(); }

std::string fake_http_server::url() const {
  return std::string(state_->tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port());
}

void fake_http_server::set_behaviour(behaviour what_to_do) { state_->what_to_do = std::move(what_to_do); }

std::size_t fake_http_server::accepted() const { return state_->accepted; }
std::size_t fake_http_server::requests() const { return state_->requests; }
std::size_t fake_http_server::closed() const { return state_->closed; }
std::size_t fake_http_server::handshake_failures() const { return state_->handshake_failures; }
std::uint64_t fake_http_server::bytes_written() const { return state_->bytes_written; }

asio::awaitable<bool> fake_http_server::wait_until(std::function<bool()> condition, std::chrono::milliseconds timeout) {
  auto server = state_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  asio::steady_timer timer(server->executor);
  server->waiters.push_back(&timer);
  auto registered = std::prev(server->waiters.end());
  struct unregister {
    std::shared_ptr<state> server;
    std::list<asio::steady_timer*>::iterator it;
    ~unregister() { server->waiters.erase(it); }
  } guard{server, registered};
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) co_return false;
    timer.expires_at(deadline);
    co_await timer.async_wait(use_tuple);
  }
  co_return true;
}

std::shared_ptr<asio::ssl::context> make_server_tls_context(const std::string& cert_file, const std::string& key_file,
                                                            const std::string& client_ca) {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  context->use_certificate_chain_file(cert_file);
  context->use_private_key_file(key_file, asio::ssl::context::pem);
  if (!client_ca.empty()) {
    context->load_verify_file(client_ca);
    context->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
  }
  return context;
}

// ---- canned behaviours: each a coroutine with its parameters copied into its frame ----
namespace {

using connection = fake_http_server::connection;

// GCC 12 miscompiles a co_await written directly in an if or while condition (or in ?:): the
// program crashes. Every result is therefore put in a variable first.
asio::awaitable<void> answer_all(connection& c, canned_reply reply) {
  for (;;) {
    const bool got = co_await c.read_request();
    if (!got) co_return;
    const bool answered = co_await c.write_reply(reply);
    if (!answered) co_return;
  }
}

asio::awaitable<void> answer_one(connection& c, canned_reply reply) {
  const bool got = co_await c.read_request();
  if (got) co_await c.write_reply(reply);
}

asio::awaitable<void> raw(connection& c, std::string bytes, bool hold_open) {
  const bool got = co_await c.read_request();
  if (!got) co_return;
  const bool written = co_await c.write(bytes);
  if (written && hold_open) co_await c.hold();
}

asio::awaitable<void> silent(connection& c) {
  const bool got = co_await c.read_request();
  if (got) co_await c.hold();
}

asio::awaitable<void> nothing(connection&) { co_return; }

constexpr std::string_view chunked_ok =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";

asio::awaitable<void> chunks(connection& c, std::vector<std::string> pieces, std::chrono::milliseconds gap) {
  const bool got = co_await c.read_request();
  if (!got) co_return;
  const bool header_written = co_await c.write(chunked_ok);
  if (!header_written) co_return;
  for (const auto& piece : pieces) {
    if (gap.count() > 0) co_await c.pause(gap);
    const bool written = co_await c.write_chunk(piece);
    if (!written) co_return;
  }
  co_await c.hold();
}

asio::awaitable<void> flood(connection& c, std::string header, bool chunked) {
  const bool got = co_await c.read_request();
  if (!got) co_return;
  const bool header_written = co_await c.write(header);
  if (!header_written) co_return;
  const std::string filler(16 * 1024, 'x');
  for (;;) {
    bool written = false;
    if (chunked) {
      written = co_await c.write_chunk(filler);
    } else {
      written = co_await c.write(filler);
    }
    if (!written) co_return;
  }
}

}  // namespace

behaviour answer(canned_reply reply) {
  return [reply](connection& c) { return answer_all(c, reply); };
}
behaviour answer_then_drop(canned_reply reply) {
  return [reply](connection& c) { return answer_one(c, reply); };
}
behaviour send_raw(std::string bytes, bool hold_open) {
  return [bytes, hold_open](connection& c) { return raw(c, bytes, hold_open); };
}
behaviour never_answer() {
  return [](connection& c) { return silent(c); };
}
behaviour close_at_once() {
  return [](connection& c) { return nothing(c); };
}
behaviour stream_chunks(std::vector<std::string> pieces, std::chrono::milliseconds gap) {
  return [pieces, gap](connection& c) { return chunks(c, pieces, gap); };
}
behaviour flood_chunked() {
  return [](connection& c) { return flood(c, std::string(chunked_ok), true); };
}
behaviour flood_with_length(std::uint64_t declared) {
  return [declared](connection& c) {
    return flood(c, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(declared) + "\r\n\r\n", false);
  };
}

}  // namespace clusterlock::test
