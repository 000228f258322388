#pragma once
// Writes stats (stats.hpp) in Prometheus' text exposition format (version 0.0.4): what a /metrics endpoint serves.
// Every metric is named `clusterlock_...`, durations in seconds (`_seconds`), counters end in `_total`, latencies
// are histograms (`_bucket{le=...}`, `_sum`, `_count`); each family has its HELP and TYPE lines. A lock's series
// carry the label `lock` (its name), a session's the label `session` (its watch prefix), besides yours.
// docs/metrics.md lists them with a sample scrape.

#include <clusterlock/stats.hpp>

#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace clusterlock {

/// Labels added to every series, e.g. {{"instance_role", "scheduler"}}. Names as Prometheus allows
/// ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", and not `lock`, `session`, `cause`, `error` or `le`, which the
/// writer uses); values any text (escaped).
using prometheus_labels = std::vector<std::pair<std::string, std::string>>;

/// One lock and its session. Throws std::invalid_argument for a label name that is not allowed or given twice.
void write_prometheus(std::ostream& os, const lock_stats& lock, const prometheus_labels& labels = {});

/// Many locks and sessions in one scrape (each metric family once, a series per lock or session): e.g. the locks
/// of one shared session, with that session's stats() once. Throws std::invalid_argument as above, and when two
/// locks share a name or two sessions a watch prefix (their series would collide: write them to separate scrapes).
void write_prometheus(std::ostream& os, const std::vector<lock_stats>& locks, const std::vector<session_stats>& sessions,
                      const prometheus_labels& labels = {});

}  // namespace clusterlock
