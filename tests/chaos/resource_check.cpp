#include "chaos/resource_check.hpp"

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

}  // namespace clusterlock::chaos
