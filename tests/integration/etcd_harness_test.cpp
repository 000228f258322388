// Tests of the etcd test harness itself: what it starts is real, answers, fails over, freezes, and dies with us.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "support/bounded_wait.hpp"
#include "support/etcd_cluster.hpp"
#include "support/timing.hpp"

namespace clusterlock::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using ::testing::HasSubstr;
using ::testing::Not;

bool healthy(const etcd_cluster& cluster, int member) {
  const auto reply = cluster.http(member, {});
  return reply && reply->status == 200 && reply->body.find("\"health\":\"true\"") != std::string::npos;
}

std::string all_logs(const etcd_cluster& cluster) {
  std::string out;
  for (int i = 0; i < cluster.size(); ++i) out += "\n--- member " + std::to_string(i) + "\n" + cluster.log_tail(i);
  return out;
}

char process_state(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() ? '?' : line[close + 2];
}

TEST(EtcdHarness, SingleMemberServesAndLeavesNothingBehind) {
  pid_t pid = -1;
  std::string root;
  {
    const auto start = steady::now();
    etcd_cluster cluster;
    report_timing("single-member start", milliseconds_since(start));

    ASSERT_EQ(cluster.size(), 1);
    pid = cluster.pid(0);
    ASSERT_GT(pid, 0);
    root = cluster.root_dir();
    EXPECT_TRUE(fs::is_directory(cluster.data_dir(0)));
    EXPECT_THAT(cluster.client_url(0), ::testing::StartsWith("http://127.0.0.1:"));
    EXPECT_EQ(cluster.endpoints_csv(), cluster.client_url(0));
    EXPECT_TRUE(cluster.ca_file().empty());

    const auto health = cluster.http(0, {});
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    EXPECT_THAT(health->body, HasSubstr("\"health\":\"true\""));

    cluster.etcdctl({"put", "harness-key", "harness-value"});
    EXPECT_EQ(cluster.etcdctl({"get", "harness-key", "--print-value-only"}), "harness-value\n");
    EXPECT_EQ(cluster.leader(), 0);
  }
  EXPECT_FALSE(fs::exists(root));
  EXPECT_TRUE(process_gone(pid));
}

TEST(EtcdHarness, ThreeMembersFailOverAndAKilledMemberRejoins) {
  const auto start = steady::now();
  etcd_cluster cluster({.members = 3});
  report_timing("three-member start", milliseconds_since(start));

  for (int i = 0; i < 3; ++i) EXPECT_TRUE(healthy(cluster, i)) << "member " << i;
  const int old_leader = cluster.leader();
  ASSERT_GE(old_leader, 0) << all_logs(cluster);
  cluster.etcdctl({"put", "before", "1"});

  const pid_t old_pid = cluster.pid(old_leader);
  const std::string old_url = cluster.client_url(old_leader);
  cluster.kill(old_leader);
  EXPECT_FALSE(cluster.is_running(old_leader));
  EXPECT_EQ(cluster.pid(old_leader), -1);
  EXPECT_TRUE(process_gone(old_pid));

  int new_leader = -1;
  const auto failover_start = steady::now();
  ASSERT_TRUE(eventually([&] { return (new_leader = cluster.leader()) >= 0; }, 10s)) << all_logs(cluster);
  report_timing("failover (kill leader -> new leader)", milliseconds_since(failover_start));
  EXPECT_NE(new_leader, old_leader);
  cluster.etcdctl({"put", "during", "2"});

  const auto restart_start = steady::now();
  cluster.restart(old_leader);
  report_timing("restart of a member of three", milliseconds_since(restart_start));
  EXPECT_TRUE(cluster.is_running(old_leader));
  EXPECT_NE(cluster.pid(old_leader), old_pid);
  EXPECT_EQ(cluster.client_url(old_leader), old_url);
  // A linearizable read served by the restarted member: it rejoined the same cluster and caught up.
  EXPECT_EQ(cluster.etcdctl_at(old_leader, {"get", "during", "--print-value-only"}), "2\n");
  EXPECT_EQ(cluster.etcdctl_at(old_leader, {"get", "before", "--print-value-only"}), "1\n");
  const std::string members = cluster.etcdctl_at(old_leader, {"member", "list"});
  EXPECT_EQ(std::count(members.begin(), members.end(), '\n'), 3) << members;
  EXPECT_THAT(members, Not(HasSubstr("unstarted"))) << members;
}

