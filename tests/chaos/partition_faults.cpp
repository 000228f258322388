// The partitions of a chaos run (network.hpp): links blackholed through the harness's relays (accepted, never
// answered, never reset: a client notices only by its own timeouts), healed when every relay passes again. The
// heal is the end of the fault: liveness is measured from it. A member is cut off from its peers both ways
// (network::isolate_peer, by the members' processes).
#include "chaos/chaos_run.hpp"

#include <algorithm>

namespace clusterlock::chaos::detail {

using testing::fault_relay;

void chaos_run::partition_fault(const plan_step& step) {
  const long long holder_wait = seconds_to_ns(2.0 * settings_.ttl_s + 2);
  const int id = next_fault_id_;
  const long long inject = now_ns();
  std::string detail = cut_links(step, holder_wait);
  if (detail.empty()) return;
  fault_record f{id, step.kind, inject, 0, detail};
  ++next_fault_id_;
  note("partition #" + std::to_string(id) + ": " + network_.describe());
  wait_until(inject + seconds_to_ns(step.hold_s));
  network_.heal();
  f.heal_ns = now_ns();
  record(f);
}

std::string chaos_run::cut_links(const plan_step& step, long long holder_wait) {
  using mode = fault_relay::mode;
  const int members = network_.members();
  const auto isolate_peer = [&](int member) {
    std::vector<int> pids;
    for (int m = 0; m < members; ++m) pids.push_back(static_cast<int>(cluster_.pid(m)));
    network_.isolate_peer(member, pids);
  };
  if (step.kind == fault_kind::isolate_leader) {
    int leader = cluster_.leader();
    for (long long deadline = now_ns() + 3 * s; leader < 0 && now_ns() < deadline; leader = cluster_.leader())
      wait_until(now_ns() + 100 * ms);
    if (leader < 0) {
      skip(step, "no leader");
      return "";
    }
    isolate_peer(leader);
    return "m" + std::to_string(leader);
  }
  const auto h = live_holder(holder_wait);
  if (!h) {
    skip(step, "no live holder");
    return "";
  }
  const contender& holder = *h->first;
  const int used = network_.member_used_by(holder.slot);
  switch (step.kind) {
    case fault_kind::isolate_holder:
      for (int m = 0; m < members; ++m) network_.set_client(holder.slot, m, mode::blackhole);
      return holder.identity;
    case fault_kind::isolate_member:
      for (int slot = 0; slot < network_.slots(); ++slot) network_.set_client(slot, used, mode::blackhole);
      isolate_peer(used);
      return holder.identity + ":m" + std::to_string(used);
    case fault_kind::split: {
      // Two slots with the lone member: the holder's and the next when holder_alone, else the two after it.
      const int slots = network_.slots();
      const int first = step.holder_alone ? holder.slot : (holder.slot + 1) % slots;
      std::string alone_slots;
      for (int slot = 0; slot < slots; ++slot) {
        const bool alone = slot == first || slot == (first + 1) % slots;
        if (alone) alone_slots += "c" + std::to_string(slot);
        for (int m = 0; m < members; ++m)
          if ((m == step.member) != alone) network_.set_client(slot, m, mode::blackhole);
      }
      isolate_peer(step.member);
      // Whether the lone member led (asked after the cut, not to delay it; it still claims to lead until raft's
      // check-quorum makes it step down): then the majority elects a leader first, whose lessor gives every lease
      // a full TTL again (plus an election timeout), which delays the takeover (docs/chaos.md).
      const bool lone_leader = cluster_.leader() == step.member;
      return holder.identity + ":m" + std::to_string(step.member) + "+" + alone_slots +
             (step.holder_alone ? ":holder-alone" : ":holder-majority") + (lone_leader ? ":lone-leader" : "");
    }
    case fault_kind::flap: {
      const long long until = now_ns() + seconds_to_ns(step.hold_s);
      flap_link(step, holder.slot, used, until);
      return holder.identity + ":m" + std::to_string(used);
    }
    default:
      return "";
  }
}

// The link blackholed 700 ms (long enough for a request to time out), then passing 300 ms, in turns until `until`;
// it is left blackholed: the heal passes it.
void chaos_run::flap_link(const plan_step& step, int slot, int member, long long until) {
  (void)step;
  int flaps = 0;
  for (long long t = now_ns(); t < until; t = now_ns()) {
    network_.set_client(slot, member, fault_relay::mode::blackhole);
    wait_until(std::min(until, t + 700 * ms));
    if (now_ns() >= until) break;
    network_.set_client(slot, member, fault_relay::mode::pass);
    ++flaps;
    wait_until(std::min(until, now_ns() + 300 * ms));
  }
  note("flap: " + std::to_string(flaps) + " times passing again before the heal");
}

}  // namespace clusterlock::chaos::detail
