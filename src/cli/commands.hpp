#pragma once
// The subcommands. Each runs its own io_context to the end and returns the process's exit code.

#include "cli/arguments.hpp"

namespace clusterlock::cli {

int run_command(const parsed_arguments& args);
int status_command(const parsed_arguments& args);
int watch_command(const parsed_arguments& args);
int elect_command(const parsed_arguments& args);
/// put --fenced and del --fenced.
int fenced_command(const parsed_arguments& args);

}  // namespace clusterlock::cli
