// clusterlock: the command. Parses the command line and hands over to a subcommand; turns failures into messages
// and exit codes (see exit_codes.hpp and docs/cli.md).

#include "cli/arguments.hpp"
#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/output.hpp"

#include <clusterlock/error.hpp>

#include <boost/system/system_error.hpp>

#include <signal.h>

#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#ifndef CLUSTERLOCK_VERSION
#define CLUSTERLOCK_VERSION "unknown"
#endif

using namespace clusterlock::cli;

namespace {

int usage_failure(const usage_error& e) {
  const logger log(false);
  log.error(e.what());
  const std::string where = e.where() ? std::string(" ") + to_string(*e.where()) : std::string();
  log.error("try 'clusterlock" + where + " --help'");
  return exit_code::usage;
}

// "endpoints: 'x' is not a URL: invalid options [clusterlock:1]" -> "endpoints: 'x' is not a URL"
std::string without_category_suffix(std::string what, const boost::system::error_code& ec) {
  const auto at = what.rfind(": " + ec.message());
  if (at != std::string::npos && at > 0) what.resize(at);
  return what;
}

}  // namespace

int main(int argc, char** argv) {
  // A reader that goes away (`clusterlock watch NAME | head -1`) must not kill us before we free the lock: we see
  // the failed write instead. COMMAND gets SIGPIPE's default back.
  ::signal(SIGPIPE, SIG_IGN);

  const std::vector<std::string> args(argv + 1, argv + argc);
  const char* endpoints = std::getenv("CLUSTERLOCK_ENDPOINTS");
  try {
    const auto parsed =
        parse_arguments(args, endpoints ? std::optional<std::string>(endpoints) : std::optional<std::string>());
    switch (parsed.what) {
      case parsed_arguments::action::show_help:
        return print(help_text(parsed.help_for)) ? exit_code::success : exit_code::etcd_failed;
      case parsed_arguments::action::show_version:
        return print(std::string("clusterlock ") + CLUSTERLOCK_VERSION + "\n") ? exit_code::success
                                                                                : exit_code::etcd_failed;
      case parsed_arguments::action::run: return run_command(parsed);
      case parsed_arguments::action::status: return status_command(parsed);
      case parsed_arguments::action::watch: return watch_command(parsed);
      case parsed_arguments::action::elect: return elect_command(parsed);
      case parsed_arguments::action::put:
      case parsed_arguments::action::del: return fenced_command(parsed);
    }
  } catch (const usage_error& e) {
    return usage_failure(e);
  } catch (const boost::system::system_error& e) {
    if (e.code() == clusterlock::errc::invalid_options) {
      logger(false).error("invalid options: " + without_category_suffix(e.what(), e.code()));
      return exit_code::usage;
    }
    logger(false).error(e.what());
    return exit_code::internal_error;
  } catch (const std::exception& e) {
    logger(false).error(e.what());
    return exit_code::internal_error;
  }
  return exit_code::internal_error;
}
