// A leader that keeps a counter in etcd and never writes after losing the lock, even when it does not know it lost
// it (frozen past its lease's TTL, cut off from etcd): every write is fenced by etcd itself.
//
//   fenced_counter ENDPOINTS NAME COUNTER_KEY [IDENTITY] [THINK_MS]
//
// While it leads it reads the counter, "thinks" for THINK_MS (default 100), and writes the counter + 1 with
// async_guarded_put: etcd applies it only if our lock key still has our fencing token. The read is a plain read with
// the manager's own etcd client. Freeze the leader (kill -STOP) while it thinks, let another take over and count on,
// then resume it (kill -CONT): its write is refused and the counter never goes back.
#include <clusterlock/clusterlock.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

struct settings {
  std::string counter;
  std::chrono::milliseconds think{100};
};

std::vector<std::string> split(const std::string& csv) {
  std::vector<std::string> out;
  std::stringstream in(csv);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

void say(const std::string& line) { std::cout << line << std::endl; }

// One increment: read, think, write only while we still lead. False when the lock was lost.
asio::awaitable<bool> increment(clusterlock::lock_manager& lock, const settings& s, std::int64_t token) {
  clusterlock::etcd::range_request read;
  read.key = s.counter;
  auto [read_error, current] =
      co_await lock.etcd_client().async_range(read, asio::as_tuple(asio::use_awaitable));
  asio::steady_timer think(co_await asio::this_coro::executor, s.think);
  if (read_error) {  // etcd busy or away: try again (the manager says when the lock is lost)
    say("cannot read " + s.counter + ": " + read_error.message());
    co_await think.async_wait(asio::use_awaitable);
    co_return true;
  }
  const long long value = current.kvs.empty() ? 0 : std::stoll(current.kvs.front().value);
  say("read " + std::to_string(value) + " token " + std::to_string(token));

  co_await think.async_wait(asio::use_awaitable);

  auto [ec, written] = co_await lock.async_guarded_put(s.counter, std::to_string(value + 1),
                                                       asio::as_tuple(asio::use_awaitable));
  if (ec == clusterlock::errc::lock_lost) {
    say("refused " + std::to_string(value + 1) + " token " + std::to_string(token) + ": the lock is no longer ours");
    co_return false;
  }
  if (ec) {  // e.g. a timeout: the write may or may not have been applied, fenced either way; read again
    say("cannot write " + s.counter + ": " + ec.message());
    co_return true;
  }
  say("wrote " + std::to_string(value + 1) + " token " + std::to_string(token));
  co_return true;
}

asio::awaitable<void> lead_forever(clusterlock::lock_manager& lock, settings s) {
  for (;;) {
    error_code why = co_await lock.async_lead(
        [&](std::int64_t token) -> asio::awaitable<void> {
          say("leading with token " + std::to_string(token));
          while (co_await increment(lock, s, token)) {
          }
        },
        asio::use_awaitable);
    say("stopped leading: " + (why ? why.message() : std::string("the lock was lost")));
    if (why && why != clusterlock::errc::lock_lost) co_return;  // refused, or shut down
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: fenced_counter ENDPOINTS NAME COUNTER_KEY [IDENTITY] [THINK_MS]\n";
    return 2;
  }
  asio::io_context io;
  clusterlock::options opts;
  opts.endpoints = split(argv[1]);
  opts.name = argv[2];
  opts.ttl = std::chrono::seconds(2);
  if (argc > 4) opts.identity = argv[4];
  settings s;
  s.counter = argv[3];
  if (argc > 5) s.think = std::chrono::milliseconds(std::stoi(argv[5]));
  try {
    clusterlock::lock_manager lock(io.get_executor(), opts);
    asio::co_spawn(lock.get_executor(), lead_forever(lock, s), [&](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          std::cerr << "fenced_counter: " << x.what() << "\n";
        }
      }
      io.stop();
    });
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](auto, int) { lock.async_shutdown([&](error_code) { io.stop(); }); });
    io.run();
  } catch (const boost::system::system_error& e) {
    std::cerr << "fenced_counter: " << e.what() << "\n";
    return 2;
  }
}
