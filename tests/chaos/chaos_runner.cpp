#include "chaos/chaos_runner.hpp"

#include "chaos/clock_faults.hpp"
#include "chaos/resource_server.hpp"

#include "etcd/codec.hpp"
#include "support/child_process.hpp"
#include "support/etcd_cluster.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <thread>

namespace clusterlock::chaos {

namespace {

namespace fs = std::filesystem;
using test::etcd_cluster;

constexpr const char* lock_name = "chaos/lock";
constexpr long long ms = 1'000'000;
constexpr long long s = 1'000'000'000;
constexpr long long poll_ns = 20 * ms;
constexpr long long terminate_grace_ns = 10 * s;  // a SIGTERMed contender that has not exited by then is killed

long long now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

long long seconds_to_ns(double seconds) { return static_cast<long long>(seconds * 1e9); }

struct contender {
  int slot = 0;
  int generation = -1;
  std::string identity;
  pid_t pid = -1;  // -1: none running
  bool stopped = false;
  bool terminating = false;  // SIGTERM sent
  long long terminated_at = 0;
  bool killed = false;  // SIGKILL sent by us
  bool liar = false;    // runs under a clock fault
  std::vector<std::string> next_env;  // for the next start in this slot only (a clock fault's libfaketime)
};

// What etcd says about the lock: the oldest key under its prefix, and the revision of the read.
struct lock_view {
  std::int64_t revision = 0;
  std::optional<etcd::key_value> holder;
};

class chaos_run {
 public:
  explicit chaos_run(const run_settings& settings)
      : settings_(settings),
        plan_(settings.plan),
        cluster_(test::etcd_options{.members = 3}),
        resource_(path("resource.log")),
        faketime_(find_libfaketime()) {
    for (auto k : settings_.plan.kinds)
      if (is_clock_fault(k) && faketime_.empty())
        throw std::runtime_error("clock faults need libfaketime (Debian's faketime package; scripts/setup.sh)");
    fs::create_directories(fs::path(settings_.out_dir) / "logs");
    fs::create_directories(fs::path(settings_.out_dir) / "contenders");
    fs::create_directories(fs::path(settings_.out_dir) / "etcd");
    harness_.open(path("harness.log"));
    faults_.open(path("faults.txt"));
    drivers_.open(path("drivers.txt"));
    plan_out_.open(path("plan.txt"));
    slots_.resize(static_cast<std::size_t>(settings_.contenders));
  }

  ~chaos_run() {
    for (auto& c : slots_) kill_contender(c);
    try {
      for (int i = 0; i < cluster_.size(); ++i) {
        fs::copy_file(cluster_.log_file(i), path("etcd/m" + std::to_string(i) + ".log"),
                      fs::copy_options::overwrite_existing);
      }
    } catch (...) {
    }
  }

  run_result run() {
    result_.start_ns = now_ns();
    note("etcd cluster up: " + cluster_.endpoints_csv());
    for (int i = 0; i < settings_.contenders; ++i) start_contender(slots_[static_cast<std::size_t>(i)], i);
    if (!live_holder(15 * s)) throw std::runtime_error("no contender took the lock within 15 s");
    note("a holder is up: faults begin");

    const long long end = result_.start_ns + seconds_to_ns(settings_.duration_s);
    // Leave room to measure the last fault's liveness before the end.
    const long long last_fault = end - seconds_to_ns(settings_.liveness_bound_s + 1);
    for (;;) {
      const plan_step step = plan_.next();
      const long long gap_start = now_ns();
      // A clock fault also hands the lock to its liar first and watches it a while after (clock_fault()).
      const long long extra = is_clock_fault(step.kind) ? 5 * s : 0;
      const bool fits = gap_start + seconds_to_ns(step.gap_s) + seconds_to_ns(step.hold_s) + extra < last_fault;
      for (double offset : step.churn_s) {
        const long long at = gap_start + seconds_to_ns(offset);
        if (at >= end) break;
        wait_until(at);
        terminate_holder();
      }
      if (!fits) break;
      plan_out_ << format_step(step) << std::endl;
      wait_until(gap_start + seconds_to_ns(step.gap_s));
      execute(step);
    }
    wait_until(end);
    finish();
    write_run_info();
    return result_;
  }

 private:
  std::string path(const std::string& name) const { return (fs::path(settings_.out_dir) / name).string(); }

  std::string at(long long ns) const {
    char buf[32];
    std::snprintf(buf, sizeof buf, "t+%.3f", static_cast<double>(ns - result_.start_ns) / 1e9);
    return buf;
  }

  void note(const std::string& what, bool loud = false) {
    const long long t = now_ns();
    harness_ << t << ' ' << at(t) << ' ' << what << std::endl;
    if (loud && settings_.verbose) std::cerr << "chaos " << at(t) << " " << what << std::endl;
  }

  // ---- contenders

  std::string endpoints_for(int slot) const {
    // Rotated per slot: the contenders start on different members, so their watches and probes spread out.
    std::string csv;
    for (int i = 0; i < cluster_.size(); ++i) {
      if (!csv.empty()) csv += ',';
      csv += cluster_.client_url((slot + i) % cluster_.size());
    }
    return csv;
  }

