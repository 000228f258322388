// The other processes of the benchmarks: a lock holder or waiter driven over stdin/stdout, and the many-locks
// process of the scale benchmark. Every line it prints carries CLOCK_MONOTONIC nanoseconds, which the driver
// compares with its own and other processes' stamps.
//
//   clusterlock_bench_peer lock ENDPOINT NAME TTL_SECONDS [--watch line|predecessor]
//     One lock_manager (its own session). Prints "ACQUIRED NS TOKEN" when it takes the lock and "QUEUED NS" when
//     its key waits behind another holder (line: from on_holder_changed; predecessor, which sends no holder_changed
//     event: once stats() shows our key in line behind another, polled every 0.5 ms until then). Reads commands,
//     one a line:
//       release  prints "RELEASE NS", calls async_shutdown, prints "RELEASED NS" when done, and stays idle
//       contend  (once idle) contends again with a new lock_manager (a new session and lease), as a restarted
//                service would
//       quit     shuts down and exits
//
//   clusterlock_bench_peer scale ENDPOINT COUNT IDLE_SECONDS COUNTED_PORT
//     One session (watch_prefix "bench/"), COUNT locks "bench/lock-00001"... on it, all on one io_context and one
//     thread. Waits until every one is acquired, settles, prints "IDLE NS", stays idle for IDLE_SECONDS and prints
//     "SCALE locks=N acquire_ms=.. tcp=.. rss_kib=.. cpu_pct=.." (tcp: its connections to COUNTED_PORT) and exits
//     without releasing (the driver deletes the keys).
//
//   clusterlock_bench_peer waiters ENDPOINT NAME COUNT HOLD_MS [PROBE_MS] [--watch line|predecessor]
//     COUNT lock_managers on NAME, each on its own session, all on one io_context and one thread. Each prints
//     "ACQ NS" when it takes the lock, holds it HOLD_MS, prints "REL NS", releases (async_release) and queues
//     again (async_acquire, a new key behind the others). Runs until killed. PROBE_MS: options::probe_interval
//     (default 1000), to see what the probes cost.
//
//   --watch: options::watch (default line), for lock and waiters.
#include <clusterlock/clusterlock.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "proc_stats.hpp"

namespace asio = boost::asio;
using namespace std::chrono_literals;
using clusterlock::bench::now_ns;

namespace {

// One line to stdout in one write: the driver reads lines from a pipe.
void say(const char* format, ...) {
  char line[512];
  va_list args;
  va_start(args, format);
  int n = std::vsnprintf(line, sizeof line - 1, format, args);
  va_end(args);
  if (n < 0) return;
  if (n > static_cast<int>(sizeof line) - 2) n = static_cast<int>(sizeof line) - 2;
  line[n++] = '\n';
  (void)!::write(1, line, static_cast<size_t>(n));
}

class lock_peer {
 public:
  lock_peer(asio::io_context& io, clusterlock::options opts)
      : io_(io), opts_(std::move(opts)), input_(io, ::dup(0)), poll_(io) {}

  void run() {
    contend();
    read_command();
    io_.run();
  }

 private:
  void contend() {
    lock_ = std::make_unique<clusterlock::lock_manager>(io_.get_executor(), opts_);
    ++generation_;
    lock_->on_acquired([](const clusterlock::lock_event& e) {
      say("ACQUIRED %lld %lld", static_cast<long long>(now_ns()), static_cast<long long>(e.fencing_token));
    });
    if (opts_.watch == clusterlock::watch_scope::predecessor) {
      lock_->start();
      poll_queued(generation_);
      return;
    }
    auto queued_said = std::make_shared<bool>(false);
    const std::string me = lock_->identity();
    lock_->on_holder_changed([queued_said, me](const clusterlock::lock_event& e) {
      if (*queued_said || e.holder.empty() || e.holder == me) return;
      *queued_said = true;
      say("QUEUED %lld", static_cast<long long>(now_ns()));
    });
    lock_->start();
  }

