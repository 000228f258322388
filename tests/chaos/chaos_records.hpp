// What a chaos run leaves behind, and how each kind of line is written and read back. Times are CLOCK_MONOTONIC
// nanoseconds: the harness's std::chrono::steady_clock, and the contenders' kernel clock read by a raw syscall (which
// libfaketime does not intercept, so a contender under a clock fault still logs true time). Every file lines up.
//
//   logs/<identity>.log   "<ns> <token> <identity>"                  a contender acted while have_lock() was true
//   faults.txt            "<id> <kind> <inject ns> <heal ns> <detail>" one fault, after it healed
//   drivers.txt           "<ns> terminate|requeue <identity>"        a graceful hand-off forced by SIGTERM, or by
//                                                                    SIGUSR1 (release and queue again, --requeue-every)
//   resource.log          "<ns> accept|reject <token> <identity>"   a write the fenced resource received (its clock)
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
  // Clock faults (libfaketime in the contender's LD_PRELOAD): a contender whose clock lies is started, the lock is
  // handed to it, and then it is frozen past its TTL (rate faults) or its clock jumps back while it holds.
  clock_slow,      // its CLOCK_MONOTONIC and CLOCK_REALTIME run at half speed (FAKETIME "+0 x0.5")
  clock_fast,      // ... at twice the speed ("+0 x2")
  clock_jump,      // ... jump back by more than the TTL while it holds (FAKETIME_TIMESTAMP_FILE rewritten)
  // Partitions (network.hpp: every link goes through a relay of the harness); each heals when every relay passes.
  isolate_holder,  // blackhole the holder's links to every member
  isolate_member,  // blackhole every contender's link to the member the holder uses, and that member's peer relay
  isolate_leader,  // blackhole the raft leader's peer relay: a minority leader (its clients still reach it)
  split,           // 2/1: one member alone with some contenders (the holder's side drawn), the rest with the others
  flap,            // the holder's link to the member it uses: blackholed and passing in turns
};

inline constexpr fault_kind all_fault_kinds[] = {
    fault_kind::kill_holder,   fault_kind::stop_holder, fault_kind::restart_member, fault_kind::stop_leader,
    fault_kind::stop_majority, fault_kind::delete_key,  fault_kind::revoke_lease,   fault_kind::compact,
    fault_kind::clock_slow,    fault_kind::clock_fast,  fault_kind::clock_jump,     fault_kind::isolate_holder,
    fault_kind::isolate_member, fault_kind::isolate_leader, fault_kind::split,       fault_kind::flap,
};

/// A clock fault: the contender it hits runs with a lying clock.
inline bool is_clock_fault(fault_kind k) {
  return k == fault_kind::clock_slow || k == fault_kind::clock_fast || k == fault_kind::clock_jump;
}

/// A partition: links blackholed through the harness's relays.
inline bool is_partition(fault_kind k) {
  return k == fault_kind::isolate_holder || k == fault_kind::isolate_member || k == fault_kind::isolate_leader ||
         k == fault_kind::split || k == fault_kind::flap;
}

std::string_view to_string(fault_kind k);
std::optional<fault_kind> fault_kind_from(std::string_view name);

/// A fault that was carried out. Instant faults (kill, del, revoke, compact) heal when they are done.
struct fault_record {
  int id = 0;
  fault_kind kind = fault_kind::kill_holder;
  long long inject_ns = 0;
  long long heal_ns = 0;
  std::string detail;  // whom it hit, one word (no spaces); a clock fault: "<identity>:<what it did>"
};

/// One write the fenced resource received, in its order of arrival, and what it did with it.
struct resource_write {
  long long ns = 0;  // the resource's (the harness's) CLOCK_MONOTONIC when it decided
  bool accepted = false;
  std::int64_t token = 0;
  std::string identity;
};

/// A graceful hand-off the harness forced: SIGTERM to the holder (not a fault: the holder releases its key).
struct driver_record {
  long long ns = 0;
  std::string identity;
  bool requeue = false;  // the holder was told to release and queue again (SIGUSR1), not to end (SIGTERM)
};

// One line each, without the newline; parse_* return nothing for a line that is not one (a torn last line of a
// killed writer, a comment).
std::optional<action> parse_action(std::string_view line);
std::string format_fault(const fault_record& f);
std::optional<fault_record> parse_fault(std::string_view line);
std::string format_driver(const driver_record& d);
std::optional<driver_record> parse_driver(std::string_view line);
std::string format_resource_write(const resource_write& w);
std::optional<resource_write> parse_resource_write(std::string_view line);

/// run.txt: "key value" per line.
using run_info = std::map<std::string, std::string>;

/// The slot of an identity "c<slot>.<generation>" (a restarted contender keeps its slot); -1 for other names.
int slot_of(std::string_view identity);

}  // namespace clusterlock::chaos
