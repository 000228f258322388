#include "support/etcd_cluster.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace clusterlock::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* etcd_binary = "/usr/bin/etcd";
constexpr const char* etcdctl_binary = "/usr/bin/etcdctl";

// Loopback has ~0.05 ms round trips, so raft's timing is bounded by scheduling and fsync on a loaded 2-core machine,
// not by the network. 50 ms heartbeats with a 500 ms election timeout (etcd's rule: >= 5-10 heartbeats) make a
// single member elect itself within 50-500 ms and a failover take ~0.5-1 s, half of etcd's defaults (100/1000),
// while tolerating ~10 heartbeats lost to a stall before a spurious election.
constexpr const char* heartbeat_ms = "50";
constexpr const char* election_timeout_ms = "500";

constexpr auto poll_interval = 20ms;
constexpr auto probe_timeout = 1500ms;   // /health may take up to 1 s itself (its quorum read times out after 1 s)
constexpr auto status_timeout = 1000ms;  // leader(): a member that does not answer this fast is not leading
constexpr int start_attempts = 3;

// Thrown by wait_ready when a member died on "address already in use": the start is retried with new ports.
struct port_taken : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string make_temp_dir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string path = (tmp && *tmp) ? tmp : "/tmp";
  path += "/clusterlock-etcd-XXXXXX";
  if (!::mkdtemp(path.data())) throw std::runtime_error("mkdtemp " + path + ": " + std::strerror(errno));
  return path;
}

std::string read_from(const std::string& file, std::size_t offset) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::size_t>(std::streamoff(in.tellg()));
  if (offset >= size) return {};
  in.seekg(static_cast<std::streamoff>(offset));
  std::string out(size - offset, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<std::size_t>(in.gcount()));
  return out;
}

std::size_t file_size_or_zero(const std::string& file) {
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  return ec ? 0 : static_cast<std::size_t>(size);
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + ::strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

std::string milliseconds_text(std::chrono::milliseconds ms) { return std::to_string(ms.count()) + " ms"; }

}  // namespace

etcd_cluster::etcd_cluster(etcd_options options) : options_(std::move(options)) {
  if (options_.members < 1) throw std::invalid_argument("etcd_cluster: members must be >= 1");
  if (options_.client_cert_auth && !options_.tls) {
    throw std::invalid_argument("etcd_cluster: client_cert_auth needs tls");
  }
  root_ = make_temp_dir();
  try {
    // Unique per cluster: a member can never join another test's cluster that happens to reuse a port.
    cluster_token_ = fs::path(root_).filename().string();
    if (options_.tls) certificates_ = make_test_certificates(fs::path(root_) / "tls");
    members_.resize(static_cast<std::size_t>(options_.members));
    for (int i = 0; i < options_.members; ++i) {
      member_state& m = at(i);
      m.name = "m" + std::to_string(i);
      m.dir = (fs::path(root_) / m.name).string();
      m.data_dir = (fs::path(m.dir) / "data").string();
      m.log_file = (fs::path(m.dir) / "etcd.log").string();
      fs::create_directories(m.dir);
    }
    start_all();
    if (options_.auth) enable_auth();
  } catch (...) {
    teardown();
    throw;
  }
}

etcd_cluster::~etcd_cluster() { teardown(); }

void etcd_cluster::teardown() noexcept {
  for (auto& m : members_) {
    kill_and_reap(m.pid);
    m.pid = -1;
    m.stopped = false;
  }
  std::error_code ignored;
  if (!root_.empty()) fs::remove_all(root_, ignored);
}

