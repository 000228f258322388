#include "chaos/log_check.hpp"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <set>
#include <sstream>

namespace clusterlock::chaos {

namespace {

std::string seconds(long long ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f s", static_cast<double>(ns) / 1e9);
  return buf;
}

std::string milliseconds(long long ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f ms", static_cast<double>(ns) / 1e6);
  return buf;
}

void check_closest_pair(const std::vector<action>& actions, check_report& r) {
  for (std::size_t i = 1; i < actions.size(); ++i) {
    const action& previous = actions[i - 1];
    const action& a = actions[i];
    if (previous.identity == a.identity) continue;
    const long long d = a.ns - previous.ns;
    if (d < r.closest_pair_ns || r.closest_pair_ns < 0) {
      r.closest_pair_ns = d;
      r.closest_pair = previous.identity + " (token " + std::to_string(previous.token) + ") -> " + a.identity +
                       " (token " + std::to_string(a.token) + ") at " + std::to_string(a.ns);
    }
  }
}

void count_close_pairs(const std::vector<action>& actions, long long interval, check_report& r) {
  for (std::size_t i = 1; i < actions.size(); ++i) {
    if (actions[i].identity != actions[i - 1].identity && actions[i].ns - actions[i - 1].ns < interval) ++r.close_pairs;
  }
}

void check_liveness(const std::vector<action>& actions, const std::vector<fault_record>& faults,
                    const check_settings& s, check_report& r) {
  for (std::size_t i = 0; i < faults.size(); ++i) {
    liveness_result l;
    l.fault = static_cast<int>(i);
    // A fault that heals while another is still in force is measured from the later heal.
    long long from = faults[i].heal_ns;
    for (bool moved = true; moved;) {
      moved = false;
      for (std::size_t j = 0; j < faults.size(); ++j) {
        if (j != i && faults[j].inject_ns <= from && from < faults[j].heal_ns) {
          from = faults[j].heal_ns;
          moved = true;
        }
      }
    }
    l.from_ns = from;
    // The next fault takes over from its injection on: what happens after it is its own measurement's business.
    long long next_fault = std::numeric_limits<long long>::max();
    for (std::size_t j = 0; j < faults.size(); ++j) {
      if (j != i && faults[j].inject_ns > from && faults[j].inject_ns < next_fault) {
        next_fault = faults[j].inject_ns;
        l.interrupted_by = static_cast<int>(j);
      }
    }
    const long long window_end = std::min(from + s.liveness_bound_ns, next_fault);
    auto it = std::lower_bound(actions.begin(), actions.end(), from,
                               [](const action& a, long long t) { return a.ns < t; });
    if (it != actions.end() && it->ns <= s.run_end_ns) l.first_action_ns = it->ns;
    // Every stretch without an action that begins in the window, from the heal on (cut at the next fault): a
    // holder that acts once after the heal and then loses the lock to the fault's aftermath counts too.
    long long cursor = from;
    bool acted = false;
    while (cursor < window_end) {
      const bool last = it == actions.end() || it->ns > s.run_end_ns;
      const long long next = std::min(last ? s.run_end_ns : it->ns, next_fault);
      l.gap_ns = std::max(l.gap_ns, next - cursor);
      if (last || next == next_fault) break;
      acted = true;
      cursor = next;
      ++it;
    }
    if (l.gap_ns > s.liveness_bound_ns) {
      l.status = liveness_status::failed;
    } else if (!acted && next_fault < from + s.liveness_bound_ns) {
      l.status = liveness_status::interrupted;  // nobody acted before the next fault came: it measures
    } else if (s.run_end_ns < from + s.liveness_bound_ns) {
      l.status = liveness_status::unmeasured;
    } else {
      l.status = liveness_status::ok;
    }
    if (l.status != liveness_status::interrupted) l.interrupted_by = -1;
    if (l.status == liveness_status::failed) ++r.liveness_failures;
    if ((l.status == liveness_status::ok || l.status == liveness_status::failed) && l.gap_ns >= r.worst_liveness_gap_ns) {
      r.worst_liveness_gap_ns = l.gap_ns;
      r.worst_liveness_fault = static_cast<int>(i);
    }
    r.liveness.push_back(l);
  }
  for (std::size_t i = 1; i < actions.size(); ++i) {
    const long long d = actions[i].ns - actions[i - 1].ns;
    if (d > r.longest_idle_ns) {
      r.longest_idle_ns = d;
      r.longest_idle_from_ns = actions[i - 1].ns;
    }
  }
}

// Each token's first line (actions sorted by time).
std::map<std::int64_t, long long> first_lines(const std::vector<action>& actions) {
  std::map<std::int64_t, long long> first;
  for (const auto& a : actions) first.emplace(a.token, a.ns);
  return first;
}

// Whether `identity` ("c3.1": slot 3) was on a split's lone side: its detail lists those slots ("...+c0c1:...").
bool on_lone_side(const std::string& identity, const fault_record& f) {
  if (f.kind != fault_kind::split) return false;
  const auto plus = f.detail.find('+');
  if (plus == std::string::npos) return false;
  const std::string slots = f.detail.substr(plus + 1, f.detail.find(':', plus) - plus - 1);  // "c0c1"
  const std::string slot = identity.substr(0, identity.find('.'));                        // "c3"
  for (auto at = slots.find(slot); at != std::string::npos; at = slots.find(slot, at + 1)) {
    const auto end = at + slot.size();
    if (end == slots.size() || slots[end] == 'c') return true;  // "c1" is not "c12"
  }
  return false;
}

void check_isolations(const std::vector<action>& actions, const std::vector<fault_record>& faults,
                      const check_settings& s, check_report& r) {
  const auto first_ns = first_lines(actions);
  for (std::size_t i = 0; i < faults.size(); ++i) {
    const fault_record& f = faults[i];
    if (!is_partition(f.kind) || f.kind == fault_kind::isolate_leader) continue;
    const std::string holder = f.detail.substr(0, f.detail.find(':'));
    long long next_fault = std::numeric_limits<long long>::max();
    for (const auto& g : faults)
      if (g.inject_ns > f.inject_ns) next_fault = std::min(next_fault, g.inject_ns);
    isolation_result x;
    x.fault = static_cast<int>(i);
    x.asserted = f.kind == fault_kind::isolate_holder ||
                 (f.kind == fault_kind::split && f.detail.find(":holder-alone") != std::string::npos);
    auto it = std::lower_bound(actions.begin(), actions.end(), f.inject_ns,
                               [](const action& a, long long t) { return a.ns < t; });
    const long long bound_at = f.inject_ns + s.liveness_bound_ns;
    for (; it != actions.end() && it->ns < next_fault; ++it) {
      if (it->identity == holder) {
        if (it->ns < f.heal_ns) x.holder_quiet_ns = it->ns - f.inject_ns;
        continue;
      }
      // rw: a holder on the majority side whose stretch spans the bound (admitted before it, acting after it).
      if (s.holders.read_write() && it->ns >= bound_at && first_ns.at(it->token) < bound_at &&
          !on_lone_side(it->identity, f))
        x.held_by_other = true;
      if (x.takeover_ns < 0 && (x.asserted || it->ns < f.heal_ns) && !on_lone_side(it->identity, f) &&
                 (!s.holders.several() || first_ns.at(it->token) >= f.inject_ns)) {
        // With several holders the takeover is an admission: a token that first acts after the injection.
        // For information (the holder may rightly go on): only a takeover during the fault says something; after
        // the heal it is usually the next graceful hand-off. After a split, the new holder is on the majority side.
        x.takeover_ns = it->ns - f.inject_ns;
      }
    }
    // No takeover before the next fault is a failure only when the bound ran out before it came.
    const bool no_admission_in_time = x.takeover_ns < 0
                                          ? std::min(next_fault, s.run_end_ns) - f.inject_ns > s.liveness_bound_ns
                                          : x.takeover_ns > s.liveness_bound_ns;
    x.held_by_other = x.held_by_other && no_admission_in_time;  // told only when it is what meets the bound
    const bool takeover_late = no_admission_in_time && !x.held_by_other;
    // The lone member is cut off from its peers both ways (network.hpp), so the cut-off holder's keepalives stop
    // reaching the leader and its key expires within the TTL: the majority's takeover is asserted as after
    // isolate_holder. Unless the lone member led: the majority elects a leader first, whose lessor gives every
    // lease a full TTL again (plus an election timeout) when it takes over, so the takeover is measured only.
    x.takeover_asserted = x.asserted && f.detail.find(":lone-leader") == std::string::npos;
    x.failed = x.asserted && (x.holder_quiet_ns > s.race_bound_ns || (x.takeover_asserted && takeover_late));
    if (x.failed) ++r.liveness_failures;
    r.isolations.push_back(x);
  }
}

void check_admissions(const std::vector<action>& actions, const std::vector<fault_record>& faults, check_report& r) {
  const auto first_ns = first_lines(actions);
  std::vector<long long> firsts;
  for (const auto& [token, ns] : first_ns) firsts.push_back(ns);
  std::sort(firsts.begin(), firsts.end());
  for (const auto& f : faults) {
    if (f.kind != fault_kind::kill_holder && f.kind != fault_kind::stop_holder && f.kind != fault_kind::delete_key &&
        f.kind != fault_kind::revoke_lease)
      continue;
    const auto next = std::upper_bound(firsts.begin(), firsts.end(), f.inject_ns);
    if (next == firsts.end()) continue;
    // Another fault before the admission takes over (a majority frozen before the killed holder's lease ran out).
    const bool interrupted = std::any_of(faults.begin(), faults.end(), [&](const fault_record& g) {
      return g.inject_ns > f.inject_ns && g.inject_ns < *next;
    });
    if (interrupted) continue;
    auto& worst = r.worst_admission_by_kind[f.kind];
    worst = std::max(worst, *next - f.inject_ns);
  }
}

void check_drivers(const std::vector<action>& actions, const std::vector<fault_record>& faults,
                   const std::vector<driver_record>& drivers, bool several, check_report& r) {
  const auto first_ns = first_lines(actions);
  long long total = 0;
  std::size_t measured = 0;
  for (const auto& d : drivers) {
    auto it = std::upper_bound(actions.begin(), actions.end(), d.ns,
                               [](long long t, const action& a) { return t < a.ns; });
    // The next holder: another identity; with several holders, one whose token first acts after the SIGTERM (an
    // admission), not a holder that was acting beside it.
    while (it != actions.end() && (it->identity == d.identity || (several && first_ns.at(it->token) <= d.ns))) ++it;
    if (it == actions.end()) continue;
    // A fault injected before the next holder acted slowed it down: that is the fault's liveness, not the hand-off.
    const bool disturbed = std::any_of(faults.begin(), faults.end(), [&](const fault_record& f) {
      return f.inject_ns > d.ns && f.inject_ns < it->ns;
    });
    if (disturbed) continue;
    const long long gap = it->ns - d.ns;
    r.worst_graceful_gap_ns = std::max(r.worst_graceful_gap_ns, gap);
    total += gap;
    ++measured;
  }
  r.drivers = drivers.size();
  r.graceful_measured = measured;
  r.mean_graceful_gap_ns = measured ? total / static_cast<long long>(measured) : 0;
}

}  // namespace

check_report check(std::vector<action> actions, const std::vector<fault_record>& faults,
                   const std::vector<driver_record>& drivers, const check_settings& settings) {
  // Equal times with different tokens are not "later": order them by token so that they never count as a decrease.
  std::stable_sort(actions.begin(), actions.end(), [](const action& a, const action& b) {
    return a.ns != b.ns ? a.ns < b.ns : a.token < b.token;
  });
  check_report r;
  r.actions = actions.size();
  r.run_ns = settings.run_end_ns - settings.run_start_ns;
  r.faults = faults.size();
  for (const auto& f : faults) ++r.faults_by_kind[f.kind];
  holder_sweep sweep = sweep_holders(actions, faults, settings.holders);
  r.tenures = sweep.tenures;
  r.handoffs = sweep.tenures == 0 ? 0 : sweep.tenures - 1;
  r.identities = sweep.identities;
  r.peak_holders = sweep.peak_holders;
  r.peak_at_ns = sweep.peak_at_ns;
  r.writer_overlaps = sweep.writer_overlaps;
  race_rules rules;
  rules.race_bound_ns = settings.race_bound_ns;
  rules.stale_leader_window_ns = settings.stale_leader_window_ns;
  rules.count_races = settings.count_races;
  rules.several = settings.holders.several();
  classified c = classify(std::move(sweep.stale), actions, faults, rules);
  r.violations = std::move(c.violations);
  r.races = std::move(c.races);
  r.clock_overlaps = std::move(c.clock_overlaps);
  check_closest_pair(actions, r);
  count_close_pairs(actions, settings.log_interval_ns, r);
  check_liveness(actions, faults, settings, r);
  for (const auto& l : r.liveness) {
    if (l.status != liveness_status::ok && l.status != liveness_status::failed) continue;
    auto& worst = r.worst_gap_by_kind[faults[static_cast<std::size_t>(l.fault)].kind];
    worst = std::max(worst, l.gap_ns);
  }
  check_isolations(actions, faults, settings, r);
  check_drivers(actions, faults, drivers, settings.holders.several(), r);
  if (settings.holders.several()) check_admissions(actions, faults, r);
  return r;
}

std::string describe(const check_report& r, const std::vector<fault_record>& faults, const check_settings& s) {
  std::ostringstream out;
  auto at = [&](long long ns) { return "t+" + seconds(ns - s.run_start_ns); };
  out << "run length:        " << seconds(r.run_ns) << "\n";
  out << "actions logged:    " << r.actions << " by " << r.identities << " identities\n";
  out << "hand-offs:         " << r.handoffs << " (" << r.tenures << " tenures; " << r.drivers
      << " forced gracefully, by SIGTERM or a requeue's SIGUSR1; from the signal to the next holder's first action: worst "
      << milliseconds(r.worst_graceful_gap_ns) << ", mean " << milliseconds(r.mean_graceful_gap_ns) << " over the "
      << r.graceful_measured << " that no fault disturbed)\n";
  const auto& rule = s.holders;
  out << "holders:           " << (rule.read_write() ? "read-write lock (a writer alone, readers together)"
                                   : rule.slots > 1   ? "semaphore of " + std::to_string(rule.slots) + " permits"
                                                      : std::string("lock (one holder)"))
      << "; at most " << r.peak_holders << " in their stretches at once (at " << at(r.peak_at_ns)
      << "; info: a stale holder's stretch counts until its first stale line)";
  if (rule.read_write()) out << "; " << r.writer_overlaps << " stretches begun beside a writer";
  out << "\n";
  out << "faults:            " << r.faults;
  const char* sep = " (";
  for (const auto& [kind, n] : r.faults_by_kind) {
    out << sep << to_string(kind) << " " << n;
    sep = ", ";
  }
  out << (r.faults_by_kind.empty() ? "" : ")") << "\n";
  auto cause = [](race_cause c) {
    return c == race_cause::operator_took_key   ? "operator race"
           : c == race_cause::etcd_stale_leader ? "etcd stale-leader race"
           : c == race_cause::clock_fault       ? "clock overlap"
                                                : "";
  };
  auto tell = [&](const violation& v, const std::string& what) {
    out << "  " << what << " " << v.identity << " (token " << v.token << ") acted " << v.lines << "x from "
        << at(v.first_ns) << " to " << at(v.last_ns) << ", up to " << milliseconds(v.last_ns - v.newer_first_ns)
        << " after " << v.newer_identity << " (token " << v.newer_token << ") first acted at " << at(v.newer_first_ns);
    if (v.recent_fault >= 0) {
      const auto& f = faults[static_cast<std::size_t>(v.recent_fault)];
      out << "; " << (v.cause != race_cause::none ? "after" : "last fault") << ": #" << f.id << " "
          << to_string(f.kind) << " " << f.detail << " injected at " << at(f.inject_ns) << ", healed at "
          << at(f.heal_ns);
    }
    if (!v.evidence.empty()) {
      out << "; above it then:";
      for (const auto& e : v.evidence) out << " " << e;
    }
    out << "\n";
  };
  out << "safety violations: " << r.violations.size() << "\n";
  for (const auto& v : r.violations)
    tell(v, v.cause == race_cause::none ? std::string("VIOLATION") : "VIOLATION (" + std::string(cause(v.cause)) + ")");
  long long worst_clock = 0;
  std::size_t clock_lines = 0;
  for (const auto& v : r.clock_overlaps) {
    worst_clock = std::max(worst_clock, v.last_ns - v.newer_first_ns);
    clock_lines += v.lines;
  }
  out << "clock overlaps:    " << r.clock_overlaps.size() << " (" << clock_lines << " lines; a contender under a clock "
      << "fault acted after a newer holder had, up to " << milliseconds(worst_clock) << " after it: its lease-based "
      << "have_lock() trusted a lying clock; a documented limit, not counted, see docs/guarantees.md)\n";
  for (const auto& v : r.clock_overlaps) tell(v, "clock overlap:");
  std::size_t by_operator = 0;
  long long worst_race = 0;
  for (const auto& v : r.races) {
    by_operator += v.cause == race_cause::operator_took_key;
    worst_race = std::max(worst_race, v.last_ns - v.newer_first_ns);
  }
  out << "races:             " << r.races.size() << " (" << by_operator << " operator, "
      << r.races.size() - by_operator << " etcd stale leader; the key was taken while its lease lived and the old "
      << "holder heard it up to " << milliseconds(worst_race) << " after the new one acted; not counted, see "
      << "docs/chaos.md)\n";
  for (const auto& v : r.races) tell(v, cause(v.cause));
  out << "close pairs:       " << r.close_pairs << " (consecutive actions of two identities less than "
      << milliseconds(s.log_interval_ns) << " apart; info)";
  if (r.closest_pair_ns >= 0) out << "; closest " << milliseconds(r.closest_pair_ns) << ": " << r.closest_pair;
  out << "\n";
  std::size_t ok = 0, interrupted = 0, unmeasured = 0;
  for (const auto& l : r.liveness) {
    ok += l.status == liveness_status::ok;
    interrupted += l.status == liveness_status::interrupted;
    unmeasured += l.status == liveness_status::unmeasured;
  }
  out << "liveness:          " << r.liveness_failures << " failures (bound " << seconds(s.liveness_bound_ns)
      << " after each heal); " << ok << " ok, " << interrupted << " measured from a later fault, " << unmeasured
      << " unmeasured (run ended)\n";
  if (r.worst_liveness_fault >= 0) {
    const auto& f = faults[static_cast<std::size_t>(r.worst_liveness_fault)];
    out << "worst liveness gap: " << seconds(r.worst_liveness_gap_ns) << " after #" << f.id << " " << to_string(f.kind)
        << " " << f.detail << " (healed at " << at(f.heal_ns) << ")\n";
  }
  for (const auto& l : r.liveness) {
    if (l.status != liveness_status::failed) continue;
    const auto& f = faults[static_cast<std::size_t>(l.fault)];
    out << "  LIVENESS FAILURE after #" << f.id << " " << to_string(f.kind) << " " << f.detail << ": nobody acted from "
        << at(l.from_ns) << " for " << seconds(l.gap_ns) << "\n";
  }
  if (!r.worst_gap_by_kind.empty()) {
    out << "worst gap by kind:";
    const char* comma = " ";
    for (const auto& [kind, gap] : r.worst_gap_by_kind) {
      out << comma << to_string(kind) << " " << seconds(gap);
      comma = ", ";
    }
    out << " (after the heal)\n";
  }
  if (!r.worst_admission_by_kind.empty()) {
    out << "permit hand-over: ";
    const char* comma = "";
    for (const auto& [kind, gap] : r.worst_admission_by_kind) {
      out << comma << to_string(kind) << " " << seconds(gap);
      comma = ", ";
    }
    out << " (worst, from the injection to the next admission; info)\n";
  }
  if (!r.isolations.empty()) {
    long long quiet = 0, takeover = 0;
    std::size_t failed = 0, asserted = 0;
    for (const auto& x : r.isolations) {
      if (!x.asserted) continue;
      ++asserted;
      quiet = std::max(quiet, x.holder_quiet_ns);
      if (x.takeover_asserted && !x.held_by_other) takeover = std::max(takeover, x.takeover_ns);
      failed += x.failed;
    }
    out << "holder cut off:    " << asserted << " times (isolate_holder, split holder-alone); it acted up to "
        << milliseconds(quiet) << " after (bound " << milliseconds(s.race_bound_ns)
        << ": probe_interval + request_timeout), a new holder (after a split: on the majority side) acted within "
        << milliseconds(takeover) << " (bound " << seconds(s.liveness_bound_ns)
        << "; a split whose lone member led: measured only); " << failed << " failures\n";
    for (const auto& x : r.isolations) {
      const auto& f = faults[static_cast<std::size_t>(x.fault)];
      out << "  #" << f.id << " " << to_string(f.kind) << " " << f.detail << ": holder's last action +"
          << milliseconds(x.holder_quiet_ns) << ", new holder "
          << (x.takeover_ns < 0 ? std::string("none") : "+" + milliseconds(x.takeover_ns))
          << (x.asserted ? (x.takeover_asserted ? "" : " (new holder: information, the lone member led)")
                         : " (information)")
          << (x.held_by_other ? " (rw: another holder held through the bound, a writer rightly waits for it)" : "")
          << (x.failed ? "  LIVENESS FAILURE" : "") << "\n";
    }
  }
  out << "longest idle:      " << seconds(r.longest_idle_ns) << " from " << at(r.longest_idle_from_ns)
      << " (no action at all, faults included)\n";
  return out.str();
}

}  // namespace clusterlock::chaos
