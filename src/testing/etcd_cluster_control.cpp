#include <clusterlock/testing/etcd_cluster.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstdint>
#include <stdexcept>

#include "testing/child_process.hpp"
#include "testing/member_http.hpp"
#include "testing/test_certificates.hpp"

namespace clusterlock::testing {

using detail::clean_environment;
using detail::http_request_options;
using detail::join_command;
using detail::kill_and_reap;
using detail::run_command;

namespace {
constexpr std::chrono::milliseconds leader_status_timeout{1000};  // leader(): slower than this is not leading
}  // namespace

void etcd_cluster::kill(int member) {
  member_state& m = at(member);
  kill_and_reap(m.pid);
  m.pid = -1;
  m.frozen = false;
}

void etcd_cluster::freeze(int member) {
  member_state& m = at(member);
  if (m.pid <= 0 || m.frozen) return;
  ::kill(m.pid, SIGSTOP);
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(m.pid, &status, WUNTRACED);
    if (r == m.pid && WIFSTOPPED(status)) {
      m.frozen = true;
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

void etcd_cluster::thaw(int member) {
  member_state& m = at(member);
  if (m.pid <= 0 || !m.frozen) return;
  ::kill(m.pid, SIGCONT);
  m.frozen = false;
}

void etcd_cluster::restart(int member) {
  kill(member);
  launch(member);
  int serving = 0;
  for (const auto& m : members_) serving += (alive(m) && !m.frozen) ? 1 : 0;
  const bool has_quorum = serving >= size() / 2 + 1;
  wait_ready({member}, has_quorum);
}

bool etcd_cluster::is_running(int member) const { return alive(at(member)); }
bool etcd_cluster::is_frozen(int member) const { return alive(at(member)) && at(member).frozen; }
pid_t etcd_cluster::pid(int member) const { return alive(at(member)) ? at(member).pid : -1; }

int etcd_cluster::leader() const {
  int best = -1;
  std::uint64_t best_term = 0;
  for (int i = 0; i < size(); ++i) {
    if (!alive(at(i)) || at(i).frozen) continue;
    http_request_options request;
    request.method = "POST";
    request.target = "/v3/maintenance/status";
    request.body = "{}";
    request.timeout = leader_status_timeout;
    const auto reply = detail::member_http(*this, i, request);
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
      if (alive(at(i)) && !at(i).frozen) targets.push_back(i);
    }
  }
  if (targets.empty()) return command_result{-1, false, "", "etcd_cluster: no running member for etcdctl"};
  std::string endpoints;
  for (int i : targets) endpoints += (endpoints.empty() ? "" : ",") + client_url(i);

  std::vector<std::string> argv = {options_.etcdctl_binary, "--endpoints=" + endpoints};
  if (options_.tls) argv.push_back("--cacert=" + certificates_->ca_file);
  if (options_.client_cert_auth) {
    argv.push_back("--cert=" + certificates_->client_cert_file);
    argv.push_back("--key=" + certificates_->client_key_file);
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

std::string etcd_cluster::ca_file() const { return certificates_->ca_file; }
std::string etcd_cluster::client_cert_file() const { return certificates_->client_cert_file; }
std::string etcd_cluster::client_key_file() const { return certificates_->client_key_file; }
const detail::test_certificates& etcd_cluster::certificates() const { return *certificates_; }

etcd::client_config etcd_cluster::client_config() const {
  etcd::client_config config;
  config.endpoints = client_urls();
  if (options_.tls) {
    config.tls.ca_file = ca_file();
    if (options_.client_cert_auth) {
      config.tls.cert_file = client_cert_file();
      config.tls.key_file = client_key_file();
    }
  }
  if (options_.auth) {
    config.auth.user = "root";
    config.auth.password = options_.root_password;
  }
  return config;
}

clusterlock::options etcd_cluster::lock_options(std::string name) const {
  const etcd::client_config config = client_config();
  clusterlock::options o;
  o.endpoints = config.endpoints;
  o.tls = config.tls;
  o.auth = config.auth;
  o.name = std::move(name);
  return o;
}

const etcd_options& etcd_cluster::options() const { return options_; }
std::string etcd_cluster::root_password() const { return options_.root_password; }
std::string etcd_cluster::root_dir() const { return root_; }
std::string etcd_cluster::data_dir(int member) const { return at(member).data_dir; }
std::string etcd_cluster::log_file(int member) const { return at(member).log_file; }

// Outside the class: the test layer (tests/support) asks members too, with files the public API does not name.
namespace detail {

tls_client_files client_tls(const etcd_cluster& cluster) {
  tls_client_files files;
  if (!cluster.options().tls) return files;
  files.ca_file = cluster.ca_file();
  if (cluster.options().client_cert_auth) {
    files.cert_file = cluster.client_cert_file();
    files.key_file = cluster.client_key_file();
  }
  return files;
}

std::optional<http_response> member_http(const etcd_cluster& cluster, int member, http_request_options request,
                                         std::string* error) {
  const tls_client_files tls = client_tls(cluster);
  if (cluster.options().tls && !request.tls) request.tls = &tls;
  return http_request(cluster.client_url(member), request, error);
}

}  // namespace detail
}  // namespace clusterlock::testing
