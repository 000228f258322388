// 1. Command hand-off: `clusterlock run NAME -- CMD` against `etcdctl lock NAME -- CMD`.
//
// Each trial runs a holder and a waiter of one tool. Both commands are clusterlock_bench_stamp, which appends
// "LABEL start NS" and "LABEL end NS" (CLOCK_MONOTONIC) to a file. The holder's command waits for a go-file; the
// driver creates it only once etcd shows the waiter's key queued behind the holder's. The hand-off is the waiter's
// "start" minus the holder's "end": the holder's command exiting, the tool noticing and releasing, the waiter
// learning it holds the lock, and starting its command. The two tools alternate trial by trial (and which goes
// first), so both see the same machine.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "bench.hpp"

namespace clusterlock::bench {

namespace {

struct tool {
  std::string name;
  std::string lock_name;
  std::function<std::vector<std::string>(const std::vector<std::string>& command)> argv;
  std::vector<std::string> env;
};

// The stamp of `label what` in the file; none when not (yet) there.
std::optional<std::int64_t> find_stamp(const std::string& file, const std::string& label, const std::string& what) {
  std::ifstream in(file);
  std::string l, w;
  long long ns = 0;
  while (in >> l >> w >> ns)
    if (l == label && w == what) return ns;
  return std::nullopt;
}

std::int64_t wait_stamp(const std::string& file, const std::string& label, const std::string& what,
                        std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto ns = find_stamp(file, label, what)) return *ns;
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("no '" + label + " " + what + "' in " + file);
    std::this_thread::sleep_for(1ms);
  }
}

// One hand-off of `t`: returns milliseconds from the holder command's end to the waiter command's start.
double one_trial(context& ctx, etcd_helper& etcd, const tool& t, int trial) {
  const std::string file = ctx.work_dir + "/cmd-" + t.name + "-" + std::to_string(trial) + ".txt";
  const std::string go = file + ".go";
  const std::string errors = ctx.work_dir + "/cmd-" + t.name + ".stderr";
  std::filesystem::remove(file);
  std::filesystem::remove(go);
  child holder(t.argv({ctx.stamp_bin, file, "holder", go}), t.env, false, errors);
  wait_stamp(file, "holder", "start", 20s);
  child waiter(t.argv({ctx.stamp_bin, file, "waiter"}), t.env, false, errors);
  etcd.wait_count(t.lock_name + "/", 2, 20s);
  std::ofstream{go};
  const int holder_status = holder.wait(20s);
  const int waiter_status = waiter.wait(20s);
  if (holder_status != 0 || waiter_status != 0)
    throw std::runtime_error(t.name + ": holder or waiter failed (wait status " + std::to_string(holder_status) + ", " +
                             std::to_string(waiter_status) + "); see " + errors);
  const auto end = find_stamp(file, "holder", "end");
  const auto start = find_stamp(file, "waiter", "start");
  if (!end || !start) throw std::runtime_error(t.name + ": stamps missing in " + file);
  std::filesystem::remove(file);
  std::filesystem::remove(go);
  return static_cast<double>(*start - *end) / 1e6;
}

}  // namespace

void command_handoff(context& ctx) {
  const int trials = ctx.quick ? 4 : 20;
  etcd_helper etcd(ctx.endpoint);
  const bool have_cli = !ctx.cli_bin.empty() && ::access(ctx.cli_bin.c_str(), X_OK) == 0;

  std::vector<tool> tools;
  if (have_cli) {
    tools.push_back({"clusterlock", "bench-cmd-ours",
                     [&](const std::vector<std::string>& command) {
                       std::vector<std::string> a = {ctx.cli_bin, "run", "--endpoints", ctx.endpoint,
                                                     "bench-cmd-ours", "--"};
                       a.insert(a.end(), command.begin(), command.end());
                       return a;
                     },
                     {}});
  } else {
    log("command hand-off: no clusterlock CLI at '" + ctx.cli_bin + "': measuring etcdctl only");
  }
  tools.push_back({"etcdctl", "bench-cmd-etcdctl",
                   [&](const std::vector<std::string>& command) {
                     std::vector<std::string> a = {ctx.etcdctl_bin, "--endpoints", ctx.endpoint, "lock",
                                                   "bench-cmd-etcdctl", "--"};
                     a.insert(a.end(), command.begin(), command.end());
                     return a;
                   },
                   {"ETCDCTL_API=3"}});

  // One untimed round first: binaries and libraries into the page cache.
  for (const auto& t : tools) one_trial(ctx, etcd, t, -1);

  std::vector<std::vector<std::string>> csv;
  std::map<std::string, std::vector<double>> samples;
  for (int i = 0; i < trials; ++i) {
    for (std::size_t k = 0; k < tools.size(); ++k) {
      const auto& t = tools[(k + static_cast<std::size_t>(i)) % tools.size()];  // alternate who goes first
      const double ms = one_trial(ctx, etcd, t, i);
      samples[t.name].push_back(ms);
      csv.push_back({std::to_string(i), t.name, fixed(ms, 3)});
    }
  }
  write_csv(ctx.out("command_handoff.csv"), {"trial", "tool", "handoff_ms"}, csv);
  write_cdf_csv(ctx.out("command_handoff_cdf.csv"), {{"clusterlock", samples["clusterlock"]}, {"etcdctl", samples["etcdctl"]}});

  const auto theirs = summarize(samples["etcdctl"]);
  const std::string bench = "1 command hand-off (ms)";
  if (!have_cli) {
    ctx.add({bench, "median", std::nullopt, theirs.median, "etcdctl lock", "<= 0.5x etcdctl", std::nullopt,
             "clusterlock CLI not built: not measured"});
    return;
  }
  const auto ours = summarize(samples["clusterlock"]);
  result_row median{bench, "median", ours.median, theirs.median, "etcdctl lock", "<= 0.5x etcdctl", std::nullopt,
                    std::to_string(trials) + " trials each, interleaved"};
  median.met = *median.ratio() <= 0.5;
  ctx.add(median);
  ctx.add({bench, "p90", ours.p90, theirs.p90, "etcdctl lock", "", std::nullopt, ""});
  ctx.add({bench, "max", ours.max, theirs.max, "etcdctl lock", "", std::nullopt, ""});
}

}  // namespace clusterlock::bench
