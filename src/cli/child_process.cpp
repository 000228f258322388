#include "cli/child_process.hpp"

#include "cli/exit_codes.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
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

// How COMMAND starts: posix_spawn, which glibc runs as clone(CLONE_VM | CLONE_VFORK) and exec. fork() copied our
// page tables first: with a 7-8 MiB process that took about 0.3 ms more until COMMAND ran, on every hand-off
// (measured: fork + exec 0.77 ms, posix_spawn 0.43 ms to the child's first instruction, interleaved; issue 12).
// The child, before exec (glibc runs these with every signal blocked, so tcsetpgrp is allowed from the background):
// its own process group; the terminal's foreground handed to it when we had it; what we ignore (SIGPIPE, SIGTTOU)
// back to default and an empty signal mask (caught signals are reset by exec itself); and every descriptor of ours
// above stderr closed (our sockets to etcd and the signal pipe stay ours).
struct spawn_plan {
  posix_spawn_file_actions_t actions{};
  posix_spawnattr_t attributes{};

  explicit spawn_plan(int tty) {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
    if (tty >= 0) posix_spawn_file_actions_addtcsetpgrp_np(&actions, tty);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    sigset_t defaults, none;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGTTOU);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setpgroup(&attributes, 0);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  }
  ~spawn_plan() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
  }
  spawn_plan(const spawn_plan&) = delete;
  spawn_plan& operator=(const spawn_plan&) = delete;
};

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

  pid_t pid = -1;
  int spawn_errno = 0;
  {
    const spawn_plan plan(tty);
    without_sigttou([&] {
      spawn_errno =
          ::posix_spawn(&pid, command.path.c_str(), &plan.actions, &plan.attributes, argv.data(), envp.data());
      if (spawn_errno == 0) {
        // Also here, as shells do: whichever of parent and child runs first, the group exists before we use it.
        ::setpgid(pid, pid);
        if (tty >= 0) ::tcsetpgrp(tty, pid);
      }
    });
  }
  tty_ = tty;
  if (spawn_errno != 0) {
    // glibc's posix_spawn reports a failed exec (ENOENT, EACCES, ENOEXEC, ...) here, its child already reaped (the
    // child may have taken the terminal's foreground first); EAGAIN and ENOMEM: no child could be made (fork's
    // errors; "execve" in what() would make them COMMAND's fault).
    ended_ = true;
    take_back_terminal();
    const bool no_child = spawn_errno == EAGAIN || spawn_errno == ENOMEM;
    throw std::system_error(spawn_errno, std::generic_category(),
                            (no_child ? "posix_spawn " : "execve ") + command.path);
  }
  pid_ = pid;
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
