// 3. Crash fail-over: the holder (a clusterlock_bench_peer process) is SIGKILLed; how long until the waiter (another
// peer) reports ACQUIRED. Nothing releases the lock: the holder's lease must expire in etcd, which then deletes its
// key, and the waiter learns that from its watch.
//
// After each trial the waiter is the new holder and a fresh waiter queues behind it. Before the kill the driver
// waits a random fraction of TTL/3 (the keepalive period), so the kills land at random points of the holder's
// keepalive cycle: etcd counts a lease's TTL from the last keepalive it received, so a kill right after a keepalive
// takes a full TTL, one just before the next keepalive about 2/3 of it. etcd checks for expired leases every
// 500 ms, which adds up to half a second.
#include <random>
#include <thread>

#include "bench.hpp"

namespace clusterlock::bench {

void crash_failover(context& ctx) {
  struct plan {
    int ttl;
    int trials;
  };
  const std::vector<plan> plans = ctx.quick ? std::vector<plan>{{2, 2}, {5, 1}} : std::vector<plan>{{2, 5}, {5, 3}, {10, 2}};
  std::mt19937 rng{std::random_device{}()};
  std::vector<std::vector<std::string>> csv;
  for (const auto& p : plans) {
    const std::string name = "bench-failover-ttl" + std::to_string(p.ttl);
    auto peer = [&] {
      return std::make_unique<child>(std::vector<std::string>{ctx.peer_bin, "lock", ctx.endpoint, name, std::to_string(p.ttl)});
    };
    auto holder = peer();
    holder->expect("ACQUIRED", 30s);
    std::vector<double> seconds;
    for (int trial = 0; trial < p.trials; ++trial) {
      auto waiter = peer();
      waiter->expect("QUEUED", 30s);
      std::uniform_int_distribution<int> phase(0, p.ttl * 1000 / 3);
      const int delay_ms = phase(rng);
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      const std::int64_t killed = now_ns();
      holder->kill();
      const auto acquired = stamp_of(waiter->expect("ACQUIRED", std::chrono::seconds(p.ttl + 15)));
      seconds.push_back(static_cast<double>(acquired - killed) / 1e9);
      csv.push_back({std::to_string(p.ttl), std::to_string(trial), fixed(seconds.back(), 3), std::to_string(delay_ms)});
      log("fail-over with ttl " + std::to_string(p.ttl) + " s: " + fixed(seconds.back(), 3) + " s (killed " + std::to_string(delay_ms) + " ms after the waiter queued)");
      holder = std::move(waiter);
    }
    holder->send("quit");
    holder->wait(5s);
    const auto s = summarize(seconds);
    const std::string bench = "3 crash fail-over, ttl " + std::to_string(p.ttl) + " s (s)";
    const std::string target = "<= " + std::to_string(p.ttl + 1) + " s (TTL + 1 s)";
    ctx.add({bench, "median", s.median, static_cast<double>(p.ttl), "TTL", "", std::nullopt,
             std::to_string(p.trials) + " trials", 2});
    ctx.add({bench, "max", s.max, static_cast<double>(p.ttl), "TTL", target, s.max <= p.ttl + 1.0, "", 2});
  }
  write_csv(ctx.out("crash_failover.csv"), {"ttl_s", "trial", "failover_s", "kill_delay_ms"}, csv);
}

}  // namespace clusterlock::bench
