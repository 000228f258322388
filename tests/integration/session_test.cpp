// The session layer against a real etcd: the probe with many keys, closing, lease loss, diagnostics.

#include <clusterlock/clusterlock.hpp>
#include <clusterlock/etcd/client.hpp>

#include "session/session_state.hpp"
#include "support/bounded_wait.hpp"
#include "support/etcd_cluster.hpp"
#include "support/test_lock_listener.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace clusterlock {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;

// Runs `op` on `io` to its end (bounded).
template <class T>
std::optional<T> run(asio::io_context& io, asio::awaitable<T> op, std::chrono::milliseconds limit = 10s) {
  std::optional<T> out;
  bool done = false;
  asio::co_spawn(io, std::move(op), [&](std::exception_ptr e, T r) {
    done = true;
    if (!e) out.emplace(std::move(r));
  });
  test::run_until(io, [&] { return done; }, limit);
  return out;
}

std::string unique_prefix(const std::string& what) { return what + "-" + std::to_string(::getpid()) + "/"; }

session_options options_for(const test::etcd_cluster& cluster, const std::string& prefix) {
  session_options so;
  so.endpoints = cluster.client_urls();
  so.watch_prefix = prefix;
  so.ttl = 5s;
  so.probe_interval = 100ms;
  so.request_timeout = 1000ms;
  return so;
}

// Issue 10: the probe read every key under watch_prefix in one range; past max_response_size (many locks) it
// always failed (response_too_large) and held locks stayed UNKNOWN for good. It now reads in pages.
TEST(SessionProbe, ManyKeysBeyondTheResponseBoundAreReadInPages) {
  test::etcd_cluster cluster;
  asio::io_context io;
  const std::string prefix = unique_prefix("probe-pages");
  etcd::client_config cc;
  cc.endpoints = cluster.client_urls();
  cc.request_timeout = 5s;  // the setup's puts must not fail on a loaded machine (a put is not retried once sent)
  etcd::client writer(io.get_executor(), cc);
  for (int i = 0; i < 300; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "lock%03d/", i);
    etcd::put_request put;
    put.key = prefix + name + "k";
    put.value = std::string(20, 'v');
    auto r = run(io, writer.put(put));
    ASSERT_TRUE(r && *r);
  }
  const std::string last = prefix + "lock299/k";
  etcd::range_request get;
  get.key = last;
  auto last_kv = run(io, writer.range(get));
  ASSERT_TRUE(last_kv && *last_kv && (*last_kv)->kvs.size() == 1);
  const std::int64_t last_created = (*last_kv)->kvs[0].create_revision;

  auto so = options_for(cluster, prefix);
  so.max_response_size = 4096;  // 300 keys take about 40 KB in one reply
  auto state = std::make_shared<detail::session_state>(io.get_executor(), so, true);
  test::test_lock_listener lock;
  lock.key_of_interest = last;
  state->join(&lock, prefix + "lock299/");
  const bool probed = test::run_until(io, [&] { return lock.probes >= 3; }, 5s);
  EXPECT_TRUE(probed) << "no probe succeeded; " << lock.probe_failures << " failed, the last with "
                      << lock.last_probe_failure.message();
  EXPECT_EQ(lock.seen_create_revision, last_created);
  EXPECT_EQ(lock.probe_failures, 0);
  state->hub->remove(&lock);
  asio::co_spawn(io, state->close(), asio::detached);
  test::run_for(io, 200ms);
}

}  // namespace
}  // namespace clusterlock
