// 2. Library hand-off: the holder calls async_shutdown; how long until the next lock_manager reports ACQUIRED.
//
// In one process: two lock_managers (each its own session, as two services would have) on one io_context run by a
// thread of the driver; the start is stamped on the holder's strand just before async_shutdown, the end in the
// waiter's on_acquired callback. Across processes: two clusterlock_bench_peer processes; the holder prints its
// stamp just before async_shutdown, the waiter in on_acquired (CLOCK_MONOTONIC is one clock for both). etcd's Go
// recipe (go_recipe handoff): two concurrency.Mutex, each on its own client and session, in one process; the start
// is stamped just before the holder's Unlock, the end when the waiter's Lock returns.
//
// Ours runs twice over, with options::watch = line (the waiter takes its turn from the release's watch event) and
// = predecessor (it watches the holder's key alone and takes its turn after a linearizable read); predecessor
// mode sends no holder_changed event, so "queued" there is our key behind another in stats(), polled.
//
// Each hand-off starts with a fresh waiter: the one that is not holding contends (a new session and lease, as a
// restarted service would) and, once it is queued, the holder releases after the regime's delay: 20 ms (a waiter
// that has just queued: etcd's recipe then waits for etcd's 100 ms watch sync) or 250 ms (long queued). The
// variants and regimes alternate hand-off by hand-off, so all see the same machine.
#include <clusterlock/clusterlock.hpp>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <map>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "bench.hpp"

namespace clusterlock::bench {

namespace {

namespace asio = boost::asio;

// One implementation's pair of contenders. handoff(): the idle one contends; once it is queued and `queued_for`
// has passed, the holder releases; returns milliseconds from the release's start to the waiter holding.
class handoff_pair {
 public:
  virtual ~handoff_pair() = default;
  virtual double handoff(std::chrono::milliseconds queued_for) = 0;
};

// Two contenders in this process, on an io_context of their own thread.
class in_process_pair : public handoff_pair {
 public:
  in_process_pair(const std::string& endpoint, watch_scope watch) : work_(io_.get_executor()) {
    opts_.endpoints = {endpoint};
    opts_.name = watch == watch_scope::line ? "bench-handoff-inproc" : "bench-handoff-inproc-pred";
    opts_.watch = watch;
    thread_ = std::thread([this] { io_.run(); });
    contend(0);
    wait([&] { return c_[0].acquired > 0; }, "the first holder");
  }

  ~in_process_pair() override {
    for (auto& c : c_) c.lock.reset();  // shut down in the background
    work_.reset();
    // The managers' shutdowns (release + revoke) finish on the io thread; bound the wait.
    asio::post(io_, [] {});
    std::this_thread::sleep_for(200ms);
    io_.stop();
    thread_.join();
  }