void etcd_cluster::start_all() {
  std::vector<int> all;
  for (int i = 0; i < size(); ++i) all.push_back(i);
  for (int attempt = 1;; ++attempt) {
    const bool given = attempt == 1 && !options_.first_attempt_ports.empty();
    if (given && options_.first_attempt_ports.size() != 2 * members_.size()) {
      throw std::invalid_argument("etcd_cluster: first_attempt_ports needs a client and a peer port per member");
    }
    const auto ports = given ? options_.first_attempt_ports : free_ports(2 * members_.size());
    for (std::size_t i = 0; i < members_.size(); ++i) {
      members_[i].client_port = ports[2 * i];
      members_[i].peer_port = ports[2 * i + 1];
      fs::remove_all(members_[i].data_dir);  // a half-bootstrapped member of a failed attempt
    }
    try {
      // One after the other: a new member first asks every peer whether it was bootstrapped already, and a peer
      // whose port accepts but does not serve yet (it is doing the same) costs it a 1 s timeout per peer (measured:
      // 1-2 s per start of three). Once a member serves its peer port, the next one gets quick answers.
      const auto deadline = std::chrono::steady_clock::now() + options_.ready_timeout;
      for (int i : all) {
        launch(i);
        if (size() > 1 && i + 1 < size()) wait_peer_serving(i, deadline);
      }
      wait_ready(all, true);
      return;
    } catch (const port_taken&) {
      for (auto& m : members_) {
        kill_and_reap(m.pid);
        m.pid = -1;
      }
      if (attempt == start_attempts) throw;
    }
  }
}

std::vector<std::string> etcd_cluster::command_line(int member) const {
  const member_state& m = at(member);
  const std::string client = client_url(member);
  const std::string peer = "http://127.0.0.1:" + std::to_string(m.peer_port);
  std::string initial_cluster;
  for (const auto& other : members_) {
    if (!initial_cluster.empty()) initial_cluster += ',';
    initial_cluster += other.name + "=http://127.0.0.1:" + std::to_string(other.peer_port);
  }
  std::vector<std::string> argv = {
      etcd_binary,
      "--name=" + m.name,
      "--data-dir=" + m.data_dir,
      "--listen-client-urls=" + client,
      "--advertise-client-urls=" + client,
      "--listen-peer-urls=" + peer,
      "--initial-advertise-peer-urls=" + peer,
      "--initial-cluster=" + initial_cluster,
      "--initial-cluster-state=new",
      "--initial-cluster-token=" + cluster_token_,
      std::string("--heartbeat-interval=") + heartbeat_ms,
      std::string("--election-timeout=") + election_timeout_ms,
      "--logger=zap",
      "--log-outputs=stderr",
      "--log-level=error",
  };
  if (options_.tls) {
    argv.push_back("--cert-file=" + certificates_.server_cert_file);
    argv.push_back("--key-file=" + certificates_.server_key_file);
  }
  if (options_.client_cert_auth) {
    argv.push_back("--client-cert-auth");
    argv.push_back("--trusted-ca-file=" + certificates_.ca_file);
  }
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  return argv;
}

void etcd_cluster::launch(int member) {
  member_state& m = at(member);
  const int log = ::open(m.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) throw std::runtime_error("open " + m.log_file + ": " + std::strerror(errno));
  const std::string banner = "=== harness: starting " + m.name + " (client port " + std::to_string(m.client_port) +
                             ", peer port " + std::to_string(m.peer_port) + ") ===\n";
  (void)!::write(log, banner.data(), banner.size());
  m.log_offset = file_size_or_zero(m.log_file);
  spawn_options spawn_with;
  spawn_with.argv = command_line(member);
  spawn_with.env = clean_environment();
  spawn_with.stdout_fd = log;
  spawn_with.stderr_fd = log;
  try {
    m.pid = spawn(spawn_with);
  } catch (...) {
    ::close(log);
    throw;
  }
  ::close(log);
  m.stopped = false;
}

void etcd_cluster::reap_if_exited(member_state& m) {
  if (m.pid <= 0) return;
  int status = 0;
  if (::waitpid(m.pid, &status, WNOHANG) != m.pid) return;
  m.pid = -1;
  m.stopped = false;
  const std::string log = read_from(m.log_file, m.log_offset);
  const std::string what = "etcd member " + m.name + " exited during start (" + describe_status(status) + ")";
  if (log.find("address already in use") != std::string::npos) throw port_taken(failure_report(what));
  throw std::runtime_error(failure_report(what));
}

