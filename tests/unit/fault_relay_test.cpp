// The testing kit's fault relay (clusterlock::testing::fault_relay), each mode against a small echo server on the
// test's own io_context. The relay runs on its own thread; the test runs its io_context with bounded waits.
#include <clusterlock/testing/fault_relay.hpp>

#include "support/bounded_wait.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace clusterlock::testing {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;
using test::run_until;
using mode = fault_relay::mode;

constexpr auto prompt = 5s;  // upper bound for what should happen at once, generous for a loaded machine

// One end of a TCP connection on the test's io_context: reads all the time, keeps what came and how it ended.
struct relay_test_peer : std::enable_shared_from_this<relay_test_peer> {
  explicit relay_test_peer(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;
  std::string received;
  std::optional<error_code> ended;  // eof, connection_reset, ...
  std::array<char, 4096> buffer{};

  void read() {
    socket.async_read_some(asio::buffer(buffer), [self = shared_from_this()](error_code ec, std::size_t n) {
      if (ec) {
        self->ended = ec;
        return;
      }
      self->received.append(self->buffer.data(), n);
      self->read();
    });
  }
  void send(const std::string& text) {
    auto bytes = std::make_shared<std::string>(text);
    asio::async_write(socket, asio::buffer(*bytes), [bytes](error_code, std::size_t) {});
  }
};

// Accepts on 127.0.0.1 and echoes what each connection sends (unless echo is off); keeps every connection.
struct relay_echo_server {
  explicit relay_echo_server(asio::io_context& io) : acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {
    accept();
  }
  tcp::acceptor acceptor;
  std::vector<std::shared_ptr<relay_test_peer>> peers;
  bool echo = true;

  unsigned short port() const { return acceptor.local_endpoint().port(); }
  std::size_t received() const {
    std::size_t n = 0;
    for (const auto& p : peers) n += p->received.size();
    return n;
  }

 private:
  void accept() {
    acceptor.async_accept([this](error_code ec, tcp::socket s) {
      if (ec) return;
      auto peer = std::make_shared<relay_test_peer>(std::move(s));
      peers.push_back(peer);
      echo_loop(peer);
      accept();
    });
  }
  void echo_loop(const std::shared_ptr<relay_test_peer>& p) {
    p->socket.async_read_some(asio::buffer(p->buffer), [this, p](error_code ec, std::size_t n) {
      if (ec) {
        p->ended = ec;
        return;
      }
      p->received.append(p->buffer.data(), n);
      if (echo) p->send(std::string(p->buffer.data(), n));
      echo_loop(p);
    });
  }
};

class fault_relay_test : public ::testing::Test {
 protected:
  // A client connected through the relay, reading.
  std::shared_ptr<relay_test_peer> connect() {
    tcp::socket s(io);
    s.connect(tcp::endpoint(asio::ip::address_v4::loopback(), relay.port()));
    auto peer = std::make_shared<relay_test_peer>(std::move(s));
    peer->read();
    return peer;
  }
  // A client connected through the relay whose server end is accepted, with "hello" echoed both ways.
  std::shared_ptr<relay_test_peer> connected_and_echoed() {
    auto c = connect();
    c->send("hello");
    EXPECT_TRUE(run_until(io, [&] { return c->received == "hello"; }, prompt)) << c->received;
    return c;
  }
  template <class Pred>
  bool run_until_stats(Pred pred) {
    return run_until(io, [&] { return pred(relay.stats()); }, prompt);
  }
  // Runs the io_context for `d`: to show that nothing happens, after what would have happened at once.
  void quiet_for(std::chrono::milliseconds d) { test::run_for(io, d); }

