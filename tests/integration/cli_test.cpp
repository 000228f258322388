// The `clusterlock` command, driven as a user drives it: the real binary against a real etcd, next to etcdctl.
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
#include "support/etcd_cluster.hpp"
#include "support/text_file.hpp"
#include "support/timing.hpp"

#ifndef CLUSTERLOCK_CLI_PATH
#error "CLUSTERLOCK_CLI_PATH must name the clusterlock binary"
#endif

namespace clusterlock::test {
namespace {

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

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

// Our environment without anything that would change what etcdctl or clusterlock do behind the test's back.
std::vector<std::string> test_environment(const std::vector<std::string>& extra = {}) {
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

TEST_F(Cli, RunGivesTheCommandTheLockInItsEnvironmentAndExitsWithItsStatus) {
  const auto env_file = file("env");
  const auto r = cli_run({"run", endpoints(), "--identity=alice", name_, "--", sh, "-c",
                          "printf '%s\\n%s\\n%s\\n%s\\n' \"$CLUSTERLOCK_NAME\" \"$CLUSTERLOCK_KEY\" "
                          "\"$CLUSTERLOCK_FENCING_TOKEN\" \"$CLUSTERLOCK_IDENTITY\" > " +
                              env_file.string() + "; exit 7"});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  const auto env = lines_of(read_file(env_file));
  ASSERT_EQ(env.size(), 4u) << read_file(env_file);
  EXPECT_EQ(env[0], name_);
  EXPECT_THAT(env[1], StartsWith(name_ + "/"));
  EXPECT_GT(std::stoll(env[2]), 0);
  EXPECT_EQ(env[3], "alice");
  EXPECT_EQ(queue_length(), 0u) << "the lock is freed when the command ends";

  // Killed by a signal: 128 + the signal, as a shell reports it.
  const auto killed = cli_run({"run", endpoints(), name_, "--", sh, "-c", "kill -TERM $$"});
  EXPECT_EQ(killed.exit_code, 128 + SIGTERM) << killed.err;

  // A command that does not exist fails at once, before any wait for the lock.
  const auto missing = cli_run({"run", endpoints(), name_, "--", "no-such-command-here"});
  EXPECT_EQ(missing.exit_code, 127);
  EXPECT_THAT(missing.err, HasSubstr("no-such-command-here: command not found"));
  EXPECT_EQ(queue_length(), 0u);
}

TEST_F(Cli, RunsOnOneLockNeverOverlap) {
  const auto log = file("intervals").string();
  const std::string body = "echo start $(date +%s%N) $$ >> " + log + "; sleep 0.3; echo end $(date +%s%N) $$ >> " + log;
  std::vector<std::unique_ptr<background_process>> runs;
  for (int i = 0; i < 3; ++i)
    runs.push_back(cli_start({"run", endpoints(), "--ttl=2", name_, "--", sh, "-c", body}, "run" + std::to_string(i)));
  for (auto& run : runs) {
    EXPECT_EQ(run->wait_for_exit(20s), 0) << run->report();
  }
  // Each command wrote "start T PID" then "end T PID"; in file order, a start must follow the previous end.
  const auto lines = lines_of(read_file(log));
  ASSERT_EQ(lines.size(), 6u) << read_file(log);
  long long previous_end = 0;
  for (std::size_t i = 0; i < lines.size(); i += 2) {
    std::istringstream start(lines[i]), end(lines[i + 1]);
    std::string start_word, end_word, start_pid, end_pid;
    long long start_ns = 0, end_ns = 0;
    start >> start_word >> start_ns >> start_pid;
    end >> end_word >> end_ns >> end_pid;
    EXPECT_EQ(start_word, "start") << read_file(log);
    EXPECT_EQ(end_word, "end") << read_file(log);
    EXPECT_EQ(start_pid, end_pid) << "two commands overlapped:\n" << read_file(log);
    EXPECT_GE(start_ns, previous_end) << read_file(log);
    previous_end = end_ns;
  }
}

TEST_F(Cli, RunWaitsWhileEtcdctlLockHoldsTheLock) {
  auto holder = etcdctl_start({"lock", name_}, "etcdctl");
  ASSERT_TRUE(eventually([&] { return holder->out().find(name_ + "/") != std::string::npos; }, 10s))
      << holder->report();

  auto ours = cli_start({"run", endpoints(), name_, "--", sh, "-c", "touch " + file("ran").string()}, "run");
  ASSERT_TRUE(queue_reaches(2)) << ours->report();  // queued behind etcdctl's key
  // etcdctl's key has an empty value: every command says so in the same words.
  EXPECT_THAT(cli_run({"status", endpoints(), name_}).out, HasSubstr("held by (no identity)"));
  EXPECT_TRUE(ours->running()) << ours->report();
  EXPECT_FALSE(fs::exists(file("ran"))) << "the command ran while etcdctl held the lock";

  holder->signal(SIGTERM);  // etcdctl lock unlocks on SIGTERM
  EXPECT_EQ(holder->wait_for_exit(10s), 0) << holder->report();
  const auto start = steady::now();
  EXPECT_EQ(ours->wait_for_exit(10s), 0) << ours->report();
  EXPECT_LT(milliseconds_since(start), 5000) << "should take the lock on etcdctl's release, not on its lease's expiry";
  EXPECT_TRUE(fs::exists(file("ran")));
}

// Issue 17: a holder of NAME/sub blocked NAME (every key under NAME/ counted). Keys of nested names are now another
// lock's: NAME and NAME/sub are independent, for our holders and etcdctl's, while etcdctl lock NAME still excludes us
// (RunWaitsWhileEtcdctlLockHoldsTheLock).
TEST_F(Cli, NestedNamesAreIndependentLocks) {
  auto ours = cli_start({"run", endpoints(), name_ + "/ours", "--", sh, "-c",
                         "echo held > " + file("nested").string() + "; sleep 30"},
                        "nested");
  ASSERT_TRUE(file_has("nested", "held")) << ours->report();
  auto theirs = etcdctl_start({"lock", name_ + "/theirs"}, "etcdctl");
  ASSERT_TRUE(eventually([&] { return theirs->out().find(name_ + "/theirs/") != std::string::npos; }, 10s))
      << theirs->report();

  const auto status = cli_run({"status", endpoints(), name_});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr("free")) << "the holders of NAME/ours and NAME/theirs are not NAME's";

  const auto run = cli_run({"run", endpoints(), "--timeout=5s", name_, "--", sh, "-c", "exit 7"});
  EXPECT_EQ(run.exit_code, 7) << run.err;

  ours->signal(SIGTERM);
  theirs->signal(SIGTERM);
  EXPECT_NE(ours->wait_for_exit(10s), -1) << ours->report();
  EXPECT_EQ(theirs->wait_for_exit(10s), 0) << theirs->report();
}

// Issue 17: a key put under NAME/ without a lease blocks the lock until someone deletes it; that wait was silent.
TEST_F(Cli, AKeyWithoutALeaseIsNamedWithHowToClearIt) {
  const std::string key = name_ + "/by-hand";
  cluster().etcdctl({"put", key, "v"});
  const auto status = cli_run({"status", endpoints(), name_});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr("key " + key + " has no lease: it stays until deleted"));
  EXPECT_THAT(status.out, HasSubstr("etcdctl del " + key));

