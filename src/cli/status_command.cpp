// clusterlock status: the holder (or holders) and the queue, as an observer sees them at its first look.

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/lock_options.hpp"
#include "cli/output.hpp"
#include "cli/shutdown.hpp"
#include "cli/stats_json.hpp"
#include "recipe/rw_value.hpp"
#include "recipe/slots_value.hpp"

#include <clusterlock/lock_manager.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <cstdio>
#include <functional>

namespace clusterlock::cli {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using boost::system::error_code;

// What the keys of NAME are: a lock's, a semaphore's (run --slots) or a read-write lock's (run --read, --write), as
// the oldest key's value says; who of them holds; identities without the `slots=N;` or `rw=...;` prefix.
struct line_view {
  enum class kind { lock, semaphore, rw_lock };
  kind what = kind::lock;
  std::size_t slots = 0;             // a semaphore's
  std::size_t held = 0;              // the first `held` entries hold (a permit, the read lock, or the lock)
  std::vector<lock_entry> entries;   // oldest first
  std::vector<bool> readers;         // a read-write lock's: which entries are readers
};

const char* kind_name(line_view::kind k) {
  switch (k) {
    case line_view::kind::lock: return "lock";
    case line_view::kind::semaphore: return "semaphore";
    case line_view::kind::rw_lock: return "rw_lock";
  }
  return "?";
}

line_view view_of(std::vector<lock_entry> queue) {
  line_view v;
  v.entries = std::move(queue);
  auto& q = v.entries;
  if (q.empty()) return v;
  if ((v.slots = recipe::decode_slots(q.front().identity).slots) != 0) {
    v.what = line_view::kind::semaphore;
    // Up to N of the first keys hold permits, as long as they agree on N (a contender that disagrees leaves).
    while (v.held < q.size() && v.held < v.slots && recipe::decode_slots(q[v.held].identity).slots == v.slots) ++v.held;
    for (auto& e : q) e.identity = std::string(recipe::decode_slots(e.identity).identity);
  } else if (q.front().identity.starts_with("rw=")) {
    // rw_lock's rule: every reader ahead of the first writer holds, or that writer alone when it is first. Any value
    // but `rw=read;...` is a writer's (a plain lock's, etcdctl lock's).
    v.what = line_view::kind::rw_lock;
    for (auto& e : q) {
      const auto decoded = recipe::decode_rw(e.identity);
      v.readers.push_back(decoded.reader);
      e.identity = std::string(decoded.identity);
    }
    while (v.held < q.size() && v.readers[v.held]) ++v.held;
    if (v.held == 0) v.held = 1;
  } else {
    v.held = 1;
  }
  return v;
}

json::object entry_json(const line_view& v, std::size_t i) {
  const auto& e = v.entries[i];
  json::object o{{"identity", e.identity}};
  if (v.what == line_view::kind::rw_lock) o["mode"] = v.readers[i] ? "read" : "write";
  o["fencing_token"] = e.fencing_token;
  o["key"] = e.key;
  o["lease"] = lease_hex(e.lease);
  return o;
}

std::string as_json(const std::string& name, const line_view& v, const lock_stats& stats) {
  json::object out;
  out["name"] = name;
  out["type"] = kind_name(v.what);
  json::array holders, waiters;
  for (std::size_t i = 0; i < v.entries.size(); ++i) (i < v.held ? holders : waiters).push_back(entry_json(v, i));
  if (v.what == line_view::kind::lock) {  // one holder, or null
    out["holder"] = holders.empty() ? json::value(nullptr) : json::value(std::move(holders.front()));
  } else {
    if (v.what == line_view::kind::semaphore) out["slots"] = v.slots;
    out["holders"] = std::move(holders);
  }
  out["waiters"] = std::move(waiters);
  out["stats"] = stats_json(stats);
  return json::serialize(out) + "\n";
}

std::string headline(const std::string& name, const line_view& v) {
  const auto& first = v.entries.front();
  const std::string waiting = std::to_string(v.entries.size() - v.held) + " waiting\n\n";
  const std::string token = " (fencing token " + std::to_string(first.fencing_token) + "), ";
  switch (v.what) {
    case line_view::kind::semaphore:
      return "semaphore \"" + name + "\" (" + std::to_string(v.slots) + " slots): " + std::to_string(v.held) + " of " +
             std::to_string(v.slots) + " permits held, " + waiting;
    case line_view::kind::rw_lock:
      if (!v.readers.front())
        return "read-write lock \"" + name + "\" is held for writing by " + identity_text(first.identity) + token +
               waiting;
      return "read-write lock \"" + name + "\" is held for reading by " + std::to_string(v.held) +
             (v.held == 1 ? " reader, " : " readers, ") + waiting;
    case line_view::kind::lock: break;
  }
  return "lock \"" + name + "\" is held by " + identity_text(first.identity) + token + waiting;
}

std::string as_table(const std::string& name, const line_view& v) {
  if (v.entries.empty()) return "lock \"" + name + "\" is free: nobody holds it, nobody waits\n";
  std::string out = headline(name, v);
  const bool rw = v.what == line_view::kind::rw_lock;
  std::vector<std::vector<std::string>> rows = {{"POSITION", "IDENTITY", "FENCING TOKEN", "LEASE", "KEY"}};
  if (rw) rows.front().insert(rows.front().begin() + 1, "MODE");
  const std::string holds = v.what == line_view::kind::semaphore ? "permit" : "holder";
  for (std::size_t i = 0; i < v.entries.size(); ++i) {
    const auto& e = v.entries[i];
    rows.push_back({i < v.held ? holds : std::to_string(i - v.held + 1), identity_text(e.identity),
                    std::to_string(e.fencing_token), e.lease == 0 ? "none" : lease_hex(e.lease), e.key});
    if (rw) rows.back().insert(rows.back().begin() + 1, v.readers[i] ? "read" : "write");
  }
  std::vector<std::size_t> width(rows.front().size(), 0);
  for (const auto& row : rows)
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(width[c] - row[c].size() + 2, ' ');
    }
    out += line + "\n";
  }
  for (const auto& e : v.entries)
    if (e.lease == 0) out += "\n" + leaseless_note(e.key) + "\n";
  return out;
}

}  // namespace

