// The fault relay's per-source blackhole (fault_relay::blackhole_from): its /proc/net/tcp line parser, and a real
// relay telling a child process's connections from this process's, all on loopback.
#include <clusterlock/testing/fault_relay.hpp>

#include "support/bounded_wait.hpp"
#include "testing/proc_sockets.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <csignal>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace clusterlock::testing::source_test {  // its own names beside fault_relay_test.cpp's in a unity build
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;
using detail::parse_proc_net_tcp_line;
using test::run_until;

constexpr auto prompt = 5s;

TEST(ProcNetTcpLine, ParsesIpv4AndIpv6RowsAndRejectsTheRest) {
  const auto v4 = parse_proc_net_tcp_line(
      "   7: 0100007F:A1B2 0100007F:0CEA 01 00000000:00000000 00:00000000 00000000  1000        0 6070132 1 "
      "00000000bb73e4c1 20 4 30 10 -1");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->local, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0xA1B2));
  EXPECT_EQ(v4->remote, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 3306));
  EXPECT_EQ(v4->inode, 6070132u);

  // ::ffff:127.0.0.1 comes as IPv4, so that it compares with the relay's endpoints; ::1 stays IPv6.
  const auto mapped = parse_proc_net_tcp_line(
      "   0: 0000000000000000FFFF00000100007F:9C40 0000000000000000FFFF00000100007F:0050 01 00000000:00000000 "
      "00:00000000 00000000  1000        0 42 1 0000000000000000 20 4 30 10 -1");
  ASSERT_TRUE(mapped);
  EXPECT_EQ(mapped->local, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 40000));
  EXPECT_EQ(mapped->remote, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 80));
  EXPECT_EQ(mapped->inode, 42u);
  const auto v6 = parse_proc_net_tcp_line(
      "   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 "
      "00:00000000 00000000     0        0 77 1 0000000000000000 100 0 0 10 0");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->local, tcp::endpoint(asio::ip::make_address("::1"), 8080));
  EXPECT_EQ(v6->inode, 77u);

  // A row in TIME_WAIT: no socket owns it.
  const auto time_wait = parse_proc_net_tcp_line(
      "   2: 0100007F:A1B3 0100007F:0CEA 06 00000000:00000000 03:00000A8C 00000000     0        0 0 3 "
      "0000000000000000");
  ASSERT_TRUE(time_wait);
  EXPECT_EQ(time_wait->inode, 0u);

  EXPECT_FALSE(parse_proc_net_tcp_line(
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"));
  EXPECT_FALSE(parse_proc_net_tcp_line(""));
  EXPECT_FALSE(parse_proc_net_tcp_line("   0: 0100007F 0100007F:0CEA 01 0:0 0:0 0 0 0 1"));        // no port
  EXPECT_FALSE(parse_proc_net_tcp_line("   0: 0100007G:0001 0100007F:0CEA 01 0:0 0:0 0 0 0 1"));   // not hex
  EXPECT_FALSE(parse_proc_net_tcp_line("   0: 0100007F:0001 0100007F:0CEA 01 0:0 0:0 0 0 0"));     // no inode
  EXPECT_FALSE(parse_proc_net_tcp_line("   0: 0100007F:0001 0100007F:0CEA 01 0:0 0:0 0 0 0 x1"));  // bad inode
  EXPECT_FALSE(parse_proc_net_tcp_line("   0: 00007F:0001 0100007F:0CEA 01 0:0 0:0 0 0 0 1"));     // short address
}

TEST(ProcSockets, FindsTheSocketsOfThisProcessAndNoneOfAMissingOne) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  tcp::socket client(io);
  client.connect(acceptor.local_endpoint());
  const detail::source_lookup ours({static_cast<int>(::getpid())});
  EXPECT_EQ(ours.find(client.local_endpoint(), acceptor.local_endpoint()), detail::connection_source::listed);
  // The reverse row (the accepted end) is not the connecting socket: nothing matches it.
  EXPECT_EQ(ours.find(acceptor.local_endpoint(), client.local_endpoint()), detail::connection_source::unknown);

  bool readable = true;
  EXPECT_TRUE(detail::socket_inodes_of(-1, &readable).empty());
  EXPECT_FALSE(readable);
  const detail::source_lookup missing({-1});  // cannot be read: who opened it cannot be told
  EXPECT_EQ(missing.find(client.local_endpoint(), acceptor.local_endpoint()), detail::connection_source::unknown);
  const detail::source_lookup init({1});  // readable or not (not ours), it is not init's socket
  EXPECT_NE(init.find(client.local_endpoint(), acceptor.local_endpoint()), detail::connection_source::listed);
}

