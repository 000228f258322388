// The example programs, run as a user runs them: separate processes against a real etcd, their output parsed and
// their HTTP answers read. Paths to the binaries come from CMake (EXAMPLE_*_BIN).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/bounded_wait.hpp"
#include "support/etcd_cluster.hpp"
#include "support/promtool.hpp"
#include "support/text_file.hpp"
#include "support/timing.hpp"

namespace clusterlock::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using ::testing::HasSubstr;

// A directory for the logs of one test, removed afterwards.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "clusterlock-examples-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// One example program as a child process, stdout and stderr appended to `log` (O_APPEND: several programs may share
// one log, and then its lines are in the order in which they were written). Killed when the test ends.
class example_process {
 public:
  example_process(std::vector<std::string> argv, std::string log) : log_(std::move(log)) {
    const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("cannot open " + log_);
    spawn_options options;
    options.argv = std::move(argv);
    options.env = clean_environment();
    options.stdout_fd = fd;
    options.stderr_fd = fd;
    try {
      pid_ = spawn(options);
    } catch (...) {
      ::close(fd);
      throw;
    }
    ::close(fd);
  }
  ~example_process() { kill_and_reap(pid_); }
  example_process(const example_process&) = delete;
  example_process& operator=(const example_process&) = delete;

  void signal(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  // Its exit code (128 + signal when killed by one) once it ends; nothing if it still runs after `timeout`.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return exit_code_;
    const auto deadline = steady::now() + timeout;
    for (;;) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return exit_code_;
      }
      if (steady::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(10ms);
    }
  }
  std::string output() const { return read_file(log_); }

 private:
  std::string log_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

bool contains(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// ---- leader_election

std::int64_t acquired_token(const std::string& output) {
  std::smatch m;
  static const std::regex acquired(R"(ACQUIRED\s+the lock \(fencing token (\d+)\))");
  return std::regex_search(output, m, acquired) ? std::stoll(m[1]) : 0;
}

TEST(ExamplesTest, LeaderElectionHandsOverOnSigterm) {
  etcd_cluster cluster;
  temp_dir dir;
  const std::string url = cluster.client_url(0);
  example_process alpha({EXAMPLE_LEADER_ELECTION_BIN, url, "election", "alpha"}, dir.file("alpha.log"));
  ASSERT_TRUE(eventually([&] { return contains(alpha.output(), "ACQUIRED"); }, 10s)) << alpha.output();
  example_process beta({EXAMPLE_LEADER_ELECTION_BIN, url, "election", "beta"}, dir.file("beta.log"));
  ASSERT_TRUE(eventually([&] { return contains(beta.output(), "sees holder: alpha"); }, 10s)) << beta.output();
  EXPECT_FALSE(contains(beta.output(), "ACQUIRED"));

  const auto start = steady::now();
  alpha.signal(SIGTERM);
  ASSERT_TRUE(eventually([&] { return contains(beta.output(), "ACQUIRED"); }, 5s)) << beta.output();
  report_timing("leader_election: SIGTERM to the next ACQUIRED", milliseconds_since(start));
  EXPECT_EQ(alpha.wait_exit(5s), 0) << alpha.output();
  EXPECT_THAT(alpha.output(), HasSubstr("shutting down: releasing the lock"));
  EXPECT_GT(acquired_token(beta.output()), acquired_token(alpha.output()));
  // alpha's key is gone: only beta's is left.
  const auto keys = cluster.etcdctl({"get", "--prefix", "election/", "--print-value-only"});
  EXPECT_EQ(keys, "beta\n");

  beta.signal(SIGTERM);
  EXPECT_EQ(beta.wait_exit(5s), 0) << beta.output();
  EXPECT_EQ(cluster.etcdctl({"get", "--prefix", "election/", "--keys-only"}), "");
}

// ---- http_leader

struct http_instance {
  std::string identity;
  std::unique_ptr<example_process> process;
  unsigned short port = 0;
};

struct http_answer {
  int status = 0;  // 0: no answer
  std::string body;
};

http_answer ask(const http_instance& instance) {
  http_request_options request;
  request.target = "/";
  const auto reply = http_request("http://127.0.0.1:" + std::to_string(instance.port), request);
  return reply ? http_answer{reply->status, reply->body} : http_answer{};
}

// The leader's index when exactly one of `instances` answers 200 "leader ID token N" (its own identity) and every
// other answers 503 naming it; -1 otherwise. `token` receives N.
int agreed_leader(const std::vector<const http_instance*>& instances, std::int64_t* token, std::string* seen) {
  std::vector<http_answer> answers;
  for (const auto* instance : instances) answers.push_back(ask(*instance));
  *seen = "";
  int leader = -1;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    *seen += instances[i]->identity + ": " + std::to_string(answers[i].status) + " " + answers[i].body;
    if (answers[i].status == 200) leader = leader == -1 ? static_cast<int>(i) : -2;
  }
  if (leader < 0) return -1;
  static const std::regex leader_body(R"(leader (\S+) token (\d+)\n)");
  std::smatch m;
  if (!std::regex_match(answers[leader].body, m, leader_body) || m[1] != instances[leader]->identity) return -1;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    if (static_cast<int>(i) == leader) continue;
    if (answers[i].status != 503 ||
        answers[i].body != "not the leader; the leader is " + instances[leader]->identity + "\n")
      return -1;
  }
  *token = std::stoll(m[2]);
  return leader;
}

