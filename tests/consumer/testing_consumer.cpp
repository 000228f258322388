// Uses the installed testing kit (clusterlock::testing) without etcd: a fault_relay to a port nothing listens on
// starts, takes every control, and stops. Exits 0 when it does.
#include <clusterlock/testing/fault_relay.hpp>

#include <chrono>
#include <iostream>

int main() {
  using clusterlock::testing::fault_relay;
  fault_relay relay("127.0.0.1", 9);
  relay.blackhole();
  relay.delay(std::chrono::milliseconds(5));
  relay.one_way(fault_relay::mode::client_to_server_only);
  relay.cut();
  relay.pass();
  const bool ok = relay.port() != 0 && relay.current_mode() == fault_relay::mode::pass && relay.stats().accepted == 0;
  std::cout << "testing kit: relay at " << relay.url() << (ok ? ", ok" : ", FAILED") << std::endl;
  return ok ? 0 : 1;
}