  void start_contender(contender& c, int slot) {
    c.slot = slot;
    ++c.generation;
    c.identity = "c" + std::to_string(slot) + "." + std::to_string(c.generation);
    c.stopped = c.terminating = c.killed = false;
    const std::string out = path("contenders/" + c.identity + ".out");
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("open " + out + ": " + std::strerror(errno));
    test::spawn_options o;
    o.argv = {settings_.contender_path,
              "--endpoints", endpoints_for(slot),
              "--name", lock_name,
              "--identity", c.identity,
              "--ttl", std::to_string(settings_.ttl_s),
              "--probe-interval-ms", std::to_string(settings_.probe_interval_ms),
              "--request-timeout-ms", std::to_string(settings_.request_timeout_ms),
              "--have-interval-ms", "1000",
              "--log", path("logs/" + c.identity + ".log"),
              "--log-interval-ms", std::to_string(settings_.log_interval_ms),
              "--resource-port", std::to_string(resource_.port())};
    o.env = test::clean_environment();
    for (const auto& entry : c.next_env) {  // a clock fault's entries replace ours of the same name (getenv: first)
      const auto name = entry.substr(0, entry.find('=') + 1);
      std::erase_if(o.env, [&](const std::string& e) { return e.starts_with(name); });
      o.env.push_back(entry);
    }
    c.liar = !c.next_env.empty();
    c.next_env.clear();
    o.stdout_fd = fd;
    o.stderr_fd = fd;
    try {
      c.pid = test::spawn(o);
    } catch (...) {
      ::close(fd);
      throw;
    }
    ::close(fd);
    ++result_.contenders_started;
    note("start " + c.identity + " pid " + std::to_string(c.pid) + (c.liar ? " (clock fault)" : ""));
  }

  void kill_contender(contender& c) {
    if (c.pid <= 0) return;
    test::kill_and_reap(c.pid);
    c.pid = -1;
  }

