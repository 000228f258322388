#include "cli/arguments.hpp"

#include <clusterlock/etcd/client_config.hpp>

#include <boost/url/parse.hpp>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <set>
#include <utility>

namespace clusterlock::cli {
namespace {

constexpr const char* default_endpoint = "http://127.0.0.1:2379";

// --- one option of the command line

struct option_spec {
  std::string_view name;  // without the leading dashes
  char short_name;        // 0: none
  bool takes_value;
};

constexpr option_spec common_specs[] = {
    {"endpoints", 0, true}, {"request-timeout", 0, true}, {"cacert", 0, true}, {"cert", 0, true},
    {"key", 0, true},       {"user", 0, true},            {"verbose", 'v', false}, {"help", 'h', false},
    {"log-format", 0, true},
};
constexpr option_spec contender_specs[] = {{"ttl", 0, true}, {"identity", 0, true}};
constexpr option_spec run_specs[] = {{"timeout", 0, true}, {"grace", 0, true}, {"slots", 0, true},
                                     {"read", 0, false},    {"write", 0, false}, {"watch", 0, true}};
constexpr option_spec status_specs[] = {{"json", 0, false}};
constexpr option_spec watch_specs[] = {{"json", 0, false}, {"contend", 0, false}, {"count", 0, true}};
constexpr option_spec elect_specs[] = {{"listen", 'l', false}, {"json", 0, false}, {"timeout", 0, true},
                                       {"grace", 0, true},      {"ttl", 0, true},   {"watch", 0, true}};
constexpr option_spec fenced_specs[] = {{"fenced", 0, false}};

template <std::size_t N>
const option_spec* find_in(const option_spec (&specs)[N], std::string_view name, char short_name) {
  for (const auto& s : specs)
    if ((!name.empty() && s.name == name) || (short_name != 0 && s.short_name == short_name)) return &s;
  return nullptr;
}

const option_spec* find_spec(subcommand which, std::string_view name, char short_name) {
  if (auto s = find_in(common_specs, name, short_name)) return s;
  if (which == subcommand::run || which == subcommand::watch) {
    if (auto s = find_in(contender_specs, name, short_name)) return s;
  }
  switch (which) {
    case subcommand::run: return find_in(run_specs, name, short_name);
    case subcommand::status: return find_in(status_specs, name, short_name);
    case subcommand::watch: return find_in(watch_specs, name, short_name);
    case subcommand::elect: return find_in(elect_specs, name, short_name);
    case subcommand::put:
    case subcommand::del: return find_in(fenced_specs, name, short_name);
  }
  return nullptr;
}

constexpr const char* command_list = "(run, elect, status, watch, put or del)";

std::optional<subcommand> subcommand_named(std::string_view word) {
  for (auto s : {subcommand::run, subcommand::status, subcommand::watch, subcommand::elect, subcommand::put,
                 subcommand::del})
    if (word == to_string(s)) return s;
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

  std::size_t slots_of(std::string_view value) const {
    std::size_t slots = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), slots);
    if (ec != std::errc{} || end != value.data() + value.size() || slots == 0 || slots > 1'000'000)
      fail("--slots: '" + std::string(value) + "' is not a whole number from 1 to 1000000");
    return slots;
  }

