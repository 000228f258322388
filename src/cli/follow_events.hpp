#pragma once
// watch's loop, which elect --listen shares: observe the lock (or contend for it, as `opts` says) and print one line
// per event until SIGINT, SIGTERM or --count. etcd failing us before the first event ends it with exit code 1.

#include "cli/arguments.hpp"

#include <clusterlock/lock_manager.hpp>

#include <functional>
#include <string>

namespace clusterlock::cli {

/// One event as the line to print, newline included; `stats`: the lock's just after it.
using event_printer = std::function<std::string(const lock_event&, const lock_stats& stats)>;

/// Runs on an io_context of its own, to the end; returns the process's exit code.
int follow_events(const parsed_arguments& args, const options& opts, event_printer printer);

}  // namespace clusterlock::cli
