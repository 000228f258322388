// clusterlock status: the holder and the queue, as an observer sees them at its first look.

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/lock_options.hpp"
#include "cli/output.hpp"
#include "cli/shutdown.hpp"
#include "cli/stats_json.hpp"
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

json::object entry_json(const lock_entry& e) {
  return {{"identity", e.identity}, {"fencing_token", e.fencing_token}, {"key", e.key}, {"lease", lease_hex(e.lease)}};
}

// A semaphore's line (run --slots): the oldest key's value says `slots=N;`. 0: a lock's.
std::size_t slots_of(const std::vector<lock_entry>& queue) {
  return queue.empty() ? 0 : recipe::decode_slots(queue.front().identity).slots;
}

// How many of the first keys hold permits: up to N, as long as they agree on N (a contender that disagrees leaves).
std::size_t permits_held(const std::vector<lock_entry>& queue, std::size_t slots) {
  std::size_t n = 0;
  while (n < queue.size() && n < slots && recipe::decode_slots(queue[n].identity).slots == slots) ++n;
  return n;
}

std::string as_json(const std::string& name, std::vector<lock_entry> queue, const lock_stats& stats) {
  const std::size_t slots = slots_of(queue);
  json::object out;
  out["name"] = name;
  if (slots != 0) {  // a semaphore: its permit holders, the rest waiting; identities without `slots=N;`
    const std::size_t held = permits_held(queue, slots);
    for (auto& e : queue) e.identity = std::string(recipe::decode_slots(e.identity).identity);
    json::array holders, waiters;
    for (std::size_t i = 0; i < queue.size(); ++i) (i < held ? holders : waiters).push_back(entry_json(queue[i]));
    out["slots"] = slots;
    out["holders"] = std::move(holders);
    out["waiters"] = std::move(waiters);
  } else {
    json::array waiters;
    for (std::size_t i = 1; i < queue.size(); ++i) waiters.push_back(entry_json(queue[i]));
    out["holder"] = queue.empty() ? json::value(nullptr) : json::value(entry_json(queue.front()));
    out["waiters"] = std::move(waiters);
  }
  out["stats"] = stats_json(stats);
  return json::serialize(out) + "\n";
}

std::string as_table(const std::string& name, const std::vector<lock_entry>& queue) {
  if (queue.empty()) return "lock \"" + name + "\" is free: nobody holds it, nobody waits\n";
  const auto& holder = queue.front();
  const std::size_t slots = slots_of(queue), held = permits_held(queue, slots);
  std::string out =
      slots != 0 ? "semaphore \"" + name + "\" (" + std::to_string(slots) + " slots): " + std::to_string(held) +
                       " of " + std::to_string(slots) + " permits held, " + std::to_string(queue.size() - held) +
                       " waiting\n\n"
                 : "lock \"" + name + "\" is held by " + identity_text(holder.identity) + " (fencing token " +
                       std::to_string(holder.fencing_token) + "), " + std::to_string(queue.size() - 1) + " waiting\n\n";
  std::vector<std::vector<std::string>> rows = {{"POSITION", "IDENTITY", "FENCING TOKEN", "LEASE", "KEY"}};
  for (std::size_t i = 0; i < queue.size(); ++i) {
    const auto& e = queue[i];
    const std::string position = slots != 0 ? (i < held ? "permit" : std::to_string(i - held + 1))
                                            : (i == 0 ? "holder" : std::to_string(i));
    const std::string identity = slots != 0 ? std::string(recipe::decode_slots(e.identity).identity) : e.identity;
    rows.push_back({position, identity_text(identity), std::to_string(e.fencing_token),
                    e.lease == 0 ? "none" : lease_hex(e.lease), e.key});
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
  for (const auto& e : queue)
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
    const auto queue = lock.queue();
    const bool written = print(args.status.json ? as_json(opts.name, queue, lock.stats()) : as_table(opts.name, queue));
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
