// 4. Uncontended acquire + release cycles per second, against the floor of two etcd writes.
//
// A cycle: a new lock_manager on a shared session (its lease and watch already stand), start, wait for ACQUIRED,
// async_shutdown, destroy. On a shared session that costs two writes: the enqueue txn (create our key and read the
// queue) and the release txn (delete our key if its create revision is still ours).
// The floor: a plain put and a delete of one key on one gateway client connection, sequentially: the two writes
// with nothing around them. Both run on one io_context on this thread, in alternating blocks.
#include <clusterlock/clusterlock.hpp>
#include <clusterlock/etcd/client.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <functional>
#include <sstream>
#include <stdexcept>

#include "bench.hpp"
#include "recipe/lock_recipe.hpp"

namespace clusterlock::bench {

namespace {

namespace asio = boost::asio;

void run_until(asio::io_context& io, const std::function<bool()>& done, const char* what) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error(std::string("cycles: timed out: ") + what);
    // An io_context that ran out of work stops (e.g. after the first grant, before the session has anything
    // outstanding) and then returns at once from every run: restart it, or this loop spins until the deadline.
    if (io.stopped()) io.restart();
    io.run_one_for(100ms);
  }
}

}  // namespace

void acquire_cycles(context& ctx) {
  const int rounds = ctx.quick ? 2 : 6;
  const int per_block = ctx.quick ? 30 : 100;
  asio::io_context io;
  session_options so;
  so.endpoints = {ctx.endpoint};
  so.watch_prefix = "bench-cycle/";
  session shared(io.get_executor(), so);
  auto config = [&] {
    etcd::client_config c;
    c.endpoints = {ctx.endpoint};
    return c;
  };
  etcd::client floor_client(io.get_executor(), config());
  options lock_opts;
  lock_opts.name = "bench-cycle/lock";

  // Where a lock cycle's time goes: start() -> ACQUIRED, and async_shutdown -> its completion.
  std::vector<double> acquire_ms, release_ms, enqueue_ms, release_txn_ms;
  auto lock_cycle = [&] {
    bool acquired = false, released = false;
    const auto t0 = now_ns();
    auto lock = std::make_unique<lock_manager>(shared, lock_opts);
    lock->on_acquired([&](const lock_event&) { acquired = true; });
    lock->start();
    run_until(io, [&] { return acquired; }, "ACQUIRED");
    const auto t1 = now_ns();
    lock->async_shutdown([&](boost::system::error_code ec) {
      if (ec) throw boost::system::system_error(ec, "async_shutdown");
      released = true;
    });
    run_until(io, [&] { return released; }, "shutdown");
    const auto t2 = now_ns();
    lock.reset();
    acquire_ms.push_back(static_cast<double>(t1 - t0) / 1e6);
    release_ms.push_back(static_cast<double>(t2 - t1) / 1e6);
  };
  auto floor_cycle = [&] {
    bool done = false;
    etcd::put_request put;
    put.key = "bench-floor/key";
    put.value = "x";
    floor_client.async_put(put, [&](boost::system::error_code ec, etcd::put_response) {
      if (ec) throw boost::system::system_error(ec, "put");
      etcd::delete_range_request del;
      del.key = "bench-floor/key";
      floor_client.async_delete_range(del, [&](boost::system::error_code ec2, etcd::delete_range_response) {
        if (ec2) throw boost::system::system_error(ec2, "delete");
        done = true;
      });
    });
    run_until(io, [&] { return done; }, "put+delete");
  };

  // Diagnostics: the lock's own two txns (src/recipe, as the manager sends them) without the manager, with and
  // without a watch on their prefix: they split the gap between the floor and ours into its causes.
  etcd::client txn_client(io.get_executor(), config());
  etcd::client watched_client(io.get_executor(), config());
  auto grant = [&](etcd::client& c) {
    std::optional<std::int64_t> id;
    c.async_lease_grant(60s, [&](boost::system::error_code ec, etcd::lease_grant_response r) {
      if (ec) throw boost::system::system_error(ec, "grant");
      id = r.id;
    });
    run_until(io, [&] { return id.has_value(); }, "grant");
    return *id;
  };
  const std::int64_t txn_lease = grant(txn_client);
  const std::int64_t watched_lease = grant(watched_client);
  auto txn_cycle = [&](etcd::client& c, const std::string& prefix, std::int64_t lease) {
    bool done = false;
    auto cycle = [&]() -> asio::awaitable<void> {
      const std::string key = recipe::lock_key(prefix, lease);
      const auto t0 = now_ns();
      auto snap = co_await recipe::enqueue(c, prefix, key, "bench", lease);
      const auto t1 = now_ns();
      if (!snap) throw boost::system::system_error(snap.error(), "enqueue");
      std::int64_t mine = 0;
      for (const auto& k : snap->keys)
        if (k.key == key) mine = k.create_revision;
      auto released = co_await recipe::release(c, key, mine);
      if (!released) throw boost::system::system_error(released.error(), "release");
      if (&c == &watched_client) {  // the same etcd work as a lock cycle: the watch sees both writes
        enqueue_ms.push_back(static_cast<double>(t1 - t0) / 1e6);
        release_txn_ms.push_back(static_cast<double>(now_ns() - t1) / 1e6);
      }
      done = true;
    };
    // The lambda itself goes to co_spawn, which keeps it (and so its captures) alive as long as the coroutine: a
    // coroutine lambda called here would read its captures from a lambda object that dies with this scope.
    asio::co_spawn(io, std::move(cycle), asio::detached);
    run_until(io, [&] { return done; }, "txns");
  };
  // A watch on the watched txns' prefix, read until the end (as the session's watch would be).
  etcd::watch_stream watch(watched_client);
  bool open = false, watching = true;
  {
    auto opener = [&]() -> asio::awaitable<void> {
      etcd::watch_request req;
      req.key = "bench-watched/";
      req.range_end = etcd::prefix_range_end(req.key);
      auto r = co_await watch.open(req);
      if (!r) throw boost::system::system_error(r.error(), "watch");
      open = true;
      for (;;) {
        auto m = co_await watch.next(std::chrono::milliseconds::zero());
        if (!m) co_return;
      }
    };
    // Not opener(): the coroutine outlives this block and reads its captures from the lambda object, which co_spawn
    // keeps alive only when it is given the lambda itself (issue 12: a SIGSEGV at -O3).
    asio::co_spawn(io, std::move(opener), [&](std::exception_ptr) { watching = false; });
    run_until(io, [&] { return open; }, "watch");
  }

  struct kind {
    const char* name;
    std::function<void()> cycle;
    double seconds = 0;
    double last_rate = 0;
  };
  std::vector<kind> kinds = {
      {"lock acquire+release", lock_cycle},
      {"put+delete floor", floor_cycle},
      {"lock txns without watch", [&] { txn_cycle(txn_client, "bench-txn/lock/", txn_lease); }},
      {"lock txns with watch", [&] { txn_cycle(watched_client, "bench-watched/lock/", watched_lease); }},
  };

  // Warm-up: the session's lease and watch, every client's connection.
  for (int i = 0; i < 5; ++i)
    for (auto& k : kinds) k.cycle();
  acquire_ms.clear();
  release_ms.clear();
  enqueue_ms.clear();
  release_txn_ms.clear();

  // etcd's Go recipe, one Lock+Unlock after the other on one session for a second each round (its own process:
  // Go's client and its gRPC connection).
  double go_cycles = 0, go_seconds = 0;
  auto go_block = [&](int round, std::vector<std::vector<std::string>>& csv) {
    if (ctx.go_bin.empty()) return;
    child go({ctx.go_bin, "cycles", ctx.endpoint, "bench-cycle-go/lock", "1"});
    std::istringstream line(go.expect("CYCLES", 30s));
    std::string word;
    double n = 0, seconds = 0;
    line >> word >> n >> seconds;
    go_cycles += n;
    go_seconds += seconds;
    csv.push_back({std::to_string(round), "Go recipe", fixed(n, 0), fixed(seconds, 4), fixed(n / seconds, 1)});
  };

  std::vector<std::vector<std::string>> csv;
  std::vector<double> round_ratios;
  for (int round = 0; round < rounds; ++round) {
    if (round % 2 == 0) go_block(round, csv);
    for (std::size_t j = 0; j < kinds.size(); ++j) {
      auto& k = kinds[(j + static_cast<std::size_t>(round)) % kinds.size()];  // rotate who goes first
      const auto begin = now_ns();
      for (int i = 0; i < per_block; ++i) k.cycle();
      const double seconds = static_cast<double>(now_ns() - begin) / 1e9;
      k.seconds += seconds;
      k.last_rate = per_block / seconds;
      csv.push_back({std::to_string(round), k.name, std::to_string(per_block), fixed(seconds, 4), fixed(k.last_rate, 1)});
    }
    if (round % 2 == 1) go_block(round, csv);
    round_ratios.push_back(kinds[0].last_rate / kinds[1].last_rate);
  }
  watch.close();
  // Let the reader end while the stream and its client live: a frame left to the io_context's destructor would
  // close the stream after them (a SIGSEGV at -O3 once watch_stream::next closed on every way out).
  run_until(io, [&] { return !watching; }, "watch end");
  write_csv(ctx.out("acquire_cycles.csv"), {"round", "kind", "cycles", "seconds", "cycles_per_s"}, csv);

  const double total = static_cast<double>(rounds * per_block);
  const std::string bench = "4 uncontended acquire+release";
  result_row row{bench, "cycles/s", total / kinds[0].seconds, total / kinds[1].seconds, "put+delete floor",
                 ">= 0.8x floor", std::nullopt,
                 std::to_string(rounds) + " rounds x " + std::to_string(per_block) + " cycles, interleaved; per-round ratio median " +
                     fixed(summarize(round_ratios).median, 2),
                 1};
  row.met = *row.ratio() >= 0.8;
  ctx.add(row);
  if (go_seconds > 0)
    ctx.add({bench, "cycles/s against Go's", total / kinds[0].seconds, go_cycles / go_seconds, "Go recipe", "",
             std::nullopt, "Go: Lock+Unlock on one session, a second a round, interleaved", 1});
  ctx.add({bench, "median ms: start() -> ACQUIRED", summarize(acquire_ms).median, summarize(enqueue_ms).median,
           "enqueue txn, watched", "", std::nullopt, "the manager's own cost per half cycle: the difference", 3});
  ctx.add({bench, "median ms: async_shutdown -> done", summarize(release_ms).median, summarize(release_txn_ms).median,
           "release txn, watched", "", std::nullopt, "", 3});
  for (std::size_t j = 2; j < kinds.size(); ++j)
    ctx.add({bench, std::string("diagnostic: ") + kinds[j].name + " (cycles/s)", total / kinds[j].seconds,
             total / kinds[1].seconds, "put+delete floor", "", std::nullopt, "same requests as the lock, no manager", 1});
}

}  // namespace clusterlock::bench
