// Reads back what a chaos run wrote (see chaos_records.hpp), for the checker and the timeline.
#pragma once

#include "chaos/chaos_records.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace clusterlock::chaos {

struct loaded_run {
  run_info info;
  std::vector<action> actions;        // every logs/*.log line, unsorted
  std::vector<fault_record> faults;   // sorted by injection time
  std::vector<driver_record> drivers;
  std::vector<resource_write> resource;  // resource.log, in the order the resource decided
  std::size_t torn_lines = 0;         // action lines that did not parse (a writer killed mid-line)
};

/// Throws std::runtime_error when run.txt is missing.
loaded_run load_run(const std::string& dir);

/// A run.txt number, or `fallback`.
long long info_number(const run_info& info, const std::string& key, long long fallback);

}  // namespace clusterlock::chaos
