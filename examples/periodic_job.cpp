// A periodic job that only the leader runs, driven by the on_acquired / on_lost callbacks.
//
//   periodic_job ENDPOINTS NAME [--identity ID] [--ttl SECONDS] [--interval-ms MS] [--exit-after-ticks N]
//
// While this instance holds the lock it "works" every interval (100 ms by default) and prints the fencing token
// with each tick: a real job would send that token along with its writes, so that the resource it writes to can
// refuse a stale leader (see docs/guarantees.md). --exit-after-ticks N: release the lock and exit after N ticks.
// SIGTERM or Ctrl-C: release the lock (the next instance takes over at once) and exit.
#include <clusterlock/clusterlock.hpp>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace asio = boost::asio;

namespace {

// Runs `work` every `interval` between start() and stop(). Its timer lives on the lock manager's strand, where the
// callbacks run too, so start(), stop() and the ticks never overlap, even when several threads run the io_context.
class leader_only_job {
 public:
  leader_only_job(clusterlock::lock_manager& lock, std::chrono::milliseconds interval,
                  std::function<void(std::int64_t token)> work)
      : lock_(lock), timer_(lock.get_executor()), interval_(interval), work_(std::move(work)) {}

  void start() {
    ++generation_;  // a tick already queued by an earlier start() must not run a second loop
    schedule(generation_);
  }
  void stop() {
    ++generation_;
    timer_.cancel();
  }

 private:
  void schedule(unsigned generation) {
    timer_.expires_after(interval_);
    timer_.async_wait([this, generation](boost::system::error_code error) {
      if (error || generation != generation_) return;
      // on_lost may still be on its way; fencing_token() is 0 the moment we cannot prove that we hold the lock.
      const std::int64_t token = lock_.fencing_token();
      if (token != 0) work_(token);
      if (generation == generation_) schedule(generation);  // work_ may have stopped us
    });
  }

  clusterlock::lock_manager& lock_;
  asio::steady_timer timer_;
  std::chrono::milliseconds interval_;
  std::function<void(std::int64_t)> work_;
  unsigned generation_ = 0;
};

std::vector<std::string> split(const std::string& csv) {
  std::vector<std::string> out;
  std::stringstream in(csv);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> flags{
      {"--identity", ""}, {"--ttl", "10"}, {"--interval-ms", "100"}, {"--exit-after-ticks", "0"}};
  bool usage_ok = argc >= 3 && argc % 2 == 1;
  for (int i = 3; usage_ok && i + 1 < argc; i += 2) {
    usage_ok = flags.contains(argv[i]);
    flags[argv[i]] = argv[i + 1];
  }
  if (!usage_ok) {
    std::cerr << "usage: periodic_job ENDPOINTS NAME [--identity ID] [--ttl SECONDS] [--interval-ms MS]"
                 " [--exit-after-ticks N]\n";
    return 2;
  }

  asio::io_context io;
  try {
    clusterlock::options opts;
    opts.endpoints = split(argv[1]);
    opts.name = argv[2];
    opts.identity = flags["--identity"];
    opts.ttl = std::chrono::seconds(std::stoi(flags["--ttl"]));
    const int exit_after_ticks = std::stoi(flags["--exit-after-ticks"]);

    clusterlock::lock_manager lock(io.get_executor(), opts);
    const std::string me = lock.identity();
    asio::signal_set signals(io, SIGINT, SIGTERM);
    int ticks = 0;

    auto shut_down = [&] {
      signals.cancel();
      lock.async_shutdown([&](boost::system::error_code) { io.stop(); });
    };

    leader_only_job job(lock, std::chrono::milliseconds(std::stoi(flags["--interval-ms"])), [&](std::int64_t token) {
      std::cout << me << " tick " << ++ticks << " token " << token << std::endl;
      if (ticks == exit_after_ticks) {
        job.stop();
        shut_down();
      }
    });

    lock.on_acquired([&](const clusterlock::lock_event& e) {
      std::cout << me << " acquired the lock (token " << e.fencing_token << "): starting the job" << std::endl;
      job.start();
    });
    lock.on_lost([&](const clusterlock::lock_event& e) {
      std::cout << me << " lost the lock (" << to_string(e.kind) << "): stopping the job" << std::endl;
      job.stop();
    });
    lock.on_holder_changed([&](const clusterlock::lock_event& e) {
      std::cout << me << " sees leader " << (e.holder.empty() ? "(none)" : e.holder) << std::endl;
    });

    signals.async_wait([&](boost::system::error_code error, int) {
      if (error) return;
      asio::dispatch(lock.get_executor(), [&] {  // the job belongs to the manager's strand
        job.stop();
        shut_down();
      });
    });

    lock.start();
    io.run();
  } catch (const std::exception& e) {
    std::cerr << "periodic_job: " << e.what() << "\n";
    return 2;
  }
}
