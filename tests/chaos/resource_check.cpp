#include "chaos/resource_check.hpp"

#include <algorithm>
#include <cstdio>
#include <set>
#include <sstream>
#include <utility>

namespace clusterlock::chaos {

resource_report check_resource(const std::vector<resource_write>& writes) {
  resource_report r;
  std::int64_t highest = 0;
  std::string highest_identity;
  std::set<std::int64_t> tokens;
  std::set<std::pair<std::string, std::int64_t>> stale;
  for (const auto& w : writes) {
    ++r.writes;
    const bool allowed = w.token > highest || (w.token == highest && w.identity == highest_identity);
    if (w.accepted) {
      ++r.accepted;
      tokens.insert(w.token);
      if (!allowed) {
        ++r.out_of_order;
        if (r.out_of_order_writes.size() < 10) r.out_of_order_writes.push_back(w);
      }
      if (w.token > highest) {
        highest = w.token;
        highest_identity = w.identity;
      }
    } else {
      ++r.rejected;
      if (allowed) {
        ++r.wrong_rejects;
      } else {
        ++r.stale_rejects;
        stale.insert({w.identity, w.token});
      }
    }
  }
  r.tokens_accepted = tokens.size();
  r.stale_writers = stale.size();
  return r;
}

std::string describe(const resource_report& r) {
  std::ostringstream out;
  out << "fenced resource:   " << r.writes << " writes, " << r.accepted << " accepted from " << r.tokens_accepted
      << " tokens, " << r.rejected << " rejected (" << r.stale_rejects << " stale, from " << r.stale_writers
      << " stale holders; " << r.wrong_rejects << " refused that the rule allowed)\n";
  out << "out-of-order accepts: " << r.out_of_order << " (writes the resource took out of token order; must be 0)\n";
  for (const auto& w : r.out_of_order_writes)
    out << "  OUT OF ORDER: " << format_resource_write(w) << "\n";
  return out.str();
}

resource_holders_report check_resource_holders(const std::vector<resource_write>& writes,
                                               const std::vector<fault_record>& faults, const holding_rule& rule,
                                               const race_rules& rules) {
  std::vector<action> arrivals;
  for (const auto& w : writes)
    if (w.accepted) arrivals.push_back({w.ns, w.token, w.identity});
  // The resource's order of decision is its arrival order; equal times keep the lock log's tie rule.
  std::stable_sort(arrivals.begin(), arrivals.end(), [](const action& a, const action& b) {
    return a.ns != b.ns ? a.ns < b.ns : a.token < b.token;
  });
  holder_sweep sweep = sweep_holders(arrivals, faults, rule);
  resource_holders_report r;
  r.writes = writes.size();
  r.tokens = sweep.tenures;
  r.peak_writers = sweep.peak_holders;
  r.verdicts = classify(std::move(sweep.stale), arrivals, faults, rules);
  return r;
}

std::string describe(const resource_holders_report& r, const std::vector<fault_record>& faults, long long start_ns) {
  std::ostringstream out;
  out << "resource (check only, no fence for several holders): " << r.writes << " writes from " << r.tokens
      << " tokens; at most " << r.peak_writers << " writers in their stretches at once\n";
  out << "resource overlaps: " << r.verdicts.violations.size() << " violations, " << r.verdicts.races.size()
      << " races, " << r.verdicts.clock_overlaps.size() << " under clock faults (writers above the rule)\n";
  auto tell = [&](const char* what, const violation& v) {
    char when[64];
    std::snprintf(when, sizeof when, "t+%.3f s, %.1f ms after", static_cast<double>(v.first_ns - start_ns) / 1e9,
                  static_cast<double>(v.last_ns - v.newer_first_ns) / 1e6);
    out << "  " << what << " " << v.identity << " (token " << v.token << ") wrote " << v.lines << "x from " << when
        << " " << v.newer_identity << " (token " << v.newer_token << ") first wrote";
    if (v.recent_fault >= 0) {
      const auto& f = faults[static_cast<std::size_t>(v.recent_fault)];
      out << "; fault #" << f.id << " " << to_string(f.kind) << " " << f.detail;
    }
    out << "\n";
  };
  for (const auto& v : r.verdicts.violations) tell("RESOURCE VIOLATION:", v);
  for (const auto& v : r.verdicts.races) tell("resource race:", v);
  for (const auto& v : r.verdicts.clock_overlaps) tell("resource clock overlap:", v);
  return out.str();
}

}  // namespace clusterlock::chaos
