// Real etcd for our own tests: the testing kit's clusterlock::testing::etcd_cluster (the public API users get,
// include/clusterlock/testing/etcd_cluster.hpp), plus what only our tests of the transport and of the kit itself
// need: raw HTTP to a member, the "wrong CA" certificates, and the names the tests were written with (stop/cont).
#pragma once

#include <clusterlock/testing/etcd_cluster.hpp>

#include <chrono>
#include <optional>
#include <string>

#include "support/child_process.hpp"
#include "support/free_port.hpp"
#include "support/http_probe.hpp"
#include "support/test_certificates.hpp"

namespace clusterlock::test {

using clusterlock::testing::etcd_options;
using clusterlock::testing::etcdctl_options;

class etcd_cluster : public clusterlock::testing::etcd_cluster {
 public:
  using clusterlock::testing::etcd_cluster::etcd_cluster;

  void stop(int member) { freeze(member); }
  void cont(int member) { thaw(member); }
  bool is_stopped(int member) const { return is_frozen(member); }

  // One HTTP request to a member with the cluster's TLS files (client certificate included when client_cert_auth).
  std::optional<http_response> http(int member, http_request_options request, std::string* error = nullptr) const;
  // The files a client of this cluster needs: CA, plus the client certificate when client_cert_auth.
  tls_client_files client_tls() const;
  // Whether `member` serves `key` = `value` by a linearizable read within `timeout` (a healed member has caught up).
  // `last` gets the last answer, for the failure message.
  bool serves_value(int member, const std::string& key, const std::string& value, std::chrono::milliseconds timeout,
                    std::string* last) const;

  std::string other_ca_file() const { return certificates().other_ca_file; }  // did NOT sign etcd's certificate
  std::string other_client_cert_file() const { return certificates().other_client_cert_file; }  // etcd refuses it
  std::string other_client_key_file() const { return certificates().other_client_key_file; }
};

}  // namespace clusterlock::test
