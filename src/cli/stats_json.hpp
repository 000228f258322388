#pragma once
// lock_manager::stats() as JSON, for status --json and watch --json: the fields of stats.hpp by the same names,
// durations in seconds (`..._seconds`), histograms as {count, sum_seconds, buckets: {upper bound: cumulative count}}.

#include <clusterlock/stats.hpp>

#include <boost/json/object.hpp>

namespace clusterlock::cli {

boost::json::object stats_json(const lock_stats& s);

}  // namespace clusterlock::cli