TEST(EtcdHarness, StoppedMemberDoesNotAnswerUntilContinued) {
  etcd_cluster cluster;
  ASSERT_TRUE(healthy(cluster, 0));

  cluster.stop(0);
  EXPECT_TRUE(cluster.is_stopped(0));
  EXPECT_TRUE(cluster.is_running(0));
  EXPECT_EQ(process_state(cluster.pid(0)), 'T');

  http_request_options request;
  request.timeout = 300ms;
  std::string error;
  const auto start = steady::now();
  const auto reply = cluster.http(0, request, &error);
  const auto waited = milliseconds_since(start);
  EXPECT_FALSE(reply);
  // The kernel still accepts the connection (its socket stays open); only the reply never comes.
  EXPECT_THAT(error, HasSubstr("timed out reading"));
  EXPECT_GE(waited, 290);
  EXPECT_LT(waited, 2000);

  cluster.cont(0);
  EXPECT_FALSE(cluster.is_stopped(0));
  EXPECT_TRUE(eventually([&] { return healthy(cluster, 0); }, 5s)) << cluster.log_tail(0);
}

TEST(EtcdHarness, MemberControlIsSafeInAnyOrder) {
  pid_t last_pid = -1;
  {
    etcd_cluster cluster;
    cluster.cont(0);  // not stopped: nothing to do
    cluster.stop(0);
    cluster.stop(0);
    cluster.cont(0);
    cluster.cont(0);
    const auto cont_start = steady::now();
    EXPECT_TRUE(eventually([&] { return healthy(cluster, 0); }, 5s));
    report_timing("healthy after stop+cont", milliseconds_since(cont_start));

    cluster.stop(0);
    const pid_t stopped_pid = cluster.pid(0);
    cluster.kill(0);  // a stopped member dies too
    EXPECT_TRUE(process_gone(stopped_pid));
    cluster.kill(0);
    cluster.stop(0);
    cluster.cont(0);
    EXPECT_FALSE(cluster.is_running(0));
    EXPECT_EQ(cluster.leader(), -1);
    EXPECT_NE(cluster.try_etcdctl({"get", "k"}).exit_code, 0);

    const auto restart_start = steady::now();
    cluster.restart(0);
    report_timing("single-member restart", milliseconds_since(restart_start));
    EXPECT_TRUE(healthy(cluster, 0));
    cluster.stop(0);
    cluster.restart(0);  // restarting a stopped member replaces it
    EXPECT_TRUE(healthy(cluster, 0));
    cluster.restart(0);  // and a running one
    EXPECT_TRUE(healthy(cluster, 0));
    EXPECT_EQ(cluster.leader(), 0);

    cluster.stop(0);  // the destructor must cope with a stopped member
    last_pid = cluster.pid(0);
  }
  EXPECT_TRUE(process_gone(last_pid));
}

