// The faults a chaos run carries out on processes, etcd members and keys (kill, stop, restart, compact, key and
// lease taken by hand, clock faults), each recorded in faults.txt when it has healed.
#include "chaos/chaos_run.hpp"

#include "chaos/clock_faults.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdio>

namespace clusterlock::chaos::detail {

void chaos_run::record(fault_record f) {
  ++result_.faults;
  faults_ << format_fault(f) << std::endl;
  note("fault #" + std::to_string(f.id) + " " + std::string(to_string(f.kind)) + " " + f.detail + " healed after " +
           std::to_string((f.heal_ns - f.inject_ns) / ms) + " ms",
       true);
}

void chaos_run::skip(const plan_step& step, const std::string& why) {
  ++result_.skipped;
  note("skip " + std::string(to_string(step.kind)) + ": " + why, true);
}

bool chaos_run::etcdctl(const std::vector<std::string>& args, std::string* out) {
  test::etcdctl_options o;
  o.timeout = std::chrono::milliseconds(15000);
  const auto r = cluster_.try_etcdctl(args, o);
  if (out) *out = r.out;
  if (r.exit_code != 0) note("etcdctl " + test::join_command(args) + " failed: " + r.err);
  return r.exit_code == 0;
}

void chaos_run::compact_now() {
  fault_record f{next_fault_id_++, fault_kind::compact, now_ns(), 0, ""};
  const auto view = read_lock();
  if (!view) {
    note("compact: no member answered");
    return;
  }
  f.inject_ns = now_ns();
  const bool ok = etcdctl({"compact", std::to_string(view->revision)});
  f.heal_ns = now_ns();
  f.detail = "rev" + std::to_string(view->revision) + (ok ? "" : ":failed");
  record(f);
}

// A member fault has healed when etcd serves a linearizable read again (a leader with a quorum): the lock cannot
// act before, and etcd may take seconds to elect one after a majority resumes. Records how long that took.
void chaos_run::wait_until_etcd_serves(fault_record& f) {
  const long long undone = now_ns();
  for (;;) {
    // Short per-member timeouts: a read that waits for an election should not make the heal look later.
    if (read_lock(std::chrono::milliseconds(250))) break;
    if (now_ns() - undone > 20 * s) {
      note("etcd still does not serve linearizable reads 20 s after the fault was undone", true);
      break;
    }
    wait_until(now_ns() + 20 * ms);
  }
  f.heal_ns = now_ns();
  f.detail += "/serving+" + std::to_string((f.heal_ns - undone) / ms) + "ms";
}

void chaos_run::hold(long long from, const plan_step& step) {
  const long long until = from + seconds_to_ns(step.hold_s);
  if (step.compact_midway) {
    wait_until(from + (until - from) / 2);
    compact_now();
  }
  wait_until(until);
}

void chaos_run::execute(const plan_step& step) {
  const long long holder_wait = seconds_to_ns(2.0 * settings_.ttl_s + 2);
  switch (step.kind) {
    case fault_kind::kill_holder: {
      const auto h = live_holder(holder_wait);
      if (!h) return skip(step, "no live holder");
      fault_record f{next_fault_id_++, step.kind, now_ns(), 0, h->first->identity};
      h->first->killed = true;
      kill_contender(*h->first);  // reaped here: service() starts the new contender at once
      f.heal_ns = now_ns();
      record(f);
      note("ended " + f.detail + ": SIGKILL");
      start_contender(*h->first, h->first->slot);
      return;
    }
    case fault_kind::stop_holder: {
      const auto h = live_holder(holder_wait);
      if (!h) return skip(step, "no live holder");
      contender& c = *h->first;
      fault_record f{next_fault_id_++, step.kind, now_ns(), 0, c.identity};
      ::kill(c.pid, SIGSTOP);
      int status = 0;
      pid_t r;
      while ((r = ::waitpid(c.pid, &status, WUNTRACED)) < 0 && errno == EINTR) {
      }
      if (r == c.pid && !WIFSTOPPED(status)) {  // it ended just before: reaped here, so replace it here
        ++result_.unexpected_exits;
        note("UNEXPECTED END of " + c.identity + " (found when stopping it)", true);
        c.pid = -1;
        start_contender(c, c.slot);
        return skip(step, "the holder had ended");
      }
      c.stopped = true;
      wait_until(f.inject_ns + seconds_to_ns(step.hold_s));
      ::kill(c.pid, SIGCONT);
      c.stopped = false;
      f.heal_ns = now_ns();
      return record(f);
    }
    case fault_kind::restart_member: {
      const int leader = cluster_.leader();
      fault_record f{next_fault_id_++, step.kind, now_ns(), 0,
                     "m" + std::to_string(step.member) + (leader == step.member ? ":leader" : "")};
      cluster_.kill(step.member);
      hold(f.inject_ns, step);
      cluster_.restart(step.member);
      wait_until_etcd_serves(f);
      return record(f);
    }
    case fault_kind::stop_leader: {
      int leader = cluster_.leader();
      for (long long deadline = now_ns() + 3 * s; leader < 0 && now_ns() < deadline; leader = cluster_.leader())
        wait_until(now_ns() + 100 * ms);
      if (leader < 0) return skip(step, "no leader");
      fault_record f{next_fault_id_++, step.kind, now_ns(), 0, "m" + std::to_string(leader)};
      cluster_.stop(leader);
      hold(f.inject_ns, step);
      cluster_.cont(leader);
      wait_until_etcd_serves(f);
      return record(f);
    }
    case fault_kind::stop_majority: {
      fault_record f{next_fault_id_++, step.kind, now_ns(), 0,
                     "m" + std::to_string(step.member) + "+m" + std::to_string(step.other_member)};
      cluster_.stop(step.member);
      cluster_.stop(step.other_member);
      wait_until(f.inject_ns + seconds_to_ns(step.hold_s));
      cluster_.cont(step.member);
      cluster_.cont(step.other_member);
      wait_until_etcd_serves(f);
      return record(f);
    }
    case fault_kind::delete_key:
    case fault_kind::revoke_lease: {
      const auto h = live_holder(holder_wait);
      if (!h) return skip(step, "no live holder");
      fault_record f{next_fault_id_++, step.kind, now_ns(), 0, h->first->identity};
      bool ok = false;
      if (step.kind == fault_kind::delete_key) {
        ok = etcdctl({"del", h->second.key});
      } else {
        char hex[17];
        std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(h->second.lease));
        ok = etcdctl({"lease", "revoke", hex});
      }
      f.heal_ns = now_ns();
      if (!ok) f.detail += ":failed";
      return record(f);
    }
    case fault_kind::compact:
      return compact_now();
    case fault_kind::clock_slow:
    case fault_kind::clock_fast:
    case fault_kind::clock_jump:
      return clock_fault(step);
    case fault_kind::isolate_holder:
    case fault_kind::isolate_member:
    case fault_kind::isolate_leader:
    case fault_kind::split:
    case fault_kind::flap:
      return partition_fault(step);
  }
}