TEST(ExamplesTest, HttpLeaderExactlyOneAnswers200AndSigtermHandsOver) {
  etcd_cluster cluster;
  temp_dir dir;
  std::vector<http_instance> instances;
  for (const char* identity : {"web-a", "web-b", "web-c"}) {
    http_instance instance;
    instance.identity = identity;
    // --run-for: a safety net; the test ends them itself.
    instance.process = std::make_unique<example_process>(
        std::vector<std::string>{EXAMPLE_HTTP_LEADER_BIN, cluster.client_url(0), "web", "--identity", identity,
                                 "--run-for", "120"},
        dir.file(std::string(identity) + ".log"));
    instances.push_back(std::move(instance));
  }
  static const std::regex listening(R"(listening on 127\.0\.0\.1:(\d+))");
  for (auto& instance : instances) {
    std::smatch m;
    ASSERT_TRUE(eventually(
        [&] {
          const auto out = instance.process->output();
          if (!std::regex_search(out, m, listening)) return false;
          instance.port = static_cast<unsigned short>(std::stoi(m[1]));
          return true;
        },
        10s))
        << instance.process->output();
  }

  std::vector<const http_instance*> all;
  for (const auto& instance : instances) all.push_back(&instance);
  std::int64_t first_token = 0;
  std::string seen;
  int leader = -1;
  ASSERT_TRUE(eventually([&] { return (leader = agreed_leader(all, &first_token, &seen)) >= 0; }, 10s)) << seen;
  // And it stays so (no flapping while nothing happens).
  for (int i = 0; i < 5; ++i) {
    std::int64_t token = 0;
    EXPECT_EQ(agreed_leader(all, &token, &seen), leader) << seen;
    EXPECT_EQ(token, first_token);
  }

  const auto start = steady::now();
  instances[leader].process->signal(SIGTERM);
  std::vector<const http_instance*> rest;
  for (int i = 0; i < static_cast<int>(instances.size()); ++i)
    if (i != leader) rest.push_back(&instances[i]);
  std::int64_t second_token = 0;
  int next = -1;
  ASSERT_TRUE(eventually([&] { return (next = agreed_leader(rest, &second_token, &seen)) >= 0; }, 5s)) << seen;
  report_timing("http_leader: SIGTERM to a new leader answering 200", milliseconds_since(start));
  EXPECT_GT(second_token, first_token);
  EXPECT_EQ(instances[leader].process->wait_exit(5s), 0) << instances[leader].process->output();

  for (const auto* instance : rest) instance->process->signal(SIGTERM);
  for (const auto* instance : rest) EXPECT_EQ(instance->process->wait_exit(5s), 0) << instance->process->output();
}

http_answer ask(unsigned short port, const char* target) {
  http_request_options request;
  request.target = target;
  const auto reply = http_request("http://127.0.0.1:" + std::to_string(port), request);
  return reply ? http_answer{reply->status, reply->body} : http_answer{};
}

