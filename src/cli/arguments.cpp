#include "cli/arguments.hpp"

#include <clusterlock/etcd/client_config.hpp>

#include <boost/url/parse.hpp>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <utility>

namespace clusterlock::cli {
namespace {

constexpr const char* default_endpoint = "http://127.0.0.1:2379";

// For the commands that contend: run, and watch --contend.
constexpr const char* contender_options_help = R"(  --ttl DURATION           lease TTL, whole seconds (default 10s): how long a crashed holder
                           keeps the lock
  --identity TEXT          what others see as the holder (default: hostname-random UUID)

)";

constexpr const char* common_options_help = R"(Options for every command:
  --endpoints URLS         etcd client URLs, comma-separated (default: $CLUSTERLOCK_ENDPOINTS,
                           else http://127.0.0.1:2379); https:// URLs use TLS
  --request-timeout DURATION
                           deadline of one request to etcd (default 1s)
  --cacert FILE            CA certificate (PEM) that signed etcd's server certificate
  --cert FILE, --key FILE  client certificate and key (PEM), for etcd's --client-cert-auth
  --user NAME              etcd user; the password comes from $CLUSTERLOCK_PASSWORD, else it is
                           asked on the terminal (never from the command line)
  -v, --verbose            log lock events and etcd errors to stderr
  -h, --help               show help
DURATION: 5s, 500ms, 2m, 1h, or a plain number of seconds.
)";

constexpr const char* command_help = R"(Usage: clusterlock COMMAND [OPTIONS] NAME ...

One cluster-wide lock, held in etcd (compatible with `etcdctl lock NAME`).

Commands:
  run NAME -- COMMAND [ARGS...]   wait for the lock NAME, run COMMAND while holding it,
                                  free it when COMMAND ends; stop COMMAND if the lock is lost
  status NAME                     who holds the lock, and who waits for it
  watch NAME                      the lock's events as they happen, one line each
  help [COMMAND]                  this help, or a command's

)";

constexpr const char* command_help_tail = R"(
Run 'clusterlock COMMAND --help' for a command's own options and exit codes.
clusterlock --version prints the version.
)";

constexpr const char* run_help = R"(Usage: clusterlock run [OPTIONS] NAME -- COMMAND [ARGS...]

Waits for the lock NAME, runs COMMAND while holding it, and frees the lock when COMMAND ends.
COMMAND gets CLUSTERLOCK_NAME, CLUSTERLOCK_KEY, CLUSTERLOCK_FENCING_TOKEN and
CLUSTERLOCK_IDENTITY in its environment. If the lock is lost while COMMAND runs, COMMAND's
process group gets SIGTERM, and SIGKILL after the grace period. SIGINT, SIGTERM, SIGHUP and
SIGQUIT are passed on to COMMAND (after --grace, a SIGTERM is followed by SIGKILL); before
COMMAND starts they make clusterlock stop waiting and leave the queue.

Options:
  --timeout DURATION       give up waiting for the lock after DURATION (default: wait forever);
                           0: try once, do not wait if another holds it
  --grace DURATION         time between SIGTERM and SIGKILL (default 5s); 0: SIGKILL at once
)";

constexpr const char* run_help_tail = R"(
Exit status: COMMAND's own (128+N if signal N ended it), or
  122  the lock was lost while COMMAND ran: our key was deleted or our lease expired (REMOVED)
  123  the lock could not be proven any more while COMMAND ran: etcd unreachable (UNKNOWN)
  124  --timeout passed before the lock was acquired (with --timeout 0: another holds it)
  125  clusterlock itself failed
  126  COMMAND cannot be executed       127  COMMAND not found
  128+N  signal N stopped clusterlock while it waited for the lock
  1    etcd refused us (authentication, TLS, permissions)     2  bad usage
)";

constexpr const char* status_help = R"(Usage: clusterlock status [OPTIONS] NAME

Shows who holds the lock NAME (identity, fencing token, key) and who waits for it, in order.
The fencing token is the holder key's create revision: it grows from holder to holder.

Options:
  --json                   one JSON object instead of the table

)";

constexpr const char* status_help_tail = R"(
Exit status: 0 shown, 1 etcd unreachable or refused us (within a few request timeouts), 2 bad usage.
)";

constexpr const char* watch_help = R"(Usage: clusterlock watch [OPTIONS] NAME

Prints one line per event of the lock NAME as it happens, with a timestamp: the current holder
first, then every change of holder. Runs until SIGINT or SIGTERM (or --count events).

Options:
  --json                   one JSON object per line
  --contend                also contend for the lock, and print this contender's
                           ACQUIRED / REMOVED / UNKNOWN events
  --count N                exit after N events
