// The chaos run's judge, without I/O: it merges every contender's action lines by time and checks them against the
// faults.
//
// Safety. Each action line says "have_lock() was true at this moment, with this fencing token". Merged in time
// order, tokens must never decrease: a line whose token is smaller than one already seen means an older holder
// acted after a newer one had acted (the write a fencing resource would have to refuse). That is a violation,
// with one exception that no lock service can avoid: when an operator deletes the holder's key or revokes its
// lease (delete_key, revoke_lease), the lock passes at once, and the old holder and the new one learn it from
// their own watch streams, served by different members at different moments. The old holder acting in that window
// (bounded by probe_interval + request_timeout: its next linearizable probe) is an "operator race", reported on
// its own and not counted as a violation unless asked to.
// Lines of two identities closer than the log interval are reported as information only: a clean hand-off can do
// that (the old holder stops logging, releases, and the new one logs a few milliseconds later).
//
// Liveness. After each fault heals, some holder must act again within the bound (TTL + slack), and keep acting:
// every stretch without any action that begins within the bound after the heal must be shorter than the bound (a
// holder that acts once after the heal and then loses the lock to the fault's aftermath counts). The window ends
// early at the next fault's injection, which takes over from there; when nobody acted before it came, the fault is
// "interrupted" and measured by the next one. A fault that heals while another is still in force is measured
// from the later heal.
#pragma once

#include "chaos/chaos_records.hpp"

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace clusterlock::chaos {

struct check_settings {
  long long log_interval_ns = 5'000'000;
  long long liveness_bound_ns = 4'000'000'000;  // TTL + slack
  long long operator_race_bound_ns = 2'000'000'000;  // probe_interval + request_timeout
  bool count_operator_races = false;  // true: they are violations too
  long long run_start_ns = 0;
  long long run_end_ns = 0;
};

/// An older holder acting after a newer one: consecutive stale lines of one identity and token make one violation.
struct violation {
  std::string identity;
  std::int64_t token = 0;
  std::string newer_identity;      // the holder with the largest token seen before the stale line
  std::int64_t newer_token = 0;
  long long newer_first_ns = 0;    // when that newer holder first acted
  long long first_ns = 0;          // the stale lines
  long long last_ns = 0;
  std::size_t lines = 0;
  int recent_fault = -1;           // index into the faults: the last one injected before first_ns; -1: none
                                   // (for an operator race: the delete_key or revoke_lease that caused it)
  bool operator_race = false;      // explained by an operator taking this holder's key away (see above)
};

enum class liveness_status {
  ok,           // someone acted within the bound
  failed,       // nobody acted within the bound
  interrupted,  // another fault came before anybody acted: measured from that one's heal instead
  unmeasured,   // the run ended before the bound ran out
};

struct liveness_result {
  int fault = -1;            // index into the faults
  long long from_ns = 0;     // the heal (or the heal of a fault still in force then)
  long long first_action_ns = 0;  // 0: none
  long long gap_ns = 0;           // the longest stretch without an action, beginning within the bound
  liveness_status status = liveness_status::ok;
  int interrupted_by = -1;   // index into the faults
};

struct check_report {
  std::size_t actions = 0;
  std::size_t identities = 0;
  std::size_t tenures = 0;   // distinct fencing tokens that acted
  std::size_t handoffs = 0;  // tenures - 1: the lock went to a newer token
  std::vector<violation> violations;     // what counts: safety holds when this is empty
  std::vector<violation> operator_races;  // not counted (unless check_settings::count_operator_races)

  std::size_t close_pairs = 0;        // consecutive lines of two identities closer than the log interval (info)
  long long closest_pair_ns = -1;
  std::string closest_pair;           // "A -> B at <ns>"

  std::vector<liveness_result> liveness;  // one per fault, in the faults' order
  std::size_t liveness_failures = 0;
  long long worst_liveness_gap_ns = 0;    // over ok and failed measurements
  int worst_liveness_fault = -1;
  long long longest_idle_ns = 0;          // the longest stretch with no action at all, whatever the cause
  long long longest_idle_from_ns = 0;

  std::size_t faults = 0;
  std::map<fault_kind, std::size_t> faults_by_kind;
  std::size_t drivers = 0;                // graceful hand-offs forced by SIGTERM
  std::size_t graceful_measured = 0;      // those with no fault injected before the next holder acted
  long long worst_graceful_gap_ns = 0;    // SIGTERM to the next action by another identity
  long long mean_graceful_gap_ns = 0;
  long long run_ns = 0;
};

/// `faults` in injection order (the order of faults.txt).
check_report check(std::vector<action> actions, const std::vector<fault_record>& faults,
                   const std::vector<driver_record>& drivers, const check_settings& settings);

/// Safety holds: no violation.
inline bool safe(const check_report& r) { return r.violations.empty(); }

/// The human summary: counts, faults by kind, violations (each with its context), liveness.
std::string describe(const check_report& r, const std::vector<fault_record>& faults, const check_settings& settings);

}  // namespace clusterlock::chaos
