#include "chaos/run_files.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace clusterlock::chaos {

namespace fs = std::filesystem;

loaded_run load_run(const std::string& dir) {
  loaded_run run;
  std::ifstream info(fs::path(dir) / "run.txt");
  if (!info) throw std::runtime_error("no run.txt in " + dir);
  for (std::string key, value; info >> key >> value;) run.info[key] = value;

  std::string line;
  if (fs::is_directory(fs::path(dir) / "logs")) {
    for (const auto& entry : fs::directory_iterator(fs::path(dir) / "logs")) {
      if (entry.path().extension() != ".log") continue;
      std::ifstream in(entry.path());
      while (std::getline(in, line)) {
        if (auto a = parse_action(line)) {
          run.actions.push_back(std::move(*a));
        } else if (!line.empty()) {
          ++run.torn_lines;
        }
      }
    }
  }
  std::ifstream faults(fs::path(dir) / "faults.txt");
  while (std::getline(faults, line))
    if (auto f = parse_fault(line)) run.faults.push_back(std::move(*f));
  std::stable_sort(run.faults.begin(), run.faults.end(),
                   [](const fault_record& a, const fault_record& b) { return a.inject_ns < b.inject_ns; });
  std::ifstream drivers(fs::path(dir) / "drivers.txt");
  while (std::getline(drivers, line))
    if (auto d = parse_driver(line)) run.drivers.push_back(std::move(*d));
  std::ifstream resource(fs::path(dir) / "resource.log");
  while (std::getline(resource, line))
    if (auto w = parse_resource_write(line)) run.resource.push_back(std::move(*w));
  return run;
}

long long info_number(const run_info& info, const std::string& key, long long fallback) {
  auto it = info.find(key);
  if (it == info.end()) return fallback;
  try {
    return std::stoll(it->second);
  } catch (...) {
    return fallback;
  }
}

}  // namespace clusterlock::chaos
