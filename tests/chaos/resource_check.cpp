#include "chaos/resource_check.hpp"

#include <algorithm>
#include <cstdio>
#include <set>
#include <sstream>
#include <utility>

namespace clusterlock::chaos {

bool resource_fence::is_writer(const std::string& identity) const {
  return rw_writers_ < 0 || slot_of(identity) < rw_writers_;  // an identity not "c<slot>.<gen>" (-1): a writer
}

bool resource_fence::allows(const resource_write& w) const {
  return (is_writer(w.identity) ? all_ : writers_).admits(w);
}

void resource_fence::take(const resource_write& w) {
  all_.raise(w);
  if (read_write() && is_writer(w.identity)) writers_.raise(w);
}

resource_report check_resource(const std::vector<resource_write>& writes, const resource_fence& fence) {
  resource_report r;
  resource_fence replay = fence;
  std::set<std::int64_t> tokens;
  std::set<std::pair<std::string, std::int64_t>> stale;
  for (const auto& w : writes) {
    ++r.writes;
    const bool allowed = replay.allows(w);
    if (w.accepted) {
      ++r.accepted;
      tokens.insert(w.token);
      if (!allowed) {
        ++r.out_of_order;
        if (r.out_of_order_writes.size() < 10) r.out_of_order_writes.push_back(w);
      }
      replay.take(w);
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

std::string describe(const resource_holders_report& r, const std::vector<fault_record>& faults, long long start_ns,
                     bool fenced_writes) {
  std::ostringstream out;
  out << (fenced_writes ? "resource by arrival (cross-check of the accepted writes): "
                        : "resource (check only, no fence for several holders): ")
      << r.writes << " writes from " << r.tokens << " tokens; at most " << r.peak_writers
      << " writers in their stretches at once\n";
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
