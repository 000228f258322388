#include "proc_stats.hpp"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_set>

namespace clusterlock::bench {

namespace {

std::string proc_dir(pid_t pid) { return pid == 0 ? std::string("/proc/self") : "/proc/" + std::to_string(pid); }

std::unordered_set<unsigned long> socket_inodes(const std::string& dir) {
  std::unordered_set<unsigned long> inodes;
  const std::string fd_dir = dir + "/fd";
  DIR* d = ::opendir(fd_dir.c_str());
  if (!d) return inodes;
  while (dirent* e = ::readdir(d)) {
    char target[128];
    const std::string link = fd_dir + "/" + e->d_name;
    const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    unsigned long inode = 0;
    if (std::sscanf(target, "socket:[%lu]", &inode) == 1) inodes.insert(inode);
  }
  ::closedir(d);
  return inodes;
}

}  // namespace

std::int64_t now_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

process_usage read_usage(pid_t pid) {
  const std::string dir = proc_dir(pid);
  std::ifstream stat(dir + "/stat");
  std::string line;
  if (!std::getline(stat, line)) throw std::runtime_error("cannot read " + dir + "/stat");
  // Fields after the command name (which may hold spaces, so start after its closing parenthesis): state is
  // field 3, utime field 14, stime field 15.
  std::istringstream rest(line.substr(line.rfind(')') + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  process_usage u;
  u.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  std::ifstream status(dir + "/status");
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) u.rss_kib = std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return u;
}

int tcp_connections(pid_t pid, unsigned short remote_port) {
  const std::string dir = proc_dir(pid);
  const auto inodes = socket_inodes(dir);
  int count = 0;
  for (const char* table : {"/net/tcp", "/net/tcp6"}) {
    std::ifstream in(dir + table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      std::istringstream fields(line);
      std::string sl, local, remote, state, queues, timer, retransmits, uid, timeout;
      unsigned long inode = 0;
      fields >> sl >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
      if (state != "01" || !inodes.contains(inode)) continue;  // 01: ESTABLISHED
      const auto colon = remote.rfind(':');
      if (colon == std::string::npos) continue;
      if (std::stoul(remote.substr(colon + 1), nullptr, 16) == remote_port) ++count;
    }
  }
  return count;
}

}  // namespace clusterlock::bench
