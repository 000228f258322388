// 8. Semaphore and read-write lock admission: a holder calls async_release; how long until the first waiter reports
// ACQUIRED, beside the lock's hand-off measured the same way, interleaved in blocks.
//
// In one process, one io_context run by a thread of the driver, each contender on a session of its own. The
// semaphore: N = 2, three contenders (two holders, one waiter); the lock: two contenders (holder, waiter); the
// read-write lock: a writer and a reader taking turns (the writer's release admits the reader, whose release admits
// the writer, who contends again behind it: both admissions, alternately). The start
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
  std::unique_ptr<rw_lock> rw;
  std::int64_t acquired_ns = 0;
  int acquired = 0;
  bool released = false;

  // Calls f with whichever of the three this contender is.
  template <class F>
  decltype(auto) with(F f) const {
    if (sem) return f(*sem);
    if (rw) return f(*rw);
    return f(*lock);
  }
  asio::any_io_executor executor() const { return with([](auto& l) { return l.get_executor(); }); }
  std::string key() const { return with([](auto& l) { return l.key(); }); }
  bool holds() const {
    if (sem) return sem->have_permit();
    return rw ? rw->have_lock() : lock->have_lock();
  }
  void start() { with([](auto& l) { l.start(); }); }
  template <class F>
  void on_acquired(F f) {
    with([&](auto& l) { l.on_acquired(std::move(f)); });
  }
  template <class H>
  void release(H h) {
    with([&](auto& l) { l.async_release(std::move(h)); });
  }
  void shutdown() { with([](auto& l) { l.shutdown(); }); }
};

// What a ring contends for: the lock (two contenders), a semaphore of `slots` permits (slots + 1 contenders), or a
// read-write lock (a writer, then a reader).
struct ring_kind {
  std::size_t slots = 0;
  bool rw = false;
};

// Holders are released oldest first, so the contenders go round in line.
class ring {
 public:
  ring(const std::string& endpoint, const std::string& name, ring_kind kind) : work_(io_.get_executor()) {
    options o;
    o.endpoints = {endpoint};
    o.name = name;
    thread_ = std::thread([this] { io_.run(); });
    const std::size_t n = kind.slots == 0 ? 2 : kind.slots + 1;
    for (std::size_t i = 0; i < n; ++i) {
      auto c = std::make_unique<contender>();
      o.identity = name + "-" + std::to_string(i);
      const auto access = i == 0 ? rw_lock::mode::write : rw_lock::mode::read;
      if (kind.rw) c->rw = std::make_unique<rw_lock>(io_.get_executor(), o, access);
      else if (kind.slots == 0) c->lock = std::make_unique<lock_manager>(io_.get_executor(), o);
      else c->sem = std::make_unique<semaphore>(io_.get_executor(), o, kind.slots);
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
      for (auto& c : all_) c->shutdown();
    });
    std::this_thread::sleep_for(300ms);  // the shutdowns' deletes and revokes, on the io thread
    asio::dispatch(io_, [this] { all_.clear(); });
    work_.reset();
    std::this_thread::sleep_for(100ms);
    io_.stop();
    thread_.join();
  }

  // The read-write ring: whether the next admission is a reader's (the writer holds).
  bool reader_waits() const { return line_.back()->rw && line_.back()->rw->access() == rw_lock::mode::read; }

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
  ring lock(ctx.endpoint, "bench-admission-lock", {});
  ring sem(ctx.endpoint, "bench-admission-sem", {2, false});
  ring rw(ctx.endpoint, "bench-admission-rw", {0, true});
  lock.admit();  // warm-up, untimed
  sem.admit();
  rw.admit();
  rw.admit();
  std::vector<double> lock_ms, sem_ms, read_ms, write_ms;
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
    for (int i = 0; i < 2 * block; ++i) {  // alternately a reader's and a writer's admission
      const bool reader = rw.reader_waits();
      auto& to = reader ? read_ms : write_ms;
      to.push_back(rw.admit());
      csv.push_back({std::to_string(to.size()), reader ? "rw reader after writer" : "rw writer after last reader",
                     fixed(to.back(), 3)});
    }
  }
  write_csv(ctx.out("semaphore_admission.csv"), {"round", "mode", "admission_ms"}, csv);
  const std::string bench = "8 semaphore admission (ms)";
  const auto l = summarize(lock_ms), s = summarize(sem_ms), r = summarize(read_ms), w = summarize(write_ms);
  const std::string n = std::to_string(rounds) + " each, interleaved in blocks of " + std::to_string(block);
  ctx.add({bench, "median, permit freed -> next ACQUIRED", s.median, l.median, "lock hand-off", "", std::nullopt, n});
  ctx.add({bench, "p99, permit freed -> next ACQUIRED", s.p99, l.p99, "lock hand-off", "", std::nullopt,
           "max " + fixed(s.max, 2) + " ms (lock " + fixed(l.max, 2) + " ms)"});
  ctx.add({bench, "median, writer released -> reader ACQUIRED", r.median, l.median, "lock hand-off", "", std::nullopt,
           n});
  ctx.add({bench, "p99, writer released -> reader ACQUIRED", r.p99, l.p99, "lock hand-off", "", std::nullopt,
           "max " + fixed(r.max, 2) + " ms"});
  ctx.add({bench, "median, last reader released -> writer ACQUIRED", w.median, l.median, "lock hand-off", "",
           std::nullopt, n});
  ctx.add({bench, "p99, last reader released -> writer ACQUIRED", w.p99, l.p99, "lock hand-off", "", std::nullopt,
           "max " + fixed(w.max, 2) + " ms"});
}

}  // namespace clusterlock::bench
