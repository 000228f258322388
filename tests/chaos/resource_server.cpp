#include "chaos/resource_server.hpp"

#include "chaos/chaos_records.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <map>
#include <stdexcept>
#include <utility>
#include <vector>

namespace clusterlock::chaos {

namespace {

long long monotonic_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void write_all(int fd, const std::string& s) {
  const char* p = s.data();
  std::size_t left = s.size();
  while (left > 0) {
    const auto n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace

resource_server::resource_server(const std::string& log_path, std::optional<resource_fence> fence)
    : fence_(std::move(fence)) {
  log_fd_ = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd_ < 0) throw std::runtime_error("resource: open " + log_path + ": " + std::strerror(errno));
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd_, 64) != 0 || ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    const std::string why = std::strerror(errno);
    if (listen_fd_ >= 0) ::close(listen_fd_);
    ::close(log_fd_);
    throw std::runtime_error("resource: cannot listen on loopback: " + why);
  }
  port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] { serve(); });
}

resource_server::~resource_server() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
  ::close(log_fd_);
}

std::string resource_server::decide(const std::string& line) {
  const auto space = line.find(' ');
  if (space == std::string::npos || space + 1 >= line.size()) return "";
  resource_write w;
  const auto [end, ec] = std::from_chars(line.data(), line.data() + space, w.token);
  if (ec != std::errc() || end != line.data() + space || w.token <= 0) return "";
  w.identity = line.substr(space + 1);
  if (w.identity.find(' ') != std::string::npos) return "";
  w.accepted = !fence_ || fence_->allows(w);
  w.ns = monotonic_ns();
  if (w.accepted) {
    if (fence_) fence_->take(w);
    ++accepted_;
  } else {
    ++rejected_;
  }
  return format_resource_write(w) + "\n";
}

void resource_server::serve() {
  std::map<int, std::string> pending;  // connection -> bytes of an unfinished line
  std::vector<pollfd> fds;
  while (!stop_) {
    fds.clear();
    fds.push_back({listen_fd_, POLLIN, 0});
    for (const auto& [fd, buf] : pending) fds.push_back({fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), 50) <= 0) continue;  // 50 ms: how soon it sees stop_
    if (fds[0].revents & POLLIN) {
      const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) pending[c];
    }
    std::string log;
    for (std::size_t i = 1; i < fds.size(); ++i) {
      if (!fds[i].revents) continue;
      char buf[4096];
      const auto n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        ::close(fds[i].fd);  // the writer went away (ended, killed); a torn last line dies with it
        pending.erase(fds[i].fd);
        continue;
      }
      std::string& p = pending[fds[i].fd];
      p.append(buf, static_cast<std::size_t>(n));
      for (std::size_t nl; (nl = p.find('\n')) != std::string::npos; p.erase(0, nl + 1)) log += decide(p.substr(0, nl));
    }
    if (!log.empty()) write_all(log_fd_, log);
  }
  for (const auto& [fd, buf] : pending) ::close(fd);
}

}  // namespace clusterlock::chaos
