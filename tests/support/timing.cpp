#include "support/timing.hpp"

#include <cstdio>

namespace clusterlock::test {

long long milliseconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
}

void report_timing(const char* what, long long ms) {
  std::printf("[ timing   ] %s %lld ms\n", what, ms);
  std::fflush(stdout);
}

}  // namespace clusterlock::test
