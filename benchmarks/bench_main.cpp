// The benchmark driver: starts its own etcd (one member, fsync on, etcd's default timings), runs the measurements,
// prints the results table, and writes CSV files and a Markdown report. scripts/bench.sh builds it, runs it and
// draws the plots.
//
//   clusterlock_bench [--out DIR] [--doc FILE] [--only 1,2,...] [--quick]
//                     [--cli PATH] [--peer PATH] [--stamp PATH] [--go PATH]
//
//   --out DIR    CSV files and results.md go here (default docs/benchmarks)
//   --doc FILE   also replace the part of FILE between "<!-- results:begin -->" and "<!-- results:end -->" with
//                the results (docs/benchmarks.md)
//   --only LIST  run only these measurements (1 command hand-off, 2 library hand-off, 3 crash fail-over,
//                4 acquire+release cycles, 5 idle holder, 6 scale, 7 many waiters, 8 semaphore admission)
//   --quick      fewer trials and shorter windows: to try the driver, not to publish
//   --cli, --peer, --stamp: the clusterlock command, clusterlock_bench_peer, clusterlock_bench_stamp (defaults:
//                where the build put them)
//   --go PATH    etcd's Go recipe (benchmarks/go_recipe, built by scripts/bench.sh): the second anchor
#include <stdlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <set>
#include <sstream>

#include "bench.hpp"
#include "support/etcd_cluster.hpp"

#ifndef CLUSTERLOCK_BENCH_PEER
#define CLUSTERLOCK_BENCH_PEER ""
#endif
#ifndef CLUSTERLOCK_BENCH_STAMP
#define CLUSTERLOCK_BENCH_STAMP ""
#endif
#ifndef CLUSTERLOCK_CLI
#define CLUSTERLOCK_CLI ""
#endif

namespace clusterlock::bench {

namespace {

struct measurement {
  int number;
  const char* title;
  void (*run)(context&);
};

const measurement measurements[] = {
    {1, "command hand-off", command_handoff},   {2, "library hand-off", library_handoff},
    {3, "crash fail-over", crash_failover},     {4, "acquire+release cycles", acquire_cycles},
    {5, "idle holder", idle_cost},              {6, "scale", scale},
    {7, "many waiters", many_waiters},          {8, "semaphore admission", semaphore_admission},
};

std::string cell(const std::optional<double>& v, int decimals) { return v ? fixed(*v, decimals) : "—"; }
std::string met_text(const std::optional<bool>& met) { return met ? (*met ? "yes" : "**no**") : ""; }

std::string markdown(const context& ctx, const std::vector<std::pair<std::string, std::string>>& machine,
                     double total_seconds, const std::string& command) {
  std::ostringstream md;
  md << "Measured " << machine.front().second << " in " << fixed(total_seconds / 60, 1) << " min by `" << command
     << "`.\n\n";
  md << "| Measurement | Metric | Ours | Anchor | Ratio | Target | Met? | Notes |\n";
  md << "|---|---|--:|--:|--:|---|---|---|\n";
  for (const auto& r : ctx.rows) {
    const auto ratio = r.ratio();
    md << "| " << r.benchmark << " | " << r.metric << " | " << cell(r.ours, r.decimals) << " | "
       << (r.anchor ? fixed(*r.anchor, r.decimals) + " (" + r.anchor_name + ")" : "—") << " | "
       << (ratio ? fixed(*ratio, 2) + "×" : "—") << " | " << r.target << " | " << met_text(r.met) << " | " << r.note
       << " |\n";
  }
  md << "\nMachine:\n\n| | |\n|---|---|\n";
  for (const auto& [what, value] : machine) md << "| " << what << " | " << value << " |\n";
  return md.str();
}

void print_table(const context& ctx) {
  std::printf("\n%-44s %-30s %10s %10s %7s  %-26s %s\n", "measurement", "metric", "ours", "anchor", "ratio", "target",
              "met?");
  for (const auto& r : ctx.rows) {
    const auto ratio = r.ratio();
    std::printf("%-44s %-48s %10s %10s %7s  %-26s %s\n", r.benchmark.c_str(), r.metric.c_str(),
                cell(r.ours, r.decimals).c_str(), cell(r.anchor, r.decimals).c_str(),
                ratio ? (fixed(*ratio, 2) + "x").c_str() : "-", r.target.c_str(),
                r.met ? (*r.met ? "yes" : "NO") : "");
  }
  std::printf("\n");
  std::fflush(stdout);
}

void replace_results(const std::string& doc, const std::string& results) {
  const std::string begin = "<!-- results:begin -->", end = "<!-- results:end -->";
  std::ifstream in(doc);
  std::stringstream whole;
  whole << in.rdbuf();
  std::string text = whole.str();
  const auto b = text.find(begin);
  const auto e = text.find(end);
  if (b == std::string::npos || e == std::string::npos || e < b)
    throw std::runtime_error(doc + ": no " + begin + " ... " + end + " markers");
  text.replace(b + begin.size(), e - b - begin.size(), "\n" + results + "\n");
  std::ofstream(doc) << text;
}

int usage() {
  std::cerr << "usage: clusterlock_bench [--out DIR] [--doc FILE] [--only 1,2,...] [--quick] [--cli PATH] "
               "[--peer PATH] [--stamp PATH] [--go PATH]\n";
  return 2;
}

}  // namespace

int run(int argc, char** argv) {
  context ctx;
  ctx.out_dir = "docs/benchmarks";
  ctx.peer_bin = CLUSTERLOCK_BENCH_PEER;
  ctx.stamp_bin = CLUSTERLOCK_BENCH_STAMP;
  ctx.cli_bin = CLUSTERLOCK_CLI;
  std::string doc;
  std::set<int> only;
  std::string command = "clusterlock_bench";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--out") ctx.out_dir = value();
    else if (a == "--doc") doc = value();
    else if (a == "--cli") ctx.cli_bin = value();
    else if (a == "--peer") ctx.peer_bin = value();
    else if (a == "--go") ctx.go_bin = value();
    else if (a == "--stamp") ctx.stamp_bin = value();
    else if (a == "--quick") ctx.quick = true;
    else if (a == "--only") {
      std::stringstream list(value());
      for (std::string n; std::getline(list, n, ',');) only.insert(std::stoi(n));
    } else return usage();
    if (a != "--out" && a != "--doc" && a != "--peer" && a != "--stamp" && a != "--cli" && a != "--go") command += " " + a;
    if (a == "--only") command += " " + std::string(argv[i]);
  }
  for (const auto* bin : {&ctx.peer_bin, &ctx.stamp_bin})
    if (bin->empty() || !std::filesystem::exists(*bin)) {
      std::cerr << "clusterlock_bench: helper program '" << *bin << "' not found (--peer / --stamp)\n";
      return 2;
    }
  std::filesystem::create_directories(ctx.out_dir);
  char work[] = "/tmp/clusterlock-bench-XXXXXX";
  if (!::mkdtemp(work)) {
    std::perror("mkdtemp");
    return 1;
  }
  ctx.work_dir = work;
  const auto started = now_ns();

