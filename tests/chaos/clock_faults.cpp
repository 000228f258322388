#include "chaos/clock_faults.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace clusterlock::chaos {

namespace fs = std::filesystem;

std::string find_libfaketime() {
  // Debian installs it under the multiarch directory; look there rather than assume the architecture.
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib", ec)) {
    const fs::path candidate = entry.path() / "faketime" / "libfaketimeMT.so.1";
    if (fs::exists(candidate, ec)) return candidate.string();
  }
  const fs::path flat = "/usr/lib/faketime/libfaketimeMT.so.1";
  return fs::exists(flat, ec) ? flat.string() : std::string();
}

std::vector<std::string> faketime_env(fault_kind kind, const std::string& library, const std::string& timestamp_file) {
  // An ASan-built contender (scripts/test-sanitized.sh) refuses to start when another library is preloaded before
  // its runtime; libfaketime only wraps libc's clock calls, so the order does not matter to ASan's checks.
  const char* asan = std::getenv("ASAN_OPTIONS");
  std::vector<std::string> env = {"LD_PRELOAD=" + library, "FAKETIME_DONT_FAKE_MONOTONIC=0",
                                  "ASAN_OPTIONS=" + std::string(asan && *asan ? std::string(asan) + ":" : "") +
                                      "verify_asan_link_order=0"};
  switch (kind) {
    case fault_kind::clock_slow:
      env.push_back("FAKETIME=+0 x0.5");
      break;
    case fault_kind::clock_fast:
      env.push_back("FAKETIME=+0 x2");
      break;
    default:  // clock_jump
      set_clock_offset(timestamp_file, 0);
      env.push_back("FAKETIME_TIMESTAMP_FILE=" + timestamp_file);
      env.push_back("FAKETIME_NO_CACHE=1");  // read at every call: the jump lands at once
      break;
  }
  return env;
}

void set_clock_offset(const std::string& timestamp_file, double offset_s) {
  char spec[64];
  std::snprintf(spec, sizeof spec, "%+.3f\n", offset_s);
  std::ofstream out(timestamp_file, std::ios::trunc);
  out << spec;
  out.close();
  if (!out) throw std::runtime_error("cannot write " + timestamp_file);
}

std::string clock_label(fault_kind kind) {
  return kind == fault_kind::clock_slow ? "x0.5" : kind == fault_kind::clock_fast ? "x2" : "jump";
}

}  // namespace clusterlock::chaos
