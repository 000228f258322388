#include "chaos/timeline.hpp"

#include "support/child_process.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

namespace clusterlock::chaos {

namespace {

namespace fs = std::filesystem;

// A pause longer than this (a process frozen, UNKNOWN) breaks a holder's bar.
constexpr long long bar_break_ns = 250'000'000;

const char* palette[] = {"#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
                         "#17becf", "#bcbd22", "#7f7f7f", "#ff7f0e", "#393b79"};
constexpr int palette_size = sizeof palette / sizeof palette[0];

// Fault colors by what they hit: the holder process (clock faults too), etcd's members, or etcd's data.
const char* fault_color(fault_kind k) {
  switch (k) {
    case fault_kind::kill_holder:
    case fault_kind::stop_holder:
    case fault_kind::clock_slow:
    case fault_kind::clock_fast:
    case fault_kind::clock_jump: return "#d62728";
    case fault_kind::restart_member:
    case fault_kind::stop_leader:
    case fault_kind::stop_majority: return "#1f3fbf";
    case fault_kind::isolate_holder:
    case fault_kind::isolate_member:
    case fault_kind::isolate_leader:
    case fault_kind::split:
    case fault_kind::flap: return "#9b30d9";
    default: return "#2a9d2a";
  }
}

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

bool render_timeline(const timeline_input& in, const std::string& png, const std::string& work_dir, std::string* error) {
  fs::create_directories(work_dir);
  const bool windowed = in.window_from_s < in.window_to_s;
  const double x_from = windowed ? in.window_from_s : 0.0;
  const double x_to = windowed ? in.window_to_s : std::max(1.0, static_cast<double>(in.end_ns - in.start_ns) / 1e9);
  const double span = x_to - x_from;
  auto x = [&](long long ns) { return static_cast<double>(ns - in.start_ns) / 1e9; };

  // Rows: the slot of c<slot>.<gen>; other identities after the slots, in order of appearance.
  std::vector<action> actions = in.actions;
  std::stable_sort(actions.begin(), actions.end(), [](const action& a, const action& b) { return a.ns < b.ns; });
  std::map<std::string, int> row_of;
  int slots = 0;
  for (const auto& a : actions) slots = std::max(slots, slot_of(a.identity) + 1);
  for (const auto& d : in.drivers) slots = std::max(slots, slot_of(d.identity) + 1);
  int rows = slots;
  auto row = [&](const std::string& identity) {
    auto it = row_of.find(identity);
    if (it != row_of.end()) return it->second;
    const int s = slot_of(identity);
    return row_of[identity] = s >= 0 ? s : rows++;
  };
  for (const auto& a : actions) row(a.identity);
  rows = std::max(rows, 1);

  // Bars: per identity, consecutive lines of one token without a long pause.
  const std::string bars_file = (fs::path(work_dir) / "bars.dat").string();
  const std::string starts_file = (fs::path(work_dir) / "tenure_starts.dat").string();
  {
    std::ofstream bars(bars_file), starts(starts_file);
    struct open_bar {
      std::int64_t token;
      long long from, to;
    };
    std::map<std::string, open_bar> open;
    std::set<std::int64_t> started;
    auto flush = [&](const std::string& identity, const open_bar& b) {
      const int r = row(identity);
      // At least 20 ms wide, so that a short tenure still shows.
      bars << x(b.from) << ' ' << std::max(x(b.to), x(b.from) + 0.02) << ' ' << r << ' ' << (r % palette_size) + 1
           << '\n';
    };
    for (const auto& a : actions) {
      if (started.insert(a.token).second) starts << x(a.ns) << ' ' << row(a.identity) << '\n';
      auto it = open.find(a.identity);
      if (it != open.end() && (it->second.token != a.token || a.ns - it->second.to > bar_break_ns)) {
        flush(a.identity, it->second);
        open.erase(it);
        it = open.end();
      }
      if (it == open.end()) {
        open[a.identity] = {a.token, a.ns, a.ns};
      } else {
        it->second.to = a.ns;
      }
    }
    for (const auto& [identity, b] : open) flush(identity, b);
  }
  const std::string drivers_file = (fs::path(work_dir) / "terminations.dat").string();
  {
    std::ofstream drivers(drivers_file);
    for (const auto& d : in.drivers) drivers << x(d.ns) << " -0.75\n";
  }
  const std::string violations_file = (fs::path(work_dir) / "violations.dat").string();
  const std::string races_file = (fs::path(work_dir) / "races.dat").string();
  {
    std::ofstream violations(violations_file), races(races_file);
    for (const auto& v : in.report.violations) violations << x(v.first_ns) << ' ' << row(v.identity) << '\n';
    for (const auto& v : in.report.races) races << x(v.first_ns) << ' ' << row(v.identity) << '\n';
    for (const auto& v : in.report.clock_overlaps) races << x(v.first_ns) << ' ' << row(v.identity) << '\n';
  }

  // Wide enough to tell seconds apart in a short run; capped for long runs.
  const int width = std::clamp(static_cast<int>(300 + span * 14), 1400, 12000);
  const int height = 360 + rows * 42;
  const std::string script_file = (fs::path(work_dir) / "timeline.gnuplot").string();
  {
    std::ofstream g(script_file);
    g << "set terminal pngcairo size " << width << "," << height << " font 'sans,9' noenhanced\n";
    g << "set output " << quoted(png) << "\n";
    g << "set title " << quoted(in.title) << " offset 0,6\n";
    g << "set xlabel 'seconds since the start of the run'\n";
    g << "set xrange [" << x_from << ":" << x_to << "]\n";
    g << "set yrange [-1.2:" << rows - 0.4 << "]\n";
    g << "set ytics (";
    for (int r = 0; r < rows; ++r) {
      std::string name = "c" + std::to_string(r);
      for (const auto& [identity, rr] : row_of)
        if (rr == r && slot_of(identity) < 0) name = identity;
      g << (r ? ", " : "") << quoted(name) << " " << r;
    }
    g << ", 'SIGTERM' -0.75)\n";
    g << "set mxtics 5\nset grid xtics lc rgb '#dddddd'\nset tmargin 9\nset bmargin 7\n";
    g << "set key at screen 0.5, screen 0.01 center bottom horizontal maxrows 2 samplen 2\n";
    for (int i = 0; i < palette_size; ++i) g << "set linetype " << i + 1 << " lc rgb '" << palette[i] << "'\n";
    int object = 1;
    for (const auto& f : in.faults) {
      const double from = x(f.inject_ns), to = x(f.heal_ns);
      if (to < x_from || from > x_to) continue;  // outside the window: its label would be drawn in the margin
      const char* color = fault_color(f.kind);
      if (to - from > 0.01) {
        g << "set object " << object++ << " rect from " << std::max(from, x_from) << ", graph 0 to "
          << std::min(to, x_to) << ", graph 1 fc rgb '" << color << "' fs transparent solid 0.10 noborder behind\n";
      }
      if (from < x_from) continue;  // began before the window: its span shows, its line and label would not fit
      g << "set arrow from " << from << ", graph 0 to " << from << ", graph 1 nohead lc rgb '" << color
        << "' lw 1 dt 2\n";
      g << "set label " << quoted("#" + std::to_string(f.id) + " " + std::string(to_string(f.kind))) << " at " << from
        << ", graph 1 offset 0,0.3 rotate by 60 font ',7' tc rgb '" << color << "'\n";
    }
    g << "plot " << quoted(bars_file) << " using 1:3:($2-$1):(0):4 with vectors nohead lw 12 lc variable notitle, \\\n";
    g << "  " << quoted(starts_file) << " using 1:2 with points pt 5 ps 0.5 lc rgb 'black' title 'new tenure (token)', \\\n";
    g << "  " << quoted(drivers_file) << " using 1:2 with points pt 11 ps 0.8 lc rgb '#555555' title 'SIGTERM of the holder', \\\n";
    g << "  " << quoted(violations_file)
      << " using 1:2 with points pt 2 ps 3 lw 3 lc rgb 'red' title 'safety violation', \\\n";
    g << "  " << quoted(races_file)
      << " using 1:2 with points pt 6 ps 2 lw 2 lc rgb '#ff8c00' title 'race (operator, etcd stale leader) or clock overlap (docs/chaos.md)', \\\n";
    g << "  NaN with lines lw 6 lc rgb '" << fault_color(fault_kind::kill_holder)
      << "' title 'holder faults (kill, stop, clock)', \\\n";
    g << "  NaN with lines lw 6 lc rgb '" << fault_color(fault_kind::stop_leader)
      << "' title 'etcd member faults (restart, stop leader, stop majority)', \\\n";
    g << "  NaN with lines lw 6 lc rgb '" << fault_color(fault_kind::compact)
      << "' title 'operator faults (del key, revoke lease, compact)', \\\n";
    g << "  NaN with lines lw 6 lc rgb '" << fault_color(fault_kind::split)
      << "' title 'partitions (isolate holder, member, leader; split; flap)'\n";
  }
  const auto r = test::run_command({"/usr/bin/gnuplot", script_file}, test::clean_environment(),
                                   std::chrono::seconds(120));
  if (r.exit_code != 0) {
    if (error) *error = "gnuplot failed (" + std::to_string(r.exit_code) + "): " + r.err;
    return false;
  }
  return true;
}

}  // namespace clusterlock::chaos
