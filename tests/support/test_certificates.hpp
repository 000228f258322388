// Throwaway TLS material for the tests: the testing kit's own (src/testing/test_certificates.hpp).
#pragma once

#include "testing/test_certificates.hpp"

namespace clusterlock::test {
using clusterlock::testing::detail::make_test_certificates;
using clusterlock::testing::detail::shared_test_certificates;
using clusterlock::testing::detail::test_certificates;
}  // namespace clusterlock::test
