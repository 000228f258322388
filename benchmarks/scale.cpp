// 6. Scale: 1, 100, 1,000 and 10,000 locks held by one process on one io_context, all on ONE session
// (names "bench/lock-00001"... under watch_prefix "bench/"). Each level runs in a fresh clusterlock_bench_peer
// process ("scale" mode), so its RSS is its own. It reports the time from the first start() to the last ACQUIRED,
// then, after settling, its CPU over an idle window (getrusage-equivalent /proc/self/stat), its RSS and its TCP
// connections. It talks to etcd through a counting relay, which gives the requests and bytes of the idle window.
#include <map>
#include <sstream>
#include <stdexcept>

#include "bench.hpp"
#include "counting_relay.hpp"

namespace clusterlock::bench {

namespace {

std::map<std::string, double> key_values(const std::string& line) {
  std::map<std::string, double> out;
  std::istringstream in(line);
  std::string word;
  in >> word;  // "SCALE"
  while (in >> word) {
    const auto eq = word.find('=');
    if (eq != std::string::npos) out[word.substr(0, eq)] = std::stod(word.substr(eq + 1));
  }
  return out;
}

}  // namespace

void scale(context& ctx) {
  const std::vector<int> levels = ctx.quick ? std::vector<int>{1, 100, 1000} : std::vector<int>{1, 100, 1000, 10000};
  const int idle_seconds = ctx.quick ? 5 : 20;
  etcd_helper etcd(ctx.endpoint);
  counting_relay relay(ctx.etcd_port, counting_relay::protocol::http1);
  std::vector<std::vector<std::string>> csv;
  double ours_top_seconds = 0;  // at the last level
  for (const int n : levels) {
    etcd.delete_prefix("bench/");
    child peer({ctx.peer_bin, "scale", relay.url(), std::to_string(n), std::to_string(idle_seconds),
                std::to_string(relay.port())});
    peer.expect("IDLE", 600s);
    const auto before = relay.snapshot();
    const auto line = peer.expect("SCALE", std::chrono::seconds(idle_seconds + 60));
    const auto during = relay.snapshot() - before;
    peer.kill();
    etcd.delete_prefix("bench/");
    auto r = key_values(line);
    ours_top_seconds = r["acquire_ms"] / 1000;
    if (r["still_held"] != n) throw std::runtime_error("scale: only " + fixed(r["still_held"], 0) + " of " +
                                                       std::to_string(n) + " locks still held after the idle window");
    const double minutes = r["idle_s"] / 60;
    const double requests_per_min = static_cast<double>(during.requests) / minutes;
    const double kib_down_per_min = static_cast<double>(during.bytes_down) / 1024 / minutes;
    log("scale " + std::to_string(n) + ": " + line);
    csv.push_back({std::to_string(n), fixed(r["acquire_ms"] / 1000, 3), fixed(r["tcp"], 0),
                   fixed(r["rss_kib"] / 1024, 2), fixed(r["cpu_pct"], 3), fixed(requests_per_min, 1),
                   fixed(kib_down_per_min, 1)});

    const std::string bench = "6 scale, " + std::to_string(n) + " locks on one session";
    const bool top = n == 10000;
    ctx.add({bench, "time to acquire all (s)", r["acquire_ms"] / 1000, std::nullopt, "", "", std::nullopt, "", 2});
    ctx.add({bench, "TCP connections", r["tcp"], std::nullopt, "", top ? "<= 4" : "", top ? std::optional(r["tcp"] <= 4) : std::nullopt,
             "", 0});
    ctx.add({bench, "RSS (MiB)", r["rss_kib"] / 1024, std::nullopt, "", top ? "<= 64 MiB" : "",
             top ? std::optional(r["rss_kib"] / 1024 <= 64) : std::nullopt, "", 1});
    ctx.add({bench, "idle CPU (% of a core)", r["cpu_pct"], std::nullopt, "", top ? "<= 2 %" : "",
             top ? std::optional(r["cpu_pct"] <= 2.0) : std::nullopt,
             "over " + fixed(r["idle_s"], 0) + " s; " + fixed(requests_per_min, 0) + " requests/min, " +
                 fixed(kib_down_per_min, 0) + " KiB/min from etcd",
             2});
  }
  // etcd's Go recipe: as many mutexes of distinct names on one session, at most 16 or 256 Lock calls in flight.
  for (const int concurrency : {16, 256}) {
    if (ctx.go_bin.empty()) break;
    const int n = levels.back();
    etcd.delete_prefix("bench-go/");
    child go({ctx.go_bin, "locks", ctx.endpoint, "bench-go/lock-", std::to_string(n), std::to_string(concurrency)});
    std::istringstream line(go.expect("LOCKS", 600s));
    std::string word;
    double count = 0, ms = 0;
    line >> word >> count >> ms;
    go.kill();
    etcd.delete_prefix("bench-go/");
    log("scale, Go recipe, " + std::to_string(n) + " mutexes, " + std::to_string(concurrency) + " at a time: " +
        fixed(ms / 1000, 2) + " s");
    ctx.add({"6 scale, " + std::to_string(n) + " locks on one session", "time to acquire all (s) vs Go, " + std::to_string(concurrency) + " at a time",
             ours_top_seconds, ms / 1000, "Go recipe, " + std::to_string(concurrency) + " at a time", "", std::nullopt,
             "", 2});
  }
  write_csv(ctx.out("scale.csv"),
            {"locks", "acquire_s", "tcp_connections", "rss_mib", "idle_cpu_pct", "requests_per_min", "kib_down_per_min"},
            csv);
}

}  // namespace clusterlock::bench
