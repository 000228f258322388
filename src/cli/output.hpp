#pragma once
// What the command prints: timestamps, lines on stdout that notice a reader gone, and stderr messages
// ("clusterlock: ...") with -v's extra ones.

#include <clusterlock/diagnostics.hpp>
#include <clusterlock/lock_event.hpp>
#include <clusterlock/structured_log.hpp>

#include "cli/arguments.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace clusterlock::cli {

/// "2024-05-01 12:34:56.789", local time: for people.
std::string local_time(std::chrono::system_clock::time_point t);
/// "2024-05-01T10:34:56.789Z", UTC (RFC 3339): for machines.
std::string utc_time(std::chrono::system_clock::time_point t);

/// Writes `text` to stdout and flushes it. False when that failed (a closed pipe: the reader is gone).
bool print(std::string_view text);

/// A holder's key value read as what it is: a semaphore's permit (`slots=N;...`), a read-write lock's reader or
/// writer (`rw=read;...`, `rw=write;...`), else a lock's holder. The key's value is all a watcher of the oldest key
/// sees, so a plain lock's identity that happens to start so reads the same.
struct holder_value {
  const char* role = "holder";  ///< "holder", "permit holder", "reader" or "writer"
  std::string identity;         ///< without the prefix
  std::size_t slots = 0;        ///< a permit's: the semaphore's number of slots; else 0
};
holder_value read_holder_value(const std::string& value);

/// "holder: alice (fencing token 12)", "ACQUIRED (fencing token 12)", ...: one event in words. A HOLDER_CHANGED to
/// a semaphore's or read-write lock's key names what it is: "oldest permit holder: alice (fencing token 12, 3
/// slots)", "oldest reader: alice (...)", "writer: bob (...)".
std::string describe(const lock_event& e);

/// A holder's identity for people: "(no identity)" when its key's value is empty (etcdctl lock's keys), the same
/// words in every command (JSON keeps the value itself).
std::string identity_text(const std::string& identity);

/// etcd's lease ID in hex, as `etcdctl lease` shows it and as our keys end: "694d8a1b2c3d4e5f".
std::string lease_hex(std::int64_t lease);

/// For a key put by hand without a lease (`etcdctl put NAME/x v`): no TTL ends it, and every lock waits behind it.
std::string leaseless_note(const std::string& key);

/// Messages on stderr, prefixed "clusterlock: ". info() only with -v, and with a timestamp. The library's
/// diagnostics only with -v too: in words, or (--log-format logfmt or json) as structured_log's lines.
class logger {
 public:
  explicit logger(bool verbose, std::optional<log_format> structured = std::nullopt);
  explicit logger(const common_arguments& args) : logger(args.verbose, args.structured) {}
  bool verbose() const noexcept { return verbose_; }
  void error(std::string_view message) const;
  void info(std::string_view message) const;
  /// The library's diagnostic `d`: its structured line, or info(words).
  void report(const diagnostic& d, std::string_view words) const;
  /// Only `d`'s structured line, if there is one: for a diagnostic the command says in its own words by error().
  void report_structured(const diagnostic& d) const;

 private:
  bool verbose_;
  diagnostics_handler structured_;  // empty: text
};

/// Says leaseless_note once per such key as holders change: on stderr and always, not only with -v, since
/// otherwise the wait behind it is silent and endless.
class leaseless_notice {
 public:
  void on_event(const lock_event& e, const logger& log);
  bool told(const std::string& key) const { return told_ == key; }

 private:
  std::string told_;
};

}  // namespace clusterlock::cli