  double handoff(std::chrono::milliseconds queued_for) override {
    const int waiter = 1 - holder_;
    contend(waiter);  // a fresh waiter, with a new manager
    if (opts_.watch == watch_scope::predecessor) poll_queued(*c_[waiter].lock);
    else wait([&] { return c_[waiter].queued; }, "the waiter");
    std::this_thread::sleep_for(queued_for);
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

  // Predecessor mode: no holder_changed event; our key behind another in the manager's stats (any thread).
  static void poll_queued(const lock_manager& waiter) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    for (;;) {
      const auto place = waiter.stats().queue_position;
      if (place && *place >= 1) return;
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("in-process, predecessor: timed out waiting for the waiter to queue");
      std::this_thread::sleep_for(500us);
    }
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
class cross_process_pair : public handoff_pair {
 public:
  cross_process_pair(context& ctx, watch_scope watch) {
    std::vector<std::string> argv = {ctx.peer_bin, "lock", ctx.endpoint, "bench-handoff-xproc", "10"};
    if (watch == watch_scope::predecessor) {
      argv[3] += "-pred";
      argv.insert(argv.end(), {"--watch", "predecessor"});
    }
    peers_[0] = std::make_unique<child>(argv);
    peers_[0]->expect("ACQUIRED", 30s);
    peers_[1] = std::make_unique<child>(argv);  // contends at once: the first hand-off's waiter
    peers_[1]->expect("QUEUED", 30s);
    release(1);  // untimed: from here on the idle one contends at the start of each hand-off
  }
  ~cross_process_pair() override {
    for (auto& p : peers_) {
      p->send("quit");
      p->wait(5s);
    }
  }

  double handoff(std::chrono::milliseconds queued_for) override {
    auto& waiter = *peers_[1 - holder_];
    waiter.send("contend");
    waiter.expect("QUEUED", 30s);
    std::this_thread::sleep_for(queued_for);
    return release(1 - holder_);
  }

 private:
  double release(int waiter_index) {
    auto& holder = *peers_[holder_];
    auto& waiter = *peers_[waiter_index];
    holder.send("release");
    const auto start = stamp_of(holder.expect("RELEASE ", 10s));
    const auto end = stamp_of(waiter.expect("ACQUIRED", 10s));
    holder.expect("RELEASED", 10s);
    holder_ = waiter_index;
    return static_cast<double>(end - start) / 1e6;
  }

  std::array<std::unique_ptr<child>, 2> peers_;
  int holder_ = 0;
};

// etcd's Go recipe: one go_recipe process with two mutexes, driven as the peers are.
class go_pair : public handoff_pair {
 public:
  explicit go_pair(context& ctx) : go_({ctx.go_bin, "handoff", ctx.endpoint, "bench-handoff-go"}) {
    go_.expect("ACQUIRED", 30s);
  }
  ~go_pair() override {
    go_.send("quit");
    go_.wait(5s);
  }

  double handoff(std::chrono::milliseconds queued_for) override {
    go_.send("contend");
    go_.expect("QUEUED", 30s);
    std::this_thread::sleep_for(queued_for);
    go_.send("release");
    const auto start = stamp_of(go_.expect("RELEASE ", 10s));
    const auto end = stamp_of(go_.expect("ACQUIRED", 10s));
    return static_cast<double>(end - start) / 1e6;
  }

 private:
  child go_;
};

}  // namespace

void library_handoff(context& ctx) {
  struct regime {
    std::chrono::milliseconds queued_for;
    int handoffs;
  };
  // The long regime costs its delay per hand-off: fewer of them.
  const std::vector<regime> regimes = {{20ms, ctx.quick ? 16 : 150}, {250ms, ctx.quick ? 6 : 60}};
  const bool have_go = !ctx.go_bin.empty();
  if (!have_go) log("library hand-off: no Go recipe (--go): measuring ours only");

  struct variant {
    std::string mode;  // CSV: "in-process", "cross-process", the same with "-predecessor", "go-recipe"
    std::unique_ptr<handoff_pair> pair;
  };
  std::vector<variant> variants;
  variants.push_back({"in-process", std::make_unique<in_process_pair>(ctx.endpoint, watch_scope::line)});
  variants.push_back({"cross-process", std::make_unique<cross_process_pair>(ctx, watch_scope::line)});
  variants.push_back(
      {"in-process-predecessor", std::make_unique<in_process_pair>(ctx.endpoint, watch_scope::predecessor)});
  variants.push_back(
      {"cross-process-predecessor", std::make_unique<cross_process_pair>(ctx, watch_scope::predecessor)});
  if (have_go) variants.push_back({"go-recipe", std::make_unique<go_pair>(ctx)});
  for (auto& v : variants) v.pair->handoff(20ms);  // warm-up, untimed

  // samples[regime][mode]
  std::map<int, std::map<std::string, std::vector<double>>> samples;
  std::vector<std::vector<std::string>> csv;
  int most = 0;
  for (const auto& r : regimes) most = std::max(most, r.handoffs);
  for (int i = 0; i < most; ++i) {
    for (const auto& r : regimes) {
      if (i >= r.handoffs) continue;
      for (std::size_t k = 0; k < variants.size(); ++k) {
        auto& v = variants[(k + static_cast<std::size_t>(i)) % variants.size()];  // alternate who goes first
        const double ms = v.pair->handoff(r.queued_for);
        const auto q = static_cast<int>(r.queued_for.count());
        samples[q][v.mode].push_back(ms);
        csv.push_back({std::to_string(i), std::to_string(q), v.mode, fixed(ms, 3)});
      }
    }
  }
  write_csv(ctx.out("library_handoff.csv"), {"handoff", "queued_ms", "mode", "handoff_ms"}, csv);
  std::vector<std::pair<std::string, std::vector<double>>> cdf;
  for (const auto& r : regimes)
    for (const auto& v : variants) {
      const auto q = static_cast<int>(r.queued_for.count());
      cdf.push_back({v.mode + " " + std::to_string(q), samples[q][v.mode]});
    }
  write_cdf_csv(ctx.out("library_handoff_cdf.csv"), cdf);

  for (const auto& r : regimes) {
    const auto q = static_cast<int>(r.queued_for.count());
    const std::string bench = "2 library hand-off, waiter queued " + std::to_string(q) + " ms (ms)";
    const std::string n = std::to_string(r.handoffs) + " hand-offs each, interleaved";
    std::optional<summary> go;
    if (have_go) go = summarize(samples[q]["go-recipe"]);
    auto anchor = [&](double summary::*field) { return go ? std::optional<double>((*go).*field) : std::nullopt; };
    const std::string go_name = have_go ? "Go recipe, one process" : "";
    // The line rows as before; the predecessor rows the same way, their metrics marked.
    const std::array<std::string, 2> scopes = {"", "-predecessor"};
    for (const auto& scope : scopes) {
      const auto local = summarize(samples[q]["in-process" + scope]);
      const auto remote = summarize(samples[q]["cross-process" + scope]);
      const std::string mark = scope.empty() ? "" : ", predecessor";
      ctx.add({bench, "median, in one process" + mark, local.median, anchor(&summary::median), go_name, "<= 2 ms",
               local.median <= 2.0, n});
      ctx.add({bench, "p90, in one process" + mark, local.p90, anchor(&summary::p90), go_name, "", std::nullopt, ""});
      const std::string go_max = go ? ", Go's " + fixed(go->max, 2) + " ms" : "";
      ctx.add({bench, "p99, in one process" + mark, local.p99, anchor(&summary::p99), go_name, "<= 10 ms",
               local.p99 <= 10.0, "max " + fixed(local.max, 2) + " ms" + go_max});
      ctx.add({bench, "median, across processes" + mark, remote.median, std::nullopt, "", "<= 2 ms",
               remote.median <= 2.0, ""});
      ctx.add({bench, "p99, across processes" + mark, remote.p99, std::nullopt, "", "<= 10 ms", remote.p99 <= 10.0,
               "max " + fixed(remote.max, 2) + " ms"});
    }
  }
}

}  // namespace clusterlock::bench
