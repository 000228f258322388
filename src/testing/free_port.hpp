// Free TCP ports on 127.0.0.1 for the servers the tests start.
#pragma once

#include <cstddef>
#include <vector>

namespace clusterlock::testing::detail {

// A TCP port on 127.0.0.1 that nothing is bound to at the moment (bound, read, closed), and that this process has
// not handed out recently, so that a killed member's port stays reserved for its restart.
//
// Taken from just below the kernel's ephemeral range (ip_local_port_range) rather than by binding to port 0: port 0
// yields an ephemeral port, which any outgoing connection on the machine (etcdctl, probes, other developers' tests)
// may grab as its source port before etcd binds it or while a killed member waits for its restart. Falls back to
// port 0 when that range is too small.
unsigned short free_port();

// `count` distinct free ports.
std::vector<unsigned short> free_ports(std::size_t count);

}  // namespace clusterlock::testing::detail
