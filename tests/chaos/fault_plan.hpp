// The chaos run's schedule: a seeded, reproducible sequence of steps, each a quiet gap (with graceful hand-offs
// forced now and then) followed by one fault. The same seed gives the same steps on every machine (the random
// numbers come from std::mt19937_64's exact sequence, not from the library's distributions). What a step hits at
// run time (which process holds the lock, which member leads) is up to the run.
#pragma once

#include "chaos/chaos_records.hpp"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace clusterlock::chaos {

struct plan_settings {
  std::uint64_t seed = 1;
  double ttl_s = 2;
  std::vector<fault_kind> kinds{std::begin(all_fault_kinds), std::end(all_fault_kinds)};  // equally likely
  double gap_min_s = 2;        // quiet time between a heal and the next fault
  double gap_max_s = 6;
  double churn_mean_s = 1.5;   // mean time between SIGTERMs of the holder during a gap; 0: none
};

struct plan_step {
  int id = 0;
  double gap_s = 0;                // quiet time before the fault, counted from the previous heal
  std::vector<double> churn_s;     // offsets into the gap: SIGTERM the holder then
  fault_kind kind = fault_kind::kill_holder;
  double hold_s = 0;               // how long the fault stays in force; 0: instant. clock_slow, clock_fast: how long
                                   // the liar is frozen once it holds; clock_jump: how far back its clock jumps
  int member = -1;                 // restart_member: that member; stop_majority: the first of the two; split: the
                                   // member alone
  int other_member = -1;           // stop_majority: the second
  bool compact_midway = false;     // restart_member, stop_leader: compact the history while it is in force
  bool holder_alone = false;       // split: the holder's slot is on the side of the lone member (`member`)
};

class fault_plan {
 public:
  explicit fault_plan(plan_settings settings);
  /// The next step; deterministic in the seed.
  plan_step next();
  const plan_settings& settings() const { return settings_; }

 private:
  double uniform(double low, double high);  // [low, high)
  int below(int n);                         // [0, n)

  plan_settings settings_;
  std::mt19937_64 bits_;
  int next_id_ = 1;
};

/// One line for plan.txt.
std::string format_step(const plan_step& s);

}  // namespace clusterlock::chaos