// Accepts on 127.0.0.1 and keeps what each connection sends; can write to each.
struct source_sink {
  struct conn {
    explicit conn(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    std::string received;
    std::array<char, 4096> buffer{};
  };
  explicit source_sink(asio::io_context& io) : acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {
    accept();
  }
  tcp::acceptor acceptor;
  std::vector<std::shared_ptr<conn>> conns;

  std::string all() const {
    std::string out;
    for (const auto& c : conns) out += "[" + c->received + "]";
    return out;
  }
  void accept() {
    acceptor.async_accept([this](error_code ec, tcp::socket s) {
      if (ec) return;
      conns.push_back(std::make_shared<conn>(std::move(s)));
      read(conns.back());
      accept();
    });
  }
  void read(const std::shared_ptr<conn>& c) {
    c->socket.async_read_some(asio::buffer(c->buffer), [this, c](error_code ec, std::size_t n) {
      if (ec) return;
      c->received.append(c->buffer.data(), n);
      read(c);
    });
  }
};

// A child process that connects through the relay and writes on command, with raw system calls only (it is
// forked from a process with threads). Commands over a pipe, one byte each: 'o' connects and writes "c-open", 'm'
// writes "c-more" on it, 'n' opens a second connection and writes "c-new"; it answers 'k' once done. It exits when
// the command pipe closes; the destructor kills and reaps it in any case.
class relay_child {
 public:
  explicit relay_child(unsigned short port) {
    int to_child[2], from_child[2];
    if (::pipe(to_child) != 0 || ::pipe(from_child) != 0) throw std::runtime_error("pipe");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork");
    if (pid_ == 0) {
      ::close(to_child[1]);
      ::close(from_child[0]);
      run(port, to_child[0], from_child[1]);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    commands_ = to_child[1];
    answers_ = from_child[0];
  }
  ~relay_child() {
    ::close(commands_);
    ::close(answers_);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  relay_child(const relay_child&) = delete;
  relay_child& operator=(const relay_child&) = delete;

  int pid() const { return static_cast<int>(pid_); }
  // Sends a command and waits (bounded) for its answer.
  bool command(char c) {
    if (::write(commands_, &c, 1) != 1) return false;
    pollfd p{answers_, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return false;
    char k = 0;
    return ::read(answers_, &k, 1) == 1 && k == 'k';
  }

 private:
  [[noreturn]] static void run(unsigned short port, int commands, int answers) {
    const auto open = [port](const char* text) {
      const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in to{};
      to.sin_family = AF_INET;
      to.sin_port = htons(port);
      to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) ::_exit(2);
      if (::write(fd, text, std::char_traits<char>::length(text)) < 0) ::_exit(3);
      return fd;
    };
    int first = -1;
    char c = 0;
    while (::read(commands, &c, 1) == 1) {
      if (c == 'o') first = open("c-open");
      if (c == 'm' && ::write(first, "c-more", 6) != 6) ::_exit(3);
      if (c == 'n') (void)open("c-new");
      if (::write(answers, "k", 1) != 1) ::_exit(4);
    }
    ::_exit(0);
  }
  pid_t pid_ = -1;
  int commands_ = -1;
  int answers_ = -1;
};

TEST(FaultRelaySource, BlackholeFromDropsAChildProcesssConnectionsBothWaysAndPassesOurs) {
  asio::io_context io;
  source_sink sink(io);
  fault_relay relay("127.0.0.1", sink.acceptor.local_endpoint().port());
  relay_child child(relay.port());
  const auto stats_reach = [&](auto pred) { return run_until(io, [&] { return pred(relay.stats()); }, prompt); };

  // Both connect and are heard.
  ASSERT_TRUE(child.command('o'));
  tcp::socket ours(io);
  ours.connect(tcp::endpoint(asio::ip::address_v4::loopback(), relay.port()));
  asio::write(ours, asio::buffer(std::string("p-open")));
  ASSERT_TRUE(run_until(io, [&] { return sink.all().size() == 16; }, prompt)) << sink.all();
  const auto child_conn = sink.conns[0]->received == "c-open" ? sink.conns[0] : sink.conns[1];
  const auto our_conn = sink.conns[0]->received == "c-open" ? sink.conns[1] : sink.conns[0];
  ASSERT_EQ(our_conn->received, "p-open");

  // Cut off the child: its open connection is dropped both ways, ours passes.
  relay.blackhole_from({child.pid()});
  EXPECT_EQ(relay.current_mode(), fault_relay::mode::blackhole_from);
  EXPECT_EQ(relay.blackholed_sources(), std::vector<int>{child.pid()});
  EXPECT_EQ(relay.stats().sources_blackholed, 1u);
  EXPECT_EQ(relay.stats().unknown_sources, 0u);
  ASSERT_TRUE(child.command('m'));
  ASSERT_TRUE(stats_reach([](const auto& s) { return s.bytes_dropped == 6; }));
  asio::write(child_conn->socket, asio::buffer(std::string("s-child")));  // server -> child: dropped too
  ASSERT_TRUE(stats_reach([](const auto& s) { return s.bytes_dropped == 13; }));
  asio::write(ours, asio::buffer(std::string("p-more")));
  asio::write(our_conn->socket, asio::buffer(std::string("s-ours")));
  ASSERT_TRUE(run_until(io, [&] { return our_conn->received == "p-openp-more"; }, prompt)) << our_conn->received;
  std::array<char, 6> reply{};
  asio::read(ours, asio::buffer(reply));
  EXPECT_EQ(std::string(reply.data(), reply.size()), "s-ours");

  // A new connection of the child's is looked up when accepted, before a byte passes; a new one of ours passes.
  ASSERT_TRUE(child.command('n'));
  ASSERT_TRUE(stats_reach([](const auto& s) { return s.bytes_dropped == 18 && s.sources_blackholed == 2; }));
  tcp::socket ours_new(io);
  ours_new.connect(tcp::endpoint(asio::ip::address_v4::loopback(), relay.port()));
  asio::write(ours_new, asio::buffer(std::string("p-new")));
  ASSERT_TRUE(run_until(io, [&] { return sink.all().find("[p-new]") != std::string::npos; }, prompt)) << sink.all();
  EXPECT_EQ(child_conn->received, "c-open");
  EXPECT_EQ(sink.all().find("c-new"), std::string::npos) << sink.all();
  EXPECT_EQ(relay.stats().unknown_sources, 0u);

  // pass() heals: the child is heard again on the connection it kept.
  relay.pass();
  EXPECT_EQ(relay.current_mode(), fault_relay::mode::pass);
  EXPECT_TRUE(relay.blackholed_sources().empty());
  ASSERT_TRUE(child.command('m'));
  ASSERT_TRUE(run_until(io, [&] { return child_conn->received == "c-openc-more"; }, prompt)) << child_conn->received;
}

TEST(FaultRelaySource, AnOpenerThatCannotBeToldPassesAndIsCountedAndAnEmptyListIsPass) {
  asio::io_context io;
  source_sink sink(io);
  fault_relay relay("127.0.0.1", sink.acceptor.local_endpoint().port());
  tcp::socket ours(io);
  ours.connect(tcp::endpoint(asio::ip::address_v4::loopback(), relay.port()));
  ASSERT_TRUE(run_until(io, [&] { return relay.stats().open_connections == 1; }, prompt));

  relay.blackhole_from({-1});  // no such process: its connections, if any, cannot be told from ours
  EXPECT_EQ(relay.current_mode(), fault_relay::mode::blackhole_from);
  EXPECT_EQ(relay.stats().unknown_sources, 1u);
  asio::write(ours, asio::buffer(std::string("through")));
  ASSERT_TRUE(run_until(io, [&] { return sink.all() == "[through]"; }, prompt)) << sink.all();

  relay.blackhole_from({});
  EXPECT_EQ(relay.current_mode(), fault_relay::mode::pass);
  EXPECT_STREQ(to_string(fault_relay::mode::blackhole_from), "blackhole_from");
}

}  // namespace
}  // namespace clusterlock::testing::source_test
