#pragma once
// Runs Prometheus' own checker on an exposition: `promtool check metrics` (Debian's prometheus package; CMake finds
// it and defines CLUSTERLOCK_PROMTOOL). Its lints (names, units, _total, HELP/TYPE) count as failures.

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#ifndef CLUSTERLOCK_PROMTOOL
#error "CLUSTERLOCK_PROMTOOL must name the promtool executable"
#endif

namespace clusterlock::test {

struct promtool_result {
  int status = -1;     // promtool's exit status: 0 when it had nothing to say
  std::string output;  // what it printed (stdout and stderr)
};

inline promtool_result promtool_check(const std::string& exposition) {
  static int serial = 0;
  const auto file = std::filesystem::temp_directory_path() /
                    ("clusterlock-metrics-" + std::to_string(::getpid()) + "-" + std::to_string(++serial) + ".prom");
  std::ofstream(file) << exposition;
  promtool_result r;
  const std::string command = std::string(CLUSTERLOCK_PROMTOOL) + " check metrics < " + file.string() + " 2>&1";
  if (FILE* p = ::popen(command.c_str(), "r")) {
    char buf[512];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.output.append(buf, n);
    const int raw = ::pclose(p);
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  }
  std::filesystem::remove(file);
  return r;
}

}  // namespace clusterlock::test
