// The chaos run's second verdict: what the fenced resource saw. Every contender writes to the resource while its
// have_lock() is true, sending its fencing token; the resource keeps the highest token it accepted and refuses
// lower ones. The lock log (log_check.hpp) says when a contender *believed* it held the lock, which a lying clock
// can get wrong; this check says whether the resource ever took a write out of token order, which fencing must
// prevent under every fault, clock faults included.
//
// Replayed in arrival order, a write may be accepted when its token is greater than every token accepted before it,
// or equal to the greatest with the same identity (the same holder writing again). Any other accept is out of order.
//
// A semaphore of N > 1: concurrent holders' tokens interleave, so "the highest token" would refuse honest holders,
// and no rule of tokens alone can fence them: the resource cannot tell a holder that released from one that is only
// quiet (N = 2: holders 1 and 2, 2 releases, 3 is admitted, 1 writes: honest; or 1's key was taken, 3 admitted, 1
// writes: stale; the resource sees the same tokens in the same order until 2 writes again, and 2 may never). So the
// resource accepts every write and only checks: holder_check.hpp's floor over the writes in arrival order (no N + 1
// writers at once, no older writer after N newer ones), with the same exceptions as the lock log. The fence a
// semaphore has is etcd's: async_guarded_txn applies a write only while our key stands (docs/semaphore.md).
//
// A read-write lock has a token fence (resource_fence below), because its admission rule orders keys by mode alone:
// a writer is admitted only when every older key is gone, a reader only when every older writer is gone. So a
// writer's accepted write proves every key older than it gone for good, and a reader's proves every older writer
// gone: the register keeps the highest token it took from anyone and the highest it took from a writer, and refuses
// a writer below the first and a reader below the second. See resource_fence for the proof.
#pragma once

#include "chaos/chaos_records.hpp"
#include "chaos/holder_check.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace clusterlock::chaos {

/// The register's rule: which writes it takes, given those it took. The lock's (default): a write is taken when its
/// token is greater than every token taken, or equal to the greatest and from the same identity (the same holder
/// again; a token is a key's create revision, so another identity with it is a forgery).
///
/// A read-write lock's (`rw_writers` K >= 0; the contenders of slots below K write, any other identity too, as the
/// library counts any value but `rw=read;` as a writer's): a writer is held to the greatest token taken from anyone,
/// a reader to the greatest token taken from a writer, with the same equal-token rule. Sound and complete:
///  - It never refuses an honest write. A reader r writing while its key stands: a writer with a greater token waits
///    for r's key to go, so while r holds no such writer has held, and every writer token taken is below r's (or
///    came from a stale holder, which is the fault the fence is for). A writer w holding: every key older than w is
///    gone and no younger key is admitted while w stands (a younger reader waits for w, a younger writer for all), so
///    every token taken is w's own or below it.
///  - It refuses every write the rule forbids once the newer holder has written: after a writer w's write is taken,
///    any key older than w was gone when w was admitted (its writes are stale): a reader below w is below the writer
///    floor, a writer below w below the floor of all. After a reader r's write is taken, any writer older than r was
///    gone when r was admitted: it is below the floor of all. A reader older than r may still hold honestly beside r
///    and is not refused (r's write does not raise the readers' floor).
///  - In particular a reader admitted before a writer that is still writing when the writer has been admitted (its
///    key taken or its lease gone, its watch late) is refused from the writer's first accepted write on: its token is
///    below the writer's, the readers' floor.
/// What no token fence can do (the lock's too): refuse a stale write that arrives before the newer holder's first.
class resource_fence {
 public:
  resource_fence() = default;  // the lock's rule
  static resource_fence read_write(int rw_writers) {
    resource_fence f;
    f.rw_writers_ = rw_writers;
    return f;
  }

  bool read_write() const { return rw_writers_ >= 0; }
  bool is_writer(const std::string& identity) const;  // the lock: everyone
  bool allows(const resource_write& w) const;
  void take(const resource_write& w);  // after an accepted write, allowed or not (a replay follows the register)

 private:
  struct floor {
    std::int64_t token = 0;
    std::string identity;
    bool admits(const resource_write& w) const { return w.token > token || (w.token == token && w.identity == identity); }
    void raise(const resource_write& w) {
      if (w.token > token) *this = {w.token, w.identity};
    }
  };
  int rw_writers_ = -1;
  floor all_, writers_;  // the greatest token taken from anyone, and from a writer
};

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

/// `writes` in the order the resource received them (resource.log's order), replayed through `fence`.
resource_report check_resource(const std::vector<resource_write>& writes, const resource_fence& fence = {});

/// Fencing held at the resource: nothing accepted out of token order.
inline bool fenced(const resource_report& r) { return r.out_of_order == 0; }

std::string describe(const resource_report& r);

/// Several holders: what the resource took, judged by holder_check.hpp's floor (arrival times as the lines' times).
/// A semaphore's resource takes every write (no fence); a read-write lock's is fenced, and this is the cross-check
/// (the fence's floors are the sweep's, so a fenced run that breaks it means the register is wrong).
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

std::string describe(const resource_holders_report& r, const std::vector<fault_record>& faults, long long start_ns,
                     bool fenced_writes = false);

}  // namespace clusterlock::chaos