  watch_scope watch_scope_of(std::string_view value) const {
    if (value == "line") return watch_scope::line;
    if (value == "predecessor") return watch_scope::predecessor;
    fail("--watch: '" + std::string(value) + "' is not a watch scope (use line or predecessor)");
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
    } else if (n == "log-format") {
      if (value == "logfmt") c.structured = log_format::logfmt;
      else if (value == "json") c.structured = log_format::json;
      else if (value == "text") c.structured.reset();
      else fail("--log-format: '" + std::string(value) + "' is not a log format (use text, logfmt or json)");
    } else if (n == "help") {
      help_ = true;
    } else if (n == "timeout") {
      out_.run.timeout = duration_of(spec, value);  // 0: try once
    } else if (n == "grace") {
      out_.run.grace = duration_of(spec, value);
      grace_given_ = true;
    } else if (n == "json") {
      (which_ == subcommand::status ? out_.status.json
       : which_ == subcommand::elect ? out_.elect.json
                                     : out_.watch.json) = true;
    } else if (n == "listen") {
      out_.elect.listen = true;
    } else if (n == "fenced") {
      fenced_ = true;
    } else if (n == "contend") {
      out_.watch.contend = true;
    } else if (n == "slots") {
      out_.run.slots = slots_of(value);
      kind_options_.insert("--slots");
    } else if (n == "read" || n == "write") {
      out_.run.rw = n == "read" ? rw_mode::read : rw_mode::write;
      kind_options_.insert("--" + std::string(n));
    } else if (n == "watch") {
      out_.run.watch = watch_scope_of(value);
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
    if (!spec && which_ == subcommand::elect && name == "identity")
      fail("--identity: elect's PROPOSAL is what others see (its key's value)");
    if (!spec && which_ != subcommand::elect && find_in(contender_specs, name, short_name))
      fail("'" + std::string(arg) + "' is for commands that contend (run, elect, watch --contend): " +
           (which_ == subcommand::status ? std::string("status only reads")
                                         : to_string(which_) + std::string(" takes no lease")));
    if (!spec) fail("unknown option '" + std::string(arg) + "' for 'clusterlock " + to_string(which_) + "'");
    if (find_in(contender_specs, spec->name, 0)) contender_option_ = "--" + std::string(spec->name);
    if (which_ == subcommand::elect && find_in(elect_specs, spec->name, 0) && spec->name != "listen" &&
        spec->name != "json")
      candidate_option_ = "--" + std::string(spec->name);
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

  // The words before COMMAND: run's NAME, elect's NAME and PROPOSAL. 0: the command takes no COMMAND.
  std::size_t words_before_command() const {
    if (which_ == subcommand::run) return 1;
    if (which_ == subcommand::elect && !out_.elect.listen) return 2;
    return 0;
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
        if (which_ == subcommand::elect && !out_.elect.listen && positional.size() < 2)
          fail("NAME and PROPOSAL come before '--': clusterlock elect [OPTIONS] NAME PROPOSAL -- COMMAND [ARGS...]");
        options_done = true;
        dashes_ = true;
        ++i;
      } else if (arg.size() > 1 && arg[0] == '-') {
        i = take_option(args, i);
      } else {
        positional.push_back(arg);
        ++i;
        // From COMMAND on, every word is COMMAND's, its options included (as with env(1) or timeout(1)).
        const std::size_t before = words_before_command();
        if (before != 0 && positional.size() == before + 1) options_done = true;
      }
    }
    if (help_) {
      out_.what = parsed_arguments::action::show_help;
      out_.help_for = which_;
      return;
    }
    switch (which_) {
      case subcommand::run: take_run(positional); break;
      case subcommand::elect: take_elect(positional); break;
      case subcommand::put:
      case subcommand::del: take_fenced(positional); break;
      default: take_name(positional); break;
    }
    if (which_ == subcommand::watch && !out_.watch.contend && !contender_option_.empty())
      fail(contender_option_ + " is for a contender: add --contend, or leave it out");
    if (out_.common.cert.empty() != out_.common.key.empty()) fail("--cert and --key go together");
    check_tls_files();
  }

  void take_name(const std::vector<std::string>& positional) {
    if (positional.empty()) fail("the lock's NAME is missing");
    out_.name = positional.front();
    if (positional.size() > 1) fail("unexpected argument '" + positional[1] + "'");
  }

  void take_run(const std::vector<std::string>& positional) {
    // One kind of lock per run: the lock, a semaphore's permit, or a read-write lock in one mode.
    if (kind_options_.size() > 1) {
      auto first = kind_options_.begin();
      fail(*first + " and " + *std::next(first) +
           " exclude each other: run holds the lock, a permit of a semaphore (--slots N), or a read-write lock "
           "for reading (--read) or writing (--write)");
    }
    // The library refuses it too (options::watch), but its words are for programs: here we can name the flags.
    if (out_.run.watch == watch_scope::predecessor && !kind_options_.empty())
      fail("--watch predecessor is for the plain lock, not with " + *kind_options_.begin() +
           ": a semaphore's and a read-write lock's contenders follow their whole line");
    if (positional.empty()) fail("the lock's NAME is missing");
    out_.name = positional.front();
    out_.run.command.assign(positional.begin() + 1, positional.end());
    if (out_.run.command.empty()) fail("COMMAND is missing: clusterlock run [OPTIONS] NAME -- COMMAND [ARGS...]");
    if (out_.run.command.front().empty()) fail("COMMAND is empty");
  }

  void take_elect(const std::vector<std::string>& positional) {
    auto& e = out_.elect;
    if (positional.empty()) fail("the election's NAME is missing");
    out_.name = positional.front();
    if (e.listen) {
      if (positional.size() > 1) fail("--listen only observes: unexpected argument '" + positional[1] + "'");
      if (!candidate_option_.empty()) fail(candidate_option_ + " is for a candidate: leave out --listen, or it");
      return;
    }
    if (e.json) fail("--json is for --listen: a candidate prints its key and PROPOSAL, as etcdctl elect does");
    if (positional.size() < 2)
      fail("PROPOSAL is missing: clusterlock elect [OPTIONS] NAME PROPOSAL [-- COMMAND [ARGS...]] "
           "(or elect --listen NAME)");
    // An empty identity would be replaced by a random one: not what was proposed.
    if (positional[1].empty()) fail("PROPOSAL must not be empty: it is what others see as the leader");
    e.proposal = positional[1];
    out_.run.command.assign(positional.begin() + 2, positional.end());
    if (dashes_ && out_.run.command.empty()) fail("COMMAND is missing after '--'");
    if (!out_.run.command.empty() && out_.run.command.front().empty()) fail("COMMAND is empty");
    if (out_.run.command.empty() && grace_given_) fail("--grace is for COMMAND: give COMMAND, or leave --grace out");
  }

  void take_fenced(const std::vector<std::string>& positional) {
    const bool put = which_ == subcommand::put;
    const std::string usage = put ? "clusterlock put --fenced KEY VALUE" : "clusterlock del --fenced KEY";
    if (!fenced_)
      fail(std::string("clusterlock ") + to_string(which_) +
           " only writes fenced, in run's or elect's COMMAND: add --fenced (" + usage +
           "); for a write that is not fenced use etcdctl " + (put ? "put KEY VALUE" : "del KEY"));
    if (positional.empty()) fail("KEY is missing: " + usage);
    if (positional.front().empty()) fail("KEY must not be empty");
    if (put && positional.size() < 2) fail("VALUE is missing: " + usage);
    const std::size_t words = put ? 2 : 1;
    if (positional.size() > words) fail("unexpected argument '" + positional[words] + "'");
    out_.fenced.key = positional.front();
    if (put) out_.fenced.value = positional[1];
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
  bool dashes_ = false;  // "--" ended the options
  bool fenced_ = false;
  bool grace_given_ = false;
  std::string contender_option_;  // the last one given, to refuse it on a watch that does not contend
  std::set<std::string> kind_options_;  // run: those of --slots, --read, --write given (one at most)
  std::string candidate_option_;  // elect: the last of --ttl, --timeout, --grace, to refuse it with --listen
};

}  // namespace

