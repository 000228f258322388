#include <clusterlock/options.hpp>

#include "connection_checks.hpp"

namespace clusterlock {

namespace {
boost::system::error_code fail(std::string* why, std::string message) {
  if (why) *why = std::move(message);
  return make_error_code(errc::invalid_options);
}
}  // namespace

boost::system::error_code validate_lock(const options& o, std::string* why) {
  if (o.name.empty()) return fail(why, "name: the lock needs a name");
  if (o.watch == watch_scope::predecessor && !o.contend)
    return fail(why, "watch: predecessor needs contend (an observer follows the whole line)");
  if (o.event_backlog == 0) return fail(why, "event_backlog: must be at least 1");
  return {};
}

boost::system::error_code validate(const options& o, std::string* why) {
  auto fail = [&](std::string message) { return clusterlock::fail(why, std::move(message)); };
  if (auto problem = detail::connection_problem(o)) return fail(std::move(*problem));
  if (auto problem = validate_lock(o, why)) return problem;
  // As the etcd client checks them when the lock_manager makes it.
  if (o.retry.initial_backoff.count() < 0 || o.retry.max_backoff < o.retry.initial_backoff)
    return fail("retry: need 0 <= initial_backoff <= max_backoff");
  if (o.retry.max_attempts < 0) return fail("retry.max_attempts: must not be negative");
  return {};
}

}  // namespace clusterlock