int status_command(const parsed_arguments& args) {
  const logger log(args.common);
  options opts = make_options(args.common, args.name, false);
  // The manager would retry for ever; its diagnostics say why etcd cannot be used, and a failed read fails us at
  // once: the watch's open or the first read, after the client's retries. (Posted, never called before io.run():
  // set below.)
  std::function<void(const diagnostic&)> on_diagnostic;
  opts.diagnostics = [&on_diagnostic](const diagnostic& d) { on_diagnostic(d); };
  asio::io_context io;
  lock_manager lock(io.get_executor(), opts);
  asio::steady_timer deadline(io);
  int exit_code = exit_code::internal_error;
  bool done = false;
  etcd_trouble trouble;

  auto finish = [&](int code) {
    if (done) return;
    done = true;
    exit_code = code;
    deadline.cancel();
    shut_down_then_stop(lock, io, opts, log);
  };

  // An observer's first event is its first look at the queue: the holder (or nobody), with the queue behind it.
  lock.async_wait_event([&](error_code ec, lock_event) {
    if (ec || done) return;
    const auto view = view_of(lock.queue());
    const bool written = print(args.status.json ? as_json(opts.name, view, lock.stats()) : as_table(opts.name, view));
    finish(written ? exit_code::success : exit_code::etcd_failed);
  });
  on_diagnostic = [&](const diagnostic& d) {
    if (done) return;
    trouble.note(d);
    if (!etcd_failed(d)) return log.report(d, d.message);
    log.report_structured(d);
    log.error(trouble.describe(d.error, opts));
    finish(exit_code::etcd_failed);
  };
  const auto bound = answer_bound(opts);
  deadline.expires_after(bound);
  deadline.async_wait([&](error_code ec) {
    if (ec || done) return;
    log.error("no answer from etcd within " + format_duration(std::chrono::duration_cast<std::chrono::milliseconds>(bound)));
    finish(exit_code::etcd_failed);
  });
  lock.start();
  io.run();
  return exit_code;
}

}  // namespace clusterlock::cli
