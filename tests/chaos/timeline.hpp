// The timeline picture of a chaos run (gnuplot, PNG): one row per contender slot (identity c<slot>.<generation>; a
// contender started in place of a killed one keeps the row), a colored bar wherever it acted as holder, a black
// tick where a new tenure (fencing token) began, faults as shaded spans from injection to heal with a labeled line
// at the injection, graceful hand-offs (SIGTERM) as small triangles under the rows, violations as red crosses, races (log_check.hpp) as orange circles.
#pragma once

#include "chaos/chaos_records.hpp"
#include "chaos/log_check.hpp"

#include <string>
#include <vector>

namespace clusterlock::chaos {

struct timeline_input {
  std::vector<action> actions;  // any order
  std::vector<fault_record> faults;
  std::vector<driver_record> drivers;
  check_report report;
  long long start_ns = 0;
  long long end_ns = 0;
  std::string title;
  /// Draw only [from, to], in seconds since start_ns (a long run's whole timeline is too dense to read); from >= to
  /// draws all of it.
  double window_from_s = 0;
  double window_to_s = 0;
};

/// Writes the data files and the gnuplot script into `work_dir` and runs gnuplot to make `png`. False with
/// `*error` set when gnuplot fails.
bool render_timeline(const timeline_input& in, const std::string& png, const std::string& work_dir, std::string* error);

}  // namespace clusterlock::chaos
