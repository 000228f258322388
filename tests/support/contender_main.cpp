// clusterlock_test_contender: one lock_manager (or, with --slots N, one semaphore of N permits; with --read or
// --write, one rw_lock in that mode) in a process of its own, so that tests can SIGKILL, SIGSTOP and SIGCONT a holder.
// With --slots, "the lock" below is our permit: HAVE and the action lines follow have_permit(), the token is the
// permit's; with --read or --write, they follow the rw_lock's have_lock() in our mode. It tells what happens on stdout, one line
// each, flushed at once; times are CLOCK_MONOTONIC nanoseconds, comparable across processes on one machine. They
// are read by a raw clock_gettime syscall, not std::chrono::steady_clock: a contender run under libfaketime (the
// chaos test's clock faults) still tells true time, while the library in it sees the lying clock:
//
//   READY <pid> <ns>                          started, contending
//   ACQUIRED|REMOVED|UNKNOWN <token> <identity> <ns>
//   HOLDER <token> <holder identity or -> <ns>  holder_changed
//   KEY <key> <ns>                            our key, whenever it changes
//   HAVE <0|1> <ns>                           have_lock(), after every event and every --have-interval-ms
//   SHUTDOWN <error code value> <ns>          after a graceful shutdown (SIGTERM or SIGINT); then it exits 0
//   REQUEUED <error code value> <ns>          SIGUSR1: released (async_release), and back in line (start()) with a
//                                             new key: a hand-off without the process ending
//
// With --log FILE it also appends "<ns> <token> <identity>" to FILE every --log-interval-ms while have_lock() is
// true (O_APPEND, one write per line: lines of several contenders sharing a file do not tear). The time is taken
// before have_lock() is asked, so a line never claims a moment later than the check that backs it. With
// --resource-port PORT it also sends "<token> <identity>\n" to that loopback TCP port after each such line: a
// write to the chaos test's fenced resource (no answer is read; a failed send reconnects at the next write).
//
// With --watch predecessor a lock_manager watches only the key ahead of ours (options::watch): no HOLDER lines then.
//
// Usage: clusterlock_test_contender --endpoints URL[,URL...] --name NAME --identity ID [--ttl S]
//        [--probe-interval-ms N] [--request-timeout-ms N] [--have-interval-ms N] [--log FILE] [--log-interval-ms N]
//        [--resource-port PORT] [--slots N | --read | --write | --watch line|predecessor]

#include <clusterlock/clusterlock.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/system_error.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <map>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace {

namespace asio = boost::asio;

long long now_ns() {
  timespec t{};
  ::syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t);  // the kernel's, past any LD_PRELOAD (see above)
  return static_cast<long long>(t.tv_sec) * 1'000'000'000LL + t.tv_nsec;
}

// The chaos test's fenced resource: one connection, opened at the first write and again after a failed one.
class resource_link {
 public:
  explicit resource_link(int port) : port_(port) {}
  ~resource_link() { close(); }
  resource_link(const resource_link&) = delete;
  resource_link& operator=(const resource_link&) = delete;

  void write(const std::string& line) {
    if (port_ <= 0) return;
    if (fd_ < 0 && !connect()) return;
    // Never blocks the lock's thread: a full buffer loses this write (the resource is on loopback and drains fast).
    const auto n = ::send(fd_, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n != static_cast<ssize_t>(line.size())) close();
  }

 private:
  bool connect() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port_));
    if (fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return true;
    close();
    return false;
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  int port_;
  int fd_ = -1;
};

