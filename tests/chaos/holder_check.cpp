#include "chaos/holder_check.hpp"

#include <algorithm>
#include <iterator>
#include <set>

namespace clusterlock::chaos {

namespace {

// A floor (holder_check.hpp): tokens below it cannot hold any more.
struct floor_mark {
  std::int64_t token = 0;
  std::string by_identity;  // whose first line raised it
  std::int64_t by_token = 0;
  long long since_ns = 0;
  std::vector<std::string> evidence;

  void raise(std::int64_t to, const action& by, std::vector<std::string> why) {
    if (to <= token) return;
    token = to;
    by_identity = by.identity;
    by_token = by.token;
    since_ns = by.ns;
    evidence = std::move(why);
  }
};

struct stretch_end {
  long long last_ns = 0;
  std::string identity;
};

}  // namespace

holder_sweep sweep_holders(const std::vector<action>& actions, const std::vector<fault_record>& faults,
                           const holding_rule& rule) {
  holder_sweep r;
  std::map<std::int64_t, stretch_end> ends;  // token -> its last line
  std::set<std::string> identities;
  for (const auto& a : actions) {
    ends[a.token] = {a.ns, a.identity};
    identities.insert(a.identity);
  }
  r.tenures = ends.size();
  r.identities = identities.size();
  auto is_writer = [&](const std::string& identity) {
    const auto it = rule.modes.find(identity);
    return it == rule.modes.end() || it->second == access_mode::write;  // unknown: a plain lock acts as a writer
  };

  std::map<std::int64_t, std::string> in_force;  // token -> identity: stretches begun, not ended, not found stale
  std::set<std::int64_t> seen;
  floor_mark all, writers;  // writers: rw only
  std::map<std::int64_t, std::size_t> open;  // token -> its violation being extended (several holders)
  for (const auto& a : actions) {
    if (seen.insert(a.token).second) {
      in_force[a.token] = a.identity;
      if (in_force.size() > r.peak_holders) {
        r.peak_holders = in_force.size();
        r.peak_at_ns = a.ns;
      }
      if (rule.read_write()) {
        bool writer_in = false;
        for (const auto& [t, id] : in_force) writer_in = writer_in || is_writer(id);
        if (writer_in && in_force.size() > 1) ++r.writer_overlaps;
        if (is_writer(a.identity)) all.raise(a.token, a, {a.identity});
        writers.raise(a.token, a, {a.identity});
      } else if (in_force.size() >= rule.slots) {
        auto nth = in_force.rbegin();
        std::vector<std::string> why;
        for (std::size_t i = 1; i < rule.slots; ++i, ++nth) why.push_back(nth->second);
        why.push_back(nth->second);
        all.raise(nth->first, a, std::move(why));
      }
    }
    const floor_mark* below = a.token < all.token ? &all
                              : (rule.read_write() && is_writer(a.identity) && a.token < writers.token) ? &writers
                                                                                                          : nullptr;
    if (below) {
      in_force.erase(a.token);  // stale from now on: it must not raise the floor for honest holders below it
      violation* last = nullptr;
      if (!rule.several()) {
        last = r.stale.empty() ? nullptr : &r.stale.back();
      } else if (auto it = open.find(a.token); it != open.end()) {
        last = &r.stale[it->second];
      }
      if (last && last->identity == a.identity && last->token == a.token && last->newer_token == below->by_token) {
        last->last_ns = a.ns;
        ++last->lines;
      } else {
        violation v;
        v.identity = a.identity;
        v.token = a.token;
        v.newer_identity = below->by_identity;
        v.newer_token = below->by_token;
        v.newer_first_ns = below->since_ns;
        v.first_ns = v.last_ns = a.ns;
        v.lines = 1;
        if (rule.several()) v.evidence = below->evidence;
        for (std::size_t i = 0; i < faults.size(); ++i)
          if (faults[i].inject_ns <= a.ns) v.recent_fault = static_cast<int>(i);
        open[a.token] = r.stale.size();
        r.stale.push_back(std::move(v));
      }
    }
    if (ends[a.token].last_ns == a.ns && ends[a.token].identity == a.identity) in_force.erase(a.token);
  }
  return r;
}

classified classify(std::vector<violation> stale, const std::vector<action>& actions,
                    const std::vector<fault_record>& faults, const race_rules& s) {
  auto acted_between = [&](const std::string& identity, long long from, long long to) {
    auto it = std::lower_bound(actions.begin(), actions.end(), from,
                               [](const action& a, long long t) { return a.ns < t; });
    for (; it != actions.end() && it->ns < to; ++it)
      if (it->identity == identity) return true;
    return false;
  };
  classified out;
  for (auto& v : stale) {
    // Whom an exception may explain: the stale line's holder, and with several holders one of those above the floor.
    std::vector<std::string> suspects{v.identity};
    if (s.several) suspects.insert(suspects.end(), v.evidence.begin(), v.evidence.end());
    auto suspect = [&](const std::string& identity) {
      return std::find(suspects.begin(), suspects.end(), identity) != suspects.end();
    };
    // A liar's overlap, however long: its have_lock() trusted a clock that lied (never counted; see log_check.hpp).
    for (std::size_t i = 0; i < faults.size() && v.cause == race_cause::none; ++i) {
      const auto& f = faults[i];
      if (is_clock_fault(f.kind) && suspect(f.detail.substr(0, f.detail.find(':'))) && f.inject_ns <= v.first_ns &&
          v.first_ns <= f.heal_ns) {
        v.cause = race_cause::clock_fault;
        v.recent_fault = static_cast<int>(i);
      }
    }
    if (v.cause == race_cause::clock_fault) {
      out.clock_overlaps.push_back(std::move(v));
      continue;
    }
    const bool quick = v.last_ns <= v.newer_first_ns + s.race_bound_ns;  // it heard soon enough: its probe's bound
    for (std::size_t i = 0; i < faults.size() && quick && v.cause == race_cause::none; ++i) {
      const auto& f = faults[i];
      const bool took_a_key = (f.kind == fault_kind::delete_key || f.kind == fault_kind::revoke_lease) &&
                              suspect(f.detail);  // a failed one is recorded as "<identity>:failed"
      if (took_a_key && f.inject_ns <= v.first_ns && v.last_ns <= f.heal_ns + s.race_bound_ns) {
        v.cause = race_cause::operator_took_key;
        v.recent_fault = static_cast<int>(i);
      }
    }
    for (std::size_t i = 0; i < faults.size() && quick && v.cause == race_cause::none; ++i) {
      const auto& f = faults[i];
      const bool froze_the_leader = f.kind == fault_kind::stop_leader || f.kind == fault_kind::stop_majority;
      const bool kept_acting = std::any_of(suspects.begin(), suspects.end(), [&](const std::string& id) {
        return id != v.newer_identity && acted_between(id, f.inject_ns, v.newer_first_ns);
      });
      if (froze_the_leader && f.heal_ns <= v.newer_first_ns &&
          v.newer_first_ns <= f.heal_ns + s.stale_leader_window_ns && kept_acting) {
        v.cause = race_cause::etcd_stale_leader;
        v.recent_fault = static_cast<int>(i);
      }
    }
    if (v.cause != race_cause::none && !s.count_races) {
      out.races.push_back(std::move(v));
    } else {
      out.violations.push_back(std::move(v));
    }
  }
  return out;
}

}  // namespace clusterlock::chaos
