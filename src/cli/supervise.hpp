#pragma once
// What run and elect share: contend for the lock, and once it is held run COMMAND while holding it (run, elect
// with COMMAND) or simply hold it until a signal (elect without COMMAND). Losses, signals and exit codes are run's
// (see docs/cli.md).

#include "cli/arguments.hpp"
#include "cli/child_process.hpp"

#include <clusterlock/options.hpp>

#include <optional>

namespace clusterlock::cli {

struct hold_plan {
  /// elect: the messages speak of an election, and once we lead our key and its value are printed on stdout (as
  /// `etcdctl elect` prints them when it wins), before COMMAND starts.
  bool election = false;
  /// None: hold until SIGINT or SIGTERM, then release (elect without COMMAND).
  std::optional<resolved_command> command;
};

/// Finds COMMAND (args.run.command) into plan.command before any contending, so that a typo fails at once. On
/// failure: its message is said, and the exit code returned (126, 127, 125).
std::optional<int> find_command(const parsed_arguments& args, hold_plan& plan);

/// Runs on an io_context of its own, to the end; returns the process's exit code.
int supervise(const parsed_arguments& args, options opts, hold_plan plan);

}  // namespace clusterlock::cli
