// clusterlock_chaos: the lock under faults. Starts a 3-member etcd cluster and several contender processes for one
// lock, injects seeded random faults (holder killed or frozen past its TTL, etcd members killed, the leader or a
// majority frozen, the holder's key deleted or its lease revoked by hand, history compacted) and forces graceful
// hand-offs, and gives some contenders a lying clock (libfaketime) or cuts links through its relays (partitions),
// then checks every contender's action log: fencing tokens must never go backwards in time (safety) and after each
// fault heals some holder must act again within TTL + slack (liveness); and the fenced resource's log: no write accepted out of token order. Prints a summary and
// draws the timeline. With --slots N every contender holds a semaphore permit instead, and both checks allow N holders
// at once (holder_check.hpp; the resource then checks only). With --rw-writers K every contender holds an rw_lock,
// K of them writers: both checks allow readers together and a writer alone (the resource by its rw fence,
// resource_check.hpp). With --watch predecessor every contender's lock_manager watches only the key ahead of its own.
// See docs/chaos.md.
//
// Exit code: 0 all good; 1 a safety violation (lock log or resource); 2 a liveness failure (unless --liveness-advisory); 3 a contender
// ended by itself (a crash); 4 the harness could not run (bad flags, etcd did not start, nothing was logged).

#include "chaos/chaos_runner.hpp"
#include "chaos/log_check.hpp"
#include "chaos/resource_check.hpp"
#include "chaos/run_files.hpp"
#include "chaos/timeline.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#ifndef CLUSTERLOCK_TEST_CONTENDER
#define CLUSTERLOCK_TEST_CONTENDER ""
#endif

