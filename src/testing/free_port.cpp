#include "testing/free_port.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <random>
#include <stdexcept>
#include <unordered_set>

namespace clusterlock::testing::detail {
namespace {

constexpr unsigned lowest_port = 10000;
constexpr std::size_t remembered_ports = 8192;

// Binds 127.0.0.1:port (0: any) without SO_REUSEADDR, so a port with connections in TIME_WAIT counts as taken too.
// Returns the bound port, 0 when it is taken.
unsigned short try_bind(unsigned short port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  unsigned short bound = 0;
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
    socklen_t length = sizeof address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) bound = ntohs(address.sin_port);
  }
  ::close(fd);
  return bound;
}

unsigned ephemeral_range_start() {
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  unsigned low = 32768;
  range >> low;
  return low;
}

class port_picker {
 public:
  unsigned short pick() {
    std::lock_guard lock(mutex_);
    if (range_end_ > lowest_port + 1000) {
      std::uniform_int_distribution<unsigned> distribution(lowest_port, range_end_ - 1);
      for (int attempt = 0; attempt < 2000; ++attempt) {
        const auto candidate = static_cast<unsigned short>(distribution(random_));
        if (recent_.contains(candidate)) continue;
        if (try_bind(candidate) == candidate) return remember(candidate);
      }
    }
    for (int attempt = 0; attempt < 100; ++attempt) {
      const unsigned short port = try_bind(0);
      if (port != 0 && !recent_.contains(port)) return remember(port);
    }
    throw std::runtime_error("no free TCP port on 127.0.0.1");
  }

 private:
  unsigned short remember(unsigned short port) {
    recent_.insert(port);
    order_.push_back(port);
    if (order_.size() > remembered_ports) {
      recent_.erase(order_.front());
      order_.pop_front();
    }
    return port;
  }

  std::mutex mutex_;
  std::mt19937 random_{std::random_device{}()};
  const unsigned range_end_ = ephemeral_range_start();
  std::unordered_set<unsigned short> recent_;
  std::deque<unsigned short> order_;
};

port_picker& picker() {
  static port_picker instance;
  return instance;
}

}  // namespace

unsigned short free_port() { return picker().pick(); }

std::vector<unsigned short> free_ports(std::size_t count) {
  std::vector<unsigned short> ports;
  ports.reserve(count);
  // Distinct because a port stays in the recently-handed-out set.
  for (std::size_t i = 0; i < count; ++i) ports.push_back(free_port());
  return ports;
}

}  // namespace clusterlock::testing::detail
