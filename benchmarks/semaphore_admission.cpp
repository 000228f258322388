// 8. Semaphore admission: a permit holder calls async_release; how long until the first waiter reports ACQUIRED,
// beside the lock's hand-off measured the same way, interleaved in blocks.
//
// In one process, one io_context run by a thread of the driver, each contender on a session of its own. The
// semaphore: N = 2, three contenders (two holders, one waiter); the lock: two contenders (holder, waiter). The start
// is stamped on the releasing contender's strand just before async_release, the end in the waiter's on_acquired.
// The released contender then contends again (start(), a new key behind the others) and the next round starts once
// its key is in line. async_release, not async_shutdown: the same lease and session stay (measurement 2 uses
// shutdown, which revokes the lease too), for both variants alike.
#include <clusterlock/clusterlock.hpp>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "bench.hpp"

namespace clusterlock::bench {

namespace {

namespace asio = boost::asio;

// The lock and the semaphore, behind the few calls the ring makes.
struct contender {
  std::unique_ptr<lock_manager> lock;
  std::unique_ptr<semaphore> sem;
  std::int64_t acquired_ns = 0;
  int acquired = 0;
  bool released = false;

  asio::any_io_executor executor() const { return sem ? sem->get_executor() : lock->get_executor(); }
  std::string key() const { return sem ? sem->key() : lock->key(); }
  bool holds() const { return sem ? sem->have_permit() : lock->have_lock(); }
  void start() { sem ? sem->start() : lock->start(); }
  template <class F>
  void on_acquired(F f) {
    if (sem) sem->on_acquired(std::move(f));
    else lock->on_acquired(std::move(f));
  }
  template <class H>
  void release(H h) {
    if (sem) sem->async_release(std::move(h));
    else lock->async_release(std::move(h));
  }
};

// `slots` 0: the lock, two contenders; else a semaphore of `slots` permits and slots + 1 contenders. Holders are
// released oldest first, so the contenders go round in line.
class ring {
 public:
  ring(const std::string& endpoint, const std::string& name, std::size_t slots) : work_(io_.get_executor()) {
    options o;
    o.endpoints = {endpoint};
    o.name = name;
    thread_ = std::thread([this] { io_.run(); });
    const std::size_t n = slots == 0 ? 2 : slots + 1;
    for (std::size_t i = 0; i < n; ++i) {
      auto c = std::make_unique<contender>();
      o.identity = name + "-" + std::to_string(i);
      if (slots == 0) c->lock = std::make_unique<lock_manager>(io_.get_executor(), o);
      else c->sem = std::make_unique<semaphore>(io_.get_executor(), o, slots);
      auto* raw = c.get();
      c->on_acquired([this, raw](const lock_event&) {
        const auto t = now_ns();
        notify([&] {
          raw->acquired_ns = t;
          ++raw->acquired;
        });
      });
      line_.push_back(raw);
      all_.push_back(std::move(c));
      asio::dispatch(io_, [raw] { raw->start(); });
      wait([&] { return !raw->key().empty(); }, "a key in line");
    }
    wait([&] {
      for (std::size_t i = 0; i + 1 < line_.size(); ++i)
        if (!line_[i]->holds()) return false;
      return true;
    }, "the first holders");
  }

  ~ring() {
    asio::dispatch(io_, [this] {
      for (auto& c : all_) {
        if (c->sem) c->sem->shutdown();
        else c->lock->shutdown();
      }
    });
    std::this_thread::sleep_for(300ms);  // the shutdowns' deletes and revokes, on the io thread
    asio::dispatch(io_, [this] { all_.clear(); });
    work_.reset();
    std::this_thread::sleep_for(100ms);
    io_.stop();
    thread_.join();
  }

  // One admission: the oldest holder releases, the waiter (last in line) gets its permit; returns milliseconds.
  double admit() {
    contender* leaving = line_.front();
    contender* waiter = line_.back();
    int before = 0;
    {
      std::lock_guard lock(mutex_);
      before = waiter->acquired;
      leaving->released = false;
    }
    std::int64_t start = 0;
    asio::dispatch(leaving->executor(), [&, leaving] {
      start = now_ns();  // on the holder's strand, just before the call
      leaving->release([this, leaving](boost::system::error_code) { notify([&] { leaving->released = true; }); });
    });
    wait([&] { return waiter->acquired > before && leaving->released; }, "the admission");
    double ms = 0;
    {
      std::lock_guard lock(mutex_);
      ms = static_cast<double>(waiter->acquired_ns - start) / 1e6;
    }
    line_.pop_front();
    asio::dispatch(io_, [leaving] { leaving->start(); });  // in line again, behind the others
    wait([&] { return !leaving->key().empty(); }, "the released contender in line again");
    line_.push_back(leaving);
    return ms;
  }

 private:
  void notify(const std::function<void()>& change) {
    {
      std::lock_guard lock(mutex_);
      change();
    }
    changed_.notify_all();
  }
  // key() and holds() are read from this thread: they are safe from any thread; the cv is woken by callbacks, and
  // polled every 2 ms for what no callback announces (a key in line).
  void wait(const std::function<bool()>& done, const char* what) {
    std::unique_lock lock(mutex_);
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error(std::string("semaphore admission: timed out waiting for ") + what);
      changed_.wait_for(lock, 2ms);
    }
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::unique_ptr<contender>> all_;
  std::deque<contender*> line_;  // oldest key first
};

}  // namespace

void semaphore_admission(context& ctx) {
  const int rounds = ctx.quick ? 40 : 200;
  const int block = 20;
  ring lock(ctx.endpoint, "bench-admission-lock", 0);
  ring sem(ctx.endpoint, "bench-admission-sem", 2);
  lock.admit();  // warm-up, untimed
  sem.admit();
  std::vector<double> lock_ms, sem_ms;
  std::vector<std::vector<std::string>> csv;
  while (static_cast<int>(lock_ms.size()) < rounds) {
    for (int i = 0; i < block; ++i) {
      lock_ms.push_back(lock.admit());
      csv.push_back({std::to_string(lock_ms.size()), "lock", fixed(lock_ms.back(), 3)});
    }
    for (int i = 0; i < block; ++i) {
      sem_ms.push_back(sem.admit());
      csv.push_back({std::to_string(sem_ms.size()), "semaphore N=2", fixed(sem_ms.back(), 3)});
    }
  }
  write_csv(ctx.out("semaphore_admission.csv"), {"round", "mode", "admission_ms"}, csv);
  const std::string bench = "8 semaphore admission (ms)";
  const auto l = summarize(lock_ms), s = summarize(sem_ms);
  const std::string n = std::to_string(rounds) + " each, interleaved in blocks of " + std::to_string(block);
  ctx.add({bench, "median, permit freed -> next ACQUIRED", s.median, l.median, "lock hand-off", "", std::nullopt, n});
  ctx.add({bench, "p99, permit freed -> next ACQUIRED", s.p99, l.p99, "lock hand-off", "", std::nullopt,
           "max " + fixed(s.max, 2) + " ms (lock " + fixed(l.max, 2) + " ms)"});
}

}  // namespace clusterlock::bench
