#include <clusterlock/testing/etcd_cluster.hpp>

#include "testing/child_process.hpp"
#include "testing/free_port.hpp"
#include "testing/member_http.hpp"
#include "testing/test_certificates.hpp"

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

namespace clusterlock::testing {

using detail::clean_environment;
using detail::free_ports;
using detail::http_request;
using detail::http_request_options;
using detail::join_command;
using detail::kill_and_reap;
using detail::spawn;
using detail::spawn_options;

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Loopback has ~0.05 ms round trips, so raft's timing is bounded by scheduling and fsync on a loaded 2-core machine,
// not by the network. 50 ms heartbeats with a 500 ms election timeout (etcd's rule: >= 5-10 heartbeats) make a
// single member elect itself within 50-500 ms and a failover take ~0.5-1 s, half of etcd's defaults (100/1000),
// while tolerating ~10 heartbeats lost to a stall before a spurious election.
constexpr const char* heartbeat_ms = "50";
constexpr const char* election_timeout_ms = "500";

constexpr auto poll_interval = 20ms;
constexpr auto probe_timeout = 1500ms;   // /health may take up to 1 s itself (its quorum read times out after 1 s)
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
    certificates_ = std::make_unique<detail::test_certificates>();
    if (options_.tls) *certificates_ = detail::make_test_certificates(fs::path(root_) / "tls");
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
    m.frozen = false;
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
  const auto advertised = [this](int i) {
    const member_state& o = at(i);
    return options_.advertised_peer_url ? options_.advertised_peer_url(i, o.peer_port)
                                        : "http://127.0.0.1:" + std::to_string(o.peer_port);
  };
  std::string initial_cluster;
  for (int i = 0; i < size(); ++i) {
    if (!initial_cluster.empty()) initial_cluster += ',';
    initial_cluster += at(i).name + "=" + advertised(i);
  }
  std::vector<std::string> argv = {
      options_.etcd_binary,
      "--name=" + m.name,
      "--data-dir=" + m.data_dir,
      "--listen-client-urls=" + client,
      "--advertise-client-urls=" + client,
      "--listen-peer-urls=" + peer,
      "--initial-advertise-peer-urls=" + advertised(member),
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
    argv.push_back("--cert-file=" + certificates_->server_cert_file);
    argv.push_back("--key-file=" + certificates_->server_key_file);
  }
  if (options_.client_cert_auth) {
    argv.push_back("--client-cert-auth");
    argv.push_back("--trusted-ca-file=" + certificates_->ca_file);
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
  m.frozen = false;
}

void etcd_cluster::reap_if_exited(member_state& m) {
  if (m.pid <= 0) return;
  int status = 0;
  if (::waitpid(m.pid, &status, WNOHANG) != m.pid) return;
  m.pid = -1;
  m.frozen = false;
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
      const auto reply = detail::member_http(*this, *it, request, &error);
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

std::string etcd_cluster::log_tail(int member, std::size_t bytes) const {
  const std::string& file = at(member).log_file;
  const std::size_t size = file_size_or_zero(file);
  return read_from(file, size > bytes ? size - bytes : 0);
}

}  // namespace clusterlock::testing
