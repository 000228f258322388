// The contender processes of a chaos run: starting one in a slot, reaping and replacing those that end, the graceful
// hand-off (SIGTERM to the holder), and who holds the lock according to etcd.
#include "chaos/chaos_run.hpp"

#include "support/child_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace clusterlock::chaos::detail {

// Each slot reaches the members through its own relays (network.hpp), rotated per slot: the contenders start on
// different members, so their watches and probes spread out.
std::string chaos_run::endpoints_for(int slot) const { return network_.endpoints(slot); }

void chaos_run::start_contender(contender& c, int slot) {
  c.slot = slot;
  ++c.generation;
  c.identity = "c" + std::to_string(slot) + "." + std::to_string(c.generation);
  c.stopped = c.terminating = c.killed = false;
  const std::string out = path("contenders/" + c.identity + ".out");
  const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("open " + out + ": " + std::strerror(errno));
  test::spawn_options o;
  o.argv = {settings_.contender_path,
            "--endpoints", endpoints_for(slot),
            "--name", lock_name,
            "--identity", c.identity,
            "--ttl", std::to_string(settings_.ttl_s),
            "--probe-interval-ms", std::to_string(settings_.probe_interval_ms),
            "--request-timeout-ms", std::to_string(settings_.request_timeout_ms),
            "--have-interval-ms", "1000",
            "--log", path("logs/" + c.identity + ".log"),
            "--log-interval-ms", std::to_string(settings_.log_interval_ms),
            "--resource-port", std::to_string(resource_.port())};
  if (settings_.slots > 0) o.argv.insert(o.argv.end(), {"--slots", std::to_string(settings_.slots)});
  if (settings_.rw_writers >= 0) o.argv.push_back(slot < settings_.rw_writers ? "--write" : "--read");
  if (settings_.predecessor) o.argv.insert(o.argv.end(), {"--watch", "predecessor"});
  o.env = test::clean_environment();
  for (const auto& entry : c.next_env) {  // a clock fault's entries replace ours of the same name (getenv: first)
    const auto name = entry.substr(0, entry.find('=') + 1);
    std::erase_if(o.env, [&](const std::string& e) { return e.starts_with(name); });
    o.env.push_back(entry);
  }
  c.liar = !c.next_env.empty();
  c.next_env.clear();
  o.stdout_fd = fd;
  o.stderr_fd = fd;
  try {
    c.pid = test::spawn(o);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  ++result_.contenders_started;
  note("start " + c.identity + " pid " + std::to_string(c.pid) + (c.liar ? " (clock fault)" : ""));
}

void chaos_run::kill_contender(contender& c) {
  if (c.pid <= 0) return;
  test::kill_and_reap(c.pid);
  c.pid = -1;
}

// Reaps contenders that ended and starts new ones in their place; kills those that overstay a SIGTERM.
void chaos_run::service() {
  for (auto& c : slots_) {
    if (c.pid <= 0) continue;
    int status = 0;
    const pid_t r = ::waitpid(c.pid, &status, WNOHANG);
    if (r == c.pid) {
      // SIGKILLed by us: any end is expected. SIGTERMed: it must shut down cleanly (a sanitizer's report at exit
      // shows as a non-zero exit code). Anything else is a crash.
      const bool expected = c.killed || (c.terminating && WIFEXITED(status) && WEXITSTATUS(status) == 0);
      std::string how = WIFEXITED(status)     ? "exit " + std::to_string(WEXITSTATUS(status))
                        : WIFSIGNALED(status) ? std::string("signal ") + ::strsignal(WTERMSIG(status))
                                              : "status " + std::to_string(status);
      if (!expected) ++result_.unexpected_exits;
      note((expected ? "ended " : "UNEXPECTED END of ") + c.identity + ": " + how, !expected);
      c.pid = -1;
      start_contender(c, c.slot);
    } else if (c.terminating && now_ns() - c.terminated_at > terminate_grace_ns) {
      note("KILL " + c.identity + ": still running " + std::to_string(terminate_grace_ns / s) + " s after SIGTERM",
           true);
      c.killed = true;
      ::kill(c.pid, SIGCONT);
      ::kill(c.pid, SIGKILL);
    }
  }
}

void chaos_run::wait_until(long long deadline) {
  for (;;) {
    service();
    const long long left = deadline - now_ns();
    if (left <= 0) return;
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min(left, poll_ns)));
  }
}

