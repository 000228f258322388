#include "support/hostile_relay.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <stdexcept>
#include <string_view>
#include <vector>

// Every co_await result goes into a variable before it is tested (GCC 12 miscompiles a co_await in a condition).

namespace clusterlock::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

const char* to_string(hostile_relay::mode m) {
  switch (m) {
    case hostile_relay::mode::forward: return "forward";
    case hostile_relay::mode::stall: return "stall";
    case hostile_relay::mode::silent: return "silent";
    case hostile_relay::mode::garbage: return "garbage";
    case hostile_relay::mode::garbage_json: return "garbage_json";
    case hostile_relay::mode::cut: return "cut";
    case hostile_relay::mode::flood: return "flood";
  }
  return "?";
}

namespace {

// A client connection and, when relayed, its connection to the server.
struct connection {
  explicit connection(tcp::socket s) : client(std::move(s)), server(client.get_executor()) {}
  tcp::socket client;
  tcp::socket server;
  bool closed = false;
  bool watch = false;  // its request was POST /v3/watch
  std::uint64_t flooded = 0;
  void close() {
    closed = true;
    error_code ignored;
    client.close(ignored);
    server.close(ignored);
  }
};

// Modes in which the relay answers by itself instead of relaying.
bool answers_itself(hostile_relay::mode m) {
  using mode = hostile_relay::mode;
  return m == mode::silent || m == mode::garbage || m == mode::garbage_json || m == mode::flood;
}

}  // namespace

struct hostile_relay::state : std::enable_shared_from_this<state> {
  state(asio::any_io_executor ex, tcp::endpoint to)
      : executor(ex), acceptor(ex, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), target(to) {}

  asio::any_io_executor executor;
  tcp::acceptor acceptor;
  tcp::endpoint target;
  mode current = mode::forward;
  // Waiters for a mode change hold a copy; set_mode() cancels it and puts a new one here.
  std::shared_ptr<asio::steady_timer> mode_changed =
      std::make_shared<asio::steady_timer>(executor, asio::steady_timer::time_point::max());
  std::vector<std::weak_ptr<connection>> connections;
  std::size_t accepted = 0;
  std::uint64_t flood_bytes = 0;
  std::uint64_t largest_flood = 0;
  std::uint64_t largest_watch_flood = 0;
  std::size_t watch_floods = 0;
  std::size_t cuts = 0;
  std::size_t watch_cuts = 0;
  bool stopped = false;

  void close_all() {
    for (auto& w : connections)
      if (auto c = w.lock()) c->close();
    connections.clear();
  }

