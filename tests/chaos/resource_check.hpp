// The chaos run's second verdict: what the fenced resource saw. Every contender writes to the resource while its
// have_lock() is true, sending its fencing token; the resource keeps the highest token it accepted and refuses
// lower ones. The lock log (log_check.hpp) says when a contender *believed* it held the lock, which a lying clock
// can get wrong; this check says whether the resource ever took a write out of token order, which fencing must
// prevent under every fault, clock faults included.
//
// Replayed in arrival order, a write may be accepted when its token is greater than every token accepted before it,
// or equal to the greatest with the same identity (the same holder writing again). Any other accept is out of order.
//
// Several holders (a semaphore of N > 1, a read-write lock): concurrent holders' tokens interleave, so "the highest
// token" would refuse honest holders, and no rule of tokens alone can fence them: the resource cannot tell a holder
// that released from one that is only quiet (N = 2: holders 1 and 2, 2 releases, 3 is admitted, 1 writes: honest;
// or 1's key was taken, 3 admitted, 1 writes: stale; the resource sees the same tokens in the same order until 2
// writes again, and 2 may never). So the resource accepts every write and only checks: holder_check.hpp's floor
// over the writes in arrival order (no N + 1 writers at once, no writer beside another holder, no older writer after
// N newer ones), with the same exceptions as the lock log. The fence a semaphore has is etcd's: async_guarded_txn
// applies a write only while our key stands (docs/semaphore.md).
#pragma once

#include "chaos/chaos_records.hpp"
#include "chaos/holder_check.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace clusterlock::chaos {

struct resource_report {
  std::size_t writes = 0;
  std::size_t accepted = 0;
  std::size_t rejected = 0;
  std::size_t tokens_accepted = 0;     // distinct tokens the resource took a write from
  std::size_t out_of_order = 0;        // the verdict: accepts the rule above forbids; must be 0
  std::vector<resource_write> out_of_order_writes;  // the first few, to tell
  std::size_t stale_rejects = 0;       // refused, a greater token had been accepted: fencing stopped a stale holder
  std::size_t stale_writers = 0;       // distinct (identity, token) pairs refused so
  std::size_t wrong_rejects = 0;       // refused although the rule allowed it (the register's bug; info)
};

/// `writes` in the order the resource received them (resource.log's order).
resource_report check_resource(const std::vector<resource_write>& writes);

/// Fencing held at the resource: nothing accepted out of token order.
inline bool fenced(const resource_report& r) { return r.out_of_order == 0; }

std::string describe(const resource_report& r);

/// Several holders: what the resource saw, judged by holder_check.hpp's floor (arrival times as the lines' times).
struct resource_holders_report {
  std::size_t writes = 0;
  std::size_t tokens = 0;
  std::size_t peak_writers = 0;  // the most writers in their stretches at once
  classified verdicts;           // violations count; races and clock overlaps are reported apart
};

resource_holders_report check_resource_holders(const std::vector<resource_write>& writes,
                                               const std::vector<fault_record>& faults, const holding_rule& rule,
                                               const race_rules& rules);

inline bool fenced(const resource_holders_report& r) { return r.verdicts.violations.empty(); }

std::string describe(const resource_holders_report& r, const std::vector<fault_record>& faults, long long start_ns);

}  // namespace clusterlock::chaos
