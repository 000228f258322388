#pragma once
// The testing kit (target clusterlock::testing, docs/testing.md): real etcd, a fault relay and one-line checks for
// your tests of code that uses a clusterlock lock. Blocking, for tests only; free of any test framework.

#include <clusterlock/testing/etcd_cluster.hpp>
#include <clusterlock/testing/event_waiter.hpp>
#include <clusterlock/testing/fault_relay.hpp>
#include <clusterlock/testing/lock_faults.hpp>
#include <clusterlock/testing/run_until.hpp>
