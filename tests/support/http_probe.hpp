// One blocking HTTP request for the tests: the testing kit's own (src/testing/http_probe.hpp).
#pragma once

#include "testing/http_probe.hpp"

namespace clusterlock::test {
using clusterlock::testing::detail::http_request;
using clusterlock::testing::detail::http_request_options;
using clusterlock::testing::detail::http_response;
using clusterlock::testing::detail::tls_client_files;
}  // namespace clusterlock::test
