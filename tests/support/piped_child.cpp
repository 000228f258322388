#include "support/piped_child.hpp"

#include "support/child_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace clusterlock::test {

namespace {

output_line parse(std::string text) {
  output_line l;
  std::istringstream in(text);
  for (std::string f; in >> f;) l.fields.push_back(f);
  if (!l.fields.empty()) {
    const auto& last = l.fields.back();
    char* end = nullptr;
    const long long v = std::strtoll(last.c_str(), &end, 10);
    if (end && *end == '\0' && !last.empty()) l.ns = v;
  }
  l.text = std::move(text);
  l.seen = std::chrono::steady_clock::now();
  return l;
}

}  // namespace

piped_child::piped_child(std::vector<std::string> argv, std::vector<std::string> env) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
  spawn_options o;
  o.argv = std::move(argv);
  o.env = std::move(env);
  o.stdout_fd = p[1];
  o.stderr_fd = p[1];
  try {
    pid_ = spawn(o);
  } catch (...) {
    ::close(p[0]);
    ::close(p[1]);
    throw;
  }
  ::close(p[1]);
  fd_ = p[0];
  reader_ = std::thread([this] { read_loop(); });
}

piped_child::~piped_child() {
  kill();
  if (reader_.joinable()) reader_.join();  // EOF once the child (the only writer) is gone
  if (fd_ >= 0) ::close(fd_);
}

void piped_child::read_loop() {
  std::string partial;
  char buffer[4096];
  for (;;) {
    const auto n = ::read(fd_, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    partial.append(buffer, static_cast<std::size_t>(n));
    for (auto nl = partial.find('\n'); nl != std::string::npos; nl = partial.find('\n')) {
      auto line = parse(partial.substr(0, nl));
      partial.erase(0, nl + 1);
      std::lock_guard lock(mutex_);
      lines_.push_back(std::move(line));
    }
  }
  if (!partial.empty()) {
    std::lock_guard lock(mutex_);
    lines_.push_back(parse(partial));
  }
}

void piped_child::kill() {
  if (reaped_ || pid_ <= 0) return;
  ::kill(-pid_, SIGKILL);  // its own process group: whatever it started (etcdctl lock -- CMD) goes too
  kill_and_reap(pid_);
  reaped_ = true;
  exit_code_ = -1;
}

void piped_child::terminate() {
  if (!reaped_) ::kill(pid_, SIGTERM);
}

void piped_child::stop() {
  if (reaped_) return;
  ::kill(pid_, SIGSTOP);
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WUNTRACED);
    if (r < 0 && errno == EINTR) continue;
    if (r == pid_ && (WIFEXITED(status) || WIFSIGNALED(status))) {
      reaped_ = true;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    return;
  }
}

void piped_child::cont() {
  if (!reaped_) ::kill(pid_, SIGCONT);
}

bool piped_child::exited() {
  if (reaped_) return true;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_ && (WIFEXITED(status) || WIFSIGNALED(status))) {
    reaped_ = true;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  return reaped_;
}

std::vector<output_line> piped_child::lines() const {
  std::lock_guard lock(mutex_);
  return lines_;
}

std::optional<output_line> piped_child::find(const std::function<bool(const output_line&)>& pred) const {
  std::lock_guard lock(mutex_);
  for (const auto& l : lines_)
    if (pred(l)) return l;
  return std::nullopt;
}

std::size_t piped_child::count(const std::function<bool(const output_line&)>& pred) const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& l : lines_) n += pred(l) ? 1 : 0;
  return n;
}

std::string piped_child::text() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& l : lines_) out += l.text + "\n";
  return out;
}

}  // namespace clusterlock::test