  log("starting etcd (one member, fsync on, etcd's default heartbeat and election timeout)");
  // The harness runs etcd with halved raft timings for fast tests; users run etcd's defaults (the later flag wins).
  test::etcd_cluster etcd(test::etcd_options{.members = 1,
                                             .extra_args = {"--heartbeat-interval=100", "--election-timeout=1000"}});
  ctx.etcd = &etcd;
  ctx.endpoint = etcd.client_url(0);
  ctx.etcd_port = etcd.client_port(0);
  const auto machine = machine_info(ctx);
  {
    std::vector<std::vector<std::string>> rows;
    for (const auto& [what, value] : machine) {
      rows.push_back({what, value});
      log(what + ": " + value);
    }
    write_csv(ctx.out("machine.csv"), {"what", "value"}, rows);
  }

  int failures = 0;
  for (const auto& m : measurements) {
    if (!only.empty() && !only.contains(m.number)) continue;
    log(std::to_string(m.number) + ". " + m.title);
    try {
      m.run(ctx);
    } catch (const std::exception& e) {
      ++failures;
      log(std::string("FAILED: ") + e.what());
      ctx.add({std::to_string(m.number) + " " + m.title, "FAILED", std::nullopt, std::nullopt, "", "", false, e.what()});
    }
  }
  const double total = static_cast<double>(now_ns() - started) / 1e9;
  print_table(ctx);

  std::vector<std::vector<std::string>> summary;
  for (const auto& r : ctx.rows) {
    const auto ratio = r.ratio();
    summary.push_back({r.benchmark, r.metric, r.ours ? fixed(*r.ours, 4) : "", r.anchor ? fixed(*r.anchor, 4) : "",
                       r.anchor_name, ratio ? fixed(*ratio, 3) : "", r.target,
                       r.met ? (*r.met ? "yes" : "no") : "", r.note});
  }
  write_csv(ctx.out("summary.csv"), {"measurement", "metric", "ours", "anchor", "anchor_name", "ratio", "target", "met", "note"},
            summary);
  const std::string results = markdown(ctx, machine, total, command);
  std::ofstream(ctx.out("results.md")) << results;
  if (!doc.empty()) replace_results(doc, results);
  std::filesystem::remove_all(ctx.work_dir);
  log("done in " + fixed(total / 60, 1) + " min; CSV files and results.md in " + ctx.out_dir);
  return failures == 0 ? 0 : 1;
}

}  // namespace clusterlock::bench

int main(int argc, char** argv) {
  try {
    return clusterlock::bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "clusterlock_bench: " << e.what() << "\n";
    return 1;
  }
}
