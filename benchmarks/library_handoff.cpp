// 2. Library hand-off: the holder calls async_shutdown; how long until the next lock_manager reports ACQUIRED.
//
// In one process: two lock_managers (each its own session, as two services would have) on one io_context run by a
// thread of the driver; the start is stamped on the holder's strand just before async_shutdown, the end in the
// waiter's on_acquired callback. Across processes: two clusterlock_bench_peer processes; the holder prints its
// stamp just before async_shutdown, the waiter in on_acquired (CLOCK_MONOTONIC is one clock for both).
// After each hand-off the old holder contends again with a new lock_manager (new session, new lease), and the next
// hand-off starts once it is queued. The two variants alternate in blocks, so both see the same machine.
#include <clusterlock/clusterlock.hpp>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <array>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "bench.hpp"

namespace clusterlock::bench {

namespace {

namespace asio = boost::asio;

// Two contenders in this process, on an io_context of their own thread.
class in_process_pair {
 public:
  explicit in_process_pair(const std::string& endpoint) : work_(io_.get_executor()) {
    opts_.endpoints = {endpoint};
    opts_.name = "bench-handoff-inproc";
    thread_ = std::thread([this] { io_.run(); });
    contend(0);
    wait([&] { return c_[0].acquired > 0; }, "the first holder");
    contend(1);
    wait([&] { return c_[1].queued; }, "the first waiter");
  }

  ~in_process_pair() {
    for (auto& c : c_) c.lock.reset();  // shut down in the background
    work_.reset();
    // The managers' shutdowns (release + revoke) finish on the io thread; bound the wait.
    asio::post(io_, [] {});
    std::this_thread::sleep_for(200ms);
    io_.stop();
    thread_.join();
  }

  // One hand-off from the holder to the other; returns milliseconds.
  double handoff() {
    const int waiter = 1 - holder_;
    std::int64_t start = 0;
    int acquired_before = 0;
    bool released = false;
    {
      std::lock_guard lock(mutex_);
      acquired_before = c_[waiter].acquired;
    }
    auto& old = c_[holder_];
    asio::dispatch(old.lock->get_executor(), [&] {
      start = now_ns();  // on the holder's strand, just before the call
      old.lock->async_shutdown([&](boost::system::error_code) { notify([&] { released = true; }); });
    });
    wait([&] { return c_[waiter].acquired > acquired_before && released; }, "the hand-off");
    double ms = 0;
    {
      std::lock_guard lock(mutex_);
      ms = static_cast<double>(c_[waiter].acquired_ns - start) / 1e6;
    }
    contend(holder_);  // the old holder queues again, with a new manager
    wait([&] { return c_[holder_].queued; }, "the new waiter");
    holder_ = waiter;
    return ms;
  }

 private:
  struct contender {
    std::unique_ptr<lock_manager> lock;
    int generation = 0;  // callbacks of an earlier manager of this slot are ignored
    int acquired = 0;
    std::int64_t acquired_ns = 0;
    bool queued = false;
  };

  void notify(const std::function<void()>& change) {
    {
      std::lock_guard lock(mutex_);
      change();
    }
    changed_.notify_all();
  }

  void wait(const std::function<bool()>& done, const char* what) {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(lock, 30s, done)) throw std::runtime_error(std::string("in-process: timed out waiting for ") + what);
  }

  void contend(int slot) {
    auto& c = c_[slot];
    c.lock.reset();
    int generation = 0;
    {
      std::lock_guard lock(mutex_);
      generation = ++c.generation;
      c.queued = false;
    }
    c.lock = std::make_unique<lock_manager>(io_.get_executor(), opts_);
    c.lock->on_acquired([this, &c, generation](const lock_event&) {
      const auto t = now_ns();
      notify([&] {
        if (c.generation != generation) return;
        c.acquired_ns = t;
        ++c.acquired;
      });
    });
    c.lock->on_holder_changed([this, &c, generation, me = c.lock->identity()](const lock_event& e) {
      if (e.holder.empty() || e.holder == me) return;
      notify([&] {
        if (c.generation == generation) c.queued = true;
      });
    });
    c.lock->start();
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  options opts_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::array<contender, 2> c_;
  int holder_ = 0;
};

// Two clusterlock_bench_peer processes.
class cross_process_pair {
 public:
  explicit cross_process_pair(context& ctx) {
    const std::vector<std::string> argv = {ctx.peer_bin, "lock", ctx.endpoint, "bench-handoff-xproc", "10"};
    peers_[0] = std::make_unique<child>(argv);
    peers_[0]->expect("ACQUIRED", 30s);
    peers_[1] = std::make_unique<child>(argv);
    peers_[1]->expect("QUEUED", 30s);
  }
  ~cross_process_pair() {
    for (auto& p : peers_) {
      p->send("quit");
      p->wait(5s);
    }
  }

  double handoff() {
    auto& holder = *peers_[holder_];
    auto& waiter = *peers_[1 - holder_];
    holder.send("release");
    const auto start = stamp_of(holder.expect("RELEASE ", 10s));
    const auto end = stamp_of(waiter.expect("ACQUIRED", 10s));
    holder.expect("RELEASED", 10s);
    holder.expect("QUEUED", 30s);  // contending again behind the new holder
    holder_ = 1 - holder_;
    return static_cast<double>(end - start) / 1e6;
  }

 private:
  std::array<std::unique_ptr<child>, 2> peers_;
  int holder_ = 0;
};

}  // namespace

void library_handoff(context& ctx) {
  const int handoffs = ctx.quick ? 40 : 200;
  const int block = 20;
  in_process_pair local(ctx.endpoint);
  cross_process_pair remote(ctx);
  local.handoff();  // warm-up, untimed
  remote.handoff();
  std::vector<double> in_process, cross_process;
  std::vector<std::vector<std::string>> csv;
  while (static_cast<int>(in_process.size()) < handoffs) {
    for (int i = 0; i < block; ++i) {
      in_process.push_back(local.handoff());
      csv.push_back({std::to_string(in_process.size()), "in-process", fixed(in_process.back(), 3)});
    }
    for (int i = 0; i < block; ++i) {
      cross_process.push_back(remote.handoff());
      csv.push_back({std::to_string(cross_process.size()), "cross-process", fixed(cross_process.back(), 3)});
    }
  }
  write_csv(ctx.out("library_handoff.csv"), {"handoff", "mode", "handoff_ms"}, csv);
  write_cdf_csv(ctx.out("library_handoff_cdf.csv"), {{"in-process", in_process}, {"cross-process", cross_process}});

  const std::string bench = "2 library hand-off (ms)";
  const std::string n = std::to_string(handoffs) + " hand-offs";
  for (const auto& [mode, samples] : {std::pair{"in one process", &in_process}, std::pair{"across processes", &cross_process}}) {
    const auto s = summarize(*samples);
    ctx.add({bench, std::string("median, ") + mode, s.median, std::nullopt, "", "<= 2 ms", s.median <= 2.0, n});
    ctx.add({bench, std::string("p99, ") + mode, s.p99, std::nullopt, "", "<= 10 ms", s.p99 <= 10.0,
             "max " + fixed(s.max, 2) + " ms"});
  }
}

}  // namespace clusterlock::bench
