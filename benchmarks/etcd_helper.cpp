// Synchronous etcd look-ups for the driver: our own gateway client on a private io_context, run until each call
// completes. Only used between measurements (to know that a waiter is queued, to clean up), never timed.
#include <clusterlock/etcd/client.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/system/system_error.hpp>

#include <stdexcept>
#include <thread>

#include "bench.hpp"

namespace clusterlock::bench {

namespace asio = boost::asio;

struct etcd_helper::impl {
  asio::io_context io;
  etcd::client client;

  explicit impl(const std::string& endpoint) : client(io.get_executor(), [&] {
    etcd::client_config c;
    c.endpoints = {endpoint};
    c.request_timeout = 5s;
    c.max_response_size = 64 * 1024 * 1024;
    return c;
  }()) {}

  // Runs one call to completion on the private io_context.
  template <class T, class Start>
  T run(Start start) {
    std::optional<T> out;
    boost::system::error_code error;
    start([&](boost::system::error_code ec, T value) {
      error = ec;
      out = std::move(value);
    });
    io.restart();
    while (!out && io.run_one()) {
    }
    if (error) throw boost::system::system_error(error, "etcd");
    if (!out) throw std::runtime_error("etcd call did not complete");
    return std::move(*out);
  }
};

etcd_helper::etcd_helper(const std::string& endpoint) : impl_(std::make_unique<impl>(endpoint)) {}
etcd_helper::~etcd_helper() = default;

std::int64_t etcd_helper::count(const std::string& prefix) {
  etcd::range_request req;
  req.key = prefix;
  req.range_end = etcd::prefix_range_end(prefix);
  req.count_only = true;
  auto r = impl_->run<etcd::range_response>(
      [&](auto handler) { impl_->client.async_range(req, std::move(handler)); });
  return r.count;
}

void etcd_helper::wait_count(const std::string& prefix, std::int64_t n, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto have = count(prefix);
    if (have == n) return;
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("expected " + std::to_string(n) + " keys under " + prefix + ", have " +
                               std::to_string(have));
    std::this_thread::sleep_for(2ms);
  }
}

void etcd_helper::delete_prefix(const std::string& prefix) {
  etcd::delete_range_request req;
  req.key = prefix;
  req.range_end = etcd::prefix_range_end(prefix);
  impl_->run<etcd::delete_range_response>(
      [&](auto handler) { impl_->client.async_delete_range(req, std::move(handler)); });
}

std::int64_t etcd_helper::granted_ttl(std::chrono::seconds ttl) {
  auto grant = impl_->run<etcd::lease_grant_response>(
      [&](auto handler) { impl_->client.async_lease_grant(ttl, std::move(handler)); });
  impl_->run<etcd::lease_revoke_response>(
      [&](auto handler) { impl_->client.async_lease_revoke(grant.id, std::move(handler)); });
  return grant.ttl.count();
}

}  // namespace clusterlock::bench