bool etcd_cluster::alive(const member_state& m) const {
  if (m.pid <= 0) return false;
  // Died on its own but not reaped yet? Look without reaping (this is const).
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(m.pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == m.pid) {
    return false;
  }
  return true;
}

void etcd_cluster::wait_ready(const std::vector<int>& members, bool require_health) {
  const auto deadline = std::chrono::steady_clock::now() + options_.ready_timeout;
  std::vector<int> pending = members;
  std::vector<std::string> last_error(members_.size());
  const std::string target = require_health ? "/health" : "/version";
  for (;;) {
    for (auto it = pending.begin(); it != pending.end();) {
      member_state& m = at(*it);
      reap_if_exited(m);
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      http_request_options request;
      request.target = target;
      request.timeout = std::clamp(left, std::chrono::milliseconds(1), std::chrono::milliseconds(probe_timeout));
      std::string error;
      const auto reply = http(*it, request, &error);
      const bool ready = reply && reply->status == 200 &&
                         (!require_health || reply->body.find("\"health\":\"true\"") != std::string::npos);
      if (ready) {
        it = pending.erase(it);
      } else {
        last_error[static_cast<std::size_t>(*it)] =
            reply ? "HTTP " + std::to_string(reply->status) + " " + reply->body : error;
        ++it;
      }
    }
    if (pending.empty()) return;
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string what = "etcd not ready (" + target + ") within " + milliseconds_text(options_.ready_timeout) + ":";
      for (int i : pending) what += " " + at(i).name + ": " + last_error[static_cast<std::size_t>(i)] + ";";
      throw std::runtime_error(failure_report(what));
    }
    std::this_thread::sleep_for(poll_interval);
  }
}

void etcd_cluster::wait_peer_serving(int member, std::chrono::steady_clock::time_point deadline) {
  member_state& m = at(member);
  const std::string peer_url = "http://127.0.0.1:" + std::to_string(m.peer_port);
  std::string error;
  for (;;) {
    reap_if_exited(m);
    http_request_options request;
    request.target = "/version";
    request.timeout = probe_timeout;
    const auto reply = http_request(peer_url, request, &error);
    if (reply && reply->status == 200) return;
    if (reply) error = "HTTP " + std::to_string(reply->status) + " " + reply->body;
    if (std::chrono::steady_clock::now() >= deadline) {
      throw std::runtime_error(failure_report("etcd member " + m.name + " does not serve its peer port " + peer_url +
                                              " within " + milliseconds_text(options_.ready_timeout) + ": " + error));
    }
    std::this_thread::sleep_for(poll_interval);
  }
}

void etcd_cluster::enable_auth() {
  etcdctl_options before_auth;
  before_auth.as_root = false;
  const std::vector<std::vector<std::string>> steps = {
      {"user", "add", "root:" + options_.root_password}, {"user", "grant-role", "root", "root"}, {"auth", "enable"}};
  for (const auto& args : steps) {
    const command_result r = try_etcdctl(args, before_auth);
    if (r.exit_code != 0) {
      throw std::runtime_error(failure_report("enabling auth: etcdctl " + join_command(args) + " failed: " + r.err));
    }
  }
  auth_enabled_ = true;
}

std::string etcd_cluster::failure_report(const std::string& what) const {
  std::string out = what;
  for (int i = 0; i < size(); ++i) {
    const member_state& m = at(i);
    out += "\n--- " + m.name + " (pid " + std::to_string(m.pid) + ", client port " + std::to_string(m.client_port) +
           ", peer port " + std::to_string(m.peer_port) + "), end of " + m.log_file + " ---\n";
    out += log_tail(i, 2000);
  }
  return out;
}

int etcd_cluster::size() const { return static_cast<int>(members_.size()); }