With --contend:
)";

constexpr const char* watch_help_tail = R"(
Exit status: 0 done (count reached, or SIGINT/SIGTERM), 1 etcd unreachable or refused us at the
start, 2 bad usage.
)";

// --- one option of the command line

struct option_spec {
  std::string_view name;  // without the leading dashes
  char short_name;        // 0: none
  bool takes_value;
};

constexpr option_spec common_specs[] = {
    {"endpoints", 0, true}, {"request-timeout", 0, true}, {"cacert", 0, true}, {"cert", 0, true},
    {"key", 0, true},       {"user", 0, true},            {"verbose", 'v', false}, {"help", 'h', false},
};
constexpr option_spec contender_specs[] = {{"ttl", 0, true}, {"identity", 0, true}};
constexpr option_spec run_specs[] = {{"timeout", 0, true}, {"grace", 0, true}};
constexpr option_spec status_specs[] = {{"json", 0, false}};
constexpr option_spec watch_specs[] = {{"json", 0, false}, {"contend", 0, false}, {"count", 0, true}};

template <std::size_t N>
const option_spec* find_in(const option_spec (&specs)[N], std::string_view name, char short_name) {
  for (const auto& s : specs)
    if ((!name.empty() && s.name == name) || (short_name != 0 && s.short_name == short_name)) return &s;
  return nullptr;
}

const option_spec* find_spec(subcommand which, std::string_view name, char short_name) {
  if (auto s = find_in(common_specs, name, short_name)) return s;
  if (which != subcommand::status) {
    if (auto s = find_in(contender_specs, name, short_name)) return s;
  }
  switch (which) {
    case subcommand::run: return find_in(run_specs, name, short_name);
    case subcommand::status: return find_in(status_specs, name, short_name);
    case subcommand::watch: return find_in(watch_specs, name, short_name);
  }
  return nullptr;
}

std::optional<subcommand> subcommand_named(std::string_view word) {
  if (word == "run") return subcommand::run;
  if (word == "status") return subcommand::status;
  if (word == "watch") return subcommand::watch;
  return std::nullopt;
}

std::vector<std::string> split_endpoints(std::string_view csv) {
  std::vector<std::string> out;
  while (!csv.empty()) {
    const auto comma = csv.find(',');
    auto item = csv.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    csv.remove_prefix(comma + 1);
  }
  return out;
}

class parser {
 public:
  parser(subcommand which, parsed_arguments& out) : which_(which), out_(out) {}

  [[noreturn]] void fail(const std::string& message) const { throw usage_error(message, which_); }

  static bool zero_allowed(const option_spec& spec) { return spec.name == "grace" || spec.name == "timeout"; }

  std::chrono::milliseconds duration_of(const option_spec& spec, std::string_view value) const {
    // "-1" is no duration, but saying so hides what is wrong with it: the same words as for 0.
    if (value.starts_with('-'))
      fail("--" + std::string(spec.name) + (zero_allowed(spec) ? ": must not be negative" : ": must be positive"));
    auto d = parse_duration(value);
    if (!d)
      fail("--" + std::string(spec.name) + ": '" + std::string(value) +
           "' is not a duration (use e.g. 5s, 500ms, 2m, or a number of seconds)");
    return *d;
  }