  // Reaps contenders that ended and starts new ones in their place; kills those that overstay a SIGTERM.
  void service() {
    for (auto& c : slots_) {
      if (c.pid <= 0) continue;
      int status = 0;
      const pid_t r = ::waitpid(c.pid, &status, WNOHANG);
      if (r == c.pid) {
        // SIGKILLed by us: any end is expected. SIGTERMed: it must shut down cleanly (a sanitizer's report at exit
        // shows as a non-zero exit code). Anything else is a crash.
        const bool expected = c.killed || (c.terminating && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        std::string how = WIFEXITED(status)     ? "exit " + std::to_string(WEXITSTATUS(status))
                          : WIFSIGNALED(status) ? std::string("signal ") + ::strsignal(WTERMSIG(status))
                                                : "status " + std::to_string(status);
        if (!expected) ++result_.unexpected_exits;
        note((expected ? "ended " : "UNEXPECTED END of ") + c.identity + ": " + how, !expected);
        c.pid = -1;
        start_contender(c, c.slot);
      } else if (c.terminating && now_ns() - c.terminated_at > terminate_grace_ns) {
        note("KILL " + c.identity + ": still running " + std::to_string(terminate_grace_ns / s) + " s after SIGTERM",
             true);
        c.killed = true;
        ::kill(c.pid, SIGCONT);
        ::kill(c.pid, SIGKILL);
      }
    }
  }

  void wait_until(long long deadline) {
    for (;;) {
      service();
      const long long left = deadline - now_ns();
      if (left <= 0) return;
      std::this_thread::sleep_for(std::chrono::nanoseconds(std::min(left, poll_ns)));
    }
  }

  // ---- what etcd says

  std::optional<lock_view> read_lock(std::chrono::milliseconds per_member = std::chrono::milliseconds(1000)) const {
    etcd::range_request req;
    req.key = std::string(lock_name) + "/";
    req.range_end = etcd::prefix_range_end(req.key);
    req.limit = 1;
    req.order = etcd::sort_order::ascend;
    req.target = etcd::sort_target::create;
    const std::string body = etcd::codec::encode(req);
    for (int i = 0; i < cluster_.size(); ++i) {
      if (!cluster_.is_running(i) || cluster_.is_stopped(i)) continue;
      test::http_request_options http;
      http.method = "POST";
      http.target = "/v3/kv/range";
      http.body = body;
      http.timeout = per_member;
      const auto reply = cluster_.http(i, http);
      if (!reply || reply->status != 200) continue;
      auto decoded = etcd::codec::decode_range(reply->body);
      if (!decoded) continue;
      lock_view v;
      v.revision = decoded->header.revision;
      if (!decoded->kvs.empty()) v.holder = decoded->kvs.front();
      return v;
    }
    return std::nullopt;
  }

  contender* running(const std::string& identity) {
    for (auto& c : slots_)
      if (c.identity == identity && c.pid > 0 && !c.stopped && !c.terminating && !c.killed) return &c;
    return nullptr;
  }

  // The holder according to etcd, when it is a contender that runs (not stopped, not ending); waits up to `wait`.
  std::optional<std::pair<contender*, etcd::key_value>> live_holder(long long wait) {
    const long long deadline = now_ns() + wait;
    for (;;) {
      const auto view = read_lock();
      if (view && view->holder) {
        if (auto* c = running(view->holder->value)) return std::make_pair(c, *view->holder);
      }
      if (now_ns() >= deadline) return std::nullopt;
      wait_until(std::min(deadline, now_ns() + 50 * ms));
    }
  }

  // ---- faults

  void record(fault_record f) {
    ++result_.faults;
    faults_ << format_fault(f) << std::endl;
    note("fault #" + std::to_string(f.id) + " " + std::string(to_string(f.kind)) + " " + f.detail + " healed after " +
             std::to_string((f.heal_ns - f.inject_ns) / ms) + " ms",
         true);
  }

  void skip(const plan_step& step, const std::string& why) {
    ++result_.skipped;
    note("skip " + std::string(to_string(step.kind)) + ": " + why, true);
  }

  bool etcdctl(const std::vector<std::string>& args, std::string* out = nullptr) {
    test::etcdctl_options o;
    o.timeout = std::chrono::milliseconds(15000);
    const auto r = cluster_.try_etcdctl(args, o);
    if (out) *out = r.out;
    if (r.exit_code != 0) note("etcdctl " + test::join_command(args) + " failed: " + r.err);
    return r.exit_code == 0;
  }

  void compact_now() {
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
  void wait_until_etcd_serves(fault_record& f) {
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

  void hold(long long from, const plan_step& step) {
    const long long until = from + seconds_to_ns(step.hold_s);
    if (step.compact_midway) {
      wait_until(from + (until - from) / 2);
      compact_now();
    }
    wait_until(until);
  }

  void execute(const plan_step& step) {
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
    }
  }

  // Hands the lock on by graceful SIGTERMs until `liar` holds it; false when that did not happen within `wait`.
  bool hand_lock_to(const contender& liar, long long wait) {
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
  void clock_fault(const plan_step& step) {
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

  // A graceful hand-off: SIGTERM to the holder (it releases its key); a new contender takes its place.
  void terminate_holder() {
    const auto h = live_holder(0);
    if (!h) {
      note("no live holder to terminate");
      return;
    }
    contender& c = *h->first;
    const long long t = now_ns();
    ::kill(c.pid, SIGTERM);
    c.terminating = true;
    c.terminated_at = t;
    ++result_.drivers;
    drivers_ << format_driver({t, c.identity}) << std::endl;
    note("SIGTERM " + c.identity);
  }

  void finish() {
    result_.end_ns = now_ns();
    note("end: terminating every contender", true);
    for (auto& c : slots_) {
      if (c.pid <= 0) continue;
      ::kill(c.pid, SIGCONT);
      ::kill(c.pid, SIGTERM);
      c.terminating = true;
    }
    const long long deadline = now_ns() + 5 * s;
    for (auto& c : slots_) {
      while (c.pid > 0 && now_ns() < deadline) {
        int status = 0;
        if (::waitpid(c.pid, &status, WNOHANG) == c.pid) {
          if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            ++result_.unexpected_exits;
            note("UNEXPECTED END of " + c.identity + " after the final SIGTERM: status " + std::to_string(status), true);
          }
          c.pid = -1;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (c.pid > 0) note("KILL " + c.identity + ": did not exit after the final SIGTERM", true);
      kill_contender(c);
    }
  }

  void write_run_info() {
    std::ofstream info(path("run.txt"));
    info << "start_ns " << result_.start_ns << "\n"
         << "end_ns " << result_.end_ns << "\n"
         << "seed " << settings_.plan.seed << "\n"
         << "duration_s " << settings_.duration_s << "\n"
         << "ttl_s " << settings_.ttl_s << "\n"
         << "contenders " << settings_.contenders << "\n"
         << "log_interval_ms " << settings_.log_interval_ms << "\n"
         << "probe_interval_ms " << settings_.probe_interval_ms << "\n"
         << "request_timeout_ms " << settings_.request_timeout_ms << "\n"
         << "liveness_bound_ms " << static_cast<long long>(settings_.liveness_bound_s * 1000) << "\n"
         << "contenders_started " << result_.contenders_started << "\n"
         << "unexpected_exits " << result_.unexpected_exits << "\n"
         << "skipped_faults " << result_.skipped << "\n"
         << "resource_accepted " << resource_.accepted() << "\n"
         << "resource_rejected " << resource_.rejected() << "\n"
         << "faketime " << (faketime_.empty() ? "-" : faketime_) << "\n";
  }

  run_settings settings_;
  fault_plan plan_;
  etcd_cluster cluster_;
  resource_server resource_;
  std::string faketime_;  // libfaketime's path, "" when not installed
  std::ofstream harness_, faults_, drivers_, plan_out_;
  std::vector<contender> slots_;
  run_result result_;
  int next_fault_id_ = 1;
};

}  // namespace

run_result run_chaos(const run_settings& settings) {
  chaos_run run(settings);
  return run.run();
}

}  // namespace clusterlock::chaos
