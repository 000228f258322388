#include "cli/output.hpp"

#include "recipe/rw_value.hpp"
#include "recipe/slots_value.hpp"

#include <cstdio>
#include <ctime>

namespace clusterlock::cli {
namespace {

std::string format(std::chrono::system_clock::time_point t, bool utc) {
  const auto secs = std::chrono::system_clock::to_time_t(t);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  std::tm parts{};
  if (utc) {
    ::gmtime_r(&secs, &parts);
  } else {
    ::localtime_r(&secs, &parts);
  }
  char buffer[64];
  const std::size_t n = std::strftime(buffer, sizeof buffer, utc ? "%Y-%m-%dT%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &parts);
  std::snprintf(buffer + n, sizeof buffer - n, utc ? ".%03dZ" : ".%03d", static_cast<int>(ms < 0 ? ms + 1000 : ms));
  return buffer;
}

void to_stderr(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace

std::string local_time(std::chrono::system_clock::time_point t) { return format(t, false); }
std::string utc_time(std::chrono::system_clock::time_point t) { return format(t, true); }

bool print(std::string_view text) {
  const bool written = std::fwrite(text.data(), 1, text.size(), stdout) == text.size();
  return std::fflush(stdout) == 0 && written;
}

holder_value read_holder_value(const std::string& value) {
  if (const auto permit = recipe::decode_slots(value); permit.slots != 0)
    return {"permit holder", std::string(permit.identity), permit.slots};
  if (value.starts_with("rw=")) {
    // Only `rw=read;` makes a reader (rw_value.hpp); `rw=write;` and any other `rw=...` a writer.
    const auto rw = recipe::decode_rw(value);
    return {rw.reader ? "reader" : "writer", std::string(rw.identity), 0};
  }
  return {"holder", value, 0};
}

std::string describe(const lock_event& e) {
  const std::string token = "fencing token " + std::to_string(e.fencing_token);
  switch (e.kind) {
    case lock_event::acquired: return "ACQUIRED: we hold the lock (" + token + ")";
    case lock_event::removed: return "REMOVED: we no longer hold the lock (our key was deleted or our lease expired)";
    case lock_event::unknown:
      return "UNKNOWN: we cannot prove that we still hold the lock (" +
             (e.error ? e.error.message() : std::string("etcd unreachable or too slow")) + ")";
    case lock_event::holder_changed: {
      if (e.fencing_token == 0) return "holder: nobody holds the lock";
      const auto h = read_holder_value(e.holder);
      if (h.slots != 0)
        return "oldest permit holder: " + identity_text(h.identity) + " (" + token + ", " + std::to_string(h.slots) +
               " slots)";
      const std::string role = h.role == std::string_view("reader") ? "oldest reader" : h.role;
      return role + ": " + identity_text(h.identity) + " (" + token + ")";
    }
  }
  return "?";
}

logger::logger(bool verbose, std::optional<log_format> structured)
    : verbose_(verbose), structured_(verbose && structured ? structured_log(*structured) : diagnostics_handler()) {}

// With -v every line has a timestamp, errors too: the lines are read as one log.
void logger::error(std::string_view message) const {
  to_stderr("clusterlock: " + (verbose_ ? local_time(std::chrono::system_clock::now()) + " " : std::string()) +
            std::string(message) + "\n");
}

void logger::info(std::string_view message) const {
  if (!verbose_) return;
  to_stderr("clusterlock: " + local_time(std::chrono::system_clock::now()) + " " + std::string(message) + "\n");
}

void logger::report(const diagnostic& d, std::string_view words) const {
  if (structured_) return structured_(d);
  info(words);
}

void logger::report_structured(const diagnostic& d) const {
  if (structured_) structured_(d);
}

std::string identity_text(const std::string& identity) { return identity.empty() ? "(no identity)" : identity; }

std::string lease_hex(std::int64_t lease) {
  char buffer[24];
  std::snprintf(buffer, sizeof buffer, "%llx", static_cast<unsigned long long>(lease));
  return buffer;
}

std::string leaseless_note(const std::string& key) {
  return "key " + key + " has no lease: it stays until deleted, and the lock waits behind it (etcdctl del " + key + ")";
}

void leaseless_notice::on_event(const lock_event& e, const logger& log) {
  if (e.kind != lock_event::holder_changed || e.fencing_token == 0 || e.lease != 0 || e.key == told_) return;
  told_ = e.key;
  log.error(leaseless_note(e.key));
}

}  // namespace clusterlock::cli