  const auto run = cli_run({"run", endpoints(), "--timeout=1s", name_, "--", "true"});
  EXPECT_EQ(run.exit_code, 124) << run.err;
  EXPECT_THAT(run.err, HasSubstr("key " + key + " has no lease")) << "said while waiting, without -v";
  const auto watch = cli_run({"watch", "--count=1", endpoints(), name_});
  EXPECT_EQ(watch.exit_code, 0) << watch.err;
  EXPECT_THAT(watch.err, HasSubstr("key " + key + " has no lease"));
  cluster().etcdctl({"del", key});
}

TEST_F(Cli, EtcdctlLockWaitsWhileRunHoldsTheLock) {
  const auto ours_log = file("ours").string();
  auto ours = cli_start({"run", endpoints(), name_, "--", sh, "-c",
                         "echo start >> " + ours_log + "; sleep 1; echo end $(date +%s%N) >> " + ours_log},
                        "run");
  ASSERT_TRUE(file_has("ours", "start")) << ours->report();

  const auto theirs = file("theirs").string();
  const auto r = cluster().try_etcdctl({"lock", name_, "--", sh, "-c", "date +%s%N > " + theirs});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ours->wait_for_exit(10s), 0) << ours->report();

  const auto ours_lines = lines_of(read_file(ours_log));
  ASSERT_EQ(ours_lines.size(), 2u) << read_file(ours_log);
  const long long ours_end = std::stoll(ours_lines[1].substr(4));
  const long long theirs_start = std::stoll(read_file(theirs));
  EXPECT_GE(theirs_start, ours_end) << "etcdctl's command ran while ours held the lock";
}

