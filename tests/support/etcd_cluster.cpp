#include "support/etcd_cluster.hpp"

#include "support/bounded_wait.hpp"
#include "testing/member_http.hpp"

namespace clusterlock::test {

std::optional<http_response> etcd_cluster::http(int member, http_request_options request, std::string* error) const {
  return clusterlock::testing::detail::member_http(*this, member, request, error);
}

tls_client_files etcd_cluster::client_tls() const { return clusterlock::testing::detail::client_tls(*this); }

bool etcd_cluster::serves_value(int member, const std::string& key, const std::string& value,
                                std::chrono::milliseconds timeout, std::string* last) const {
  return eventually(
      [&] {
        const auto r = try_etcdctl({"get", key, "--print-value-only"}, {.members = {member}});
        *last = r.out;
        return r.exit_code == 0 && r.out == value + "\n";
      },
      timeout);
}

}  // namespace clusterlock::test
