// One HTTP request to a member of an etcd_cluster with its TLS files: the kit's readiness and leader probes, and
// tests/support's etcd_cluster::http.
#pragma once

#include <clusterlock/testing/etcd_cluster.hpp>

#include <optional>
#include <string>

#include "testing/http_probe.hpp"

namespace clusterlock::testing::detail {

// The files a client of `cluster` needs: its CA, plus the client certificate with client_cert_auth.
tls_client_files client_tls(const etcd_cluster& cluster);

std::optional<http_response> member_http(const etcd_cluster& cluster, int member, http_request_options request,
                                         std::string* error = nullptr);

}  // namespace clusterlock::testing::detail