  // Predecessor mode sends no holder_changed event: our place in line tells that our key waits behind another.
  // Polled only until then (or until we hold), so that the process idles while it waits, as a line waiter does.
  void poll_queued(int generation) {
    if (!lock_ || generation != generation_) return;
    const auto place = lock_->stats().queue_position;
    if (place && *place >= 1) {
      say("QUEUED %lld", static_cast<long long>(now_ns()));
      return;
    }
    if (place && *place == 0) return;  // took the lock at once: no queue
    poll_.expires_after(500us);
    poll_.async_wait([this, generation](boost::system::error_code ec) {
      if (!ec) poll_queued(generation);
    });
  }

  void read_command() {
    asio::async_read_until(input_, buffer_, '\n', [this](boost::system::error_code ec, std::size_t) {
      if (ec) {  // the driver went away
        std::_Exit(0);
      }
      std::istream in(&buffer_);
      std::string command;
      std::getline(in, command);
      if (command == "release" && lock_) {
        say("RELEASE %lld", static_cast<long long>(now_ns()));
        lock_->async_shutdown([this](boost::system::error_code) {
          say("RELEASED %lld", static_cast<long long>(now_ns()));
          lock_.reset();
          read_command();
        });
        return;
      }
      if (command == "contend" && !lock_) contend();
      if (command == "quit") {
        if (!lock_) std::_Exit(0);
        lock_->async_shutdown([](boost::system::error_code) { std::_Exit(0); });
        return;
      }
      read_command();
    });
  }

  asio::io_context& io_;
  clusterlock::options opts_;
  asio::posix::stream_descriptor input_;
  asio::streambuf buffer_;
  asio::steady_timer poll_;
  int generation_ = 0;  // a poll of an earlier manager stops
  std::unique_ptr<clusterlock::lock_manager> lock_;
};

int run_scale(const std::string& endpoint, std::size_t count, int idle_seconds, unsigned short counted_port) {
  asio::io_context io;
  clusterlock::session_options so;
  so.endpoints = {endpoint};
  so.watch_prefix = "bench/";
  clusterlock::session session(io.get_executor(), so);
  std::vector<std::unique_ptr<clusterlock::lock_manager>> locks;
  locks.reserve(count);
  std::size_t acquired = 0;  // touched on the session's strand only: one thread runs everything
  std::int64_t last_acquired = 0;
  const std::int64_t begin = now_ns();
  for (std::size_t i = 0; i < count; ++i) {
    clusterlock::options o;
    char name[32];
    std::snprintf(name, sizeof name, "bench/lock-%05zu", i + 1);
    o.name = name;
    auto lock = std::make_unique<clusterlock::lock_manager>(session, o);
    lock->on_acquired([&](const clusterlock::lock_event&) {
      ++acquired;
      last_acquired = now_ns();
    });
    lock->start();
    locks.push_back(std::move(lock));
  }
  const auto deadline = std::chrono::steady_clock::now() + 300s;
  while (acquired < count && std::chrono::steady_clock::now() < deadline) io.run_one_for(100ms);
  if (acquired < count) {
    say("SCALE-FAILED acquired=%zu of %zu", acquired, count);
    return 1;
  }
  io.run_for(2s);  // settle: the last replies and watch events of the acquisition
  const auto before = clusterlock::bench::read_usage();
  const std::int64_t idle_begin = now_ns();
  say("IDLE %lld", static_cast<long long>(idle_begin));
  io.run_for(std::chrono::seconds(idle_seconds));
  const auto after = clusterlock::bench::read_usage();
  const double idle_wall = static_cast<double>(now_ns() - idle_begin) / 1e9;
  const struct mallinfo2 heap = ::mallinfo2();
  say("SCALE locks=%zu acquire_ms=%.1f tcp=%d rss_kib=%ld heap_kib=%zu heap_free_kib=%zu cpu_pct=%.3f idle_s=%.1f still_held=%zu", count,
      static_cast<double>(last_acquired - begin) / 1e6, clusterlock::bench::tcp_connections(0, counted_port),
      after.rss_kib, (heap.uordblks + heap.hblkhd) / 1024, heap.fordblks / 1024, 100.0 * (after.cpu_seconds - before.cpu_seconds) / idle_wall, idle_wall,
      static_cast<std::size_t>(std::count_if(locks.begin(), locks.end(), [](auto& l) { return l->have_lock(); })));
  std::_Exit(0);  // no 10,000 releases: the driver deletes the keys
}

// A coroutine function, not a lambda: nothing it reads can die before it ends. A release that etcd did not confirm
// in time (1,000 sessions starting at once load it) is retried by the manager before its next key; an acquire that
// failed is tried again.
asio::awaitable<void> take_turns(clusterlock::lock_manager& lock, std::chrono::milliseconds hold) {
  asio::steady_timer timer(lock.get_executor());
  for (;;) {
    auto [acquire_error] = co_await lock.async_acquire(asio::as_tuple(asio::use_awaitable));
    if (acquire_error) {
      std::fprintf(stderr, "clusterlock_bench_peer waiters: acquire: %s; again\n", acquire_error.message().c_str());
      continue;
    }
    say("ACQ %lld", static_cast<long long>(now_ns()));
    timer.expires_after(hold);
    co_await timer.async_wait(asio::use_awaitable);
    say("REL %lld", static_cast<long long>(now_ns()));
    co_await lock.async_release(asio::as_tuple(asio::use_awaitable));
  }
}

int run_waiters(const std::string& endpoint, const std::string& name, std::size_t count, int hold_ms, int probe_ms,
                clusterlock::watch_scope watch) {
  // Each session has its own connections: a thousand of them need more descriptors than the usual 1024.
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  asio::io_context io;
  std::vector<std::unique_ptr<clusterlock::lock_manager>> locks;
  for (std::size_t i = 0; i < count; ++i) {
    clusterlock::options o;
    o.endpoints = {endpoint};
    o.name = name;
    o.probe_interval = std::chrono::milliseconds(probe_ms);
    o.watch = watch;
    locks.push_back(std::make_unique<clusterlock::lock_manager>(io.get_executor(), o));
    asio::co_spawn(io, take_turns(*locks.back(), std::chrono::milliseconds(hold_ms)), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        std::fprintf(stderr, "clusterlock_bench_peer waiters: %s\n", x.what());
      }
      std::_Exit(3);  // an acquire or release failed: the driver sees the process gone
    });
  }
  io.run();
  return 0;
}