// Hands the lock on by graceful SIGTERMs until `liar` holds it; false when that did not happen within `wait`.
bool chaos_run::hand_lock_to(const contender& liar, long long wait) {
  const long long deadline = now_ns() + wait;
  while (now_ns() < deadline && liar.pid > 0 && liar.liar) {
    const auto h = live_holder(std::min(deadline - now_ns(), 2 * s));
    if (!h) continue;
    if (h->first == &liar) return true;
    terminate_holder();
  }
  return false;
}

// A clock fault (clock_faults.hpp): the holder's slot gets a contender with a lying clock, the lock is handed on
// until it holds, and then it is frozen past its TTL (rate faults: a clock at half speed still believes its lease)
// or its clock jumps back by more than its TTL. Heals when the liar is sent SIGTERM; the slot gets an honest one.
void chaos_run::clock_fault(const plan_step& step) {
  const auto h = live_holder(seconds_to_ns(2.0 * settings_.ttl_s + 2));
  if (!h) return skip(step, "no live holder");
  contender& slot = *h->first;
  const std::string stamp_file = path("contenders/clock-" + std::to_string(next_fault_id_) + ".rc");
  slot.next_env = faketime_env(step.kind, faketime_, stamp_file);
  const long long inject = now_ns();
  terminate_holder();  // service() starts the liar in its slot when it has gone
  if (!slot.terminating) {  // the lock moved on between the two reads
    slot.next_env.clear();
    return skip(step, "the holder changed");
  }
  fault_record f{next_fault_id_++, step.kind, inject, 0, ""};
  for (const long long until = now_ns() + 15 * s; !slot.liar && now_ns() < until;) wait_until(now_ns() + 20 * ms);
  const std::string who = slot.identity;
  std::string what = "never-held";
  if (slot.liar && hand_lock_to(slot, 20 * s)) {
    wait_until(now_ns() + 500 * ms);  // it acts, and writes, with its token
    const long long t = now_ns();
    if (step.kind == fault_kind::clock_jump) {
      set_clock_offset(stamp_file, -step.hold_s);
      what = "back" + std::to_string(seconds_to_ns(step.hold_s) / ms) + "ms";
      note("clock of " + who + " jumped: " + what);
      wait_until(t + seconds_to_ns(step.hold_s) + 1500 * ms);  // its timers wait out the jump
    } else if (slot.pid > 0) {
      ::kill(slot.pid, SIGSTOP);
      slot.stopped = true;
      wait_until(t + seconds_to_ns(step.hold_s));
      ::kill(slot.pid, SIGCONT);
      slot.stopped = false;
      what = "frozen" + std::to_string((now_ns() - t) / ms) + "ms";
      wait_until(now_ns() + 1500 * ms);  // what it does once awake, trusting its clock
    }
  }
  f.detail = who + ":" + clock_label(step.kind) + ":" + what;
  if (slot.pid > 0 && slot.liar && !slot.terminating) {
    ::kill(slot.pid, SIGTERM);
    slot.terminating = true;
    slot.terminated_at = now_ns();
  }
  f.heal_ns = now_ns();
  record(f);
}

}  // namespace clusterlock::chaos::detail