TEST_F(Cli, LosingTheLockTerminatesTheCommand) {
  auto run = cli_start({"run", endpoints(), "--ttl=2", "--grace=5s", name_, "--", sh, "-c",
                        "trap 'echo TERM >> " + file("child").string() + "; exit 3' TERM; echo started >> " +
                            file("child").string() + "; while :; do sleep 0.1; done"},
                       "run");
  ASSERT_TRUE(file_has("child", "started")) << run->report();

  cluster().etcdctl({"del", "--prefix", name_ + "/"});  // an operator takes the lock away
  const auto code = run->wait_for_exit(10s);
  EXPECT_EQ(code, 122) << run->report();
  EXPECT_THAT(run->err(), HasSubstr("lost the lock"));
  EXPECT_THAT(run->err(), HasSubstr("REMOVED"));
  EXPECT_THAT(read_file(file("child")), HasSubstr("TERM")) << "the command got SIGTERM";
  EXPECT_EQ(queue_length(), 0u);
}

TEST_F(Cli, ACommandThatIgnoresSigtermIsKilledAfterTheGracePeriod) {
  auto run = cli_start({"run", endpoints(), "--ttl=2", "--grace=500ms", name_, "--", sh, "-c",
                        "trap '' TERM; echo started >> " + file("child").string() + "; while :; do sleep 0.1; done"},
                       "run");
  ASSERT_TRUE(file_has("child", "started")) << run->report();

  const auto start = steady::now();
  cluster().etcdctl({"del", "--prefix", name_ + "/"});
  EXPECT_EQ(run->wait_for_exit(10s), 122) << run->report();
  EXPECT_GE(milliseconds_since(start), 450);
  EXPECT_THAT(run->err(), HasSubstr("SIGKILL"));
}

// Issue 17: --grace 0 said "SIGKILL in 0s", then "still runs 0s after SIGTERM: sending SIGKILL".
TEST_F(Cli, NoGracePeriodMeansSigkillAtOnceAndSaysSo) {
  auto run = cli_start({"run", endpoints(), "--ttl=2", "--grace=0", name_, "--", sh, "-c",
                        "trap '' TERM; echo started >> " + file("child").string() + "; while :; do sleep 0.1; done"},
                       "run");
  ASSERT_TRUE(file_has("child", "started")) << run->report();
  cluster().etcdctl({"del", "--prefix", name_ + "/"});
  EXPECT_EQ(run->wait_for_exit(10s), 122) << run->report();
  EXPECT_THAT(run->err(), HasSubstr("sending SIGKILL to " + std::string(sh) + " (--grace 0)")) << run->report();
  EXPECT_THAT(run->err(), Not(HasSubstr("SIGTERM")));
}