// "--watch line|predecessor" anywhere among the arguments, taken out of them.
clusterlock::watch_scope take_watch(std::vector<std::string>& args) {
  auto scope = clusterlock::watch_scope::line;
  for (auto it = args.begin(); it != args.end(); ++it) {
    if (*it != "--watch") continue;
    if (std::next(it) == args.end()) throw std::invalid_argument("--watch needs line or predecessor");
    const std::string value = *std::next(it);
    if (value == "predecessor") scope = clusterlock::watch_scope::predecessor;
    else if (value != "line") throw std::invalid_argument("--watch: '" + value + "' is neither line nor predecessor");
    args.erase(it, it + 2);
    break;
  }
  return scope;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    const auto watch = take_watch(args);
    if (args.size() == 4 && args[0] == "lock") {
      asio::io_context io;
      clusterlock::options opts;
      opts.endpoints = {args[1]};
      opts.name = args[2];
      opts.ttl = std::chrono::seconds(std::stoi(args[3]));
      opts.watch = watch;
      lock_peer peer(io, opts);
      peer.run();
      return 0;
    }
    if ((args.size() == 5 || args.size() == 6) && args[0] == "waiters") {
      return run_waiters(args[1], args[2], std::stoul(args[3]), std::stoi(args[4]),
                         args.size() == 6 ? std::stoi(args[5]) : 1000, watch);
    }
    if (args.size() == 5 && args[0] == "scale") {
      return run_scale(args[1], std::stoul(args[2]), std::stoi(args[3]),
                       static_cast<unsigned short>(std::stoi(args[4])));
    }
  } catch (const std::exception& e) {
    std::cerr << "clusterlock_bench_peer: " << e.what() << "\n";
    return 1;
  }
  std::cerr << "usage: clusterlock_bench_peer lock ENDPOINT NAME TTL_SECONDS [--watch line|predecessor]\n"
               "       clusterlock_bench_peer scale ENDPOINT COUNT IDLE_SECONDS COUNTED_PORT\n"
               "       clusterlock_bench_peer waiters ENDPOINT NAME COUNT HOLD_MS [PROBE_MS] [--watch line|predecessor]\n";
  return 2;
}
