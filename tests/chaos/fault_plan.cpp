#include "chaos/fault_plan.hpp"

#include <cstdio>
#include <stdexcept>

namespace clusterlock::chaos {

fault_plan::fault_plan(plan_settings settings) : settings_(std::move(settings)), bits_(settings_.seed) {
  if (settings_.kinds.empty()) throw std::invalid_argument("fault_plan: no fault kinds");
  if (settings_.gap_max_s < settings_.gap_min_s) throw std::invalid_argument("fault_plan: gap max < min");
}

double fault_plan::uniform(double low, double high) {
  // 53 random bits: the same doubles from the same seed everywhere (std::uniform_real_distribution may differ).
  const double unit = static_cast<double>(bits_() >> 11) * 0x1.0p-53;
  return low + (high - low) * unit;
}

int fault_plan::below(int n) { return static_cast<int>(bits_() % static_cast<std::uint64_t>(n)); }

plan_step fault_plan::next() {
  plan_step s;
  s.id = next_id_++;
  s.gap_s = uniform(settings_.gap_min_s, settings_.gap_max_s);
  if (settings_.churn_mean_s > 0) {
    for (double t = settings_.churn_mean_s * uniform(0.5, 1.5); t < s.gap_s;
         t += settings_.churn_mean_s * uniform(0.5, 1.5))
      s.churn_s.push_back(t);
  }
  s.kind = settings_.kinds[static_cast<std::size_t>(below(static_cast<int>(settings_.kinds.size())))];
  // Drawn for every kind, so that each step uses the same amount of randomness whatever its kind.
  const double spread = uniform(0, 1);
  const int a = below(3);
  const int b = (a + 1 + below(2)) % 3;
  const bool midway = below(2) == 1;
  switch (s.kind) {
    case fault_kind::stop_holder:
      s.hold_s = settings_.ttl_s + 0.5 + 1.5 * spread;  // longer than the TTL: the lease runs out meanwhile
      break;
    case fault_kind::restart_member:
      s.hold_s = 0.5 + 2.5 * spread;
      s.member = a;
      s.compact_midway = midway;
      break;
    case fault_kind::stop_leader:
      s.hold_s = 1.0 + 3.0 * spread;
      s.compact_midway = midway;
      break;
    case fault_kind::stop_majority:
      s.hold_s = 1.0 + 3.0 * spread;
      s.member = a;
      s.other_member = b;
      break;
    case fault_kind::clock_slow:
    case fault_kind::clock_fast:
      // The liar is frozen this long: past its TTL in real time, short of it by a clock at half speed (2 x TTL).
      s.hold_s = settings_.ttl_s + 0.25 + (settings_.ttl_s - 0.5) * spread;
      break;
    case fault_kind::clock_jump:
      s.hold_s = settings_.ttl_s + 0.5 + 1.5 * spread;  // its clock jumps back this far: more than its TTL
      break;
    case fault_kind::isolate_holder:
      // Long enough to see the holder go UNKNOWN and a new holder act on the majority side (TTL + a little) before
      // the heal.
      s.hold_s = settings_.ttl_s + 1.0 + 2.0 * spread;
      break;
    case fault_kind::isolate_member:
    case fault_kind::isolate_leader:
      s.hold_s = 1.0 + 3.0 * spread;
      break;
    case fault_kind::split:
      s.hold_s = settings_.ttl_s + 3.0 * spread;
      s.member = a;
      s.holder_alone = midway;
      break;
    case fault_kind::flap:
      s.hold_s = 2.0 + 3.0 * spread;
      break;
    default:
      break;
  }
  return s;
}

std::string format_step(const plan_step& s) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%d gap %.3f churn %zu %s hold %.3f member %d %d compact_midway %d holder_alone %d", s.id,
                s.gap_s, s.churn_s.size(), std::string(to_string(s.kind)).c_str(), s.hold_s, s.member, s.other_member,
                s.compact_midway ? 1 : 0, s.holder_alone ? 1 : 0);
  return buf;
}

}  // namespace clusterlock::chaos