  asio::io_context io;
  relay_echo_server server{io};
  fault_relay relay{"127.0.0.1", server.port()};
};

TEST_F(fault_relay_test, passes_bytes_both_ways_and_counts_them) {
  EXPECT_EQ(relay.url(), "http://127.0.0.1:" + std::to_string(relay.port()));
  EXPECT_EQ(relay.current_mode(), mode::pass);
  auto c = connected_and_echoed();
  // The relay counts a write when it completes, which may be just after the client read it.
  ASSERT_TRUE(run_until_stats([](const auto& st) { return st.bytes_to_client == 5; }));
  const auto s = relay.stats();
  EXPECT_EQ(s.accepted, 1u);
  EXPECT_EQ(s.open_connections, 1u);
  EXPECT_EQ(s.bytes_to_server, 5u);
  EXPECT_EQ(s.bytes_to_client, 5u);
  EXPECT_EQ(s.bytes_dropped, 0u);
  EXPECT_EQ(s.resets, 0u);
  // The client closes: the server is told, and the connection is no longer counted.
  c->socket.close();
  ASSERT_TRUE(run_until(io, [&] { return server.peers.size() == 1 && server.peers[0]->ended; }, prompt));
  EXPECT_EQ(*server.peers[0]->ended, asio::error::eof);
  EXPECT_TRUE(run_until_stats([](const auto& st) { return st.open_connections == 0; }));
}

TEST_F(fault_relay_test, blackhole_keeps_connections_open_drops_bytes_both_ways_and_pass_heals) {
  auto c = connected_and_echoed();
  relay.blackhole();
  EXPECT_EQ(relay.current_mode(), mode::blackhole);
  c->send("lost");
  ASSERT_TRUE(run_until_stats([](const auto& s) { return s.bytes_dropped >= 4; }));
  server.peers[0]->send("unseen");  // server -> client is dropped too
  ASSERT_TRUE(run_until(io, [&] { return relay.stats().bytes_dropped >= 10; }, prompt));
  // A new connection is accepted and kept open; what it sends goes nowhere.
  auto fresh = connect();
  fresh->send("nowhere");
  ASSERT_TRUE(run_until(io, [&] { return relay.stats().bytes_dropped >= 17; }, prompt));
  quiet_for(300ms);
  EXPECT_EQ(c->received, "hello");
  EXPECT_FALSE(c->ended);
  EXPECT_FALSE(fresh->ended);
  EXPECT_TRUE(fresh->received.empty());
  EXPECT_EQ(server.received(), 5u);
  EXPECT_EQ(relay.stats().open_connections, 2u);
  EXPECT_EQ(relay.resets(), 0u);

  relay.pass();
  c->send("back");
  fresh->send("again");
  ASSERT_TRUE(run_until(io, [&] { return c->received == "helloback" && fresh->received == "again"; }, prompt))
      << c->received << " / " << fresh->received;
}

TEST_F(fault_relay_test, a_side_that_closes_in_a_blackhole_is_seen_closed_only_after_pass) {
  auto c = connected_and_echoed();
  relay.blackhole();
  server.peers[0]->socket.close();
  quiet_for(300ms);
  EXPECT_FALSE(c->ended) << "a blackhole tells nothing, not even a close";
  relay.pass();
  ASSERT_TRUE(run_until(io, [&] { return c->ended.has_value(); }, prompt));
  EXPECT_EQ(*c->ended, asio::error::eof);
  EXPECT_TRUE(run_until_stats([](const auto& s) { return s.open_connections == 0; }));
}

TEST_F(fault_relay_test, delay_adds_latency_to_each_direction_and_keeps_the_order) {
  auto c = connected_and_echoed();
  relay.delay(150ms);
  EXPECT_EQ(relay.current_delay(), 150ms);
  EXPECT_EQ(relay.current_mode(), mode::pass);
  const auto sent = std::chrono::steady_clock::now();
  for (const char* part : {"a", "b", "c", "d"}) c->send(part);
  ASSERT_TRUE(run_until(io, [&] { return c->received.size() >= 9; }, prompt)) << c->received;
  const auto round_trip = std::chrono::steady_clock::now() - sent;
  EXPECT_EQ(c->received, "helloabcd");
  EXPECT_GE(round_trip, 300ms);  // 150 ms there and 150 ms back
  EXPECT_LT(round_trip, 3s);

  relay.delay(0ms);
  EXPECT_EQ(relay.current_delay(), 0ms);
  EXPECT_THROW(relay.delay(-1ms), std::invalid_argument);
}

TEST_F(fault_relay_test, cut_resets_open_connections_on_both_sides_and_new_ones_until_pass) {
  auto c = connected_and_echoed();
  relay.cut();
  EXPECT_EQ(relay.current_mode(), mode::cut);
  ASSERT_TRUE(run_until(io, [&] { return c->ended && server.peers[0]->ended; }, prompt));
  EXPECT_EQ(*c->ended, asio::error::connection_reset) << c->ended->message();
  EXPECT_EQ(*server.peers[0]->ended, asio::error::connection_reset) << server.peers[0]->ended->message();
  EXPECT_EQ(relay.resets(), 1u);
  EXPECT_EQ(relay.open_connections(), 0u);

  // While cut, a new connection is accepted and reset at once; the server never sees it.
  auto fresh = connect();
  fresh->send("x");
  ASSERT_TRUE(run_until(io, [&] { return fresh->ended.has_value(); }, prompt));
  EXPECT_EQ(*fresh->ended, asio::error::connection_reset) << fresh->ended->message();
  EXPECT_EQ(relay.resets(), 2u);
  EXPECT_EQ(server.peers.size(), 1u);

  relay.pass();
  auto healed = connected_and_echoed();
  EXPECT_EQ(server.peers.size(), 2u);
}

TEST_F(fault_relay_test, one_way_passes_only_the_chosen_direction) {
  auto c = connected_and_echoed();
  relay.one_way(mode::client_to_server_only);
  EXPECT_EQ(relay.current_mode(), mode::client_to_server_only);
  c->send("up");
  ASSERT_TRUE(run_until(io, [&] { return server.peers[0]->received == "helloup"; }, prompt));
  ASSERT_TRUE(run_until(io, [&] { return relay.stats().bytes_dropped >= 2; }, prompt));  // the echo, dropped
  EXPECT_EQ(c->received, "hello");

  relay.one_way(mode::server_to_client_only);
  server.echo = false;
  c->send("lost");
  ASSERT_TRUE(run_until(io, [&] { return relay.stats().bytes_dropped >= 6; }, prompt));
  server.peers[0]->send("down");
  ASSERT_TRUE(run_until(io, [&] { return c->received == "hellodown"; }, prompt)) << c->received;
  EXPECT_EQ(server.peers[0]->received, "helloup");
  EXPECT_FALSE(c->ended);

  EXPECT_THROW(relay.one_way(mode::pass), std::invalid_argument);
  EXPECT_THROW(relay.one_way(mode::cut), std::invalid_argument);
  EXPECT_EQ(relay.current_mode(), mode::server_to_client_only);
}

TEST_F(fault_relay_test, a_refused_target_closes_the_client) {
  // A port nothing listens on: take one and close it.
  unsigned short closed_port = 0;
  {
    tcp::acceptor a(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    closed_port = a.local_endpoint().port();
  }
  fault_relay nowhere("127.0.0.1", closed_port);
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::address_v4::loopback(), nowhere.port()));
  auto c = std::make_shared<relay_test_peer>(std::move(s));
  c->read();
  ASSERT_TRUE(run_until(io, [&] { return c->ended.has_value(); }, prompt));
  EXPECT_TRUE(test::eventually([&] { return nowhere.open_connections() == 0; }, 5000ms));
}

