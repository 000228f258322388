#pragma once
// The etcd password for --user: from $CLUSTERLOCK_PASSWORD, else asked on the terminal without echo. Never from
// the command line, where every user of the machine could read it (ps, /proc/PID/cmdline).

#include <string>

namespace clusterlock::cli {

/// Throws usage_error when there is neither the variable nor a terminal to ask on; exits 130 when the user
/// interrupts the prompt (after restoring the terminal's echo).
std::string read_password(const std::string& user);

}  // namespace clusterlock::cli