  void apply(const option_spec& spec, std::string_view value) {
    auto& c = out_.common;
    const std::string_view n = spec.name;
    if (n == "endpoints") {
      c.endpoints = split_endpoints(value);
      if (c.endpoints.empty()) fail("--endpoints: no endpoint given");
      // The library refuses user info too, but its words are for programs (options' auth), and the password
      // would be in our message: checked here, where we can say --user.
      for (const auto& e : c.endpoints) {
        auto url = boost::urls::parse_uri(e);
        if (url && url->has_userinfo())
          fail("--endpoints: '" + std::string(url->scheme()) + "://" + std::string(url->encoded_host_and_port()) +
               "': no user in the URL: use --user (the password is never taken from the command line)");
      }
    } else if (n == "ttl") {
      const auto d = duration_of(spec, value);
      if (d.count() <= 0) fail("--ttl: must be positive");
      if (d.count() % 1000 != 0) fail("--ttl: must be a whole number of seconds");
      if (d > etcd::max_lease_ttl) fail("--ttl: at most " + std::to_string(etcd::max_lease_ttl.count()) + "s, etcd's largest lease TTL");
      c.ttl = std::chrono::duration_cast<std::chrono::seconds>(d);
    } else if (n == "request-timeout") {
      c.request_timeout = duration_of(spec, value);
      if (c.request_timeout.count() <= 0) fail("--request-timeout: must be positive");
    } else if (n == "cacert") {
      c.cacert = value;
    } else if (n == "cert") {
      c.cert = value;
    } else if (n == "key") {
      c.key = value;
    } else if (n == "user") {
      if (value.empty()) fail("--user: the user name is empty");
      if (value.find(':') != std::string_view::npos)
        fail("--user takes only the user name: passwords are never taken from the command line "
             "(set CLUSTERLOCK_PASSWORD, or type it when asked)");
      c.user = value;
    } else if (n == "identity") {
      if (value.empty()) fail("--identity: must not be empty (leave it out for the default)");
      c.identity = value;
    } else if (n == "verbose") {
      c.verbose = true;
    } else if (n == "help") {
      help_ = true;
    } else if (n == "timeout") {
      out_.run.timeout = duration_of(spec, value);  // 0: try once
    } else if (n == "grace") {
      out_.run.grace = duration_of(spec, value);
    } else if (n == "json") {
      (which_ == subcommand::status ? out_.status.json : out_.watch.json) = true;
    } else if (n == "contend") {
      out_.watch.contend = true;
    } else if (n == "count") {
      std::uint64_t count = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), count);
      if (ec != std::errc{} || end != value.data() + value.size() || count == 0)
        fail("--count: '" + std::string(value) + "' is not a positive whole number");
      out_.watch.count = count;
    }
  }

  // args[i] starts with '-' and is not "--" nor "-": an option, perhaps with its value in args[i + 1].
  std::size_t take_option(const std::vector<std::string>& args, std::size_t i) {
    std::string_view arg = args[i];
    std::string_view name;
    char short_name = 0;
    std::optional<std::string_view> inline_value;
    if (arg.starts_with("--")) {
      name = arg.substr(2);
      if (const auto eq = name.find('='); eq != std::string_view::npos) {
        inline_value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
    } else if (arg.size() == 2) {
      short_name = arg[1];
    } else {
      fail("unknown option '" + std::string(arg) + "'");
    }
    const option_spec* spec = find_spec(which_, name, short_name);
    if (!spec && which_ == subcommand::status && find_in(contender_specs, name, short_name))
      fail("'" + std::string(arg) + "' is for commands that contend (run, watch --contend): status only reads");
    if (!spec) fail("unknown option '" + std::string(arg) + "' for 'clusterlock " + to_string(which_) + "'");
    if (find_in(contender_specs, spec->name, 0)) contender_option_ = "--" + std::string(spec->name);
    if (!spec->takes_value) {
      if (inline_value) fail("--" + std::string(spec->name) + " takes no value");
      apply(*spec, {});
      return i + 1;
    }
    if (inline_value) {
      apply(*spec, *inline_value);
      return i + 1;
    }
    if (i + 1 >= args.size()) fail("--" + std::string(spec->name) + " needs a value");
    apply(*spec, args[i + 1]);
    return i + 2;
  }

  void parse(const std::vector<std::string>& args, std::size_t first) {
    std::vector<std::string> positional;
    bool options_done = false;
    for (std::size_t i = first; i < args.size();) {
      const std::string& arg = args[i];
      if (options_done) {
        positional.insert(positional.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
        break;
      }
      if (arg == "--") {
        // `run -- COMMAND`: the word after -- is COMMAND's, not the lock's name.
        if (which_ == subcommand::run && positional.empty())
          fail("the lock's NAME is missing: clusterlock run [OPTIONS] NAME -- COMMAND [ARGS...]");
        options_done = true;
        ++i;
      } else if (arg.size() > 1 && arg[0] == '-') {
        i = take_option(args, i);
      } else {
        positional.push_back(arg);
        ++i;
        // run: from COMMAND on, every word is COMMAND's, its options included (as with env(1) or timeout(1)).
        if (which_ == subcommand::run && positional.size() == 2) options_done = true;
      }
    }
    if (help_) {
      out_.what = parsed_arguments::action::show_help;
      out_.help_for = which_;
      return;
    }
    if (positional.empty()) fail("the lock's NAME is missing");
    out_.name = positional.front();
    if (which_ == subcommand::run) {
      out_.run.command.assign(positional.begin() + 1, positional.end());
      if (out_.run.command.empty()) fail("COMMAND is missing: clusterlock run [OPTIONS] NAME -- COMMAND [ARGS...]");
      if (out_.run.command.front().empty()) fail("COMMAND is empty");
    } else if (positional.size() > 1) {
      fail("unexpected argument '" + positional[1] + "'");
    }
    if (which_ == subcommand::watch && !out_.watch.contend && !contender_option_.empty())
      fail(contender_option_ + " is for a contender: add --contend, or leave it out");
    if (out_.common.cert.empty() != out_.common.key.empty()) fail("--cert and --key go together");
    check_tls_files();
  }

  // TLS files are read only for https:// endpoints: a wrong path, or a file given for none, would go unnoticed.
  void check_tls_files() const {
    const auto& c = out_.common;
    bool https = false;
    for (const auto& e : c.endpoints) https = https || e.starts_with("https://");
    const std::pair<const char*, const std::string*> files[] = {{"--cacert", &c.cacert}, {"--cert", &c.cert}, {"--key", &c.key}};
    for (const auto& [option, path] : files) {
      if (path->empty()) continue;
      if (std::FILE* f = std::fopen(path->c_str(), "r")) {
        std::fclose(f);
      } else {
        fail(std::string(option) + ": cannot read '" + *path + "': " + std::strerror(errno));
      }
      if (!https) fail(std::string(option) + " is for https:// endpoints, and none is given");
    }
  }

 private:
  subcommand which_;
  parsed_arguments& out_;
  bool help_ = false;
  std::string contender_option_;  // the last one given, to refuse it on a watch that does not contend
};

}  // namespace