namespace {

namespace fs = std::filesystem;
using namespace clusterlock::chaos;

const char* usage = R"(usage: clusterlock_chaos [flags]
  --duration-s N          run length in seconds (default 110)
  --seed N                fault plan seed (default 1); the same seed gives the same plan
  --ttl S                 lease TTL of the contenders, seconds (default 2)
  --contenders N          contender processes, at least 5 (default 5; with --slots N: at least N + 2, default N + 3)
  --slots N               contend with a semaphore of N permits instead of a lock (every contender); the checker
                          allows N holders at once, and the resource only checks (no token fence for N > 1)
  --rw-writers K          contend with a read-write lock instead: the contenders of slots 0 to K-1 write, the
                          others read (1 <= K <= contenders - 2); the checker allows readers together and a writer
                          alone, and the resource fences by mode (writers above every token, readers above the
                          writers')
  --watch SCOPE           line (default) or predecessor: every contender's lock_manager watches only the key just
                          ahead of its own (options::watch; a plain lock only: not with --slots or --rw-writers)
  --out DIR               output directory (default ./chaos-out); emptied first
  --timeline FILE         timeline PNG (default DIR/timeline.png; 'none': no picture)
  --timeline-window A:B   draw only seconds A to B of the run (a long run's whole timeline is too dense to read)
  --log-interval-ms N     how often a holder logs an action (default 5)
  --probe-interval-ms N   contenders' probe interval (default 1000)
  --request-timeout-ms N  contenders' request timeout (default 1000)
  --fault-gap-min-ms N    quiet time between a heal and the next fault, at least (default 2000)
  --fault-gap-max-ms N    ... at most (default 6000)
  --churn-ms N            mean time between graceful SIGTERMs of the holder in the quiet times; 0: none (default 1500)
  --requeue-every K       every K-th of those is a SIGUSR1 instead: the holder releases and queues again in its
                          process (a lock taken in turns); 0: none (default 0)
  --faults LIST           comma-separated fault kinds (default: all): kill_holder,stop_holder,restart_member,
                          stop_leader,stop_majority,delete_key,revoke_lease,compact,clock_slow,clock_fast,
                          clock_jump,isolate_holder,isolate_member,isolate_leader,split,flap
  --liveness-slack-ms N   liveness bound is TTL + this (default 2000)
  --liveness-advisory     report liveness failures without failing the run
  --count-races           count races as safety violations: the old holder acting after a new one because its key
                          was taken while its lease lived (by an operator, or by a resumed stale etcd leader: etcd
                          issue 15247), before its watch told it
  --check-only DIR        check (and draw) a finished run's output again; no etcd, no faults
  --contender PATH        the contender program (default: the one built with this harness)
  --quiet                 do not narrate the faults on stderr
)";

struct flags {
  std::map<std::string, std::string> values;
  bool has(const std::string& k) const { return values.count(k) != 0; }
  std::string text(const std::string& k, const std::string& fallback) const {
    auto it = values.find(k);
    return it == values.end() ? fallback : it->second;
  }
  long long number(const std::string& k, long long fallback) const {
    auto it = values.find(k);
    if (it == values.end()) return fallback;
    std::size_t used = 0;
    const long long v = std::stoll(it->second, &used);
    if (used != it->second.size()) throw std::invalid_argument("--" + k + ": not a number: " + it->second);
    return v;
  }
};

flags parse(int argc, char** argv) {
  flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << usage;
      std::exit(0);
    }
    if (a.rfind("--", 0) != 0) throw std::invalid_argument("unexpected argument: " + a);
    a = a.substr(2);
    if (a == "liveness-advisory" || a == "count-races" || a == "quiet") {
      f.values[a] = "1";
      continue;
    }
    if (i + 1 >= argc) throw std::invalid_argument("--" + a + " needs a value");
    f.values[a] = argv[++i];
  }
  static const char* known[] = {"duration-s", "seed", "ttl", "contenders", "out", "timeline", "log-interval-ms",
                                "probe-interval-ms", "request-timeout-ms", "fault-gap-min-ms", "fault-gap-max-ms", "timeline-window",
                                "churn-ms", "requeue-every", "faults", "liveness-slack-ms", "liveness-advisory", "count-races", "check-only",
                                "contender", "quiet", "slots", "rw-writers", "watch"};
  for (const auto& [k, v] : f.values) {
    bool ok = false;
    for (const char* n : known) ok = ok || k == n;
    if (!ok) throw std::invalid_argument("unknown flag --" + k);
  }
  return f;
}

std::vector<fault_kind> kinds_from(const std::string& list) {
  std::vector<fault_kind> kinds;
  std::stringstream in(list);
  for (std::string name; std::getline(in, name, ',');) {
    if (name.empty()) continue;
    auto k = fault_kind_from(name);
    if (!k) throw std::invalid_argument("unknown fault kind: " + name);
    kinds.push_back(*k);
  }
  if (kinds.empty()) throw std::invalid_argument("--faults: no kinds");
  return kinds;
}

// How to judge and draw a run.
struct judge_settings {
  std::string timeline;  // the PNG, or "none"
  double window_from_s = 0, window_to_s = 0;
  bool liveness_advisory = false;
  bool count_races = false;
};

// "A:B" (seconds) of --timeline-window.
void parse_window(const std::string& text, judge_settings& j) {
  const auto colon = text.find(':');
  std::size_t used_a = 0, used_b = 0;
  if (colon != std::string::npos) {
    const std::string a = text.substr(0, colon), b = text.substr(colon + 1);
    try {
      j.window_from_s = std::stod(a, &used_a);
      j.window_to_s = std::stod(b, &used_b);
    } catch (const std::exception&) {
      used_a = 0;
    }
    if (used_a == a.size() && used_b == b.size() && used_a && j.window_from_s >= 0 && j.window_from_s < j.window_to_s)
      return;
  }
  throw std::invalid_argument("--timeline-window: want FROM:TO in seconds, FROM < TO, e.g. 600:900; got '" + text + "'");
}

