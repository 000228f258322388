#pragma once
// Measured times in test output: one line per measurement, for the summary over repeated runs.

#include <chrono>

namespace clusterlock::test {

/// Whole milliseconds from `start` to now.
long long milliseconds_since(std::chrono::steady_clock::time_point start);

/// Prints "[ timing   ] <what> <ms> ms" (grep "[ timing" over repeated runs).
void report_timing(const char* what, long long ms);

}  // namespace clusterlock::test