TEST(ExamplesTest, HttpLeaderServesMetricsAndAHealthzThatFailsWhileRenewalIsStuck) {
  etcd_cluster cluster;
  temp_dir dir;
  example_process web({EXAMPLE_HTTP_LEADER_BIN, cluster.client_url(0), "web", "--identity", "web-m", "--ttl", "2",
                       "--run-for", "120"},
                      dir.file("web-m.log"));
  static const std::regex listening(R"(listening on 127\.0\.0\.1:(\d+))");
  unsigned short port = 0;
  ASSERT_TRUE(eventually(
      [&] {
        std::smatch m;
        const auto out = web.output();
        if (!std::regex_search(out, m, listening)) return false;
        port = static_cast<unsigned short>(std::stoi(m[1]));
        return true;
      },
      10s))
      << web.output();
  ASSERT_TRUE(eventually([&] { return ask(port, "/").status == 200; }, 10s)) << web.output();

  const auto metrics = ask(port, "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.body, HasSubstr("clusterlock_lock_held{lock=\"web\",identity=\"web-m\"} 1\n"));
  EXPECT_THAT(metrics.body, HasSubstr("clusterlock_lock_acquisitions_total{lock=\"web\",identity=\"web-m\"} 1\n"));
  EXPECT_THAT(metrics.body, HasSubstr("clusterlock_session_keepalive_duration_seconds_count{session=\"web/\""));
  const auto check = promtool_check(metrics.body);
  EXPECT_EQ(check.status, 0) << check.output << "\n" << metrics.body;
  const auto healthy = ask(port, "/healthz");
  EXPECT_EQ(healthy.status, 200) << healthy.body;
  EXPECT_THAT(healthy.body, HasSubstr("ok: lease renewed"));

  // etcd frozen: no keepalive is answered, and once the last renewal is older than the TTL (2 s) healthz fails.
  const auto frozen = steady::now();
  cluster.stop(0);
  http_answer stuck;
  ASSERT_TRUE(eventually([&] { return (stuck = ask(port, "/healthz")).status == 503; }, 8s)) << stuck.body;
  EXPECT_GE(milliseconds_since(frozen), 1000) << "not before the TTL (less the time since the last renewal)";
  EXPECT_THAT(stuck.body, HasSubstr("lease renewal stuck for"));
  EXPECT_EQ(ask(port, "/").status, 503) << "and it no longer claims to lead";
  cluster.cont(0);
  ASSERT_TRUE(eventually([&] { return ask(port, "/healthz").status == 200; }, 10s)) << web.output();

  web.signal(SIGTERM);
  EXPECT_EQ(web.wait_exit(5s), 0) << web.output();
}

// ---- periodic_job

struct tick {
  std::string identity;
  int number = 0;
  std::int64_t token = 0;
};

std::vector<tick> ticks_in(const std::string& output) {
  static const std::regex tick_line(R"((\S+) tick (\d+) token (\d+))");
  std::vector<tick> ticks;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_match(line, m, tick_line)) ticks.push_back({m[1], std::stoi(m[2]), std::stoll(m[3])});
  }
  return ticks;
}

int count_ticks(const std::string& output, const std::string& identity) {
  int n = 0;
  for (const auto& t : ticks_in(output)) n += t.identity == identity;
  return n;
}

// In the shared log (the order of writing): `first`'s ticks, all with one token, numbered from 1; then exactly
// `second_ticks` of `second`'s, numbered from 1, with one higher token; nothing interleaved.
void expect_ticks_hand_over(const std::string& log, const std::string& first, const std::string& second,
                            int second_ticks) {
  const auto ticks = ticks_in(log);
  std::size_t i = 0;
  for (; i < ticks.size() && ticks[i].identity == first; ++i) {
    EXPECT_EQ(ticks[i].number, static_cast<int>(i) + 1) << log;
    EXPECT_EQ(ticks[i].token, ticks[0].token) << log;
  }
  ASSERT_GT(i, 0u) << log;
  const std::int64_t first_token = ticks[0].token;
  ASSERT_EQ(ticks.size() - i, static_cast<std::size_t>(second_ticks)) << log;
  for (int n = 1; i < ticks.size(); ++i, ++n) {
    EXPECT_EQ(ticks[i].identity, second) << log;
    EXPECT_EQ(ticks[i].number, n) << log;
    EXPECT_GT(ticks[i].token, first_token) << log;
  }
}

