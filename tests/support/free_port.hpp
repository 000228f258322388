// Free loopback ports for the tests' servers: the testing kit's own (src/testing/free_port.hpp).
#pragma once

#include "testing/free_port.hpp"

namespace clusterlock::test {
using clusterlock::testing::detail::free_port;
using clusterlock::testing::detail::free_ports;
}  // namespace clusterlock::test