void say(const std::string& line) {
  // One write per line: stdout is a pipe the test reads, and it must see each line as soon as it happens.
  std::string l = line + "\n";
  const char* p = l.data();
  std::size_t left = l.size();
  while (left > 0) {
    auto n = ::write(STDOUT_FILENO, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

std::vector<std::string> split_csv(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    auto comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// What the contender needs of the primitive it contends with, whatever its kind: each kind is a few lines in
// make_primitive(), the body below is written once.
struct primitive {
  std::shared_ptr<void> owner;  // the lock_manager, semaphore or rw_lock itself
  std::function<void()> start;
  std::function<bool()> have;                 // have_lock(), have_permit()
  std::function<std::int64_t()> token;        // fencing_token(): 0 unless have() at this call
  std::function<std::string()> key;
  std::function<void(std::function<void(boost::system::error_code, clusterlock::lock_event)>)> wait_event;
  std::function<void(std::function<void(boost::system::error_code)>)> shutdown;
  std::function<void(std::function<void(boost::system::error_code)>)> release;
};

template <class P, class Have>
primitive wrap(std::shared_ptr<P> p, Have have) {
  primitive w;
  P* raw = p.get();
  w.owner = p;
  w.start = [raw] { raw->start(); };
  w.have = [raw, have] { return have(*raw); };
  w.token = [raw] { return raw->fencing_token(); };
  w.key = [raw] { return raw->key(); };
  w.wait_event = [raw](auto h) { raw->async_wait_event(std::move(h)); };
  w.shutdown = [raw](auto h) { raw->async_shutdown(std::move(h)); };
  w.release = [raw](auto h) { raw->async_release(std::move(h)); };
  return w;
}

// Throws boost::system::system_error for bad options (as the constructors do). `mode`: "read", "write" or "" (none).
primitive make_primitive(asio::io_context& io, const clusterlock::options& opts, long slots, const std::string& mode) {
  if (!mode.empty()) {
    const auto access = mode == "read" ? clusterlock::rw_lock::mode::read : clusterlock::rw_lock::mode::write;
    auto rw = std::make_shared<clusterlock::rw_lock>(io, opts, access);
    return wrap(rw, [](const clusterlock::rw_lock& x) { return x.have_lock(); });
  }
  if (slots > 0) {
    auto sem = std::make_shared<clusterlock::semaphore>(io, opts, static_cast<std::size_t>(slots));
    return wrap(sem, [](const clusterlock::semaphore& x) { return x.have_permit(); });
  }
  auto lock = std::make_shared<clusterlock::lock_manager>(io.get_executor(), opts);
  return wrap(lock, [](const clusterlock::lock_manager& x) { return x.have_lock(); });
}

// Repeats `tick` every `period` until the timer is cancelled.
void every(asio::steady_timer& timer, std::chrono::milliseconds period, std::function<void()> tick) {
  timer.expires_after(period);
  timer.async_wait([&timer, period, tick = std::move(tick)](boost::system::error_code ec) mutable {
    if (ec) return;
    tick();
    every(timer, period, std::move(tick));
  });
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> args;
  std::string mode;  // --read or --write: an rw_lock
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--read" || flag == "--write") {
      if (!mode.empty()) {
        say("ERROR --read and --write: one mode only");
        return 2;
      }
      mode = flag.substr(2);
      continue;
    }
    if (flag.rfind("--", 0) != 0 || i + 1 >= argc) {
      say("ERROR bad argument: " + flag);
      return 2;
    }
    args[flag.substr(2)] = argv[++i];
  }
  auto number = [&](const char* name, long fallback) {
    auto it = args.find(name);
    return it == args.end() ? fallback : std::strtol(it->second.c_str(), nullptr, 10);
  };

  clusterlock::options opts;
  opts.endpoints = split_csv(args["endpoints"]);
  opts.name = args["name"];
  opts.identity = args["identity"];
  opts.ttl = std::chrono::seconds(number("ttl", 2));
  opts.probe_interval = std::chrono::milliseconds(number("probe-interval-ms", opts.probe_interval.count()));
  opts.request_timeout = std::chrono::milliseconds(number("request-timeout-ms", opts.request_timeout.count()));
  if (const auto w = args.find("watch"); w != args.end()) {
    if (w->second != "line" && w->second != "predecessor") {
      say("ERROR --watch: line or predecessor: " + w->second);
      return 2;
    }
    // Not checked against --slots, --read, --write here: the library refuses predecessor for them (ERROR below).
    opts.watch = w->second == "line" ? clusterlock::watch_scope::line : clusterlock::watch_scope::predecessor;
  }
  const auto have_interval = std::chrono::milliseconds(number("have-interval-ms", 50));
  const auto log_interval = std::chrono::milliseconds(number("log-interval-ms", 5));
  resource_link resource(static_cast<int>(number("resource-port", 0)));

  int log_fd = -1;
  if (!args["log"].empty()) {
    log_fd = ::open(args["log"].c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      say("ERROR cannot open log " + args["log"] + ": " + std::strerror(errno));
      return 2;
    }
  }

  asio::io_context io;
  const long slots = number("slots", 0);  // 0: a lock_manager
  if (args.count("slots") && slots < 1) {
    say("ERROR --slots: want a number of permits, at least 1: " + args["slots"]);
    return 2;
  }
  if (args.count("slots") && !mode.empty()) {
    say("ERROR --slots and --" + mode + ": a semaphore or a read-write lock, not both");
    return 2;
  }
  primitive m;
  try {
    m = make_primitive(io, opts, slots, mode);
  } catch (const boost::system::system_error& e) {
    say(std::string("ERROR ") + e.what());
    return 2;
  }

  std::string last_key;
  auto report_have = [&] {
    const auto t = now_ns();
    say("HAVE " + std::string(m.have() ? "1 " : "0 ") + std::to_string(t));
  };

  std::function<void()> next_event = [&] {
    m.wait_event([&](boost::system::error_code ec, clusterlock::lock_event e) {
      if (ec == clusterlock::errc::not_started) return;  // shut down: no more events
      if (!ec) {
        const auto t = std::to_string(now_ns());
        if (e.kind == clusterlock::lock_event::holder_changed) {
          say("HOLDER " + std::to_string(e.fencing_token) + " " + (e.holder.empty() ? "-" : e.holder) + " " + t);
        } else {
          say(std::string(clusterlock::to_string(e.kind)) + " " + std::to_string(e.fencing_token) + " " +
              (e.holder.empty() ? "-" : e.holder) + " " + t);
        }
        if (auto k = m.key(); k != last_key) {
          last_key = k;
          say("KEY " + (k.empty() ? std::string("-") : k) + " " + t);
        }
        report_have();
      } else {
        say("EVENT_ERROR " + ec.message() + " " + std::to_string(now_ns()));
      }
      next_event();
    });
  };
  next_event();

  asio::steady_timer have_timer(io), log_timer(io);
  every(have_timer, have_interval, report_have);
  if (log_fd >= 0) {
    every(log_timer, log_interval, [&] {
      const auto t = now_ns();
      const auto token = m.token();  // 0 unless have() is true at this call
      if (token == 0) return;
      const std::string line = std::to_string(t) + " " + std::to_string(token) + " " + opts.identity + "\n";
      [[maybe_unused]] auto n = ::write(log_fd, line.data(), line.size());
      resource.write(std::to_string(token) + " " + opts.identity + "\n");
    });
  }

  bool stopping = false;  // SIGTERM came: no queueing again
  // SIGUSR1 (the chaos test's --requeue-every): give the lock up and queue again, in this process.
  asio::signal_set requeue(io, SIGUSR1);
  std::function<void()> next_requeue = [&] {
    requeue.async_wait([&](boost::system::error_code ec, int) {
      if (ec) return;
      m.release([&](boost::system::error_code rec) {
        say("REQUEUED " + std::to_string(rec.value()) + " " + std::to_string(now_ns()));
        if (!stopping) m.start();
      });
      next_requeue();
    });
  };
  next_requeue();

  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (ec) return;
    log_timer.cancel();  // stop claiming before we let go
    stopping = true;
    requeue.cancel();
    m.shutdown([&](boost::system::error_code sec) {
      say("SHUTDOWN " + std::to_string(sec.value()) + " " + std::to_string(now_ns()));
      have_timer.cancel();
      io.stop();
    });
  });

  m.start();
  say("READY " + std::to_string(::getpid()) + " " + std::to_string(now_ns()));
  io.run();
  if (log_fd >= 0) ::close(log_fd);
  return 0;
}
