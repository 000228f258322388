#include <clusterlock/testing/lock_faults.hpp>

#include <cctype>
#include <cstdio>
#include <stdexcept>

namespace clusterlock::testing {
namespace {

std::string key_of(const lock_manager& lock, const char* what) {
  std::string key = lock.key();
  if (key.empty()) {
    throw std::logic_error(std::string(what) + ": the lock has no key yet (not started, or no lease granted yet)");
  }
  return key;
}

// "deleted count" is etcdctl del's whole output: "1\n" when it deleted the key.
bool deleted_one(const std::string& out) { return !out.empty() && out.front() == '1'; }

}  // namespace

void force_removed(const etcd_cluster& cluster, const lock_manager& lock) {
  const std::string key = key_of(lock, "force_removed");
  const std::string out = cluster.etcdctl({"del", key});
  if (!deleted_one(out)) throw std::runtime_error("force_removed: no key " + key + " in etcd (etcdctl del: " + out + ")");
}

void force_lease_loss(const etcd_cluster& cluster, const lock_manager& lock) {
  const std::string key = key_of(lock, "force_lease_loss");
  char hex[17];
  std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(lease_of_key(key)));
  cluster.etcdctl({"lease", "revoke", hex});
}

clusterlock::options lock_options_through(const fault_relay& relay, const etcd_cluster& cluster, std::string name) {
  clusterlock::options o = cluster.lock_options(std::move(name));
  o.endpoints = {std::string(cluster.options().tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(relay.port())};
  return o;
}

void force_unknown(fault_relay& relay) { relay.blackhole(); }

std::int64_t lease_of_key(const std::string& key) {
  const auto slash = key.rfind('/');
  const std::string hex = slash == std::string::npos ? std::string() : key.substr(slash + 1);
  bool valid = !hex.empty() && hex.size() <= 16;
  for (char c : hex) valid = valid && std::isxdigit(static_cast<unsigned char>(c));
  if (!valid) throw std::invalid_argument("lease_of_key: no lease ID (hex) after the last '/' in \"" + key + "\"");
  return static_cast<std::int64_t>(std::stoull(hex, nullptr, 16));
}

}  // namespace clusterlock::testing