TEST_F(Cli, SigtermToRunReachesTheCommandAndFreesTheLockAtOnce) {
  // TTL 10 s: the waiter getting the lock within a second proves a release, not a lease expiry.
  auto first = cli_start({"run", endpoints(), "--ttl=10", name_, "--", sh, "-c",
                          "trap 'echo TERM >> " + file("first").string() + "; exit 143' TERM; echo started >> " +
                              file("first").string() + "; while :; do sleep 0.1; done"},
                         "first");
  ASSERT_TRUE(file_has("first", "started")) << first->report();
  auto second = cli_start({"run", endpoints(), "--ttl=10", name_, "--", sh, "-c", "echo ran >> " + file("second").string()},
                          "second");
  ASSERT_TRUE(queue_reaches(2)) << second->report();

  first->signal(SIGTERM);
  EXPECT_EQ(first->wait_for_exit(10s), 143) << first->report();
  EXPECT_THAT(read_file(file("first")), HasSubstr("TERM"));
  const auto start = steady::now();
  EXPECT_EQ(second->wait_for_exit(10s), 0) << second->report();
  EXPECT_LT(milliseconds_since(start), 3000);
  EXPECT_THAT(read_file(file("second")), HasSubstr("ran"));
}

TEST_F(Cli, GivingUpTheWaitLeavesTheQueue) {
  auto holder = etcdctl_start({"lock", name_}, "etcdctl");
  ASSERT_TRUE(eventually([&] { return holder->out().find(name_ + "/") != std::string::npos; }, 10s))
      << holder->report();

  // --timeout: exit code 124 and a message that says who holds the lock.
  const auto start = steady::now();
  const auto timed_out = cli_run({"run", endpoints(), "--timeout=1s", name_, "--", sh, "-c", "exit 0"});
  EXPECT_EQ(timed_out.exit_code, 124) << timed_out.err;
  EXPECT_GE(milliseconds_since(start), 1000);
  EXPECT_THAT(timed_out.err, HasSubstr("gave up waiting"));
  EXPECT_EQ(queue_length(), 1u) << "the timed-out waiter left its key behind";

  // A signal while waiting: leave the queue and exit 128 + signal.
  auto waiter = cli_start({"run", endpoints(), name_, "--", sh, "-c", "exit 0"}, "waiter");
  ASSERT_TRUE(queue_reaches(2)) << waiter->report();
  waiter->signal(SIGINT);
  EXPECT_EQ(waiter->wait_for_exit(10s), 128 + SIGINT) << waiter->report();
  EXPECT_EQ(queue_length(), 1u) << "the interrupted waiter left its key behind";
  holder->signal(SIGTERM);
  EXPECT_EQ(holder->wait_for_exit(10s), 0) << holder->report();
}

TEST_F(Cli, EtcdUnreachableWhileRunningEndsTheCommandWithUnknown) {
  auto run = cli_start({"run", endpoints(), "--ttl=2", "--request-timeout=500ms", "--grace=2s", name_, "--", sh, "-c",
                        "trap 'echo TERM >> " + file("child").string() + "; exit 0' TERM; echo started >> " +
                            file("child").string() + "; while :; do sleep 0.1; done"},
                       "run");
  ASSERT_TRUE(file_has("child", "started")) << run->report();

  cluster().stop(0);  // frozen with its sockets open: requests time out
  const auto code = run->wait_for_exit(15s);
  cluster().cont(0);
  EXPECT_EQ(code, 123) << run->report();
  EXPECT_THAT(run->err(), HasSubstr("UNKNOWN"));
  EXPECT_THAT(run->err(), HasSubstr("request deadline passed")) << "it says why";
  // Its exit does not wait for a release that cannot succeed, and says what that leaves behind.
  EXPECT_THAT(run->err(), HasSubstr("stands until its lease's TTL (2s) runs out")) << run->report();
  EXPECT_THAT(read_file(file("child")), HasSubstr("TERM"));
}

