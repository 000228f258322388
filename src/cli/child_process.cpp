#include "cli/child_process.hpp"

#include "cli/exit_codes.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <system_error>

extern char** environ;

namespace clusterlock::cli {
namespace {

enum class file_check { executable, not_executable, missing };

file_check check_file(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return file_check::missing;
  if (S_ISDIR(st.st_mode) || ::access(path.c_str(), X_OK) != 0) return file_check::not_executable;
  return file_check::executable;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::vector<std::string> child_environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string_view entry(*e);
    const auto name = entry.substr(0, entry.find('=') + 1);  // "NAME="
    bool replaced = false;
    for (const auto& x : extra) {
      const std::string_view change(x);
      const bool bare = change.find('=') == std::string_view::npos;  // "NAME": remove it
      replaced = replaced || (bare ? name.size() == change.size() + 1 && name.starts_with(change)
                                   : change.starts_with(name));
    }
    if (!replaced) env.emplace_back(entry);
  }
  for (const auto& x : extra)
    if (x.find('=') != std::string::npos) env.push_back(x);
  return env;
}

// Tells the parent why exec failed (errno through the CLOEXEC pipe) and ends the child.
[[noreturn]] void report_and_exit(int report_fd) {
  const int e = errno;
  (void)!::write(report_fd, &e, sizeof e);
  ::_exit(exit_code::command_not_found);
}

// Between fork and exec: only async-signal-safe calls.
[[noreturn]] void exec_child(const char* path, char* const* argv, char* const* envp, int tty, int report_fd) {
  ::setpgid(0, 0);
  if (tty >= 0) ::tcsetpgrp(tty, ::getpid());  // SIGTTOU is blocked (inherited mask), so this is allowed
  // What we ignore or block must not stay so in COMMAND (caught signals are reset by exec itself).
  ::signal(SIGPIPE, SIG_DFL);
  ::signal(SIGTTOU, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  // Our sockets to etcd and the signal pipe stay ours.
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = 3; fd < 1024; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  ::execve(path, argv, envp);
  report_and_exit(report_fd);
}

// Runs `f` with SIGTTOU blocked: a process group that is not (or no longer) the terminal's foreground may then
// still set the foreground.
template <class F>
void without_sigttou(F f) {
  sigset_t ttou, old;
  sigemptyset(&ttou);
  sigaddset(&ttou, SIGTTOU);
  ::sigprocmask(SIG_BLOCK, &ttou, &old);
  f();
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
}

}  // namespace

command_problem exec_problem(const std::string& command, int error) {
  if (error == ENOENT || error == ENOTDIR)
    return {exit_code::command_not_found, command + ": command not found"};
  return {exit_code::cannot_execute, command + ": cannot execute: " + std::strerror(error)};
}

std::variant<resolved_command, command_problem> resolve_command(const std::vector<std::string>& argv) {
  const std::string& name = argv.front();
  if (name.find('/') != std::string::npos) {
    switch (check_file(name)) {
      case file_check::executable: return resolved_command{name, argv};
      case file_check::not_executable: return exec_problem(name, EACCES);
      case file_check::missing: return exec_problem(name, ENOENT);
    }
  }
  const char* path_env = std::getenv("PATH");
  std::string_view path = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
  bool seen_not_executable = false;
  for (;;) {
    const auto colon = path.find(':');
    std::string dir(path.substr(0, colon));
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + name;
    const auto found = check_file(candidate);
    if (found == file_check::executable) return resolved_command{candidate, argv};
    seen_not_executable = seen_not_executable || found == file_check::not_executable;
    if (colon == std::string_view::npos) break;
    path.remove_prefix(colon + 1);
  }
  return exec_problem(name, seen_not_executable ? EACCES : ENOENT);
}

int exit_status_of(int wait_status) noexcept {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return exit_code::signal_base + WTERMSIG(wait_status);
  return exit_code::internal_error;
}

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

std::string describe_wait_status(int wait_status) {
  if (WIFEXITED(wait_status)) return "exited with status " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return "was killed by " + signal_name(WTERMSIG(wait_status));
  return "ended";
}

child_process::child_process(const resolved_command& command, const std::vector<std::string>& extra_env) {
  std::vector<std::string> argv_strings = command.argv;
  std::vector<std::string> env_strings = child_environment(extra_env);
  const auto argv = c_strings(argv_strings);
  const auto envp = c_strings(env_strings);

  // Hand the terminal over only when we are its foreground job: otherwise it is not ours to give.
  int tty = ::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (tty >= 0 && ::tcgetpgrp(tty) != ::getpgrp()) {
    ::close(tty);
    tty = -1;
  }

  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) {
    const int e = errno;
    if (tty >= 0) ::close(tty);
    throw std::system_error(e, std::generic_category(), "pipe2");
  }
  pid_t pid = -1;
  int fork_errno = 0;
  without_sigttou([&] {
    pid = ::fork();
    fork_errno = errno;
    if (pid == 0) exec_child(command.path.c_str(), argv.data(), envp.data(), tty, report[1]);
    if (pid > 0) {
      // Also here, as shells do: whichever of parent and child runs first, the group exists before we use it.
      ::setpgid(pid, pid);
      if (tty >= 0) ::tcsetpgrp(tty, pid);
    }
  });
  ::close(report[1]);
  if (pid < 0) {
    ::close(report[0]);
    if (tty >= 0) ::close(tty);
    throw std::system_error(fork_errno, std::generic_category(), "fork");
  }
  pid_ = pid;
  tty_ = tty;
  // The pipe closes on a successful exec: zero bytes. Otherwise the child's errno.
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(report[0], &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);
  if (n > 0) {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    ended_ = true;
    take_back_terminal();
    throw std::system_error(child_errno, std::generic_category(), "execve " + command.path);
  }
}

child_process::~child_process() { take_back_terminal(); }

void child_process::take_back_terminal() {
  if (tty_ < 0) return;
  without_sigttou([this] { ::tcsetpgrp(tty_, ::getpgrp()); });
  ::close(tty_);
  tty_ = -1;
}

void child_process::signal(int sig, bool and_continue) const {
  if (ended_) return;
  ::kill(-pid_, sig);
  if (and_continue) ::kill(-pid_, SIGCONT);
}

std::optional<int> child_process::poll() {
  if (ended_) return std::nullopt;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG | (tty_ >= 0 ? WUNTRACED : 0));
    if (r == 0) return std::nullopt;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {  // not our child any more (cannot happen unless someone else reaped it)
      ended_ = true;
      take_back_terminal();
      return exit_code::internal_error << 8;
    }
    if (WIFSTOPPED(status)) {
      follow_stop();
      continue;
    }
    ended_ = true;
    take_back_terminal();
    return status;
  }
}

// The child was stopped (Ctrl-Z, or a read from the terminal after `bg`): take the terminal back if the child has
// it (never from the shell), and stop our own job, so the shell sees it stopped; once continued, give the terminal
// to the child if the shell made us the foreground again (fg), and continue the child (fg or bg alike).
void child_process::follow_stop() {
  if (::tcgetpgrp(tty_) == pid_) without_sigttou([this] { ::tcsetpgrp(tty_, ::getpgrp()); });
  ::kill(0, SIGTSTP);  // stops us here; returns once we are continued
  if (::tcgetpgrp(tty_) == ::getpgrp()) without_sigttou([this] { ::tcsetpgrp(tty_, pid_); });
  ::kill(-pid_, SIGCONT);
}

}  // namespace clusterlock::cli