// Starts `first`, waits until it ticks, starts `second` (exiting after `second_ticks`), waits until second has seen
// first lead and first has ticked three more times meanwhile.
struct job_pair {
  std::unique_ptr<example_process> first, second;
};

job_pair start_job_pair(const etcd_cluster& cluster, const std::string& log, const std::string& first_ttl,
                        int second_ticks) {
  job_pair pair;
  pair.first = std::make_unique<example_process>(
      std::vector<std::string>{EXAMPLE_PERIODIC_JOB_BIN, cluster.client_url(0), "job", "--identity", "job-a", "--ttl",
                               first_ttl},
      log);
  EXPECT_TRUE(eventually([&] { return count_ticks(read_file(log), "job-a") >= 1; }, 10s)) << read_file(log);
  pair.second = std::make_unique<example_process>(
      std::vector<std::string>{EXAMPLE_PERIODIC_JOB_BIN, cluster.client_url(0), "job", "--identity", "job-b",
                               "--exit-after-ticks", std::to_string(second_ticks)},
      log);
  EXPECT_TRUE(eventually([&] { return contains(read_file(log), "job-b sees leader job-a"); }, 10s)) << read_file(log);
  const int ticks_then = count_ticks(read_file(log), "job-a");
  EXPECT_TRUE(eventually([&] { return count_ticks(read_file(log), "job-a") >= ticks_then + 3; }, 10s))
      << read_file(log);
  EXPECT_EQ(count_ticks(read_file(log), "job-b"), 0) << read_file(log);
  return pair;
}

TEST(ExamplesTest, PeriodicJobTicksOnlyOnTheHolderAndMovesOnWhenItExits) {
  etcd_cluster cluster;
  temp_dir dir;
  const std::string log = dir.file("jobs.log");
  auto jobs = start_job_pair(cluster, log, "10", 5);
  ASSERT_FALSE(HasFailure());

  const auto start = steady::now();
  jobs.first->signal(SIGTERM);
  EXPECT_EQ(jobs.first->wait_exit(5s), 0) << read_file(log);
  ASSERT_TRUE(eventually([&] { return count_ticks(read_file(log), "job-b") >= 1; }, 5s)) << read_file(log);
  report_timing("periodic_job: SIGTERM to the next holder's first tick", milliseconds_since(start));
  EXPECT_EQ(jobs.second->wait_exit(10s), 0) << read_file(log);  // --exit-after-ticks 5
  expect_ticks_hand_over(read_file(log), "job-a", "job-b", 5);
  EXPECT_THAT(read_file(log), HasSubstr("job-b acquired the lock"));
}

TEST(ExamplesTest, PeriodicJobMovesOnWhenTheHolderCrashes) {
  etcd_cluster cluster;
  temp_dir dir;
  const std::string log = dir.file("jobs.log");
  auto jobs = start_job_pair(cluster, log, "2", 3);  // a short TTL: the crashed holder's lease expires soon
  ASSERT_FALSE(HasFailure());

  const auto start = steady::now();
  jobs.first->signal(SIGKILL);
  EXPECT_EQ(jobs.first->wait_exit(5s), 128 + SIGKILL);
  ASSERT_TRUE(eventually([&] { return count_ticks(read_file(log), "job-b") >= 1; }, 15s)) << read_file(log);
  report_timing("periodic_job: SIGKILL to the next holder's first tick", milliseconds_since(start));
  EXPECT_EQ(jobs.second->wait_exit(10s), 0) << read_file(log);
  expect_ticks_hand_over(read_file(log), "job-a", "job-b", 3);
}

// ---- shared_loop

class SharedLoopTest : public ::testing::TestWithParam<int> {};