TEST_F(Cli, TlsClientCertificatesAndAuthentication) {
  etcd_cluster secure(etcd_options{.tls = true, .client_cert_auth = true, .auth = true});
  const std::vector<std::string> tls = {"--endpoints=" + secure.endpoints_csv(), "--cacert=" + secure.ca_file(),
                                        "--cert=" + secure.client_cert_file(), "--key=" + secure.client_key_file(),
                                        "--user=root"};
  auto args = [&](std::vector<std::string> command) {
    command.insert(command.begin() + 1, tls.begin(), tls.end());
    return command;
  };
  const auto ok = cli_run(args({"status", "--json", name_}), {"CLUSTERLOCK_PASSWORD=" + secure.root_password()});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("\"holder\":null"));

  // The password is clusterlock's: COMMAND does not inherit it.
  const auto ran = cli_run(args({"run", name_, "--", sh, "-c", "test -z \"$CLUSTERLOCK_PASSWORD\" && exit 5"}),
                           {"CLUSTERLOCK_PASSWORD=" + secure.root_password()});
  EXPECT_EQ(ran.exit_code, 5) << ran.err;

  // A wrong password is not worth waiting for: status and run both fail at once.
  const auto wrong = cli_run(args({"status", name_}), {"CLUSTERLOCK_PASSWORD=wrong"});
  EXPECT_EQ(wrong.exit_code, 1) << wrong.err;
  EXPECT_THAT(wrong.err, HasSubstr("authentication failed"));
  const auto wrong_run = cli_run(args({"run", name_, "--", sh, "-c", "exit 0"}), {"CLUSTERLOCK_PASSWORD=wrong"});
  EXPECT_EQ(wrong_run.exit_code, 1) << wrong_run.err;
  EXPECT_THAT(wrong_run.err, HasSubstr("authentication failed"));

  // A server certificate we cannot verify (no --cacert): refused at once, not waited on.
  const auto untrusted = cli_run({"run", "--endpoints=" + secure.endpoints_csv(), "--cert=" + secure.client_cert_file(),
                                  "--key=" + secure.client_key_file(), name_, "--", sh, "-c", "exit 0"});
  EXPECT_EQ(untrusted.exit_code, 1) << untrusted.err;
  EXPECT_THAT(untrusted.err, HasSubstr("TLS handshake failed"));

  // No password and no terminal to ask on: bad usage.
  const auto none = cli_run(args({"status", name_}));
  EXPECT_EQ(none.exit_code, 2) << none.err;
  EXPECT_THAT(none.err, HasSubstr("CLUSTERLOCK_PASSWORD"));
}

