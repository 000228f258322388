// The chaos run's judge, without I/O: it merges every contender's action lines by time and checks them against the
// faults.
//
// Safety. Each action line says "have_lock() was true at this moment, with this fencing token". Merged in time
// order, tokens must never decrease: a line whose token is smaller than one already seen means an older holder
// acted after a newer one had acted (the write a fencing resource would have to refuse). With N permits or a
// read-write lock the rule is holder_check.hpp's floor (for N = 1 the same). A line below it is a violation,
// with two exceptions that the lock cannot avoid, reported apart as "races" and not counted unless asked to. Both
// take the holder's key away while its lease is alive (by etcd's own answers), so the old holder and the next one
// learn it from their own watch streams, which different members deliver at slightly different moments; the old
// holder may act in between (bounded by probe_interval + request_timeout: its next linearizable probe).
//  - operator: a delete_key or revoke_lease fault took this holder's key (N > 1, rw: or one of the evidence's);
//  - etcd stale leader: the key went within a moment after a frozen leader resumed (stop_leader, stop_majority),
//    while its holder had kept acting through the fault. etcd 3.4.23 lets a resumed stale leader revoke leases that
//    ran out by its own stopped clock, although the new leader renewed them (etcd issue 15247; reproduced without
//    clusterlock by tests/chaos/etcd_stale_leader_revoke.sh).
//
// Clock faults (clock_faults.hpp) are apart from both: when the stale lines are a liar's (the identity a clock fault
// hit, acting between that fault's injection and its heal), its lease-based have_lock() trusted a clock that lied,
// which no lease can survive (docs/guarantees.md). They are "clock overlaps", reported with their length and never
// counted, not even with count_races; what must hold then is the fenced resource's order (resource_check.hpp).
//
// Liveness. After each fault heals, some holder must act again within the bound (TTL + slack), and keep acting:
// every stretch without any action that begins within the bound after the heal must be shorter than the bound (a
// holder that acts once after the heal and then loses the lock to the fault's aftermath counts). The window ends
// early at the next fault's injection, which takes over from there; when nobody acted before it came, the fault is
// "interrupted" and measured by the next one. A fault that heals while another is still in force is measured
// from the later heal. While a partition isolates the holder (isolate_holder), it must stop acting within
// probe_interval + request_timeout, and another holder must act within the bound (isolation_result).
#pragma once

#include "chaos/chaos_records.hpp"
#include "chaos/holder_check.hpp"

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace clusterlock::chaos {

struct check_settings {
  long long log_interval_ns = 5'000'000;
  long long liveness_bound_ns = 4'000'000'000;  // TTL + slack
  long long race_bound_ns = 2'000'000'000;            // probe_interval + request_timeout
  long long stale_leader_window_ns = 1'500'000'000;  // from a heal to the next holder's first action
  bool count_races = false;                          // true: races are violations too
  long long run_start_ns = 0;
  long long run_end_ns = 0;
  holding_rule holders;  // who may hold at once: the lock (default), a semaphore's N, a read-write lock's modes
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

/// A partition that cut the holder off from a quorum (isolate_holder; split with the holder on the lone member's
/// side, "holder-alone" in its detail): the holder must stop acting within probe_interval + request_timeout
/// (UNKNOWN, or its lease deadline), and another holder must act within the liveness bound (after a split: one of
/// the majority side's, not of the slots in its detail), both counted from the injection. After a split whose lone
/// member led (":lone-leader" in its detail) the takeover is measured only. With several holders the takeover is an
/// admission; for a read-write lock an admission may rightly wait (a writer behind a reader that holds on the majority
/// side), so there a holder not cut off that acts past the bound, admitted before it, also meets it: the majority's new leader gives every
/// lease a full TTL again when it takes over (etcd's lessor), which can take it past the bound. isolate_member and flap
/// are measured the same way for information only: the holder may fail over to another member and rightly keep
/// acting.
struct isolation_result {
  int fault = -1;                // index into the faults
  bool asserted = false;         // the bounds apply (isolate_holder, split with the holder alone)
  long long holder_quiet_ns = 0;  // its last action after the injection (before the heal), from the injection; 0: none
  long long takeover_ns = -1;     // the first action of another identity (after a split: of the majority side)
                                  // after the injection, from it; -1: none
                                  // before the next fault (not asserted: none before the heal)
  bool takeover_asserted = false;  // the takeover bound applies (asserted, and not a split whose lone member led)
  bool held_by_other = false;     // rw: no admission in time, but another holder (not cut off) held through the
                                  // bound: a writer rightly waits for it, so the cut-off holder did not block the lock
  bool failed = false;            // either bound broken: counted as a liveness failure
};

struct check_report {
  std::size_t actions = 0;
  std::size_t identities = 0;
  std::size_t tenures = 0;   // distinct fencing tokens that acted
  std::size_t handoffs = 0;  // tenures - 1: the lock (a permit) went to a newer token
  std::size_t peak_holders = 0;     // the most holders in their stretches at once (holder_check.hpp); info
  long long peak_at_ns = 0;
  std::size_t writer_overlaps = 0;  // rw: stretches begun beside a writer (each leaves a violation); info
  std::vector<violation> violations;  // what counts: safety holds when this is empty
  std::vector<violation> races;       // explained (cause != none), not counted unless check_settings::count_races
  std::vector<violation> clock_overlaps;  // a liar's stale lines (cause clock_fault): never counted

  std::size_t close_pairs = 0;        // consecutive lines of two identities closer than the log interval (info)
  long long closest_pair_ns = -1;
  std::string closest_pair;           // "A -> B at <ns>"

  std::vector<liveness_result> liveness;  // one per fault, in the faults' order
  std::size_t liveness_failures = 0;
  long long worst_liveness_gap_ns = 0;    // over ok and failed measurements
  int worst_liveness_fault = -1;
  long long longest_idle_ns = 0;          // the longest stretch with no action at all, whatever the cause
  long long longest_idle_from_ns = 0;

  std::map<fault_kind, long long> worst_gap_by_kind;  // the worst liveness gap after each kind's heals (ok, failed)
  std::vector<isolation_result> isolations;          // one per partition that hit the holder (not isolate_leader)
  // Several holders: liveness above only asks that some holder acts, which the other permit holders do through a
  // fault that takes one permit. This asks for the permit's hand-over: from the injection of a fault that took a
  // holder (kill_holder, stop_holder, delete_key, revoke_lease) to the first line of a token new since then, unless
  // another fault came first; the worst per kind (info, not asserted).
  std::map<fault_kind, long long> worst_admission_by_kind;

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
