#include "cli/password.hpp"

#include "cli/arguments.hpp"
#include "cli/exit_codes.hpp"

#include <fcntl.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <string_view>

namespace clusterlock::cli {
namespace {

volatile std::sig_atomic_t interrupted = 0;
extern "C" void note_interrupt(int) { interrupted = 1; }

void write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Reads one line from the terminal with echo off. A Ctrl-C must not leave the terminal without echo, so SIGINT
// and SIGTERM only interrupt the read (no SA_RESTART) and we restore the terminal before leaving.
std::string prompt(int tty, const std::string& user) {
  termios saved{};
  const bool have_termios = ::tcgetattr(tty, &saved) == 0;
  struct sigaction on_signal{}, old_int{}, old_term{};
  on_signal.sa_handler = note_interrupt;
  sigemptyset(&on_signal.sa_mask);
  ::sigaction(SIGINT, &on_signal, &old_int);
  ::sigaction(SIGTERM, &on_signal, &old_term);
  if (have_termios) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    ::tcsetattr(tty, TCSAFLUSH, &quiet);
  }
  write_all(tty, "Password for etcd user " + user + ": ");
  std::string line;
  char c = 0;
  for (;;) {
    const ssize_t n = ::read(tty, &c, 1);
    if (n == 1 && c != '\n') {
      line.push_back(c);
      continue;
    }
    if (n < 0 && errno == EINTR && !interrupted) continue;
    break;
  }
  if (have_termios) ::tcsetattr(tty, TCSAFLUSH, &saved);
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  if (interrupted) {
    write_all(tty, "\n");
    std::_Exit(exit_code::signal_base + SIGINT);
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

}  // namespace

std::string read_password(const std::string& user) {
  if (const char* from_env = std::getenv("CLUSTERLOCK_PASSWORD"); from_env && *from_env) return from_env;
  const int tty = ::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (tty < 0)
    throw usage_error("--user " + user + " needs a password: set CLUSTERLOCK_PASSWORD (there is no terminal to ask on)",
                      std::nullopt);
  std::string password = prompt(tty, user);
  ::close(tty);
  if (password.empty()) throw usage_error("--user " + user + ": empty password", std::nullopt);
  return password;
}

}  // namespace clusterlock::cli