// A user who may read the lock's keys but not write them: run must say so and fail, not wait (issue 10).
TEST_F(Cli, RunWithoutWritePermissionFailsAtOnceWithEtcdsReason) {
  etcd_cluster secure(etcd_options{.auth = true});
  secure.etcdctl({"user", "add", "reader:readerpw"});
  secure.etcdctl({"role", "add", "reader"});
  secure.etcdctl({"role", "grant-permission", "reader", "--prefix=true", "read", name_ + "/"});
  secure.etcdctl({"user", "grant-role", "reader", "reader"});
  const auto r = cli_run({"run", "--endpoints=" + secure.endpoints_csv(), "--user=reader", name_, "--", sh, "-c", "exit 0"},
                         {"CLUSTERLOCK_PASSWORD=readerpw"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("permission denied"));
}

TEST_F(Cli, StatusShowsTheHolderAndTheQueue) {
  const auto free = cli_run({"status", endpoints(), name_});
  EXPECT_EQ(free.exit_code, 0) << free.err;
  EXPECT_THAT(free.out, HasSubstr("free"));

  auto alice = cli_start({"run", endpoints(), "--identity=alice", name_, "--", "sleep", "30"}, "alice");
  ASSERT_TRUE(queue_reaches(1)) << alice->report();
  auto bob = cli_start({"run", endpoints(), "--identity=bob", name_, "--", "sleep", "30"}, "bob");
  ASSERT_TRUE(queue_reaches(2)) << bob->report();

  const auto table = cli_run({"status", endpoints(), name_});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("held by alice"));
  EXPECT_THAT(table.out, HasSubstr("1 waiting"));
  const auto rows = lines_of(table.out);
  ASSERT_EQ(rows.size(), 4u) << table.out;  // summary, header, holder, one waiter
  EXPECT_THAT(rows[2], StartsWith("holder"));
  EXPECT_THAT(rows[2], HasSubstr("alice"));
  EXPECT_THAT(rows[3], StartsWith("1 "));
  EXPECT_THAT(rows[3], HasSubstr("bob"));

  const auto as_json = cli_run({"status", "--json", endpoints(), name_});
  EXPECT_EQ(as_json.exit_code, 0) << as_json.err;
  const json::value doc = json::parse(as_json.out);
  EXPECT_EQ(doc.at("name").as_string(), name_);
  const auto& holder = doc.at("holder").as_object();
  EXPECT_EQ(holder.at("identity").as_string(), "alice");
  EXPECT_THAT(std::string(holder.at("key").as_string()), StartsWith(name_ + "/"));
  const auto& waiters = doc.at("waiters").as_array();
  ASSERT_EQ(waiters.size(), 1u);
  EXPECT_EQ(waiters[0].at("identity").as_string(), "bob");
  EXPECT_LT(holder.at("fencing_token").to_number<std::int64_t>(),
            waiters[0].at("fencing_token").to_number<std::int64_t>());

  alice->signal(SIGTERM);
  bob->signal(SIGTERM);
  EXPECT_EQ(alice->wait_for_exit(10s), 128 + SIGTERM) << alice->report();
  EXPECT_EQ(bob->wait_for_exit(10s), 128 + SIGTERM) << bob->report();
}

TEST_F(Cli, WatchPrintsHolderChangesAsJsonLines) {
  auto watch = cli_start({"watch", "--json", "--count=3", endpoints(), name_}, "watch");
  ASSERT_TRUE(eventually([&] { return !watch->out().empty(); }, 10s)) << watch->report();  // nobody holds it

  const auto r = cli_run({"run", endpoints(), "--identity=carol", name_, "--", sh, "-c", "exit 0"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(watch->wait_for_exit(10s), 0) << watch->report();

  const auto lines = lines_of(watch->out());
  ASSERT_EQ(lines.size(), 3u) << watch->report();
  std::vector<json::object> events;
  for (const auto& line : lines) events.push_back(json::parse(line).as_object());
  for (const auto& e : events) {
    EXPECT_EQ(e.at("event").as_string(), "holder_changed");
    EXPECT_THAT(std::string(e.at("time").as_string()), ::testing::EndsWith("Z"));
    EXPECT_TRUE(e.at("error").is_null());  // only unknown events carry one
  }
  EXPECT_TRUE(events[0].at("holder").is_null());
  EXPECT_EQ(events[1].at("holder").as_string(), "carol");
  EXPECT_GT(events[1].at("fencing_token").to_number<std::int64_t>(), 0);
  EXPECT_TRUE(events[2].at("holder").is_null());

  // --contend: its own ACQUIRED as well, and its key freed on SIGTERM.
  auto contender = cli_start({"watch", "--json", "--contend", "--identity=dave", endpoints(), name_}, "contender");
  ASSERT_TRUE(eventually([&] { return lines_of(contender->out()).size() >= 2; }, 10s)) << contender->report();
  const auto first = json::parse(lines_of(contender->out())[0]).as_object();
  EXPECT_EQ(first.at("event").as_string(), "acquired");
  EXPECT_EQ(first.at("holder").as_string(), "dave");
  contender->signal(SIGTERM);
  EXPECT_EQ(contender->wait_for_exit(10s), 0) << contender->report();
  EXPECT_EQ(queue_length(), 0u);
}

TEST_F(Cli, BadUsageExitsWithTwoAndSaysWhy) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{}, "command is missing"},
      {{"frobnicate", "x"}, "unknown command 'frobnicate'"},
      {{"status"}, "NAME is missing"},
      {{"run", "x"}, "COMMAND is missing"},
      {{"status", "--ttl", "abc", "x"}, "--ttl"},
      {{"status", "--ttl=500ms", "x"}, "whole number of seconds"},
      {{"run", "--grace", "x"}, "--grace"},
      {{"status", "--bogus", "x"}, "unknown option '--bogus'"},
      {{"watch", "--count=0", "x"}, "--count"},
      {{"status", "x", "y"}, "unexpected argument 'y'"},
      {{"run", "--user=root:secret", "x", "--", "true"}, "never taken from the command line"},
      {{"status", "--endpoints=ftp://127.0.0.1:1", "x"}, "endpoints"},
  };
  for (const auto& [args, message] : cases) {
    const auto r = cli_run(args);
    EXPECT_EQ(r.exit_code, 2) << join_command(args) << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr(message)) << join_command(args);
  }
}

