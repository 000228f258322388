// 5. The idle cost of a holder: requests to etcd per minute, CPU and resident memory, over one window.
//
// Ours: a clusterlock_bench_peer process holding one lock with the defaults (ttl 10 s, probe_interval 1 s), talking
// to etcd through a counting relay (HTTP/1.1: every request by path). The anchor, in the same window: `etcdctl lock
// --ttl 10` (also the default) holding another lock with `sleep` as its command, through a second relay (HTTP/2:
// gRPC messages, and gRPC keepalive PINGs, which etcdctl sends every 2 s by default). CPU and RSS are read from
// /proc for each process (the relays run in the driver, so counting costs the holders nothing).
#include <thread>

#include "bench.hpp"
#include "counting_relay.hpp"

namespace clusterlock::bench {

void idle_cost(context& ctx) {
  const auto window = ctx.quick ? 10s : 60s;
  etcd_helper etcd(ctx.endpoint);
  counting_relay ours_relay(ctx.etcd_port, counting_relay::protocol::http1);
  counting_relay theirs_relay(ctx.etcd_port, counting_relay::protocol::http2);

  child ours({ctx.peer_bin, "lock", ours_relay.url(), "bench-idle-ours", "10"});
  ours.expect("ACQUIRED", 30s);
  child theirs({ctx.etcdctl_bin, "--endpoints", theirs_relay.url(), "lock", "--ttl", "10", "bench-idle-etcdctl", "--",
                "/bin/sleep", "3600"},
               {"ETCDCTL_API=3"}, false, ctx.work_dir + "/idle-etcdctl.stderr");
  etcd.wait_count("bench-idle-etcdctl/", 1, 30s);  // its key, alone: it holds the lock

  std::this_thread::sleep_for(2s);  // settle: the start-up requests are not idle cost
  const auto ours_before = ours_relay.snapshot();
  const auto theirs_before = theirs_relay.snapshot();
  const auto ours_usage_before = read_usage(ours.pid());
  const auto theirs_usage_before = read_usage(theirs.pid());
  const auto begin = now_ns();
  std::this_thread::sleep_for(window);
  const double minutes = static_cast<double>(now_ns() - begin) / 60e9;
  const auto ours_counts = ours_relay.snapshot() - ours_before;
  const auto theirs_counts = theirs_relay.snapshot() - theirs_before;
  const auto ours_usage = read_usage(ours.pid());
  const auto theirs_usage = read_usage(theirs.pid());
  const int ours_tcp = tcp_connections(ours.pid(), ours_relay.port());
  const int theirs_tcp = tcp_connections(theirs.pid(), theirs_relay.port());
  theirs.kill();
  etcd.delete_prefix("bench-idle-etcdctl/");
  ours.send("quit");
  ours.wait(5s);

  const double seconds = minutes * 60;
  const double ours_cpu = 100 * (ours_usage.cpu_seconds - ours_usage_before.cpu_seconds) / seconds;
  const double theirs_cpu = 100 * (theirs_usage.cpu_seconds - theirs_usage_before.cpu_seconds) / seconds;
  std::string by_path;
  std::vector<std::vector<std::string>> csv;
  for (const auto& [path, n] : ours_counts.by_path) {
    by_path += (by_path.empty() ? "" : ", ") + path + " " + fixed(static_cast<double>(n) / minutes, 1);
    csv.push_back({"clusterlock", "requests_per_min " + path, fixed(static_cast<double>(n) / minutes, 2)});
  }
  auto per_min = [&](std::uint64_t n) { return static_cast<double>(n) / minutes; };
  csv.push_back({"clusterlock", "requests_per_min", fixed(per_min(ours_counts.requests), 2)});
  csv.push_back({"etcdctl", "requests_per_min", fixed(per_min(theirs_counts.requests), 2)});
  csv.push_back({"etcdctl", "pings_per_min", fixed(per_min(theirs_counts.pings), 2)});
  csv.push_back({"clusterlock", "kib_per_min", fixed(per_min(ours_counts.bytes_up + ours_counts.bytes_down) / 1024, 2)});
  csv.push_back({"etcdctl", "kib_per_min", fixed(per_min(theirs_counts.bytes_up + theirs_counts.bytes_down) / 1024, 2)});
  csv.push_back({"clusterlock", "cpu_pct", fixed(ours_cpu, 3)});
  csv.push_back({"etcdctl", "cpu_pct", fixed(theirs_cpu, 3)});
  csv.push_back({"clusterlock", "rss_mib", fixed(ours_usage.rss_kib / 1024.0, 2)});
  csv.push_back({"etcdctl", "rss_mib", fixed(theirs_usage.rss_kib / 1024.0, 2)});
  csv.push_back({"clusterlock", "tcp_connections", std::to_string(ours_tcp)});
  csv.push_back({"etcdctl", "tcp_connections", std::to_string(theirs_tcp)});
  csv.push_back({"both", "window_s", fixed(seconds, 1)});
  write_csv(ctx.out("idle_cost.csv"), {"who", "metric", "value"}, csv);

  const std::string bench = "5 idle holder, " + fixed(seconds, 0) + " s window";
  ctx.add({bench, "requests/min", per_min(ours_counts.requests), per_min(theirs_counts.requests), "etcdctl lock", "",
           std::nullopt, "ours by path: " + by_path + "; etcdctl also sends " + fixed(per_min(theirs_counts.pings), 1) +
                             " HTTP/2 PINGs/min",
           1});
  ctx.add({bench, "KiB/min on the wire", per_min(ours_counts.bytes_up + ours_counts.bytes_down) / 1024,
           per_min(theirs_counts.bytes_up + theirs_counts.bytes_down) / 1024, "etcdctl lock", "", std::nullopt, "", 1});
  ctx.add({bench, "CPU (% of a core)", ours_cpu, theirs_cpu, "etcdctl lock", "", std::nullopt,
           "/proc/PID/stat utime+stime, 10 ms ticks", 3});
  ctx.add({bench, "RSS (MiB)", ours_usage.rss_kib / 1024.0, theirs_usage.rss_kib / 1024.0, "etcdctl lock", "",
           std::nullopt, "", 1});
  ctx.add({bench, "TCP connections", static_cast<double>(ours_tcp), static_cast<double>(theirs_tcp), "etcdctl lock",
           "", std::nullopt, "ours: one unary keep-alive connection + the watch", 0});
}

}  // namespace clusterlock::bench
