// What a chaos run leaves behind, and how each kind of line is written and read back. Times are CLOCK_MONOTONIC
// nanoseconds (std::chrono::steady_clock), the clock the contenders log with, so every file of a run lines up.
//
//   logs/<identity>.log   "<ns> <token> <identity>"                  a contender acted while have_lock() was true
//   faults.txt            "<id> <kind> <inject ns> <heal ns> <detail>" one fault, after it healed
//   drivers.txt           "<ns> terminate <identity>"                a graceful hand-off forced by SIGTERM
//   run.txt               "key value" lines: start_ns, end_ns, seed, ttl_s, contenders, log_interval_ms, ...
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace clusterlock::chaos {

/// One line of a contender's action log: it held the lock (have_lock() was true) at `ns`.
struct action {
  long long ns = 0;
  std::int64_t token = 0;
  std::string identity;
};

enum class fault_kind {
  kill_holder,     // SIGKILL the holder's process (a new contender takes its place)
  stop_holder,     // SIGSTOP the holder for longer than the TTL, then SIGCONT
  restart_member,  // SIGKILL an etcd member, restart it later
  stop_leader,     // SIGSTOP the etcd leader for a while, then SIGCONT
  stop_majority,   // SIGSTOP two of the three members for a while, then SIGCONT
  delete_key,      // etcdctl del <the holder's key>
  revoke_lease,    // etcdctl lease revoke <the holder's lease>
  compact,         // etcdctl compact <current revision>
};

inline constexpr fault_kind all_fault_kinds[] = {
    fault_kind::kill_holder,   fault_kind::stop_holder, fault_kind::restart_member, fault_kind::stop_leader,
    fault_kind::stop_majority, fault_kind::delete_key,  fault_kind::revoke_lease,   fault_kind::compact,
};

std::string_view to_string(fault_kind k);
std::optional<fault_kind> fault_kind_from(std::string_view name);

/// A fault that was carried out. Instant faults (kill, del, revoke, compact) heal when they are done.
struct fault_record {
  int id = 0;
  fault_kind kind = fault_kind::kill_holder;
  long long inject_ns = 0;
  long long heal_ns = 0;
  std::string detail;  // whom it hit, one word (no spaces)
};

/// A graceful hand-off the harness forced: SIGTERM to the holder (not a fault: the holder releases its key).
struct driver_record {
  long long ns = 0;
  std::string identity;
};

// One line each, without the newline; parse_* return nothing for a line that is not one (a torn last line of a
// killed writer, a comment).
std::optional<action> parse_action(std::string_view line);
std::string format_fault(const fault_record& f);
std::optional<fault_record> parse_fault(std::string_view line);
std::string format_driver(const driver_record& d);
std::optional<driver_record> parse_driver(std::string_view line);

/// run.txt: "key value" per line.
using run_info = std::map<std::string, std::string>;

/// The slot of an identity "c<slot>.<generation>" (a restarted contender keeps its slot); -1 for other names.
int slot_of(std::string_view identity);

}  // namespace clusterlock::chaos
