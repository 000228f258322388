#pragma once
// The `Cli` fixture: runs the real `clusterlock` binary against a real etcd (one per suite), next to etcdctl.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "support/bounded_wait.hpp"
#include "support/child_process.hpp"
#include "support/etcd_cluster.hpp"
#include "support/text_file.hpp"
#include "support/timing.hpp"

#ifndef CLUSTERLOCK_CLI_PATH
#error "CLUSTERLOCK_CLI_PATH must name the clusterlock binary"
#endif

namespace clusterlock::test {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr const char* cli = CLUSTERLOCK_CLI_PATH;
constexpr const char* etcdctl_path = "/usr/bin/etcdctl";
constexpr const char* sh = "/bin/sh";

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

// Our environment without anything that would change what etcdctl or clusterlock do behind the test's back.
inline std::vector<std::string> test_environment(const std::vector<std::string>& extra = {}) {
  std::vector<std::string> env;
  for (auto& e : clean_environment()) {
    if (!e.starts_with("CLUSTERLOCK_")) env.push_back(e);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

// A process running in the background, its stdout and stderr going to files.
class background_process {
 public:
  background_process(std::vector<std::string> argv, const std::vector<std::string>& env, const fs::path& dir,
                     const std::string& tag)
      : out_(dir / (tag + ".out")), err_(dir / (tag + ".err")), what_(join_command(argv)) {
    const int out = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int err = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    spawn_options options;
    options.argv = std::move(argv);
    options.env = env;
    options.stdout_fd = out;
    options.stderr_fd = err;
    pid_ = spawn(options);
    ::close(out);
    ::close(err);
  }
  ~background_process() {
    if (!status_) kill_and_reap(pid_);
  }
  background_process(const background_process&) = delete;
  background_process& operator=(const background_process&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int sig) const { ::kill(pid_, sig); }

  bool running() {
    poll();
    return !status_;
  }
  // The exit code (128 + signal when a signal ended it), or nullopt when it still runs after `timeout`.
  std::optional<int> wait_for_exit(std::chrono::milliseconds timeout) {
    eventually([this] { return !running(); }, timeout);
    if (!status_) return std::nullopt;
    return WIFEXITED(*status_) ? WEXITSTATUS(*status_) : 128 + WTERMSIG(*status_);
  }
  std::string out() const { return read_file(out_); }
  std::string err() const { return read_file(err_); }
  std::string report() const { return what_ + "\n--- stdout:\n" + out() + "--- stderr:\n" + err(); }

 private:
  void poll() {
    if (status_) return;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) status_ = status;
  }

  fs::path out_, err_;
  std::string what_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = std::make_unique<etcd_cluster>(); }
  static void TearDownTestSuite() { cluster_.reset(); }

  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "clusterlock-cli-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    // A lock name of its own for every test (and every repetition), on the one etcd of the suite.
    static std::atomic<int> serial{0};
    name_ = std::string("cli-") + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-" +
            std::to_string(::getpid()) + "-" + std::to_string(serial++);
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  static etcd_cluster& cluster() { return *cluster_; }
  std::string endpoints() const { return "--endpoints=" + cluster_->endpoints_csv(); }
  fs::path file(const std::string& name) const { return dir_ / name; }

  // clusterlock SUBCOMMAND --endpoints=... ARGS..., to completion.
  command_result cli_run(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
                         std::chrono::milliseconds timeout = 20s) const {
    std::vector<std::string> argv = {cli};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, test_environment(env), timeout);
  }
  std::unique_ptr<background_process> cli_start(const std::vector<std::string>& args, const std::string& tag) const {
    std::vector<std::string> argv = {cli};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<background_process>(argv, test_environment(), dir_, tag);
  }
  std::unique_ptr<background_process> etcdctl_start(const std::vector<std::string>& args,
                                                    const std::string& tag) const {
    std::vector<std::string> argv = {etcdctl_path, "--endpoints=" + cluster_->endpoints_csv()};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<background_process>(argv, test_environment({"ETCDCTL_API=3"}), dir_, tag);
  }

  // The keys under NAME/ (holder and waiters), as etcdctl sees them.
  std::size_t queue_length() const {
    return lines_of(cluster_->etcdctl({"get", "--prefix", "--keys-only", name_ + "/"})).size();
  }
  bool queue_reaches(std::size_t n, std::chrono::milliseconds timeout = 10s) const {
    return eventually([&] { return queue_length() == n; }, timeout);
  }
  bool file_has(const std::string& name, const std::string& text, std::chrono::milliseconds timeout = 10s) const {
    return eventually([&] { return read_file(file(name)).find(text) != std::string::npos; }, timeout);
  }

  static inline std::unique_ptr<etcd_cluster> cluster_;
  fs::path dir_;
  std::string name_;
};

}  // namespace clusterlock::test