std::optional<lock_view> chaos_run::read_lock(std::chrono::milliseconds per_member) const {
  etcd::range_request req;
  req.key = std::string(lock_name) + "/";
  req.range_end = etcd::prefix_range_end(req.key);
  req.limit = 1;
  req.order = etcd::sort_order::ascend;
  req.target = etcd::sort_target::create;
  const std::string body = etcd::codec::encode(req);
  for (int i = 0; i < cluster_.size(); ++i) {
    if (!cluster_.is_running(i) || cluster_.is_stopped(i)) continue;
    test::http_request_options http;
    http.method = "POST";
    http.target = "/v3/kv/range";
    http.body = body;
    http.timeout = per_member;
    const auto reply = cluster_.http(i, http);
    if (!reply || reply->status != 200) continue;
    auto decoded = etcd::codec::decode_range(reply->body);
    if (!decoded) continue;
    lock_view v;
    v.revision = decoded->header.revision;
    if (!decoded->kvs.empty()) v.holder = decoded->kvs.front();
    return v;
  }
  return std::nullopt;
}

contender* chaos_run::running(const std::string& identity) {
  for (auto& c : slots_)
    if (c.identity == identity && c.pid > 0 && !c.stopped && !c.terminating && !c.killed) return &c;
  return nullptr;
}

// The holder according to etcd, when it is a contender that runs (not stopped, not ending); waits up to `wait`. With
// several permits or a read-write lock: the holder of the oldest key (a permit holder, a reader or the writer; it
// holds, whatever its mode: the faults that hit "the holder" hit it).
std::optional<std::pair<contender*, etcd::key_value>> chaos_run::live_holder(long long wait) {
  const long long deadline = now_ns() + wait;
  for (;;) {
    const auto view = read_lock();
    if (view && view->holder) {
      // A semaphore's value is "slots=<N>;<identity>" (docs/semaphore.md), an rw_lock's "rw=read;<identity>" or
      // "rw=write;<identity>" (docs/rwlock.md).
      const std::string& value = view->holder->value;
      const bool prefixed = value.starts_with("slots=") || value.starts_with("rw=read;") || value.starts_with("rw=write;");
      const auto semi = prefixed ? value.find(';') : std::string::npos;
      if (auto* c = running(semi == std::string::npos ? value : value.substr(semi + 1)))
        return std::make_pair(c, *view->holder);
    }
    if (now_ns() >= deadline) return std::nullopt;
    wait_until(std::min(deadline, now_ns() + 50 * ms));
  }
}

// A graceful hand-off: SIGTERM to the holder (it releases its key); a new contender takes its place.
void chaos_run::terminate_holder() {
  const auto h = live_holder(0);
  if (!h) {
    note("no live holder to terminate");
    return;
  }
  contender& c = *h->first;
  const long long t = now_ns();
  ::kill(c.pid, SIGTERM);
  c.terminating = true;
  c.terminated_at = t;
  ++result_.drivers;
  drivers_ << format_driver({t, c.identity}) << std::endl;
  note("SIGTERM " + c.identity);
}

// A graceful hand-off within the process: the holder releases its key and queues again (a lock taken in turns).
void chaos_run::requeue_holder() {
  const auto h = live_holder(0);
  if (!h) {
    note("no live holder to requeue");
    return;
  }
  const long long t = now_ns();
  ::kill(h->first->pid, SIGUSR1);
  ++result_.drivers;
  drivers_ << format_driver({t, h->first->identity, true}) << std::endl;
  note("SIGUSR1 " + h->first->identity + " (release and queue again)");
}

void chaos_run::finish() {
  result_.end_ns = now_ns();
  note("end: terminating every contender", true);
  for (auto& c : slots_) {
    if (c.pid <= 0) continue;
    ::kill(c.pid, SIGCONT);
    ::kill(c.pid, SIGTERM);
    c.terminating = true;
  }
  const long long deadline = now_ns() + 5 * s;
  for (auto& c : slots_) {
    while (c.pid > 0 && now_ns() < deadline) {
      int status = 0;
      if (::waitpid(c.pid, &status, WNOHANG) == c.pid) {
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
          ++result_.unexpected_exits;
          note("UNEXPECTED END of " + c.identity + " after the final SIGTERM: status " + std::to_string(status), true);
        }
        c.pid = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (c.pid > 0) note("KILL " + c.identity + ": did not exit after the final SIGTERM", true);
    kill_contender(c);
  }
}

}  // namespace clusterlock::chaos::detail