TEST(EtcdHarness, TlsMemberIsReachableWithTheTestCaOnly) {
  const auto start = steady::now();
  etcd_cluster cluster({.tls = true});
  report_timing("TLS single-member start", milliseconds_since(start));

  EXPECT_THAT(cluster.client_url(0), ::testing::StartsWith("https://127.0.0.1:"));
  ASSERT_FALSE(cluster.ca_file().empty());
  EXPECT_TRUE(fs::exists(cluster.ca_file()));
  EXPECT_TRUE(fs::exists(cluster.other_ca_file()));

  cluster.etcdctl({"put", "tls-key", "tls-value"});
  EXPECT_EQ(cluster.etcdctl({"get", "tls-key", "--print-value-only"}), "tls-value\n");

  // The probe verifies the chain and that the certificate names 127.0.0.1 (subjectAltName), as Go clients do.
  const auto with_ca = cluster.http(0, {});
  ASSERT_TRUE(with_ca);
  EXPECT_EQ(with_ca->status, 200);

  const tls_client_files other{cluster.other_ca_file(), "", ""};
  http_request_options request;
  request.tls = &other;
  std::string error;
  EXPECT_FALSE(cluster.http(0, request, &error));
  EXPECT_THAT(error, HasSubstr("certificate verification failed"));

  const command_result wrong_ca =
      run_command({"/usr/bin/etcdctl", "--endpoints=" + cluster.endpoints_csv(), "--cacert=" + cluster.other_ca_file(),
                   "--dial-timeout=300ms", "--command-timeout=500ms", "get", "tls-key"},
                  clean_environment({"ETCDCTL_API=3"}), 20s);
  EXPECT_NE(wrong_ca.exit_code, 0);
  EXPECT_THAT(wrong_ca.out, Not(HasSubstr("tls-value")));
}

TEST(EtcdHarness, ClientCertAuthRefusesClientsWithoutATrustedCertificate) {
  etcd_cluster cluster({.tls = true, .client_cert_auth = true});
  cluster.etcdctl({"put", "cert-key", "cert-value"});
  EXPECT_EQ(cluster.etcdctl({"get", "cert-key", "--print-value-only"}), "cert-value\n");

  // The JSON gateway, which the library talks to, with the client certificate.
  http_request_options range;
  range.method = "POST";
  range.target = "/v3/kv/range";
  range.body = R"({"key":"Y2VydC1rZXk="})";  // "cert-key"
  const auto with_cert = cluster.http(0, range);
  ASSERT_TRUE(with_cert);
  EXPECT_EQ(with_cert->status, 200);
  EXPECT_THAT(with_cert->body, HasSubstr("Y2VydC12YWx1ZQ=="));  // "cert-value"

  const tls_client_files no_cert{cluster.ca_file(), "", ""};
  range.tls = &no_cert;
  EXPECT_FALSE(cluster.http(0, range));

  const tls_client_files untrusted_cert{cluster.ca_file(), cluster.other_client_cert_file(),
                                        cluster.other_client_key_file()};
  range.tls = &untrusted_cert;
  EXPECT_FALSE(cluster.http(0, range));
}

TEST(EtcdHarness, AuthNeedsTheRootPassword) {
  etcd_cluster cluster({.auth = true});
  cluster.etcdctl({"put", "auth-key", "auth-value"});
  EXPECT_EQ(cluster.etcdctl({"get", "auth-key", "--print-value-only"}), "auth-value\n");

  const command_result anonymous = cluster.try_etcdctl({"get", "auth-key"}, {.as_root = false});
  EXPECT_NE(anonymous.exit_code, 0);
  EXPECT_THAT(anonymous.out, Not(HasSubstr("auth-value")));
  EXPECT_THAT(anonymous.err, HasSubstr("user name is empty"));

  const command_result wrong = cluster.try_etcdctl({"--user=root:wrong", "get", "auth-key"}, {.as_root = false});
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_THAT(wrong.err, HasSubstr("authentication failed"));

  http_request_options authenticate;
  authenticate.method = "POST";
  authenticate.target = "/v3/auth/authenticate";
  const std::string credentials = R"({"name":"root","password":")" + cluster.root_password() + R"("})";
  authenticate.body = credentials;
  const auto token = cluster.http(0, authenticate);
  ASSERT_TRUE(token);
  EXPECT_EQ(token->status, 200);
  EXPECT_THAT(token->body, HasSubstr("\"token\""));
}