// Who may hold at once, from run.txt: "slots N" (a semaphore; 0 or none: the lock), or "rw_writers K" (a read-write
// lock: the contenders of slots below K write, the others read).
holding_rule holding_rule_of(const run_info& info, const std::vector<action>& actions) {
  holding_rule rule;
  rule.slots = static_cast<std::size_t>(std::max(1LL, info_number(info, "slots", 0)));
  if (const long long writers = info_number(info, "rw_writers", -1); writers >= 0) {
    for (const auto& a : actions)
      rule.modes[a.identity] = slot_of(a.identity) < writers ? access_mode::write : access_mode::read;
  }
  return rule;
}

// The resource's verdict: the lock's fence (out-of-order accepts), or with several holders the check by arrival.
struct resource_verdict {
  bool several = false;
  bool rw = false;
  std::size_t count = 0;     // out-of-order accepts, or resource violations (rw: both): must be 0
  std::size_t accepted = 0;  // writes the resource took
  std::string text;          // for the summary
};

resource_verdict judge_resource(const loaded_run& run, const check_settings& s) {
  resource_verdict v;
  v.several = s.holders.several();
  const bool rw = v.rw = s.holders.read_write();
  const resource_report fence =
      check_resource(run.resource, rw ? resource_fence::read_write(static_cast<int>(info_number(run.info, "rw_writers", 0)))
                                      : resource_fence{});
  v.accepted = fence.accepted;
  if (!v.several) {
    v.count = fence.out_of_order;
    v.text = describe(fence);
    return v;
  }
  race_rules rules;
  rules.race_bound_ns = s.race_bound_ns;
  rules.stale_leader_window_ns = s.stale_leader_window_ns;
  rules.count_races = s.count_races;
  rules.several = true;
  const resource_holders_report shared = check_resource_holders(run.resource, run.faults, s.holders, rules);
  v.count = shared.verdicts.violations.size();
  v.text = describe(shared, run.faults, s.run_start_ns, rw);
  if (rw) {  // the rw fence: its replay must find no accept out of its rule; the arrival check is its cross-check
    v.count += fence.out_of_order;
    v.text = describe(fence) + v.text;
  }
  return v;
}

