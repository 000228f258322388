#include "testing/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string_view>

extern char** environ;

namespace clusterlock::testing::detail {
namespace {

// Owns a file descriptor.
class fd_guard {
 public:
  explicit fd_guard(int fd = -1) noexcept : fd_(fd) {}
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  ~fd_guard() { reset(); }
  int get() const noexcept { return fd_; }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

std::runtime_error system_error(const std::string& what, int err) {
  return std::runtime_error(what + ": " + std::strerror(err));
}

// Tells the parent why the child could not exec (errno through the report pipe) and ends the child.
[[noreturn]] void report_errno_and_exit(int report_fd) {
  const int e = errno;
  (void)!::write(report_fd, &e, sizeof e);
  ::_exit(127);
}

// Only async-signal-safe calls from here to exec: the parent may have threads.
[[noreturn]] void exec_child(char* const* argv, char* const* envp, int in, int out, int err, int report_fd,
                             bool own_group, bool die_with_parent, pid_t parent) {
  auto fail = [report_fd]() { report_errno_and_exit(report_fd); };
  if (own_group && ::setpgid(0, 0) != 0) fail();
  if (die_with_parent) {
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail();
    // The parent may have died before prctl: then nobody would ever send the signal.
    if (::getppid() != parent) ::_exit(127);
  }
  // Signals the test runner blocked or ignored must not stay so in etcd.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD}) ::signal(sig, SIG_DFL);

  int targets[3] = {in, out, err};
  for (int i = 0; i < 3; ++i) {
    if (targets[i] == i) {
      ::fcntl(i, F_SETFD, 0);  // dup2 onto itself would keep FD_CLOEXEC
    } else if (::dup2(targets[i], i) < 0) {
      fail();
    }
  }
  // Nothing else of the test leaks into the child (sockets of other etcds, pipes of other commands).
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = 3; fd < 65536; ++fd) {
      if (fd != report_fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
  }
  ::execve(argv[0], argv, envp);
  report_errno_and_exit(report_fd);
}

std::vector<char*> c_strings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const auto& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

pid_t spawn(const spawn_options& options) {
  if (options.argv.empty()) throw std::invalid_argument("spawn: empty argv");
  std::vector<char*> argv = c_strings(options.argv);
  std::vector<char*> envp = c_strings(options.env);

  fd_guard dev_null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (dev_null.get() < 0) throw system_error("open /dev/null", errno);
  auto or_null = [&](int fd) { return fd >= 0 ? fd : dev_null.get(); };

  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) throw system_error("pipe2", errno);
  fd_guard report_read(report[0]);
  fd_guard report_write(report[1]);

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw system_error("fork", errno);
  if (pid == 0) {
    exec_child(argv.data(), envp.data(), or_null(options.stdin_fd), or_null(options.stdout_fd),
               or_null(options.stderr_fd), report[1], options.own_process_group, options.die_with_parent, parent);
  }
  report_write.reset();
  // The pipe closes on a successful exec (CLOEXEC): zero bytes. Otherwise the child's errno.
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(report_read.get(), &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    reap(pid);
    throw system_error("cannot start " + options.argv[0], child_errno);
  }
  return pid;
}

std::vector<std::string> clean_environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    if (entry.starts_with("ETCD_") || entry.starts_with("ETCDCTL_")) continue;
    env.emplace_back(entry);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

int reap(pid_t pid) noexcept {
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, 0);
    if (r == pid) return status;
    if (r < 0 && errno == EINTR) continue;
    return -1;  // ECHILD: already reaped, or SIGCHLD ignored (auto-reaped)
  }
}

void kill_and_reap(pid_t pid) noexcept {
  if (pid <= 0) return;
  ::kill(pid, SIGCONT);
  ::kill(pid, SIGKILL);
  reap(pid);
}

bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  // Still there: dead but unreaped counts as gone. /proc/PID/stat: "pid (comm) S ...", comm may hold spaces.
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  const auto close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) return false;
  const char state = line[close + 2];
  return state == 'Z' || state == 'X';
}

command_result run_command(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                           std::chrono::milliseconds timeout) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw system_error("pipe2", errno);
  fd_guard out_read(out_pipe[0]), out_write(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) throw system_error("pipe2", errno);
  fd_guard err_read(err_pipe[0]), err_write(err_pipe[1]);

  spawn_options options;
  options.argv = argv;
  options.env = env;
  options.stdout_fd = out_write.get();
  options.stderr_fd = err_write.get();
  const pid_t pid = spawn(options);
  out_write.reset();
  err_write.reset();

  command_result result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool out_open = true, err_open = true;
  char buffer[8192];
  while (out_open || err_open) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      break;
    }
    pollfd fds[2] = {{out_open ? out_read.get() : -1, POLLIN, 0}, {err_open ? err_read.get() : -1, POLLIN, 0}};
    const int ready = ::poll(fds, 2, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) break;
    auto drain = [&](pollfd& p, bool& open, std::string& into) {
      if (!open || p.revents == 0) return;
      const ssize_t n = ::read(p.fd, buffer, sizeof buffer);
      if (n > 0) {
        into.append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        open = false;
      }
    };
    drain(fds[0], out_open, result.out);
    drain(fds[1], err_open, result.err);
  }
  if (result.timed_out) {
    kill_and_reap(pid);
    return result;
  }
  const int status = reap(pid);
  result.exit_code = (status >= 0 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string join_command(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    out += a;
  }
  return out;
}

}  // namespace clusterlock::testing::detail
