// What the numbers were measured on: they mean little without it.
#include <boost/version.hpp>

#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <ctime>
#include <fstream>
#include <sstream>

#include "bench.hpp"
#include "support/child_process.hpp"
#include "support/etcd_cluster.hpp"

namespace clusterlock::bench {

namespace {

std::string first_line_with(const std::string& file, const std::string& prefix) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix, 0) == 0) {
      auto colon = line.find(':');
      auto value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      return value;
    }
  return "?";
}

std::string first_line_of_command(const std::vector<std::string>& argv) {
  auto r = test::run_command(argv, test::clean_environment({"ETCDCTL_API=3"}), 10s);
  std::istringstream in(r.out);
  std::string line;
  std::getline(in, line);
  return line.empty() ? "?" : line;
}

std::string filesystem_of(const std::string& dir) {
  struct statfs s{};
  if (::statfs(dir.c_str(), &s) != 0) return "?";
  switch (static_cast<unsigned long>(s.f_type)) {
    case 0xEF53: return "ext4";
    case 0x01021994: return "tmpfs (fsync is free!)";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x794C7630: return "overlayfs";
    default: {
      std::ostringstream hex;
      hex << "type 0x" << std::hex << s.f_type;
      return hex.str();
    }
  }
}

}  // namespace

std::vector<std::pair<std::string, std::string>> machine_info(context& ctx) {
  std::vector<std::pair<std::string, std::string>> info;
  char date[64];
  const std::time_t t = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
  info.emplace_back("date", date);
  info.emplace_back("CPU", first_line_with("/proc/cpuinfo", "model name"));
  info.emplace_back("nproc", std::to_string(::sysconf(_SC_NPROCESSORS_ONLN)));
  const long mem_kib = std::stol(first_line_with("/proc/meminfo", "MemTotal"));
  info.emplace_back("memory", fixed(static_cast<double>(mem_kib) / 1024 / 1024, 1) + " GiB");
  utsname u{};
  ::uname(&u);
  info.emplace_back("kernel", std::string(u.sysname) + " " + u.release + " " + u.machine);
  std::ifstream loadavg("/proc/loadavg");
  std::string l1, l5, l15;
  loadavg >> l1 >> l5 >> l15;
  info.emplace_back("load average at start", l1 + " " + l5 + " " + l15);
  info.emplace_back("etcd", first_line_of_command({"/usr/bin/etcd", "--version"}));
  info.emplace_back("etcdctl", first_line_of_command({ctx.etcdctl_bin, "version"}));
  info.emplace_back("etcd setup", "one member on 127.0.0.1, fsync on (etcd's default), heartbeat 100 ms and election "
                                  "timeout 1000 ms (etcd's defaults), data on " +
                                      filesystem_of(ctx.etcd->data_dir(0)));
  {
    etcd_helper etcd(ctx.endpoint);
    info.emplace_back("etcd minimum lease TTL", std::to_string(etcd.granted_ttl(1s)) + " s (granted when asked for 1 s)");
  }
  info.emplace_back("compiler", std::string("GCC ") + __VERSION__);
#if defined(NDEBUG) && defined(__OPTIMIZE__)
  info.emplace_back("build", "optimized, NDEBUG (scripts/bench.sh: Release, -O3)");
#else
  info.emplace_back("build", "NOT an optimized release build: numbers are not representative");
#endif
  info.emplace_back("Boost", BOOST_LIB_VERSION);
  return info;
}

}  // namespace clusterlock::bench
