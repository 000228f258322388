#pragma once
// Real etcd for your tests: one member or several on free loopback ports, each in its own directory under one
// temporary directory, plain or TLS, with or without auth. The destructor kills every member and removes the
// directory; a test process that crashes or aborts takes its members along (PR_SET_PDEATHSIG), so nothing is left
// running. Member control (kill, freeze, thaw, restart) drives your code through etcd failures.
//
// Needs the etcd and etcdctl programs (Debian: etcd-server, etcd-client); etcd_options names their paths.
// Blocking (it is for tests), not thread-safe. Construct it, and call restart(), from a thread that outlives the
// members, such as the test's main thread: Linux sends the parent-death signal when the spawning *thread* ends.
//
// Times on a loaded 2-core machine: one member ready in ~0.3 s, three in ~0.3 s, TLS ~0.4 s; a new leader ~0.6 s
// after the leader is killed (heartbeat 50 ms, election timeout 500 ms).

#include <clusterlock/etcd/client_config.hpp>
#include <clusterlock/options.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace clusterlock::testing {

namespace detail {
struct test_certificates;
}

/// What a program run by the kit (etcdctl) did.
struct command_result {
  int exit_code = -1;  ///< the exit code, or -1 when killed by a signal or timed out
  bool timed_out = false;
  std::string out;
  std::string err;
};

// The `{}` on members without another default keep GCC 12 quiet (-Wmissing-field-initializers) about designated
// initializers such as etcd_options{.members = 3}.
struct etcd_options {
  int members = 1;                ///< any n >= 1 (3 for a cluster that survives one member's loss)
  bool tls = false;               ///< https client URLs with throwaway certificates (peer URLs stay plain http)
  bool client_cert_auth = false;  ///< with tls: etcd demands a client certificate (--client-cert-auth)
  bool auth = false;              ///< user root with root_password, auth enabled before the constructor returns
  std::string root_password = "rootpw";
  std::vector<std::string> extra_args{};           ///< appended to every member's command line
  std::chrono::milliseconds ready_timeout{20000};  ///< per start (constructor, restart)
  std::string etcd_binary = "/usr/bin/etcd";
  std::string etcdctl_binary = "/usr/bin/etcdctl";
  /// Rarely needed: the peer URL a member is known by to its peers (its --initial-advertise-peer-urls and its entry
  /// in every member's --initial-cluster), given its index and the peer port it listens on; e.g. the url() of a
  /// fault_relay in front of that port, so that a test can cut members apart. Called while each member's command
  /// line is built (for every member, at every start and restart); it must return the same URL for the same
  /// arguments. Empty: the member's own "http://127.0.0.1:<peer port>". The kit's own readiness checks still use
  /// the real peer port.
  std::function<std::string(int member, unsigned short peer_port)> advertised_peer_url{};
  /// Rarely needed: ports for the first start attempt (a client and a peer port per member); empty: free ones.
  std::vector<unsigned short> first_attempt_ports{};
};

/// How etcd_cluster::try_etcdctl runs etcdctl.
struct etcdctl_options {
  std::vector<int> members{};                ///< endpoints; empty: every member that runs and is not frozen
  bool as_root = true;                       ///< --user root:PASSWORD when auth is on
  std::chrono::milliseconds timeout{30000};  ///< then SIGKILL (etcdctl's own --command-timeout is 5 s per request)
};

class etcd_cluster {
 public:
  /// Starts every member and waits until each answers /health with "true" (so a leader exists). A port taken
  /// before etcd bound it is replaced and the start retried (3 attempts). Throws std::invalid_argument on bad
  /// options and std::runtime_error with the members' log tails when etcd does not come up, after cleaning up.
  explicit etcd_cluster(etcd_options options = {});
  /// Kills every member (SIGCONT, SIGKILL, reap) and removes the directory. Never throws, never waits on etcd.
  ~etcd_cluster();
  etcd_cluster(const etcd_cluster&) = delete;
  etcd_cluster& operator=(const etcd_cluster&) = delete;

  // ---- For your lock: members are numbered 0 .. size()-1.

  int size() const;
  /// "http://127.0.0.1:PORT", or https with tls.
  std::string client_url(int member) const;
  std::vector<std::string> client_urls() const;
  std::string endpoints_csv() const;  ///< every member's URL, comma-separated (etcdctl's --endpoints)
  /// An etcd::client_config for this cluster: every endpoint, the CA (and client certificate) with tls, user root
  /// with auth.
  etcd::client_config client_config() const;
  /// clusterlock::options for a lock called `name` on this cluster: endpoints, tls and auth as client_config(),
  /// the rest at its defaults.
  clusterlock::options lock_options(std::string name) const;

  // ---- Member control. Every call is safe in any order, on a member in any state (a no-op where it means
  // nothing, such as freezing a killed member). Throws std::out_of_range for a member that does not exist.

  void kill(int member);    ///< SIGKILL and reap: a crash
  void freeze(int member);  ///< SIGSTOP; returns once stopped. Its sockets stay open, it answers nothing: a hang
  void thaw(int member);    ///< SIGCONT
  /// Kills it if it runs, starts it again with the same name, data, ports and flags, and waits until it is ready:
  /// /health "true" when a quorum of members runs (not frozen), otherwise until it answers at all.
  void restart(int member);
  bool is_running(int member) const;  ///< started and not killed (also while frozen)
  bool is_frozen(int member) const;
  pid_t pid(int member) const;  ///< -1 when not running
  /// The member that says it leads (the highest raft term wins if two claim it); -1 when none does.
  int leader() const;

  // ---- etcdctl (ETCDCTL_API=3) against the running, not frozen members, with the TLS files and, with auth, as
  // root: etcdctl({"get", "--prefix", "my-lock"}).

  /// Returns stdout; throws std::runtime_error with stderr when etcdctl fails.
  std::string etcdctl(const std::vector<std::string>& args) const;
  std::string etcdctl_at(int member, const std::vector<std::string>& args) const;  ///< that member only
  command_result try_etcdctl(const std::vector<std::string>& args, const etcdctl_options& options = {}) const;

  // ---- Files and settings.

  const etcd_options& options() const;
  std::string root_password() const;
  std::string ca_file() const;           ///< with tls: the CA that signed etcd's certificate; else empty
  std::string client_cert_file() const;  ///< with tls: a client certificate etcd accepts; else empty
  std::string client_key_file() const;
  std::string root_dir() const;  ///< the temporary directory holding everything
  std::string data_dir(int member) const;
  std::string log_file(int member) const;  ///< etcd's stderr (errors only), every run of the member
  std::string log_tail(int member, std::size_t bytes = 4000) const;
  unsigned short client_port(int member) const;
  unsigned short peer_port(int member) const;

 protected:
  /// Every TLS file made for the cluster (our own tests' negative cases use more than the accessors above give).
  const detail::test_certificates& certificates() const;

 private:
  struct member_state {
    std::string name;
    std::string dir;
    std::string data_dir;
    std::string log_file;
    unsigned short client_port = 0;
    unsigned short peer_port = 0;
    pid_t pid = -1;
    bool frozen = false;
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
  std::unique_ptr<detail::test_certificates> certificates_;
  std::vector<member_state> members_;
  bool auth_enabled_ = false;
};

}  // namespace clusterlock::testing
