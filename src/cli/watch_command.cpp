// clusterlock watch: the lock's events as they happen, one line each (text or JSON), until a signal or --count.
// Its loop is also elect --listen's (follow_events.hpp), which prints other lines.

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/follow_events.hpp"
#include "cli/lock_options.hpp"
#include "cli/output.hpp"
#include "cli/shutdown.hpp"
#include "cli/stats_json.hpp"

#include <clusterlock/lock_manager.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <signal.h>

#include <algorithm>

namespace clusterlock::cli {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using boost::system::error_code;

const char* event_name(lock_event::kind_type k) {
  switch (k) {
    case lock_event::acquired: return "acquired";
    case lock_event::removed: return "removed";
    case lock_event::unknown: return "unknown";
    case lock_event::holder_changed: return "holder_changed";
  }
  return "?";
}

// watch's line for one event. It follows the oldest key of the name (lock_manager's HOLDER_CHANGED): of a semaphore
// the oldest permit holder, of a read-write lock the oldest reader or the writer (docs/cli.md says so).
std::string watch_line(const lock_event& e, const lock_stats& stats, bool as_json) {
  const auto now = std::chrono::system_clock::now();
  // The holder's key, as the event saw it (the manager's view may have moved on since).
  const bool names_holder = e.kind == lock_event::acquired || e.kind == lock_event::holder_changed;
  const std::string key = names_holder ? e.key : std::string();
  if (as_json) {
    json::object o;
    o["time"] = utc_time(now);
    o["event"] = event_name(e.kind);
    // A semaphore's or read-write lock's oldest key: its identity without `slots=N;` or `rw=...;`, and what it is.
    const bool nobody = e.fencing_token == 0 && e.holder.empty();
    const auto h = read_holder_value(e.holder);
    o["holder"] = nobody ? json::value(nullptr) : json::value(h.identity);
    o["role"] = nobody || !names_holder ? json::value(nullptr) : json::value(h.role);
    if (h.slots != 0 && names_holder) o["slots"] = h.slots;
    o["fencing_token"] = e.fencing_token;
    o["key"] = key.empty() ? json::value(nullptr) : json::value(key);
    o["revision"] = e.revision;
    o["error"] = e.error ? json::value(e.error.message()) : json::value(nullptr);
    o["stats"] = stats_json(stats);
    return json::serialize(o) + "\n";
  }
  return local_time(now) + "  " + describe(e) + (key.empty() ? "" : "  key " + key) + "\n";
}

class watcher {
 public:
  watcher(asio::io_context& io, const parsed_arguments& args, const options& opts, event_printer printer)
      : io_(io),
        args_(args),
        printer_(std::move(printer)),
        log_(args.common),
        opts_(with_diagnostics(opts)),
        lock_(io.get_executor(), opts_),
        signals_(io, SIGINT, SIGTERM),
        first_event_deadline_(io) {}

  int run() {
    signals_.async_wait([this](error_code ec, int sig) {
      if (ec) return;
      log_.info("got " + std::string(sig == SIGINT ? "SIGINT" : "SIGTERM") + ": shutting down");
      finish(exit_code::success);
    });
    asio::co_spawn(io_, handle_events(), asio::detached);
    const auto bound = answer_bound(opts_);
    first_event_deadline_.expires_after(bound);
    first_event_deadline_.async_wait([this, bound](error_code ec) {
      if (ec || seen_event_) return;
      log_.error("no answer from etcd within " +
                 format_duration(std::chrono::duration_cast<std::chrono::milliseconds>(bound)));
      finish(exit_code::etcd_failed);
    });
    lock_.start();
    io_.run();
    return exit_code_;
  }

 private:
  asio::awaitable<void> handle_events() {
    for (;;) {
      auto [ec, event] = co_await lock_.async_wait_event(asio::as_tuple(asio::use_awaitable));
      if (done_) co_return;
      if (ec == errc::events_dropped) {
        log_.error("some events were missed (output too slow)");
        continue;
      }
      if (ec) co_return;
      on_event(event);
    }
  }

  void on_event(const lock_event& e) {
    seen_event_ = true;
    first_event_deadline_.cancel();
    leaseless_.on_event(e, log_);  // on stderr, so that the event lines stay as they are
    const std::string line = printer_(e, lock_.stats());
    if (line.empty()) return;  // an event this printer does not show
    if (!print(line)) {
      finish(exit_code::success);  // the reader is gone (a closed pipe): nothing more to do
      return;
    }
    if (args_.watch.count && ++printed_ >= *args_.watch.count) finish(exit_code::success);
  }

  // The manager's own account of trouble it retries: before the first event, etcd failing us ends the watch (with
  // --contend, so does a refusal that stopped contention); after it, -v shows each.
  options with_diagnostics(options o) {
    o.diagnostics = [this](const diagnostic& d) { on_diagnostic(d); };
    return o;
  }

  void on_diagnostic(const diagnostic& d) {
    if (done_) return;
    trouble_.note(d);
    const bool fails = (etcd_failed(d) && !seen_event_) || (d.source == diagnostic::source_type::contention && d.error);
    if (fails) {
      log_.report_structured(d);
      log_.error(trouble_.describe(d.error, opts_));
      finish(exit_code::etcd_failed);
      return;
    }
    log_.report(d, etcd_failed(d) ? trouble_.describe(d.error, opts_) : d.message);
  }

  void finish(int code) {
    if (done_) return;
    done_ = true;
    exit_code_ = code;
    first_event_deadline_.cancel();
    shut_down_then_stop(lock_, io_, opts_, log_);
  }

  asio::io_context& io_;
  const parsed_arguments& args_;
  event_printer printer_;
  logger log_;
  options opts_;
  etcd_trouble trouble_;
  lock_manager lock_;
  asio::signal_set signals_;
  asio::steady_timer first_event_deadline_;
  bool seen_event_ = false;
  bool done_ = false;
  std::uint64_t printed_ = 0;
  leaseless_notice leaseless_;
  int exit_code_ = exit_code::internal_error;
};

}  // namespace

int follow_events(const parsed_arguments& args, const options& opts, event_printer printer) {
  asio::io_context io;
  watcher w(io, args, opts, std::move(printer));
  return w.run();
}

int watch_command(const parsed_arguments& args) {
  const options opts = make_options(args.common, args.name, args.watch.contend);
  return follow_events(args, opts, [json = args.watch.json](const lock_event& e, const lock_stats& stats) {
    return watch_line(e, stats, json);
  });
}

}  // namespace clusterlock::cli
