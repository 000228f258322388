#include "counting_relay.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <mutex>
#include <string_view>
#include <thread>

namespace clusterlock::bench {

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

// Finds HTTP/1.1 request lines in a client's byte stream. Requests follow each other on a keep-alive connection,
// a body right before the next request line; JSON bodies of base64 keys never contain "POST /".
class http1_scanner {
 public:
  template <class Found>
  void feed(std::string_view data, Found found) {
    std::string buf = carry_;
    buf.append(data);
    std::size_t counted_to = 0;  // just after the last request line counted
    std::size_t keep_from = std::string::npos;
    for (std::size_t pos = 0;;) {
      const std::size_t hit = std::min(buf.find("POST /", pos), buf.find("GET /", pos));
      if (hit == std::string::npos) break;
      const std::size_t path_start = buf.find(' ', hit) + 1;
      const std::size_t path_end = buf.find(' ', path_start);
      if (path_end == std::string::npos) {  // the request line continues in the next read
        keep_from = hit;
        break;
      }
      found(buf.substr(path_start, path_end - path_start));
      counted_to = pos = path_end;
    }
    if (keep_from != std::string::npos && buf.size() - keep_from < 4096) {
      carry_ = buf.substr(keep_from);
    } else {
      // The tail may hold the first bytes of a request line, never one already counted.
      carry_ = buf.substr(std::max(counted_to, buf.size() > 6 ? buf.size() - 6 : std::size_t{0}));
    }
  }

 private:
  std::string carry_;
};

// Walks HTTP/2 frames in a client's byte stream (after the 24-byte connection preface).
class http2_scanner {
 public:
  void feed(const unsigned char* p, std::size_t n, counting_relay::counts& c) {
    while (n > 0) {
      if (preface_left_ > 0 || payload_left_ > 0) {
        auto& left = preface_left_ > 0 ? preface_left_ : payload_left_;
        const auto k = std::min<std::size_t>(n, left);
        left -= k;
        p += k;
        n -= k;
        continue;
      }
      header_[have_++] = *p++;
      --n;
      if (have_ < header_.size()) continue;
      have_ = 0;
      const std::size_t length = (std::size_t{header_[0]} << 16) | (std::size_t{header_[1]} << 8) | header_[2];
      const unsigned type = header_[3], flags = header_[4];
      if (type == 0 && length > 0) ++c.requests;      // DATA: a gRPC message
      if (type == 1) ++c.calls;                       // HEADERS: a new call
      if (type == 6 && (flags & 1) == 0) ++c.pings;  // PING, not an ACK
      payload_left_ = length;
    }
  }

 private:
  std::size_t preface_left_ = 24;
  std::size_t payload_left_ = 0;
  std::array<unsigned char, 9> header_{};
  std::size_t have_ = 0;
};

}  // namespace

counting_relay::counts counting_relay::counts::operator-(const counts& earlier) const {
  counts d = *this;
  d.connections -= earlier.connections;
  d.requests -= earlier.requests;
  d.calls -= earlier.calls;
  d.pings -= earlier.pings;
  d.bytes_up -= earlier.bytes_up;
  d.bytes_down -= earlier.bytes_down;
  for (const auto& [path, n] : earlier.by_path) d.by_path[path] -= n;
  std::erase_if(d.by_path, [](const auto& e) { return e.second == 0; });
  return d;
}

struct counting_relay::impl {
  asio::io_context io;
  tcp::acceptor acceptor{io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)};
  unsigned short target = 0;
  unsigned short port = 0;
  protocol proto = protocol::http1;
  mutable std::mutex mutex;
  counts totals;
  std::thread thread;

  struct link {
    tcp::socket client;
    tcp::socket server;
    void close() {
      boost::system::error_code ignored;
      client.close(ignored);
      server.close(ignored);
    }
  };

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      asio::co_spawn(io, serve(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> serve(tcp::socket client) {
    auto l = std::make_shared<link>(link{std::move(client), tcp::socket(io)});
    const tcp::endpoint upstream(asio::ip::address_v4::loopback(), target);
    auto [ec] = co_await l->server.async_connect(upstream, asio::as_tuple(asio::use_awaitable));
    if (ec) {
      l->close();
      co_return;
    }
    l->client.set_option(tcp::no_delay(true));
    l->server.set_option(tcp::no_delay(true));
    {
      std::lock_guard lock(mutex);
      ++totals.connections;
    }
    asio::co_spawn(io, pump(l, true), asio::detached);
    asio::co_spawn(io, pump(l, false), asio::detached);
  }

  asio::awaitable<void> pump(std::shared_ptr<link> l, bool up) {
    auto& from = up ? l->client : l->server;
    auto& to = up ? l->server : l->client;
    std::vector<unsigned char> buf(64 * 1024);
    http1_scanner h1;
    http2_scanner h2;
    for (;;) {
      auto [read_error, n] = co_await from.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      if (read_error) break;
      {
        std::lock_guard lock(mutex);
        if (!up) {
          totals.bytes_down += n;
        } else {
          totals.bytes_up += n;
          if (proto == protocol::http2) {
            h2.feed(buf.data(), n, totals);
          } else {
            h1.feed(std::string_view(reinterpret_cast<const char*>(buf.data()), n), [&](std::string path) {
              ++totals.requests;
              ++totals.calls;
              ++totals.by_path[std::move(path)];
            });
          }
        }
      }
      auto [write_error, written] = co_await asio::async_write(to, asio::buffer(buf.data(), n),
                                                                asio::as_tuple(asio::use_awaitable));
      if (write_error) break;
    }
    l->close();
  }
};

counting_relay::counting_relay(unsigned short target_port, protocol p) : impl_(std::make_unique<impl>()) {
  impl_->target = target_port;
  impl_->proto = p;
  impl_->port = impl_->acceptor.local_endpoint().port();
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

counting_relay::~counting_relay() {
  impl_->io.stop();
  impl_->thread.join();
}

unsigned short counting_relay::port() const noexcept { return impl_->port; }
std::string counting_relay::url() const { return "http://127.0.0.1:" + std::to_string(port()); }

counting_relay::counts counting_relay::snapshot() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->totals;
}

}  // namespace clusterlock::bench
