// Real etcd processes for the integration tests: one member or several, plain or TLS, with or without auth.
// Every member runs from its own directory under one mkdtemp directory; the destructor kills them and removes it,
// and a crashed test takes its members along (PR_SET_PDEATHSIG).
//
// Not thread-safe. Construct it and call restart() from a thread that outlives the members (gtest's main thread):
// Linux sends the parent-death signal when the spawning *thread* ends, so a member started from a short-lived
// std::thread would be SIGKILLed when that thread returns.
//
// Timings on the shared 2-core machine (median of 20 runs): one member ready in ~0.25-0.35 s, three in ~0.2-0.3 s,
// TLS ~0.35-0.45 s; a new leader ~0.6 s after the leader is killed; a restarted member of three ready in ~0.07 s;
// a restarted single member ~0.7 s (etcd 3.4 does not fast-forward its election after a single-member restart).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "support/child_process.hpp"
#include "support/free_port.hpp"
#include "support/http_probe.hpp"
#include "support/test_certificates.hpp"

namespace clusterlock::test {

// The `{}` on members without another default keep GCC 12 quiet (-Wmissing-field-initializers) about designated
// initializers such as etcd_options{.members = 3}.
struct etcd_options {
  int members = 1;                // any n >= 1
  bool tls = false;               // https client URLs (peer URLs stay plain http)
  bool client_cert_auth = false;  // with tls: --client-cert-auth --trusted-ca-file
  bool auth = false;              // root user with root_password, auth enabled before the constructor returns
  std::string root_password = "rootpw";
  std::vector<std::string> extra_args{};           // appended to every member's command line
  std::chrono::milliseconds ready_timeout{20000};  // per start (constructor, restart)
  // Ports for the first start attempt (client, peer for each member); empty: free_port(). Lets the harness's own
  // test hand it a taken port to prove that the start is retried with new ports.
  std::vector<unsigned short> first_attempt_ports{};
};

// How etcdctl is run by etcd_cluster::try_etcdctl.
struct etcdctl_options {
  std::vector<int> members{};                // endpoints; empty: every member that runs and is not stopped
  bool as_root = true;                       // --user root:PASSWORD when auth is on
  std::chrono::milliseconds timeout{30000};  // then SIGKILL (etcdctl's own --command-timeout is 5 s per request)
};

class etcd_cluster {
 public:
  // Starts all members and waits until every one answers /health with "true" (so a leader exists). Ports that got
  // taken before etcd bound them are replaced and the start retried (3 attempts). Throws std::runtime_error with
  // the members' log tails on failure, after cleaning up.
  explicit etcd_cluster(etcd_options options = {});
  // SIGCONT + SIGKILL + reap every member, remove the directory. Never throws, does not wait on etcd.
  ~etcd_cluster();
  etcd_cluster(const etcd_cluster&) = delete;
  etcd_cluster& operator=(const etcd_cluster&) = delete;

  int size() const;
  std::string client_url(int member) const;  // "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT"
  std::vector<std::string> client_urls() const;
  std::string endpoints_csv() const;  // every member, comma-separated (for etcdctl)
  unsigned short client_port(int member) const;
  unsigned short peer_port(int member) const;

  // Member control; every call is safe in any order and on a member in any state (no-op where it makes no sense).
  void kill(int member);  // SIGKILL and reap
  void stop(int member);  // SIGSTOP, returns once the kernel reports it stopped (its sockets stay open)
  void cont(int member);  // SIGCONT
  // Kills it if it runs, starts it again with the same name, data dir, ports and flags, and waits until it is
  // ready: /health "true" when a quorum of members runs (not stopped), otherwise only until it answers /version
  // (without a quorum it cannot become healthy). With an existing data dir etcd ignores the --initial-cluster
  // flags, so the same command line is right for a rejoin.
  void restart(int member);
  bool is_running(int member) const;  // started and not killed; true also while stopped
  bool is_stopped(int member) const;
  pid_t pid(int member) const;  // -1 when not running

  // Index of the member that says it is the leader (asked via POST /v3/maintenance/status to every running, not
  // stopped member, 1 s each); the highest raft term wins if two claim it. -1 when none does.
  int leader() const;

  // Runs etcdctl (ETCDCTL_API=3) against the running, not stopped members with the TLS files and, when auth is on,
  // --user root:PASSWORD. Returns stdout; throws std::runtime_error with stderr on a non-zero exit.
  std::string etcdctl(const std::vector<std::string>& args) const;
  std::string etcdctl_at(int member, const std::vector<std::string>& args) const;  // only that member
  command_result try_etcdctl(const std::vector<std::string>& args, const etcdctl_options& options = {}) const;

  // One HTTP request to a member with the cluster's TLS files (client certificate included when client_cert_auth).
  std::optional<http_response> http(int member, http_request_options request, std::string* error = nullptr) const;

  // TLS material (empty strings when tls is off).
  std::string ca_file() const;
  std::string client_cert_file() const;
  std::string client_key_file() const;
  std::string other_ca_file() const;           // a second CA that did NOT sign the server certificate
  std::string other_client_cert_file() const;  // signed by the other CA: a client certificate etcd must refuse
  std::string other_client_key_file() const;
  // The files a client of this cluster needs: CA, plus the client certificate when client_cert_auth.
  tls_client_files client_tls() const;

  const etcd_options& options() const;
  std::string root_password() const;
  std::string root_dir() const;  // the mkdtemp directory holding everything
  std::string data_dir(int member) const;
  std::string log_file(int member) const;
  std::string log_tail(int member, std::size_t bytes = 4000) const;

 private:
  struct member_state {
    std::string name;
    std::string dir;
    std::string data_dir;
    std::string log_file;
    unsigned short client_port = 0;
    unsigned short peer_port = 0;
    pid_t pid = -1;
    bool stopped = false;
    std::size_t log_offset = 0;  // where the log of the current run starts (earlier runs stay above it)
  };

  void start_all();
  void launch(int member);
  void wait_ready(const std::vector<int>& members, bool require_health);
  void wait_peer_serving(int member, std::chrono::steady_clock::time_point deadline);
  void reap_if_exited(member_state& m);
  bool alive(const member_state& m) const;
  void enable_auth();
  void teardown() noexcept;
  member_state& at(int member);
  const member_state& at(int member) const;
  std::vector<std::string> command_line(int member) const;
  std::string scheme() const;
  std::string failure_report(const std::string& what) const;

  etcd_options options_;
  std::string root_;
  std::string cluster_token_;
  test_certificates certificates_;
  std::vector<member_state> members_;
  bool auth_enabled_ = false;
};

}  // namespace clusterlock::test