TEST_F(Cli, UnreachableEtcdFailsWithinSecondsWhereWaitingWasNotAskedFor) {
  const std::string refused = "--endpoints=http://127.0.0.1:" + std::to_string(free_port());
  auto start = steady::now();
  const auto status = cli_run({"status", refused, name_});
  EXPECT_EQ(status.exit_code, 1) << status.err;
  EXPECT_THAT(status.err, HasSubstr("cannot reach etcd"));
  EXPECT_LT(milliseconds_since(start), 5000);

  start = steady::now();
  const auto watch = cli_run({"watch", refused, name_});
  EXPECT_EQ(watch.exit_code, 1) << watch.err;
  EXPECT_LT(milliseconds_since(start), 5000);

  // An endpoint that accepts connections and never answers: the request timeout bounds the wait.
  const int silent = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(silent, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(silent, 16), 0);
  socklen_t length = sizeof address;
  ::getsockname(silent, reinterpret_cast<sockaddr*>(&address), &length);
  start = steady::now();
  const auto stalled = cli_run({"status", "--request-timeout=300ms",
                                "--endpoints=http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)), name_});
  ::close(silent);
  EXPECT_EQ(stalled.exit_code, 1) << stalled.err;
  EXPECT_LT(milliseconds_since(start), 6000);

  // run keeps waiting (that is what it is for); -v says why, --timeout ends it.
  const auto run = cli_run({"run", "-v", "--timeout=2s", refused, name_, "--", sh, "-c", "exit 0"});
  EXPECT_EQ(run.exit_code, 124) << run.err;
  EXPECT_THAT(run.err, HasSubstr("cannot reach etcd"));
  EXPECT_THAT(run.err, HasSubstr("gave up waiting"));
  for (const auto& line : lines_of(run.err))  // issue 17: with -v, errors too have a timestamp
    EXPECT_THAT(line, StartsWith("clusterlock: 20")) << "no timestamp";
}

TEST_F(Cli, HelpPrintsUsage) {
  const auto top = cli_run({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_THAT(top.out, HasSubstr("Usage: clusterlock COMMAND"));
  EXPECT_THAT(top.out, HasSubstr("--endpoints"));
  const auto run = cli_run({"run", "--help"});
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_THAT(run.out, HasSubstr("--grace"));
  EXPECT_THAT(run.out, HasSubstr("124"));
  const auto watch = cli_run({"help", "watch"});
  EXPECT_EQ(watch.exit_code, 0);
  EXPECT_THAT(watch.out, HasSubstr("--count"));
  const auto status = cli_run({"status", "-h"});
  EXPECT_EQ(status.exit_code, 0);
  EXPECT_THAT(status.out, HasSubstr("--json"));
  const auto help_first = cli_run({"--help", "run"});  // issue 17: this printed the top-level help
  EXPECT_EQ(help_first.exit_code, 0);
  EXPECT_THAT(help_first.out, HasSubstr("--grace"));
}

}  // namespace
}  // namespace clusterlock::test