TEST_P(SharedLoopTest, UserWorkGoesOnWhileTheLockIsContended) {
  etcd_cluster cluster;
  temp_dir dir;
  const auto start = steady::now();
  example_process loop({EXAMPLE_SHARED_LOOP_BIN, cluster.client_url(0), "loop", "--threads", std::to_string(GetParam()),
                        "--contend-ms", "500"},
                       dir.file("loop.log"));
  EXPECT_EQ(loop.wait_exit(40s), 0) << loop.output();
  report_timing("shared_loop: whole run", milliseconds_since(start));
  const auto out = loop.output();
  EXPECT_THAT(out, HasSubstr("second took over"));
  EXPECT_THAT(out, HasSubstr("both held 0"));
  EXPECT_THAT(out, HasSubstr("\nOK\n"));
  static const std::regex during(R"(while second waited 500 ms for the lock: (\d+) heartbeats, (\d+) echoes)");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, during)) << out;
  EXPECT_GT(std::stol(m[1]), 0);
  EXPECT_GT(std::stol(m[2]), 0);
}

INSTANTIATE_TEST_SUITE_P(Threads, SharedLoopTest, ::testing::Values(1, 4));

// ---- fenced_counter

// The numbers after `verb` in `output`'s lines "verb N token T", in order.
std::vector<long long> counted(const std::string& output, const std::string& verb) {
  std::vector<long long> out;
  const std::regex line("^" + verb + R"( (\d+) token \d+)");
  std::istringstream in(output);
  for (std::string l; std::getline(in, l);)
    if (std::smatch m; std::regex_search(l, m, line)) out.push_back(std::stoll(m[1]));
  return out;
}

// The old leader is frozen between its read and its write, past its TTL; the new one counts on; the old one resumes
// and its write is refused: the counter never goes back.
TEST(ExamplesTest, FencedCounterAFrozenOldLeaderNeverSetsTheCounterBack) {
  etcd_cluster cluster;
  temp_dir dir;
  const std::string url = cluster.client_url(0);
  const std::vector<std::string> args{EXAMPLE_FENCED_COUNTER_BIN, url, "counter-lock", "counter"};
  auto with = [&](const char* who) {
    auto a = args;
    a.insert(a.end(), {who, "500"});
    return a;
  };
  example_process old_leader(with("old"), dir.file("old.log"));
  ASSERT_TRUE(eventually([&] { return counted(old_leader.output(), "wrote").size() >= 2; }, 10s))
      << old_leader.output();
  example_process next_leader(with("next"), dir.file("next.log"));
  // Freeze the old leader while it thinks: it read the counter and has not written it back yet.
  const auto reads = counted(old_leader.output(), "read").size();
  ASSERT_TRUE(eventually([&] { return counted(old_leader.output(), "read").size() > reads; }, 5s));
  old_leader.signal(SIGSTOP);
  const auto frozen = old_leader.output();
  const auto old_read = counted(frozen, "read").back();
  ASSERT_EQ(counted(frozen, "wrote").back(), old_read) << "frozen after its write, not before:\n" << frozen;

  ASSERT_TRUE(eventually([&] { return counted(next_leader.output(), "wrote").size() >= 2; }, 15s))
      << next_leader.output();
  old_leader.signal(SIGCONT);
  ASSERT_TRUE(eventually([&] { return contains(old_leader.output(), "stopped leading"); }, 10s))
      << old_leader.output();
  // A few more of the new leader's writes: the old one had every chance to write.
  const auto written = counted(next_leader.output(), "wrote").size();
  ASSERT_TRUE(eventually([&] { return counted(next_leader.output(), "wrote").size() >= written + 2; }, 10s));

  const auto old_writes = counted(old_leader.output(), "wrote");
  EXPECT_EQ(old_writes.back(), old_read) << "the old leader wrote after it woke:\n" << old_leader.output();
  const auto next_writes = counted(next_leader.output(), "wrote");
  EXPECT_EQ(next_writes.front(), old_read + 1) << next_leader.output();
  for (std::size_t i = 1; i < next_writes.size(); ++i) EXPECT_EQ(next_writes[i], next_writes[i - 1] + 1);
  next_leader.signal(SIGTERM);
  old_leader.signal(SIGTERM);
  EXPECT_TRUE(next_leader.wait_exit(5s));
  const auto stored = std::stoll(cluster.etcdctl({"get", "--print-value-only", "counter"}));
  EXPECT_GE(stored, next_writes.back()) << "the counter went back";
}

}  // namespace
}  // namespace clusterlock::test