etcd_cluster::member_state& etcd_cluster::at(int member) {
  if (member < 0 || member >= size()) throw std::out_of_range("etcd_cluster: no member " + std::to_string(member));
  return members_[static_cast<std::size_t>(member)];
}

const etcd_cluster::member_state& etcd_cluster::at(int member) const {
  if (member < 0 || member >= size()) throw std::out_of_range("etcd_cluster: no member " + std::to_string(member));
  return members_[static_cast<std::size_t>(member)];
}

std::string etcd_cluster::scheme() const { return options_.tls ? "https" : "http"; }

std::string etcd_cluster::client_url(int member) const {
  return scheme() + "://127.0.0.1:" + std::to_string(at(member).client_port);
}

std::vector<std::string> etcd_cluster::client_urls() const {
  std::vector<std::string> urls;
  for (int i = 0; i < size(); ++i) urls.push_back(client_url(i));
  return urls;
}

std::string etcd_cluster::endpoints_csv() const {
  std::string csv;
  for (const auto& url : client_urls()) csv += (csv.empty() ? "" : ",") + url;
  return csv;
}

unsigned short etcd_cluster::client_port(int member) const { return at(member).client_port; }
unsigned short etcd_cluster::peer_port(int member) const { return at(member).peer_port; }

void etcd_cluster::kill(int member) {
  member_state& m = at(member);
  kill_and_reap(m.pid);
  m.pid = -1;
  m.stopped = false;
}

void etcd_cluster::stop(int member) {
  member_state& m = at(member);
  if (m.pid <= 0 || m.stopped) return;
  ::kill(m.pid, SIGSTOP);
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(m.pid, &status, WUNTRACED);
    if (r == m.pid && WIFSTOPPED(status)) {
      m.stopped = true;
      return;
    }
    if (r == m.pid) {  // it had died: nothing left to stop
      m.pid = -1;
      return;
    }
    if (r < 0 && errno == EINTR) continue;
    return;  // not our child any more (SIGCHLD ignored?): SIGSTOP was sent, trust it
  }
}

void etcd_cluster::cont(int member) {
  member_state& m = at(member);
  if (m.pid <= 0 || !m.stopped) return;
  ::kill(m.pid, SIGCONT);
  m.stopped = false;
}

void etcd_cluster::restart(int member) {
  kill(member);
  launch(member);
  int serving = 0;
  for (const auto& m : members_) serving += (alive(m) && !m.stopped) ? 1 : 0;
  const bool has_quorum = serving >= size() / 2 + 1;
  wait_ready({member}, has_quorum);
}

bool etcd_cluster::is_running(int member) const { return alive(at(member)); }
bool etcd_cluster::is_stopped(int member) const { return alive(at(member)) && at(member).stopped; }
pid_t etcd_cluster::pid(int member) const { return alive(at(member)) ? at(member).pid : -1; }

int etcd_cluster::leader() const {
  int best = -1;
  std::uint64_t best_term = 0;
  for (int i = 0; i < size(); ++i) {
    if (!alive(at(i)) || at(i).stopped) continue;
    http_request_options request;
    request.method = "POST";
    request.target = "/v3/maintenance/status";
    request.body = "{}";
    request.timeout = status_timeout;
    const auto reply = http(i, request);
    if (!reply || reply->status != 200) continue;
    try {
      // 64-bit numbers come as strings: {"header":{"member_id":"..."},"leader":"...","raftTerm":"..."}.
      const boost::json::object status = boost::json::parse(reply->body).as_object();
      const auto& id = status.at("header").as_object().at("member_id").as_string();
      const auto* leader = status.if_contains("leader");
      if (!leader || leader->as_string() != id) continue;
      const auto* term_value = status.if_contains("raftTerm");
      const std::uint64_t term = term_value ? std::stoull(std::string(term_value->as_string())) : 0;
      if (best < 0 || term > best_term) {
        best = i;
        best_term = term;
      }
    } catch (const std::exception&) {
      continue;  // not the reply we know: this member does not count
    }
  }
  return best;
}

