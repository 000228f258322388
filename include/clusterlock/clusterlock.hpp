#pragma once
// clusterlock: one cluster-wide lock (leader election), a counting semaphore and a read-write lock, backed by
// etcd's v3 gateway.

#include <clusterlock/diagnostics.hpp>
#include <clusterlock/error.hpp>
#include <clusterlock/lock_event.hpp>
#include <clusterlock/lock_manager.hpp>
#include <clusterlock/options.hpp>
#include <clusterlock/prometheus.hpp>
#include <clusterlock/rw_lock.hpp>
#include <clusterlock/semaphore.hpp>
#include <clusterlock/session.hpp>
#include <clusterlock/stats.hpp>
#include <clusterlock/structured_log.hpp>
