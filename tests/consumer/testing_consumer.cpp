// Uses the installed testing kit (clusterlock::testing) as a user's test does: a real etcd, a lock on it, a wait
// for ACQUIRED and a forced REMOVED. Exits 0 when that behaves as documented.
#include <clusterlock/clusterlock.hpp>
#include <clusterlock/testing.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <exception>
#include <iostream>

int main() {
  namespace kit = clusterlock::testing;
  using clusterlock::lock_event;
  try {
    kit::etcd_cluster etcd;
    boost::asio::io_context io;
    clusterlock::lock_manager lock(io, etcd.lock_options("consumer-kit"));
    kit::event_waiter events(lock);
    lock.start();
    for (auto kind : {lock_event::acquired, lock_event::removed}) {
      if (kind == lock_event::removed) kit::force_removed(etcd, lock);
      const kit::event_result r = events.wait_for(io, kind, std::chrono::seconds(20));
      if (!r) {
        std::cerr << "FAILED: " << r.failure << "\n";
        return 1;
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "FAILED: " << e.what() << "\n";
    return 1;
  }
  std::cout << "testing kit consumer OK\n";
  return 0;
}
