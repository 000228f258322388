#include "support/etcd_cluster.hpp"

#include "testing/member_http.hpp"

namespace clusterlock::test {

std::optional<http_response> etcd_cluster::http(int member, http_request_options request, std::string* error) const {
  return clusterlock::testing::detail::member_http(*this, member, request, error);
}

tls_client_files etcd_cluster::client_tls() const { return clusterlock::testing::detail::client_tls(*this); }

}  // namespace clusterlock::test
