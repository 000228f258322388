#include "bench.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "support/child_process.hpp"

namespace clusterlock::bench {

std::optional<double> result_row::ratio() const {
  if (!ours || !anchor || *anchor == 0) return std::nullopt;
  return *ours / *anchor;
}

void context::add(result_row row) {
  std::ostringstream line;
  line << row.benchmark << " | " << row.metric << ": ours " << (row.ours ? fixed(*row.ours, row.decimals) : "-");
  if (row.anchor) line << ", " << row.anchor_name << " " << fixed(*row.anchor, row.decimals);
  if (!row.target.empty()) line << ", target " << row.target << (row.met ? (*row.met ? " (met)" : " (NOT met)") : "");
  log(line.str());
  rows.push_back(std::move(row));
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double rank = p * static_cast<double>(sorted.size() - 1);
  const auto low = static_cast<std::size_t>(std::floor(rank));
  const auto high = std::min(low + 1, sorted.size() - 1);
  return sorted[low] + (sorted[high] - sorted[low]) * (rank - static_cast<double>(low));
}

summary summarize(std::vector<double> values) {
  summary s;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  s.n = values.size();
  s.min = values.front();
  s.max = values.back();
  s.median = percentile(values, 0.5);
  s.p90 = percentile(values, 0.9);
  s.p99 = percentile(values, 0.99);
  s.mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
  return s;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

void write_csv(const std::string& path, const std::vector<std::string>& header,
               const std::vector<std::vector<std::string>>& rows) {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write " + path);
  auto line = [&](const std::vector<std::string>& cells) {
    for (std::size_t i = 0; i < cells.size(); ++i) {
      const bool quote = cells[i].find_first_of(",\"") != std::string::npos;
      if (i) out << ',';
      if (quote) {
        out << '"';
        for (char c : cells[i]) out << (c == '"' ? "\"\"" : std::string(1, c));
        out << '"';
      } else {
        out << cells[i];
      }
    }
    out << '\n';
  };
  line(header);
  for (const auto& r : rows) line(r);
}

void write_cdf_csv(const std::string& path, const std::vector<std::pair<std::string, std::vector<double>>>& series) {
  std::vector<std::vector<std::string>> rows;
  for (auto [name, values] : series) {
    std::sort(values.begin(), values.end());
    for (std::size_t i = 0; i < values.size(); ++i)
      rows.push_back({name, fixed(values[i], 3), fixed(static_cast<double>(i + 1) / static_cast<double>(values.size()), 4)});
  }
  write_csv(path, {"series", "value", "fraction"}, rows);
}

void log(const std::string& message) {
  static const std::int64_t start = now_ns();
  char prefix[32];
  std::snprintf(prefix, sizeof prefix, "[bench %6.1fs] ", static_cast<double>(now_ns() - start) / 1e9);
  std::cerr << prefix << message << std::endl;
}

// ---- child

child::child(std::vector<std::string> argv, std::vector<std::string> extra_env, bool pipe_stdio,
             const std::string& stderr_file)
    : argv_(std::move(argv)) {
  int in[2] = {-1, -1}, out[2] = {-1, -1};
  if (pipe_stdio && (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0))
    throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
  test::spawn_options options;
  options.argv = argv_;
  options.env = test::clean_environment(extra_env);
  options.stdin_fd = in[0];
  options.stdout_fd = out[1];
  int err = 2;
  if (!stderr_file.empty()) {
    err = ::open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (err < 0) throw std::runtime_error("open " + stderr_file + ": " + std::strerror(errno));
  }
  options.stderr_fd = err;
  try {
    pid_ = test::spawn(options);
  } catch (...) {
    for (int fd : {in[0], in[1], out[0], out[1]})
      if (fd >= 0) ::close(fd);
    if (err != 2) ::close(err);
    throw;
  }
  if (err != 2) ::close(err);
  if (pipe_stdio) {
    ::close(in[0]);
    ::close(out[1]);
    to_child_ = in[1];
    from_child_ = out[0];
  }
}

child::~child() {
  kill();
  if (to_child_ >= 0) ::close(to_child_);
  if (from_child_ >= 0) ::close(from_child_);
}

std::string child::describe() const { return test::join_command(argv_); }

void child::send(const std::string& line) {
  const std::string data = line + "\n";
  if (::write(to_child_, data.data(), data.size()) != static_cast<ssize_t>(data.size()))
    throw std::runtime_error("cannot write to " + describe());
}

std::optional<std::string> child::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto nl = buffered_.find('\n'); nl != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      return line;
    }
    // Rounded up: truncated, a 1 ms timeout was 0 ms left by the time it was computed, and never polled.
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{from_child_, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(from_child_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("unexpected end of output of " + describe());
    buffered_.append(buf, static_cast<std::size_t>(n));
  }
}

std::string child::expect(const std::string& prefix, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto line = read_line(std::max(left, 0ms));
    if (!line) throw std::runtime_error("timed out waiting for '" + prefix + "' from " + describe());
    if (line->rfind(prefix, 0) == 0) return *line;
  }
}

void child::kill() {
  if (pid_ > 0) test::kill_and_reap(pid_);
  pid_ = -1;
}

int child::wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (pid_ > 0) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return status;
    }
    if (r < 0 && errno != EINTR) {
      pid_ = -1;
      return -1;
    }
    if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("timed out waiting for " + describe());
    ::usleep(1000);
  }
  return -1;
}

std::int64_t stamp_of(const std::string& line) {
  std::istringstream in(line);
  std::string word;
  long long ns = 0;
  if (!(in >> word >> ns)) throw std::runtime_error("no stamp in '" + line + "'");
  return ns;
}

}  // namespace clusterlock::bench