const char* to_string(subcommand s) noexcept {
  switch (s) {
    case subcommand::run: return "run";
    case subcommand::status: return "status";
    case subcommand::watch: return "watch";
    case subcommand::elect: return "elect";
    case subcommand::put: return "put";
    case subcommand::del: return "del";
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

// etcdctl takes its global flags before the command too (`etcdctl --endpoints X lock ...`): so do we, for the
// options every command has. Moves them after the command; anything else is left as it is, for the usual errors.
std::vector<std::string> command_first(const std::vector<std::string>& args) {
  std::size_t i = 0;
  while (i < args.size() && args[i].size() > 1 && args[i][0] == '-' && args[i] != "--") {
    const std::string_view arg = args[i];
    const bool inline_value = arg.find('=') != std::string_view::npos;
    const std::string_view name = arg.starts_with("--") ? arg.substr(2, arg.find('=') - 2) : std::string_view{};
    const char short_name = !arg.starts_with("--") && arg.size() == 2 ? arg[1] : '\0';
    const option_spec* spec = find_in(common_specs, name, short_name);
    if (!spec || spec->name == "help") return args;
    i += spec->takes_value && !inline_value ? 2 : 1;
  }
  if (i == 0 || i >= args.size()) return args;
  std::vector<std::string> out{args[i]};
  out.insert(out.end(), args.begin(), args.begin() + static_cast<std::ptrdiff_t>(i));
  out.insert(out.end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
  return out;
}

parsed_arguments parse_arguments(const std::vector<std::string>& given,
                                 const std::optional<std::string>& endpoints_from_environment) {
  parsed_arguments out;
  const std::vector<std::string> args = command_first(given);
  if (args.empty()) throw usage_error(std::string("a command is missing ") + command_list, std::nullopt);
  const std::string& first = args.front();
  if (first == "--version") {
    out.what = parsed_arguments::action::show_version;
    return out;
  }
  if (first == "help" || first == "-h" || first == "--help") {
    if (args.size() > 1) {
      auto which = subcommand_named(args[1]);
      if (!which) throw usage_error("unknown command '" + args[1] + "' " + command_list, std::nullopt);
      out.help_for = which;
    }
    return out;
  }
  auto which = subcommand_named(first);
  if (!which) {
    if (first.starts_with("-"))
      throw usage_error("'" + first + "' before the command: only the options every command has may go there "
                        "(clusterlock [--endpoints URLS ...] COMMAND [OPTIONS] NAME ...)", std::nullopt);
    throw usage_error("unknown command '" + first + "' " + command_list, std::nullopt);
  }
  switch (*which) {
    case subcommand::run: out.what = parsed_arguments::action::run; break;
    case subcommand::status: out.what = parsed_arguments::action::status; break;
    case subcommand::watch: out.what = parsed_arguments::action::watch; break;
    case subcommand::elect: out.what = parsed_arguments::action::elect; break;
    case subcommand::put: out.what = parsed_arguments::action::put; break;
    case subcommand::del: out.what = parsed_arguments::action::del; break;
  }
  if (endpoints_from_environment) out.common.endpoints = split_endpoints(*endpoints_from_environment);
  if (out.common.endpoints.empty()) out.common.endpoints = {default_endpoint};
  parser(*which, out).parse(args, 1);
  return out;
}

}  // namespace clusterlock::cli
