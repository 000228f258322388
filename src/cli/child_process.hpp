#pragma once
// COMMAND of `clusterlock run`, as a child process in a process group of its own.
//
// Why its own group: a signal sent to the group reaches everything COMMAND started (`sh -c 'a | b'`), so a lost
// lock stops the whole pipeline, not just the shell above it; and a signal clusterlock passes on arrives exactly
// once. When clusterlock is the foreground job of a terminal, the terminal is handed to COMMAND's group, as a shell
// does for a job: COMMAND can read the terminal, and Ctrl-C / Ctrl-Z reach COMMAND straight from the terminal.
// A Ctrl-Z that stops COMMAND stops clusterlock too (so the shell sees its job stopped), and `fg` continues both.

#include <sys/types.h>

#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace clusterlock::cli {

/// COMMAND found as execvp(3) would find it (PATH search unless it holds a '/').
struct resolved_command {
  std::string path;
  std::vector<std::string> argv;
};
/// Why COMMAND cannot run: exit code 127 (not found) or 126 (not executable), and a message.
struct command_problem {
  int exit_code;
  std::string message;
};
/// Done before waiting for the lock, so that a typo fails at once rather than after the wait.
std::variant<resolved_command, command_problem> resolve_command(const std::vector<std::string>& argv);
/// 126 or 127 for an errno of execve(2), with a message.
command_problem exec_problem(const std::string& command, int error);

/// As a shell reports it: the exit status, or 128 + the signal that ended it.
int exit_status_of(int wait_status) noexcept;
/// "exited with status 3", "was killed by SIGTERM".
std::string describe_wait_status(int wait_status);
/// "SIGTERM"
std::string signal_name(int sig);

class child_process {
 public:
  /// fork + exec `command` with our environment changed by `env_changes`: "NAME=value" sets a variable, a bare
  /// "NAME" removes it. Throws std::system_error with execve's (or fork's) errno when it cannot start.
  child_process(const resolved_command& command, const std::vector<std::string>& env_changes);
  /// Gives the terminal back if it was handed over. Does not wait for the child.
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const noexcept { return pid_; }
  bool running() const noexcept { return !ended_; }

  /// Sends `sig` to the child's whole process group; with `and_continue`, SIGCONT after it, so that a stopped
  /// group acts on it at once.
  void signal(int sig, bool and_continue = false) const;

  /// Reaps without blocking (call on SIGCHLD): the wait status once it has ended, nullopt while it runs. A stop of
  /// a child holding the terminal stops us too, and continues the child when we are continued.
  std::optional<int> poll();

 private:
  void take_back_terminal();
  void follow_stop();

  pid_t pid_ = -1;
  int tty_ = -1;  // our controlling terminal, while the child's group is its foreground
  bool ended_ = false;
};

}  // namespace clusterlock::cli
