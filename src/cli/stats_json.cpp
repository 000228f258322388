#include "cli/stats_json.hpp"

#include "cli/output.hpp"

#include <boost/json/value.hpp>

#include <charconv>

namespace clusterlock::cli {

namespace json = boost::json;

namespace {

double seconds_of(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

json::object histogram_json(const latency_histogram& h) {
  json::object buckets;
  for (std::size_t i = 0; i < h.upper_bounds.size(); ++i) {
    char bound[32];
    const auto r = std::to_chars(bound, bound + sizeof bound, h.upper_bounds[i]);
    buckets[std::string_view(bound, static_cast<std::size_t>(r.ptr - bound))] = h.buckets[i];
  }
  return {{"count", h.count}, {"sum_seconds", h.sum}, {"buckets", std::move(buckets)}};
}

json::object session_json(const session_stats& s) {
  json::object failures;
  for (const auto& [error, n] : s.requests.failures_by_error) failures[error] = n;
  json::object o;
  o["watch_prefix"] = s.watch_prefix;
  o["lease"] = s.lease == 0 ? json::value(nullptr) : json::value(lease_hex(s.lease));
  o["granted_ttl_seconds"] = s.granted_ttl.count();
  o["since_renewal_seconds"] = s.since_renewal ? json::value(seconds_of(*s.since_renewal)) : json::value(nullptr);
  o["lease_valid_for_seconds"] = seconds_of(s.lease_valid_for);
  o["leases_granted"] = s.leases_granted;
  o["leases_lost"] = s.leases_lost;
  o["keepalive_failures"] = s.keepalive_failures;
  o["keepalive_latency"] = histogram_json(s.keepalive_latency);
  o["probe_failures"] = s.probe_failures;
  o["probe_latency"] = histogram_json(s.probe_latency);
  o["watch_restarts"] = s.watch_restarts;
  o["requests"] = s.requests.requests;
  o["request_failures"] = s.requests.failures;
  o["request_failures_by_error"] = std::move(failures);
  return o;
}

}  // namespace

json::object stats_json(const lock_stats& s) {
  json::object o;
  o["have_lock"] = s.have_lock;
  o["fencing_token"] = s.fencing_token;
  o["acquisitions"] = s.acquisitions;
  o["removed_by_etcd"] = s.removed_by_etcd;
  o["lease_lost"] = s.lease_lost;
  o["released"] = s.released;
  o["unknowns"] = s.unknowns;
  o["time_held_seconds"] = seconds_of(s.time_held);
  o["time_unknown_seconds"] = seconds_of(s.time_unknown);
  o["queue_position"] = s.queue_position ? json::value(*s.queue_position) : json::value(nullptr);
  o["queue_length"] = s.queue_length;
  o["session"] = session_json(s.session);
  return o;
}

}  // namespace clusterlock::cli
