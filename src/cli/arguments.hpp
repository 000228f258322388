#pragma once
// The command line of `clusterlock`: subcommands, options, durations, and the help texts. Parsing does no I/O and
// never exits: it returns what was asked, or throws usage_error with a message for the user.

#include <clusterlock/options.hpp>
#include <clusterlock/structured_log.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace clusterlock::cli {

enum class subcommand { run, status, watch, elect, put, del };

/// Options every subcommand takes.
struct common_arguments {
  std::vector<std::string> endpoints;  ///< --endpoints, else $CLUSTERLOCK_ENDPOINTS, else http://127.0.0.1:2379
  std::chrono::seconds ttl{10};
  std::chrono::milliseconds request_timeout{1000};
  std::string cacert;
  std::string cert;
  std::string key;
  std::string user;  ///< the password never comes from the command line (see password.hpp)
  std::string identity;
  bool verbose = false;
  std::optional<log_format> structured;  ///< --log-format logfmt or json: -v's diagnostic lines; none: text
};

/// run --read, run --write: a read-write lock's mode; none: not a read-write lock.
enum class rw_mode { none, read, write };

struct run_arguments {
  std::chrono::milliseconds grace{5000};
  std::optional<std::chrono::milliseconds> timeout;  ///< none: wait for the lock as long as it takes
  std::vector<std::string> command;                  ///< COMMAND [ARGS...], never empty
  std::size_t slots = 0;  ///< --slots N: a permit of a semaphore of N (at most N commands at once); 0: the lock
  rw_mode rw = rw_mode::none;  ///< --read, --write: NAME's read-write lock in that mode (excludes --slots)
  watch_scope watch = watch_scope::line;  ///< --watch (run and elect): predecessor only for the plain lock
};

struct status_arguments {
  bool json = false;
};

struct watch_arguments {
  bool json = false;
  bool contend = false;
  std::optional<std::uint64_t> count;  ///< exit after this many events
};

/// elect NAME PROPOSAL [COMMAND...] campaigns (run's grace, timeout and command apply); elect --listen NAME observes.
struct elect_arguments {
  bool listen = false;
  bool json = false;     ///< --listen only
  std::string proposal;  ///< our key's value (the options' identity); empty with --listen
};

/// put --fenced KEY VALUE, del --fenced KEY: one write, guarded by $CLUSTERLOCK_KEY's create revision.
struct fenced_arguments {
  std::string key;
  std::string value;  ///< put only
};

struct parsed_arguments {
  enum class action { show_help, show_version, run, status, watch, elect, put, del };
  action what = action::show_help;
  std::optional<subcommand> help_for;  ///< show_help: the subcommand whose help, none: the command's
  common_arguments common;
  std::string name;  ///< the lock's name (the election's for elect; empty for put and del)
  run_arguments run;  ///< also elect's (command empty: elect without COMMAND)
  status_arguments status;
  watch_arguments watch;
  elect_arguments elect;
  fenced_arguments fenced;
};

/// Bad usage. The message says what is wrong; `subcommand` (if known) names where to look for help.
class usage_error : public std::runtime_error {
 public:
  usage_error(const std::string& message, std::optional<subcommand> where)
      : std::runtime_error(message), where_(where) {}
  std::optional<subcommand> where() const noexcept { return where_; }

 private:
  std::optional<subcommand> where_;
};

/// Parses argv[1..]. `endpoints_from_environment` is $CLUSTERLOCK_ENDPOINTS (none: unset).
parsed_arguments parse_arguments(const std::vector<std::string>& args,
                                 const std::optional<std::string>& endpoints_from_environment);

/// "5s", "500ms", "2m", "1h", "1.5s" or a plain number of seconds ("10", "0.25"). None: not a duration.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
/// "1.5s", "500ms", "2m": the shortest of our own spellings, for messages.
std::string format_duration(std::chrono::milliseconds d);

/// The help text: of the command (none) or of one subcommand.
std::string help_text(std::optional<subcommand> which);
const char* to_string(subcommand s) noexcept;

}  // namespace clusterlock::cli
