// Latency of the etcd gateway client against one local etcd member (fsync on), over one keep-alive connection:
// N sequential ranges of one key, then N sequential puts. Prints a table (ms) and the number of TCP connects.
//
//   clusterlock_bench_client [N]        (default N = 1000)

#include "support/etcd_cluster.hpp"

#include <clusterlock/etcd/client.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <numeric>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace etcd = clusterlock::etcd;
using clock_type = std::chrono::steady_clock;

struct stats {
  double min, median, p99, mean, max;
};

stats summarize(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) { return ms[std::min(ms.size() - 1, static_cast<std::size_t>(q * (ms.size() - 1) + 0.5))]; };
  return {ms.front(), at(0.5), at(0.99), std::accumulate(ms.begin(), ms.end(), 0.0) / ms.size(), ms.back()};
}

struct run_result {
  std::vector<double> range_ms, put_ms;
  std::uint64_t connects_after_ranges = 0, connects_after_puts = 0;
  std::string error;
};

asio::awaitable<void> measure(etcd::client& c, int n, run_result& out) {
  auto elapsed_ms = [](clock_type::time_point t) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
  };
  // Requests are named variables: GCC 12.2 destroys a braced temporary inside a co_await expression twice.
  const etcd::put_request warm_up{"/bench/key", "value", 0, false};
  // One put first: the key exists, and the connection is open before the clock runs.
  auto first = co_await c.put(warm_up);
  if (!first) {
    out.error = "warm-up put: " + first.error().message();
    co_return;
  }
  etcd::range_request read;
  read.key = "/bench/key";
  for (int i = 0; i < n; ++i) {
    const auto t = clock_type::now();
    auto r = co_await c.range(read);
    out.range_ms.push_back(elapsed_ms(t));
    if (!r) {
      out.error = "range: " + r.error().message();
      co_return;
    }
  }
  out.connects_after_ranges = c.connects();
  const etcd::put_request write{"/bench/key", std::string(64, 'v'), 0, false};
  for (int i = 0; i < n; ++i) {
    const auto t = clock_type::now();
    auto r = co_await c.put(write);
    out.put_ms.push_back(elapsed_ms(t));
    if (!r) {
      out.error = "put: " + r.error().message();
      co_return;
    }
  }
  out.connects_after_puts = c.connects();
}

}  // namespace

int main(int argc, char** argv) try {
  const int n = argc > 1 ? std::max(1, std::atoi(argv[1])) : 1000;
  clusterlock::test::etcd_cluster cluster;  // one member, fsync on (etcd's default)
  asio::io_context io;
  etcd::client_config config;
  config.endpoints = {cluster.client_url(0)};
  etcd::client c(io.get_executor(), config);

  run_result out;
  asio::co_spawn(io, measure(c, n, out), asio::detached);
  io.run();
  if (!out.error.empty()) {
    std::fprintf(stderr, "failed: %s\n", out.error.c_str());
    return 1;
  }

  std::printf("etcd client latency: %d sequential requests each, one local etcd member (fsync on)\n\n", n);
  std::printf("%-8s %8s %8s %8s %8s %8s %10s\n", "op", "min", "median", "p99", "mean", "max", "connects");
  auto row = [](const char* op, const stats& s, std::uint64_t connects) {
    std::printf("%-8s %8.3f %8.3f %8.3f %8.3f %8.3f %10llu\n", op, s.min, s.median, s.p99, s.mean, s.max,
                static_cast<unsigned long long>(connects));
  };
  row("range", summarize(out.range_ms), out.connects_after_ranges);
  row("put", summarize(out.put_ms), out.connects_after_puts);
  std::printf("\n(ms; connects: TCP connections opened by the client so far, warm-up put included)\n");
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "failed: %s\n", e.what());
  return 1;
}
