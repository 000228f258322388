// One contender for a cluster-wide lock: prints every lock event, and does "leader work" while it holds the lock.
//
//   leader_election ENDPOINTS NAME [IDENTITY] [TTL_SECONDS]
//
// Run several (on one machine or many) against the same etcd and NAME: exactly one leads at a time. Kill the leader
// and another takes over once the leader's lease expires; stop one with Ctrl-C and the next takes over at once.
#include <clusterlock/clusterlock.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <sstream>
#include <string>

namespace asio = boost::asio;

namespace {

std::string now() {
  auto t = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(t);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  char buf[32];
  std::strftime(buf, sizeof buf, "%H:%M:%S", std::localtime(&secs));
  std::snprintf(buf + 8, sizeof buf - 8, ".%03d", static_cast<int>(ms));
  return buf;
}

std::vector<std::string> split(const std::string& csv) {
  std::vector<std::string> out;
  std::stringstream in(csv);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

asio::awaitable<void> print_events(clusterlock::lock_manager& lock, std::string me) {
  for (;;) {
    auto event = co_await lock.async_wait_event(asio::use_awaitable);
    switch (event.kind) {
      case clusterlock::lock_event::acquired:
        std::cout << now() << "  " << me << "  ACQUIRED  the lock (fencing token " << event.fencing_token << ")\n";
        break;
      case clusterlock::lock_event::removed:
        std::cout << now() << "  " << me << "  REMOVED   we no longer hold the lock\n";
        break;
      case clusterlock::lock_event::unknown:
        std::cout << now() << "  " << me << "  UNKNOWN   cannot reach etcd: we stop acting as leader\n";
        break;
      case clusterlock::lock_event::holder_changed:
        std::cout << now() << "  " << me << "  sees holder: "
                  << (event.holder.empty() ? std::string("nobody") : event.holder + " (token " +
                                                                         std::to_string(event.fencing_token) + ")")
                  << "\n";
        break;
    }
    std::cout.flush();
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: leader_election ENDPOINTS NAME [IDENTITY] [TTL_SECONDS]\n";
    return 2;
  }
  asio::io_context io;
  clusterlock::options opts;
  opts.endpoints = split(argv[1]);
  opts.name = argv[2];
  if (argc > 3) opts.identity = argv[3];
  if (argc > 4) opts.ttl = std::chrono::seconds(std::stoi(argv[4]));
  try {
    clusterlock::lock_manager lock(io.get_executor(), opts);
    const std::string me = lock.identity();
    asio::co_spawn(io, print_events(lock, me), asio::detached);

    // Stop cleanly on Ctrl-C / SIGTERM: release the lock so the next one takes over at once.
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](auto, int) {
      std::cout << now() << "  " << me << "  shutting down: releasing the lock\n" << std::flush;
      lock.async_shutdown([&](boost::system::error_code) { io.stop(); });
    });

    lock.start();
    io.run();
  } catch (const boost::system::system_error& e) {
    std::cerr << "leader_election: " << e.what() << "\n";
    return 2;
  }
}