command_result etcd_cluster::try_etcdctl(const std::vector<std::string>& args, const etcdctl_options& options) const {
  std::vector<int> targets = options.members;
  if (targets.empty()) {
    for (int i = 0; i < size(); ++i) {
      if (alive(at(i)) && !at(i).stopped) targets.push_back(i);
    }
  }
  if (targets.empty()) return command_result{-1, false, "", "etcd_cluster: no running member for etcdctl"};
  std::string endpoints;
  for (int i : targets) endpoints += (endpoints.empty() ? "" : ",") + client_url(i);

  std::vector<std::string> argv = {etcdctl_binary, "--endpoints=" + endpoints};
  if (options_.tls) argv.push_back("--cacert=" + certificates_.ca_file);
  if (options_.client_cert_auth) {
    argv.push_back("--cert=" + certificates_.client_cert_file);
    argv.push_back("--key=" + certificates_.client_key_file);
  }
  if (auth_enabled_ && options.as_root) argv.push_back("--user=root:" + options_.root_password);
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, clean_environment({"ETCDCTL_API=3"}), options.timeout);
}

std::string etcd_cluster::etcdctl(const std::vector<std::string>& args) const {
  const command_result r = try_etcdctl(args);
  if (r.exit_code != 0) {
    throw std::runtime_error("etcdctl " + join_command(args) + " failed (" +
                             (r.timed_out ? std::string("timed out") : "exit code " + std::to_string(r.exit_code)) +
                             "): " + r.err);
  }
  return r.out;
}

std::string etcd_cluster::etcdctl_at(int member, const std::vector<std::string>& args) const {
  etcdctl_options options;
  options.members = {member};
  const command_result r = try_etcdctl(args, options);
  if (r.exit_code != 0) {
    throw std::runtime_error("etcdctl (" + at(member).name + ") " + join_command(args) + " failed (" +
                             (r.timed_out ? std::string("timed out") : "exit code " + std::to_string(r.exit_code)) +
                             "): " + r.err);
  }
  return r.out;
}

std::optional<http_response> etcd_cluster::http(int member, http_request_options request, std::string* error) const {
  const tls_client_files tls = client_tls();
  if (options_.tls && !request.tls) request.tls = &tls;
  return http_request(client_url(member), request, error);
}

std::string etcd_cluster::ca_file() const { return certificates_.ca_file; }
std::string etcd_cluster::client_cert_file() const { return certificates_.client_cert_file; }
std::string etcd_cluster::client_key_file() const { return certificates_.client_key_file; }
std::string etcd_cluster::other_ca_file() const { return certificates_.other_ca_file; }
std::string etcd_cluster::other_client_cert_file() const { return certificates_.other_client_cert_file; }
std::string etcd_cluster::other_client_key_file() const { return certificates_.other_client_key_file; }

tls_client_files etcd_cluster::client_tls() const {
  tls_client_files files;
  if (!options_.tls) return files;
  files.ca_file = certificates_.ca_file;
  if (options_.client_cert_auth) {
    files.cert_file = certificates_.client_cert_file;
    files.key_file = certificates_.client_key_file;
  }
  return files;
}

const etcd_options& etcd_cluster::options() const { return options_; }
std::string etcd_cluster::root_password() const { return options_.root_password; }
std::string etcd_cluster::root_dir() const { return root_; }
std::string etcd_cluster::data_dir(int member) const { return at(member).data_dir; }
std::string etcd_cluster::log_file(int member) const { return at(member).log_file; }

std::string etcd_cluster::log_tail(int member, std::size_t bytes) const {
  const std::string& file = at(member).log_file;
  const std::size_t size = file_size_or_zero(file);
  return read_from(file, size > bytes ? size - bytes : 0);
}

}  // namespace clusterlock::test