TEST_F(fault_relay_test, bad_arguments_throw) {
  EXPECT_THROW(fault_relay("no-such-host.invalid", 2379), boost::system::system_error);
  EXPECT_THROW(fault_relay("127.0.0.1", 2379, relay.port()), boost::system::system_error);  // taken
}

TEST_F(fault_relay_test, destruction_with_open_connections_is_prompt_and_closes_them) {
  auto other = std::make_unique<fault_relay>("127.0.0.1", server.port());
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::address_v4::loopback(), other->port()));
  auto c = std::make_shared<relay_test_peer>(std::move(s));
  c->read();
  c->send("hi");
  ASSERT_TRUE(run_until(io, [&] { return c->received == "hi"; }, prompt));
  other->delay(10s);  // bytes held in the relay
  c->send("held");
  other->blackhole();
  const auto t = std::chrono::steady_clock::now();
  other.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t, 1s);
  // Closed: with a FIN, or an RST when bytes were left unread in the relay's socket.
  ASSERT_TRUE(run_until(io, [&] { return c->ended.has_value(); }, prompt));
  EXPECT_TRUE(*c->ended == asio::error::eof || *c->ended == asio::error::connection_reset) << c->ended->message();
}

TEST_F(fault_relay_test, controls_from_other_threads_while_bytes_flow) {
  auto c = connected_and_echoed();
  std::atomic<bool> done{false};
  std::thread flipper([&] {
    for (int i = 0; i < 200; ++i) {
      if (i % 4 == 0) relay.blackhole();
      if (i % 4 == 1) relay.delay(1ms);
      if (i % 4 == 2) relay.one_way(mode::client_to_server_only);
      if (i % 4 == 3) relay.pass();
      (void)relay.stats();
    }
    relay.pass();
    done = true;
  });
  std::string sent;
  for (int i = 0; !done && i < 100000; ++i) {
    c->send("x");
    test::run_for(io, 1ms);
  }
  flipper.join();
  EXPECT_TRUE(done);
  EXPECT_EQ(relay.current_mode(), mode::pass);
  EXPECT_FALSE(c->ended);
  // Healed: a fresh marker gets through and back.
  const auto before = c->received.size();
  c->send("!");
  ASSERT_TRUE(run_until(io, [&] { return c->received.size() > before && c->received.back() == '!'; }, prompt));
}

}  // namespace
}  // namespace clusterlock::testing
