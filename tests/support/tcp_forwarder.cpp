#include "support/tcp_forwarder.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <thread>

namespace clusterlock::test {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// One relayed connection: two sockets, one pump per direction. Either side ending closes both.
struct relay : std::enable_shared_from_this<relay> {
  tcp::socket client;
  tcp::socket server;
  std::array<char, 16384> up{};
  std::array<char, 16384> down{};

  relay(tcp::socket c, asio::io_context& io) : client(std::move(c)), server(io) {}

  void start(const tcp::endpoint& target) {
    server.async_connect(target, [self = shared_from_this()](boost::system::error_code ec) {
      if (ec) return self->stop();
      self->pump(self->client, self->server, self->up);
      self->pump(self->server, self->client, self->down);
    });
  }

  void pump(tcp::socket& from, tcp::socket& to, std::array<char, 16384>& buf) {
    from.async_read_some(asio::buffer(buf), [self = shared_from_this(), &from, &to, &buf](
                                                boost::system::error_code ec, std::size_t n) {
      if (ec) return self->stop();
      asio::async_write(to, asio::buffer(buf.data(), n),
                        [self, &from, &to, &buf](boost::system::error_code ec2, std::size_t) {
                          if (ec2) return self->stop();
                          self->pump(from, to, buf);
                        });
    });
  }

  void stop() {
    boost::system::error_code ignored;
    client.close(ignored);
    server.close(ignored);
  }
};

}  // namespace

struct tcp_forwarder::impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  tcp::endpoint target;
  std::atomic<int> accepted{0};
  std::thread thread;

  void accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket s) {
      if (ec) return;  // closed: shutting down
      ++accepted;
      std::make_shared<relay>(std::move(s), io)->start(target);
      accept();
    });
  }
};

tcp_forwarder::tcp_forwarder(const std::string& listen_ip, const std::string& target_ip, unsigned short target_port,
                             unsigned short listen_port)
    : impl_(std::make_unique<impl>()) {
  impl_->target = tcp::endpoint(asio::ip::make_address(target_ip), target_port);
  tcp::endpoint local(asio::ip::make_address(listen_ip), listen_port);
  impl_->acceptor.open(local.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(local);
  impl_->acceptor.listen();
  impl_->accept();
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

tcp_forwarder::~tcp_forwarder() {
  // Stopping the io_context drops the pending handlers; their relays and sockets go with them.
  impl_->io.stop();
  impl_->thread.join();
}

unsigned short tcp_forwarder::port() const { return impl_->acceptor.local_endpoint().port(); }
int tcp_forwarder::accepted() const { return impl_->accepted.load(); }

}  // namespace clusterlock::test