const char* to_string(subcommand s) noexcept {
  switch (s) {
    case subcommand::run: return "run";
    case subcommand::status: return "status";
    case subcommand::watch: return "watch";
  }
  return "?";
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::size_t digits = 0;
  bool dot = false;
  while (digits < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits])) || (text[digits] == '.' && !dot))) {
    dot = dot || text[digits] == '.';
    ++digits;
  }
  const std::string number(text.substr(0, digits));
  const std::string_view unit = text.substr(digits);
  if (number.empty() || number == ".") return std::nullopt;
  double scale = 0;
  if (unit.empty() || unit == "s") scale = 1000;
  else if (unit == "ms") scale = 1;
  else if (unit == "m") scale = 60'000;
  else if (unit == "h") scale = 3'600'000;
  else return std::nullopt;
  double value = 0;
  if (std::sscanf(number.c_str(), "%lf", &value) != 1) return std::nullopt;
  const double ms = std::round(value * scale);
  if (!(ms >= 0) || ms > 1e15) return std::nullopt;  // also NaN
  return std::chrono::milliseconds(static_cast<long long>(ms));
}

std::string format_duration(std::chrono::milliseconds d) {
  const long long ms = d.count();
  if (ms % 60'000 == 0 && ms != 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  if (ms > 1000) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.3gs", static_cast<double>(ms) / 1000.0);
    return buffer;
  }
  return std::to_string(ms) + "ms";
}

std::string help_text(std::optional<subcommand> which) {
  if (!which) return std::string(command_help) + common_options_help + command_help_tail;
  switch (*which) {
    case subcommand::run: return std::string(run_help) + contender_options_help + common_options_help + run_help_tail;
    case subcommand::status: return std::string(status_help) + common_options_help + status_help_tail;
    case subcommand::watch:
      return std::string(watch_help) + contender_options_help + common_options_help + watch_help_tail;
  }
  return command_help;
}

parsed_arguments parse_arguments(const std::vector<std::string>& args,
                                 const std::optional<std::string>& endpoints_from_environment) {
  parsed_arguments out;
  if (args.empty()) throw usage_error("a command is missing (run, status or watch)", std::nullopt);
  const std::string& first = args.front();
  if (first == "--version") {
    out.what = parsed_arguments::action::show_version;
    return out;
  }
  if (first == "help" || first == "-h" || first == "--help") {
    if (args.size() > 1) {
      auto which = subcommand_named(args[1]);
      if (!which) throw usage_error("unknown command '" + args[1] + "' (run, status or watch)", std::nullopt);
      out.help_for = which;
    }
    return out;
  }
  auto which = subcommand_named(first);
  if (!which) {
    if (first.starts_with("-"))
      throw usage_error("options go after the command: clusterlock COMMAND [OPTIONS] NAME ...", std::nullopt);
    throw usage_error("unknown command '" + first + "' (run, status or watch)", std::nullopt);
  }
  switch (*which) {
    case subcommand::run: out.what = parsed_arguments::action::run; break;
    case subcommand::status: out.what = parsed_arguments::action::status; break;
    case subcommand::watch: out.what = parsed_arguments::action::watch; break;
  }
  if (endpoints_from_environment) out.common.endpoints = split_endpoints(*endpoints_from_environment);
  if (out.common.endpoints.empty()) out.common.endpoints = {default_endpoint};
  parser(*which, out).parse(args, 1);
  return out;
}

}  // namespace clusterlock::cli
