// An HTTP service of which exactly one instance leads: the leader answers 200, the others 503 and name the leader.
//
//   http_leader ENDPOINTS NAME [--port P] [--identity ID] [--ttl SECONDS] [--run-for SECONDS]
//
// Run several against the same etcd and NAME, and point a load balancer's health check at GET /: only the leader
// gets traffic. GET /metrics serves the lock's metrics for Prometheus; GET /healthz answers 503 when the lease's
// renewal is stuck (no keepalive answered for longer than the TTL), whoever leads. Each prints "listening on 127.0.0.1:PORT" (port 0, the default, picks a free one) and its lock events.
// SIGTERM or Ctrl-C (or the end of --run-for) releases the lock, so the next instance leads at once, and exits.
#include <clusterlock/clusterlock.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

namespace {

// Everything below runs on one thread (the io_context's), so this needs no mutex.
struct service {
  clusterlock::lock_manager& lock;
  std::string leader;  // the holder's identity as last seen; empty: nobody holds the lock
  std::chrono::seconds ttl;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

// GET /healthz: 503 when no keepalive (or grant) was answered for longer than the TTL: the process is cut off from
// etcd, and would lose the lock if it had it. Before the first lease, the time since start counts.
void health_answer(http::response<http::string_body>& response, const service& svc) {
  const auto renewal = svc.lock.stats().session.since_renewal;
  const auto stuck_for = renewal.value_or(std::chrono::steady_clock::now() - svc.started);
  const auto ms = std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(stuck_for).count());
  const bool stuck = stuck_for > svc.ttl;
  response.result(stuck ? http::status::service_unavailable : http::status::ok);
  response.body() = stuck ? "lease renewal stuck for " + ms + " ms\n" : "ok: lease renewed " + ms + " ms ago\n";
}

// GET /: 200 for the leader, 503 naming the leader for the others.
void leader_answer(http::response<http::string_body>& response, const service& svc) {
  // Asked at every request, not remembered from the last event: it turns 0 the moment we cannot prove we lead.
  const std::int64_t token = svc.lock.fencing_token();
  if (token != 0) {
    response.result(http::status::ok);
    response.body() = "leader " + svc.lock.identity() + " token " + std::to_string(token) + "\n";
  } else {
    response.result(http::status::service_unavailable);
    response.body() = svc.leader.empty() ? "no leader\n" : "not the leader; the leader is " + svc.leader + "\n";
  }
}

// Keeps service::leader up to date from the lock's events, and logs them.
asio::awaitable<void> follow_lock_events(service& svc) {
  for (;;) {
    auto event = co_await svc.lock.async_wait_event(asio::use_awaitable);
    if (event.kind == clusterlock::lock_event::holder_changed) svc.leader = event.holder;
    std::cout << svc.lock.identity() << ": " << event << std::endl;
  }
}

http::response<http::string_body> answer(const http::request<http::string_body>& request, const service& svc) {
  http::response<http::string_body> response;
  response.version(request.version());
  response.keep_alive(request.keep_alive());
  response.set(http::field::content_type, "text/plain");
  if (request.target() == "/metrics") {  // Prometheus' text format (clusterlock/prometheus.hpp)
    std::ostringstream metrics;
    clusterlock::write_prometheus(metrics, svc.lock.stats(), {{"identity", svc.lock.identity()}});
    response.set(http::field::content_type, "text/plain; version=0.0.4");
    response.body() = metrics.str();
  } else if (request.target() == "/healthz") {
    health_answer(response, svc);
  } else {
    leader_answer(response, svc);
  }
  response.prepare_payload();
  return response;
}

asio::awaitable<void> serve_connection(tcp::socket socket, service& svc) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    stream.expires_after(std::chrono::seconds(30));
    http::request<http::string_body> request;
    auto [read_error, read_bytes] =
        co_await http::async_read(stream, buffer, request, asio::as_tuple(asio::use_awaitable));
    if (read_error) break;  // closed, idle too long, or not HTTP
    auto response = answer(request, svc);
    auto [write_error, written] = co_await http::async_write(stream, response, asio::as_tuple(asio::use_awaitable));
    if (write_error || !response.keep_alive()) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> accept_connections(tcp::acceptor& acceptor, service& svc) {
  while (acceptor.is_open()) {
    auto [error, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (!error) asio::co_spawn(acceptor.get_executor(), serve_connection(std::move(socket), svc), asio::detached);
  }
}

std::vector<std::string> split(const std::string& csv) {
  std::vector<std::string> out;
  std::stringstream in(csv);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> flags{{"--port", "0"}, {"--identity", ""}, {"--ttl", "10"}, {"--run-for", "0"}};
  bool usage_ok = argc >= 3 && argc % 2 == 1;
  for (int i = 3; usage_ok && i + 1 < argc; i += 2) {
    usage_ok = flags.contains(argv[i]);
    flags[argv[i]] = argv[i + 1];
  }
  if (!usage_ok) {
    std::cerr << "usage: http_leader ENDPOINTS NAME [--port P] [--identity ID] [--ttl SECONDS] [--run-for SECONDS]\n";
    return 2;
  }

  asio::io_context io;  // one thread: the lock, the HTTP connections and the signals share it
  try {
    clusterlock::options opts;
    opts.endpoints = split(argv[1]);
    opts.name = argv[2];
    opts.identity = flags["--identity"];
    opts.ttl = std::chrono::seconds(std::stoi(flags["--ttl"]));
    clusterlock::lock_manager lock(io.get_executor(), opts);
    service svc{lock, {}, opts.ttl};
    tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"),
                                static_cast<unsigned short>(std::stoi(flags["--port"]))});
    std::cout << lock.identity() << ": listening on 127.0.0.1:" << acceptor.local_endpoint().port() << std::endl;

    asio::co_spawn(io, follow_lock_events(svc), asio::detached);
    asio::co_spawn(io, accept_connections(acceptor, svc), asio::detached);

    // Stop serving, hand the lock over (deletes our key: the next instance leads at once), then exit.
    asio::signal_set signals(io, SIGINT, SIGTERM);
    asio::steady_timer run_for(io);
    auto stop = [&] {
      std::cout << lock.identity() << ": shutting down" << std::endl;
      signals.cancel();
      run_for.cancel();
      acceptor.close();
      lock.async_shutdown([&](boost::system::error_code) { io.stop(); });
    };
    signals.async_wait([&](boost::system::error_code error, int) {
      if (!error) stop();
    });
    if (const int seconds = std::stoi(flags["--run-for"]); seconds > 0) {
      run_for.expires_after(std::chrono::seconds(seconds));
      run_for.async_wait([&](boost::system::error_code error) {
        if (!error) stop();
      });
    }

    lock.start();
    io.run();
  } catch (const std::exception& e) {
    std::cerr << "http_leader: " << e.what() << "\n";
    return 2;
  }
}
