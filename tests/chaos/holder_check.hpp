// Who may hold at once, and the sweep that finds a holder acting when it could not have held. Pure code, shared by
// the lock-log check (log_check.hpp: contenders' action lines) and the resource check (resource_check.hpp: writes in
// the resource's order of arrival, when it cannot fence).
//
// The rule, for N permits (the lock: N = 1). A token's stretch is the time from its first line to its last. Its key
// stood all that time (a line says it stood then, and a deleted key never comes back with the same create revision),
// and it was admitted from its first line on. When N tokens greater than t are in their stretches at one instant x,
// the youngest of them was admitted with fewer than N older keys standing, and keys older than it never appear
// later: so t's key, older than all N, was gone at x for good. A line of t after x is stale. The sweep keeps that
// "floor": at each first line, the N-th greatest token in its stretch then; the floor only rises; a line below it
// is stale. For N = 1 the floor is the greatest token seen so far, the lock's old rule ("tokens never decrease").
// It catches every overlap of N + 1 stretches (the smallest of them acts, at its last line, above a floor of the
// other N) and also an older holder that acts after N newer ones, without overlapping them, which no overlap count
// sees.
//
// A read-write lock (modes given): a writer is admitted when every older key is gone, a reader when every older
// writer is gone. So a writer's first line raises the floor for everyone to its token, and any first line raises a
// second floor, for writers only, to its token. A writer's stretch that overlaps any other, and two overlapping
// writers, always leave a line below a floor.
//
// The exceptions keep their meanings (log_check.hpp): races (an operator took the key, an etcd stale leader revoked
// a live lease) and clock overlaps (a liar). With N > 1 the line below the floor may be an honest holder's while one
// of the N above it is the stale one (the sweep cannot tell which of N + 1 overlapping holders lost its key): a
// violation records those N as `evidence`, and an exception that explains one of them explains it.
#pragma once

#include "chaos/chaos_records.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace clusterlock::chaos {

/// Why a stale holder acted after a newer one, when the lock could not have prevented it (see log_check.hpp).
enum class race_cause { none, operator_took_key, etcd_stale_leader, clock_fault };

/// An older holder acting when it could not hold: consecutive stale lines of one identity and token make one.
struct violation {
  std::string identity;
  std::int64_t token = 0;
  std::string newer_identity;      // whose first line raised the floor above `token` (N = 1: the newer holder)
  std::int64_t newer_token = 0;
  long long newer_first_ns = 0;    // when: from then on `token` could not hold
  long long first_ns = 0;          // the stale lines
  long long last_ns = 0;
  std::size_t lines = 0;
  int recent_fault = -1;           // index into the faults: the last one injected before first_ns (for a race:
                                   // the fault that caused it); -1: none
  race_cause cause = race_cause::none;
  std::vector<std::string> evidence;  // N > 1 and rw: the holders above the floor then (one may be the stale one)
};

enum class access_mode { write, read };

/// Who may hold at once.
struct holding_rule {
  std::size_t slots = 1;                     // a semaphore's N; 1: the lock
  std::map<std::string, access_mode> modes;  // a read-write lock: every identity's mode (slots unused); empty: none
  bool read_write() const { return !modes.empty(); }
  bool several() const { return slots > 1 || read_write(); }
};

struct holder_sweep {
  std::vector<violation> stale;  // unclassified, in order of first_ns
  std::size_t tenures = 0;       // distinct tokens
  std::size_t identities = 0;
  std::size_t peak_holders = 0;  // the most stretches in force at once (at a first line); info
  long long peak_at_ns = 0;
  std::size_t writer_overlaps = 0;  // rw: first lines that began an overlap with a writer in it; info
};

/// `actions` sorted by time, then token (log_check's order).
holder_sweep sweep_holders(const std::vector<action>& actions, const std::vector<fault_record>& faults,
                           const holding_rule& rule);

struct race_rules {
  long long race_bound_ns = 2'000'000'000;          // probe_interval + request_timeout
  long long stale_leader_window_ns = 1'500'000'000;  // from a heal to the next holder's first action
  bool count_races = false;
  bool several = false;  // holding_rule::several(): an exception may explain the violation's evidence
};

struct classified {
  std::vector<violation> violations, races, clock_overlaps;
};

/// Sorts the stale stretches into violations, races and clock overlaps (see log_check.hpp for the causes).
classified classify(std::vector<violation> stale, const std::vector<action>& actions,
                    const std::vector<fault_record>& faults, const race_rules& rules);

}  // namespace clusterlock::chaos
