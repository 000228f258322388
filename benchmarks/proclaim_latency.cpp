// How soon observers learn a leader's new value: a leader proclaims N values (default 200), one after another, and
// for each we time from the call to
//   - the proclaim's completion (the guarded txn's round trip),
//   - our observer's holder_changed event (another lock_manager: its own session and watch),
//   - `etcdctl elect -l`'s line (etcd's own Go client observing the same election),
// waiting for all three before the next. One etcd member, started here (fsync on).
//
//   clusterlock_bench_proclaim [N]
#include <clusterlock/clusterlock.hpp>

#include "support/bounded_wait.hpp"
#include "support/child_process.hpp"
#include "support/etcd_cluster.hpp"
#include "support/piped_child.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using clusterlock::test::run_until;

double ms(steady::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

void print(const char* what, std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<std::size_t>(q * v.size()))]; };
  std::printf("%-34s n=%zu  median %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n", what, v.size(), at(0.5),
              at(0.9), at(0.99), v.back());
}

}  // namespace

int main(int argc, char** argv) {
  const int samples = argc > 1 ? std::stoi(argv[1]) : 200;
  clusterlock::test::etcd_cluster cluster;
  boost::asio::io_context io;
  clusterlock::options o;
  o.endpoints = cluster.client_urls();
  o.name = "bench-election";
  o.identity = "value-0";
  clusterlock::lock_manager leader(io, o);
  o.identity = "observer";
  o.contend = false;
  clusterlock::lock_manager observer(io, o);
  std::string seen_value;
  steady::time_point seen_at;
  observer.on_holder_changed([&](const clusterlock::lock_event& e) {
    seen_value = e.holder;
    seen_at = steady::now();
  });
  leader.start();
  observer.start();
  if (!run_until(io, [&] { return leader.have_lock() && seen_value == "value-0"; }, 10s)) {
    std::fprintf(stderr, "no leader\n");
    return 1;
  }
  clusterlock::test::piped_child etcdctl(
      {"/usr/bin/etcdctl", "--endpoints=" + cluster.endpoints_csv(), "elect", "-l", o.name},
      clusterlock::test::clean_environment({"ETCDCTL_API=3"}));
  auto printed = [&](const std::string& v) {
    return etcdctl.find([&](const clusterlock::test::output_line& l) { return l.text == v; });
  };
  if (!run_until(io, [&] { return printed("value-0").has_value(); }, 10s)) {
    std::fprintf(stderr, "etcdctl elect -l printed nothing\n");
    return 1;
  }

  std::vector<double> completed, ours, theirs;
  for (int i = 1; i <= samples; ++i) {
    const std::string value = "value-" + std::to_string(i);
    const auto start = steady::now();
    steady::time_point done_at;
    boost::system::error_code result;
    bool done = false;
    leader.async_proclaim(value, [&](boost::system::error_code ec) {
      result = ec;
      done_at = steady::now();
      done = true;
    });
    if (!run_until(io, [&] { return done && seen_value == value && printed(value); }, 10s) || result) {
      std::fprintf(stderr, "sample %d: proclaim %s, observer %s, etcdctl %s\n", i, result.message().c_str(),
                   seen_value.c_str(), printed(value) ? "saw it" : "did not see it");
      return 1;
    }
    completed.push_back(ms(done_at - start));
    ours.push_back(ms(seen_at - start));
    theirs.push_back(ms(printed(value)->seen - start));
  }
  print("proclaim completed", completed);
  print("our observer's event", ours);
  print("etcdctl elect -l printed", theirs);
  bool shut = false;
  leader.async_shutdown([&](boost::system::error_code) { shut = true; });
  observer.shutdown();
  run_until(io, [&] { return shut; }, 5s);
}