  std::size_t open_connections() {
    std::erase_if(connections, [](const auto& w) {
      auto c = w.lock();
      return !c || c->closed;
    });
    return connections.size();
  }

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    while (!stopped) {
      tcp::socket socket(executor);
      auto [ec] = co_await acceptor.async_accept(socket, use_tuple);
      if (ec || stopped) break;
      ++accepted;
      auto c = std::make_shared<connection>(std::move(socket));
      connections.push_back(c);
      if (answers_itself(current)) {
        asio::co_spawn(executor, answer(c, current), asio::detached);
      } else {
        asio::co_spawn(executor, relay(c), asio::detached);
      }
    }
  }

  // ---- relaying

  asio::awaitable<void> relay(std::shared_ptr<connection> c) {
    auto self = shared_from_this();
    auto [ec] = co_await c->server.async_connect(target, use_tuple);
    if (ec || c->closed) {
      c->close();
      co_return;
    }
    asio::co_spawn(executor, pump(c, false), asio::detached);
    asio::co_spawn(executor, pump(c, true), asio::detached);
  }

  // One direction. `downstream`: server -> client.
  asio::awaitable<void> pump(std::shared_ptr<connection> c, bool downstream) {
    auto self = shared_from_this();
    auto& from = downstream ? c->server : c->client;
    auto& to = downstream ? c->client : c->server;
    std::array<char, 16 * 1024> buffer;
    while (!c->closed) {
      auto [ec, n] = co_await from.async_read_some(asio::buffer(buffer), use_tuple);
      if (ec || c->closed) break;
      if (!downstream && std::string_view(buffer.data(), n).starts_with("POST /v3/watch ")) c->watch = true;
      // Stalled: hold what was read (and read no more) until the mode changes.
      while (current == mode::stall && !c->closed) {
        auto changed = mode_changed;
        co_await changed->async_wait(use_tuple);
      }
      if (c->closed) break;
      const bool cut = downstream && current == mode::cut;
      const std::size_t pass = cut ? n / 2 : n;
      auto [write_ec, written] = co_await asio::async_write(to, asio::buffer(buffer.data(), pass), use_tuple);
      if (cut) {
        ++cuts;
        if (c->watch) ++watch_cuts;
      }
      if (write_ec || cut) break;
    }
    c->close();
  }

  // ---- answering by itself

  asio::awaitable<void> answer(std::shared_ptr<connection> c, mode how) {
    auto self = shared_from_this();
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    auto [ec, n] = co_await http::async_read(c->client, buffer, request, use_tuple);
    if (ec || c->closed) {
      c->close();
      co_return;
    }
    const bool watch = request.target() == "/v3/watch";
    c->watch = watch;
    if (how == mode::silent) {
      // Read and drop whatever else comes, until the client gives up.
      std::array<char, 4096> sink;
      while (!c->closed) {
        auto [read_ec, got] = co_await c->client.async_read_some(asio::buffer(sink), use_tuple);
        if (read_ec) break;
      }
    } else if (how == mode::garbage) {
      const std::string garbage("\x16\x03\x01\x02\x00 this is not HTTP at all\r\n\r\n\x00\xff", 36);
      co_await write(*c, garbage);
    } else if (how == mode::garbage_json) {
      const std::string body = "<html>502 bad gateway, or so</html>";
      const std::string reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                                std::to_string(body.size()) + "\r\n\r\n" + body;
      co_await write(*c, reply);
    } else if (how == mode::flood) {
      co_await flood(*c, watch);
    }
    c->close();
  }

  asio::awaitable<bool> write(connection& c, std::string_view bytes) {
    auto [ec, n] = co_await asio::async_write(c.client, asio::buffer(bytes.data(), bytes.size()), use_tuple);
    co_return !ec;
  }

  asio::awaitable<void> flood(connection& c, bool watch) {
    std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    if (watch) {
      // A watch reads its "created" message before anything else: give it one, so the flood hits the stream.
      const std::string created = R"({"result":{"header":{"revision":"1"},"created":true}})" "\n";
      char size[16];
      std::snprintf(size, sizeof size, "%zx\r\n", created.size());
      head += size + created + "\r\n";
    }
    const bool head_sent = co_await write(c, head);
    if (!head_sent) co_return;
    if (watch) ++watch_floods;
    const std::string chunk = "10000\r\n" + std::string(0x10000, 'x') + "\r\n";
    while (!c.closed) {
      const bool sent = co_await write(c, chunk);
      if (!sent) break;
      c.flooded += 0x10000;
      flood_bytes += 0x10000;
      largest_flood = std::max(largest_flood, c.flooded);
      if (watch) largest_watch_flood = std::max(largest_watch_flood, c.flooded);
    }
  }
};

hostile_relay::hostile_relay(asio::any_io_executor executor, const std::string& target_host,
                             unsigned short target_port)
    : state_(std::make_shared<state>(executor, tcp::endpoint(asio::ip::make_address(target_host), target_port))) {
  asio::co_spawn(executor, state_->accept_loop(), asio::detached);
}

hostile_relay::~hostile_relay() {
  state_->stopped = true;
  error_code ignored;
  state_->acceptor.close(ignored);
  state_->close_all();
  state_->mode_changed->cancel();
}

unsigned short hostile_relay::port() const { return state_->acceptor.local_endpoint().port(); }
std::string hostile_relay::url() const { return "http://127.0.0.1:" + std::to_string(port()); }

void hostile_relay::set_mode(mode m) {
  state_->current = m;
  if (answers_itself(m)) state_->close_all();
  // Wake the stalled pumps: they look at the mode again.
  state_->mode_changed->cancel();
  state_->mode_changed =
      std::make_shared<asio::steady_timer>(state_->executor, asio::steady_timer::time_point::max());
}

hostile_relay::mode hostile_relay::current_mode() const { return state_->current; }
std::size_t hostile_relay::accepted() const { return state_->accepted; }
std::size_t hostile_relay::open_connections() const { return state_->open_connections(); }
std::uint64_t hostile_relay::flood_bytes() const { return state_->flood_bytes; }
std::uint64_t hostile_relay::largest_flood() const { return state_->largest_flood; }
std::uint64_t hostile_relay::largest_watch_flood() const { return state_->largest_watch_flood; }
std::size_t hostile_relay::watch_floods() const { return state_->watch_floods; }
std::size_t hostile_relay::cuts() const { return state_->cuts; }
std::size_t hostile_relay::watch_cuts() const { return state_->watch_cuts; }

}  // namespace clusterlock::test