// With client certificates and auth both on, etcd 3.4 refuses gateway requests whose client certificate has a
// CommonName; the harness's client certificate has none, so the library can use both at once.
TEST(EtcdHarness, AuthAndClientCertificatesWorkTogetherThroughTheGateway) {
  etcd_cluster cluster({.tls = true, .client_cert_auth = true, .auth = true});
  cluster.etcdctl({"put", "both-key", "both-value"});

  http_request_options authenticate;
  authenticate.method = "POST";
  authenticate.target = "/v3/auth/authenticate";
  const std::string credentials = R"({"name":"root","password":")" + cluster.root_password() + R"("})";
  authenticate.body = credentials;
  const auto token = cluster.http(0, authenticate);
  ASSERT_TRUE(token);
  EXPECT_EQ(token->status, 200) << token->body;
  EXPECT_THAT(token->body, HasSubstr("\"token\""));
}

// A port taken between free_port() and etcd's bind: the start is retried with new ports.
TEST(EtcdHarness, StartIsRetriedWhenAPortIsTaken) {
  const unsigned short taken = free_port();
  const int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(holder, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(taken);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // Bound, not listening (as a connecting client's port would be): etcd's bind fails, probes are refused at once.
  ASSERT_EQ(::bind(holder, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);

  etcd_cluster cluster({.first_attempt_ports = {taken, free_port()}});
  ::close(holder);
  EXPECT_NE(cluster.client_port(0), taken);
  EXPECT_TRUE(healthy(cluster, 0));
  const std::string log = cluster.log_tail(0, 1 << 20);
  EXPECT_THAT(log, HasSubstr("address already in use"));
  EXPECT_THAT(log, HasSubstr("client port " + std::to_string(taken)));
}

TEST(EtcdHarness, StartFailureThrowsWithTheLog) {
  try {
    etcd_cluster cluster({.extra_args = {"--no-such-flag"}});
    FAIL() << "etcd started with an unknown flag";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("exited during start"));
    EXPECT_THAT(e.what(), HasSubstr("no-such-flag"));
  }
}

// The test binary crashes (SIGKILL: no destructor, no atexit, nothing) while a cluster runs: etcd must die with it.
TEST(EtcdHarness, MembersDieWhenTheTestProcessCrashes) {
  int report[2];
  ASSERT_EQ(::pipe2(report, O_CLOEXEC), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(report[0]);
    std::string message = "-1\n\n";
    try {
      auto* cluster = new etcd_cluster();  // never deleted: the crash is the teardown
      message = std::to_string(cluster->pid(0)) + "\n" + cluster->root_dir() + "\n";
    } catch (const std::exception& e) {
      message += e.what();
    }
    (void)!::write(report[1], message.data(), message.size());
    ::kill(::getpid(), SIGKILL);
    ::_exit(1);
  }
  ::close(report[1]);
  std::string message;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(report[0], buffer, sizeof buffer)) > 0) message.append(buffer, static_cast<std::size_t>(n));
  ::close(report[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

  const auto first_newline = message.find('\n');
  const auto second_newline = message.find('\n', first_newline + 1);
  ASSERT_NE(second_newline, std::string::npos) << message;
  const pid_t etcd_pid = static_cast<pid_t>(std::stol(message.substr(0, first_newline)));
  const std::string root = message.substr(first_newline + 1, second_newline - first_newline - 1);
  ASSERT_GT(etcd_pid, 0) << message;

  const auto start = steady::now();
  const bool gone = eventually([&] { return process_gone(etcd_pid); }, 5s);
  EXPECT_TRUE(gone);
  if (!gone) ::kill(etcd_pid, SIGKILL);
  report_timing("etcd gone after the test process crashed", milliseconds_since(start));
  // Nobody tore down: the directory is still there, and it is ours to remove.
  EXPECT_TRUE(fs::exists(root));
  std::error_code ignored;
  fs::remove_all(root, ignored);
}

}  // namespace
}  // namespace clusterlock::test