// Checks a run's output, prints and saves the summary, draws the timeline. Returns the exit code.
int judge(const std::string& dir, const judge_settings& j) {
  const std::string& timeline = j.timeline;
  const bool liveness_advisory = j.liveness_advisory, count_races = j.count_races;
  const loaded_run run = load_run(dir);
  check_settings s;
  s.log_interval_ns = info_number(run.info, "log_interval_ms", 5) * 1'000'000;
  s.liveness_bound_ns = info_number(run.info, "liveness_bound_ms", 4000) * 1'000'000;
  s.race_bound_ns =
      (info_number(run.info, "probe_interval_ms", 1000) + info_number(run.info, "request_timeout_ms", 1000)) * 1'000'000;
  s.count_races = count_races;
  s.run_start_ns = info_number(run.info, "start_ns", 0);
  s.run_end_ns = info_number(run.info, "end_ns", 0);
  s.holders = holding_rule_of(run.info, run.actions);
  const check_report report = check(run.actions, run.faults, run.drivers, s);
  const resource_verdict resource = judge_resource(run, s);
  std::ostringstream summary;
  summary << "clusterlock chaos run: " << dir << "\n";
  summary << "seed " << (run.info.count("seed") ? run.info.at("seed") : "?")
          << ", ttl " << info_number(run.info, "ttl_s", 0) << " s, " << info_number(run.info, "contenders", 0)
          << " contenders at a time (" << info_number(run.info, "contenders_started", 0) << " started), log every "
          << s.log_interval_ns / 1'000'000 << " ms"
          << (run.info.count("watch") && run.info.at("watch") == "predecessor" ? ", predecessor watch" : "") << "\n";
  summary << describe(report, run.faults, s);
  summary << resource.text;
  summary << "verdicts:          "
          << (resource.rw ? "resource out-of-fence accepts + overlaps " : resource.several ? "resource overlaps " : "out-of-order accepts ")
          << resource.count << "; lock-log overlaps "
          << report.violations.size() + report.races.size() + report.clock_overlaps.size() << " ("
          << report.violations.size() << " violations, " << report.races.size() << " races, "
          << report.clock_overlaps.size() << " under clock faults)\n";
  summary << "skipped faults:    " << info_number(run.info, "skipped_faults", 0) << " (no live holder to hit)\n";
  summary << "contender crashes: " << info_number(run.info, "unexpected_exits", 0) << "\n";
  if (run.torn_lines) summary << "torn log lines:    " << run.torn_lines << " (writers killed mid-line; ignored)\n";

  int code = 0;
  if (report.actions == 0 || report.handoffs == 0 || resource.accepted == 0) {
    summary << "RESULT: the run proved nothing (no hand-off logged, or no write reached the resource)\n";
    code = 4;
  } else if (resource.count > 0) {
    summary << (resource.several
                    ? "RESULT: SAFETY VIOLATED AT THE RESOURCE (a write taken that the rule forbids)\n"
                    : "RESULT: FENCING VIOLATED (the resource accepted a write out of token order)\n");
    code = 1;
  } else if (!safe(report)) {
    summary << "RESULT: SAFETY VIOLATED\n";
    code = 1;
  } else if (report.liveness_failures > 0 && !liveness_advisory) {
    summary << "RESULT: LIVENESS FAILED\n";
    code = 2;
  } else if (info_number(run.info, "unexpected_exits", 0) > 0) {
    summary << "RESULT: A CONTENDER CRASHED\n";
    code = 3;
  } else {
    summary << "RESULT: ok" << (report.liveness_failures ? " (liveness failures are advisory)" : "") << "\n";
  }
  std::cout << summary.str() << std::flush;
  std::ofstream(fs::path(dir) / "summary.txt") << summary.str();

  if (timeline != "none") {
    timeline_input in;
    in.actions = run.actions;
    in.faults = run.faults;
    in.drivers = run.drivers;
    in.report = report;
    in.start_ns = s.run_start_ns;
    in.end_ns = s.run_end_ns;
    in.window_from_s = j.window_from_s;
    in.window_to_s = j.window_to_s;
    std::ostringstream title;
    title << "clusterlock chaos: seed " << (run.info.count("seed") ? run.info.at("seed") : "?") << ", "
          << report.handoffs << " hand-offs, " << report.faults << " faults, " << report.violations.size()
          << " violations, worst liveness gap " << static_cast<double>(report.worst_liveness_gap_ns) / 1e9 << " s";
    in.title = title.str();
    std::string error;
    if (render_timeline(in, timeline, (fs::path(dir) / "timeline").string(), &error)) {
      std::cout << "timeline: " << timeline << "\n";
    } else {
      std::cerr << "timeline: " << error << "\n";
    }
  }
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const flags f = parse(argc, argv);
    judge_settings j;
    j.liveness_advisory = f.has("liveness-advisory");
    j.count_races = f.has("count-races");
    if (f.has("timeline-window")) parse_window(f.text("timeline-window", ""), j);
    if (f.has("check-only")) {
      const std::string dir = f.text("check-only", "");
      j.timeline = f.text("timeline", (fs::path(dir) / "timeline.png").string());
      return judge(dir, j);
    }
    run_settings r;
    r.duration_s = static_cast<double>(f.number("duration-s", 110));
    r.ttl_s = static_cast<int>(f.number("ttl", 2));
    r.slots = static_cast<int>(f.number("slots", 0));
    if (f.has("slots") && (r.slots < 1 || r.slots > 100)) throw std::invalid_argument("--slots: 1 to 100");
    r.rw_writers = static_cast<int>(f.number("rw-writers", -1));
    if (f.has("rw-writers") && f.has("slots"))
      throw std::invalid_argument("--rw-writers and --slots: a read-write lock or a semaphore, not both");
    const std::string watch = f.text("watch", "line");
    if (watch != "line" && watch != "predecessor") throw std::invalid_argument("--watch: line or predecessor");
    r.predecessor = watch == "predecessor";
    if (r.predecessor && (f.has("slots") || f.has("rw-writers")))
      throw std::invalid_argument("--watch predecessor: a plain lock only, not with --slots or --rw-writers");
    r.contenders = static_cast<int>(f.number("contenders", std::max(5, r.slots + 3)));
    // Readers must be able to share, and a writer to wait behind them.
    if (f.has("rw-writers") && (r.rw_writers < 1 || r.rw_writers > r.contenders - 2))
      throw std::invalid_argument("--rw-writers: 1 to contenders - 2 (at least two readers)");
    r.out_dir = fs::absolute(f.text("out", "chaos-out")).string();
    r.contender_path = f.text("contender", CLUSTERLOCK_TEST_CONTENDER);
    r.log_interval_ms = static_cast<int>(f.number("log-interval-ms", 5));
    r.probe_interval_ms = static_cast<int>(f.number("probe-interval-ms", 1000));
    r.request_timeout_ms = static_cast<int>(f.number("request-timeout-ms", 1000));
    r.liveness_bound_s = static_cast<double>(r.ttl_s) + static_cast<double>(f.number("liveness-slack-ms", 2000)) / 1e3;
    r.verbose = !f.has("quiet");
    r.plan.seed = static_cast<std::uint64_t>(f.number("seed", 1));
    r.plan.ttl_s = r.ttl_s;
    if (f.has("faults")) r.plan.kinds = kinds_from(f.text("faults", ""));
    r.plan.gap_min_s = static_cast<double>(f.number("fault-gap-min-ms", 2000)) / 1e3;
    r.plan.gap_max_s = static_cast<double>(f.number("fault-gap-max-ms", 6000)) / 1e3;
    r.plan.churn_mean_s = static_cast<double>(f.number("churn-ms", 1500)) / 1e3;
    r.requeue_every = static_cast<int>(f.number("requeue-every", 0));
    if (r.requeue_every < 0) throw std::invalid_argument("--requeue-every: 0 (none) or more");
    if (r.contenders < 5) throw std::invalid_argument("--contenders: at least 5");
    // A queue behind the permits: after a holder is killed or terminated someone must still wait to be admitted.
    if (r.slots > 0 && r.contenders < r.slots + 2)
      throw std::invalid_argument("--contenders: at least --slots + 2 (waiters behind the permits)");
    if (r.ttl_s < 1) throw std::invalid_argument("--ttl: at least 1");
    if (r.log_interval_ms < 1) throw std::invalid_argument("--log-interval-ms: at least 1");
    if (r.contender_path.empty() || !fs::exists(r.contender_path))
      throw std::invalid_argument("contender program not found: '" + r.contender_path + "' (--contender)");
    const std::string timeline = f.text("timeline", (fs::path(r.out_dir) / "timeline.png").string());

    std::error_code ignored;
    fs::remove_all(r.out_dir, ignored);
    fs::create_directories(r.out_dir);
    const auto began = std::chrono::steady_clock::now();
    std::cerr << "chaos: seed " << r.plan.seed << ", " << r.duration_s << " s, output in " << r.out_dir << std::endl;
    const run_result result = run_chaos(r);
    (void)result;
    j.timeline = timeline == "none" ? timeline : fs::absolute(timeline).string();
    const int code = judge(r.out_dir, j);
    std::cout << "wall time: "
              << std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - began).count()
              << " s\n";
    return code;
  } catch (const std::exception& e) {
    std::cerr << "clusterlock_chaos: " << e.what() << "\n" << (std::string(e.what()).find("flag") != std::string::npos ? usage : "");
    return 4;
  }
}
