// The lock manager is one more user of your io_context: your own timers and sockets keep working beside it, with
// one thread or many.
//
//   shared_loop ENDPOINTS NAME [--threads N] [--contend-ms MS]
//
// What it does, on one io_context run by N threads (default 4):
// - your work, on your own strand: a heartbeat timer every 10 ms and a TCP echo over loopback every 10 ms;
// - two lock managers for NAME: "first" takes the lock, "second" queues behind it for --contend-ms (default 1000),
//   then first shuts down and second takes over at once;
// - a plain std::thread (not one of the io_context's) polls have_lock() of both every millisecond.
// It prints what each part did and exits 0 when your work kept going while the lock was contended and the two
// managers never both claimed the lock; 1 otherwise (or after 30 s).
#include <clusterlock/clusterlock.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// Your own work. Everything here runs on one strand, so the counters need no mutex even with many threads.
struct user_work {
  asio::strand<asio::io_context::executor_type> strand;
  long heartbeats = 0;
  long echoes = 0;
  bool stopping = false;
};

asio::awaitable<void> heartbeat(user_work& work) {
  asio::steady_timer timer(work.strand);
  while (!work.stopping) {
    timer.expires_after(10ms);
    co_await timer.async_wait(asio::use_awaitable);
    ++work.heartbeats;
  }
}

asio::awaitable<void> echo_server(tcp::acceptor& acceptor) {
  auto socket = co_await acceptor.async_accept(asio::use_awaitable);
  char data[4];
  for (;;) {
    auto [read_error, n] = co_await asio::async_read(socket, asio::buffer(data), asio::as_tuple(asio::use_awaitable));
    if (read_error) co_return;  // the client closed
    co_await asio::async_write(socket, asio::buffer(data, n), asio::use_awaitable);
  }
}

asio::awaitable<void> echo_client(user_work& work, tcp::endpoint server) {
  tcp::socket socket(work.strand);
  co_await socket.async_connect(server, asio::use_awaitable);
  asio::steady_timer timer(work.strand);
  char reply[4];
  while (!work.stopping) {
    co_await asio::async_write(socket, asio::buffer("ping", 4), asio::use_awaitable);
    co_await asio::async_read(socket, asio::buffer(reply), asio::use_awaitable);
    ++work.echoes;
    timer.expires_after(10ms);
    co_await timer.async_wait(asio::use_awaitable);
  }
}

// The next event of `kind` from `lock` (others are printed and skipped).
asio::awaitable<clusterlock::lock_event> next_event(clusterlock::lock_manager& lock,
                                                   clusterlock::lock_event::kind_type kind) {
  for (;;) {
    auto event = co_await lock.async_wait_event(asio::use_awaitable);
    std::cout << lock.identity() << ": " << event << std::endl;
    if (event.kind == kind) co_return event;
  }
}

asio::awaitable<void> pause(user_work& work, std::chrono::milliseconds how_long) {
  asio::steady_timer timer(work.strand, how_long);
  co_await timer.async_wait(asio::use_awaitable);
}

// first takes the lock, second queues behind it, first hands over; the user's work is counted meanwhile.
asio::awaitable<bool> contend(user_work& work, clusterlock::lock_manager& first, clusterlock::lock_manager& second,
                              std::chrono::milliseconds contend_for) {
  first.start();
  const auto first_acquired = co_await next_event(first, clusterlock::lock_event::acquired);
  second.start();
  for (;;) {  // until second has seen that first holds the lock: from now on it waits in the queue
    const auto seen = co_await next_event(second, clusterlock::lock_event::holder_changed);
    if (seen.holder == first.identity()) break;
  }

  const long heartbeats_before = work.heartbeats, echoes_before = work.echoes;
  co_await pause(work, contend_for);
  const long heartbeats_during = work.heartbeats - heartbeats_before, echoes_during = work.echoes - echoes_before;
  std::cout << "while second waited " << contend_for.count() << " ms for the lock: " << heartbeats_during
            << " heartbeats, " << echoes_during << " echoes" << std::endl;

  co_await first.async_shutdown(asio::use_awaitable);
  const auto second_acquired = co_await next_event(second, clusterlock::lock_event::acquired);
  std::cout << "second took over: token " << first_acquired.fencing_token << " -> " << second_acquired.fencing_token
            << std::endl;
  co_await second.async_shutdown(asio::use_awaitable);

  co_return heartbeats_during > 0 && echoes_during > 0 &&
      second_acquired.fencing_token > first_acquired.fencing_token;
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
  std::map<std::string, std::string> flags{{"--threads", "4"}, {"--contend-ms", "1000"}};
  bool usage_ok = argc >= 3 && argc % 2 == 1;
  for (int i = 3; usage_ok && i + 1 < argc; i += 2) {
    usage_ok = flags.contains(argv[i]);
    flags[argv[i]] = argv[i + 1];
  }
  if (!usage_ok) {
    std::cerr << "usage: shared_loop ENDPOINTS NAME [--threads N] [--contend-ms MS]\n";
    return 2;
  }

  asio::io_context io;
  try {
    const int threads = std::max(1, std::stoi(flags["--threads"]));
    const std::chrono::milliseconds contend_for(std::stoi(flags["--contend-ms"]));
    clusterlock::options opts;
    opts.endpoints = split(argv[1]);
    opts.name = argv[2];
    opts.identity = "first";
    clusterlock::lock_manager first(io.get_executor(), opts);
    opts.identity = "second";
    clusterlock::lock_manager second(io.get_executor(), opts);

    // Your work, started before the locks and running beside them.
    user_work work{asio::make_strand(io), 0, 0, false};
    tcp::acceptor acceptor(work.strand, {asio::ip::make_address("127.0.0.1"), 0});
    asio::co_spawn(work.strand, heartbeat(work), asio::detached);
    asio::co_spawn(work.strand, echo_server(acceptor), asio::detached);
    asio::co_spawn(work.strand, echo_client(work, acceptor.local_endpoint()), asio::detached);

    // Another thread polls have_lock(): safe from any thread, exact at the moment of the call.
    std::atomic<bool> polling{true};
    long polls = 0, first_held = 0, second_held = 0, both_held = 0;
    std::thread poller([&] {
      while (polling) {
        const bool a = first.have_lock(), b = second.have_lock();
        ++polls;
        first_held += a;
        second_held += b;
        both_held += a && b;
        std::this_thread::sleep_for(1ms);
      }
    });

    bool ok = false;
    asio::steady_timer give_up(work.strand, 30s);
    give_up.async_wait([&](boost::system::error_code error) {
      if (!error) {
        std::cout << "gave up after 30 s" << std::endl;
        io.stop();
      }
    });
    asio::co_spawn(work.strand, contend(work, first, second, contend_for), [&](std::exception_ptr e, bool done) {
      ok = !e && done;
      work.stopping = true;
      acceptor.close();
      give_up.cancel();  // the last pending work ends: io.run() returns in every thread
    });

    std::vector<std::thread> pool;
    for (int i = 1; i < threads; ++i) pool.emplace_back([&] { io.run(); });
    io.run();
    for (auto& t : pool) t.join();
    polling = false;
    poller.join();

    std::cout << "threads " << threads << ": " << work.heartbeats << " heartbeats, " << work.echoes << " echoes; "
              << polls << " polls of have_lock() from another thread: first held " << first_held << ", second held "
              << second_held << ", both held " << both_held << std::endl;
    ok = ok && both_held == 0 && first_held > 0;
    std::cout << (ok ? "OK" : "FAILED") << std::endl;
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "shared_loop: " << e.what() << "\n";
    return 2;
  }
}
