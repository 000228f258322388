#pragma once
// The lock manager's options from the command line, and how the commands speak of etcd's errors. The commands
// learn why etcd cannot be used from the manager itself: its diagnostics (options::diagnostics) and the errors its
// operations complete with. No second client.

#include <clusterlock/diagnostics.hpp>
#include <clusterlock/options.hpp>

#include "cli/arguments.hpp"

#include <boost/system/error_code.hpp>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace clusterlock::cli {

/// "http://a:2379,http://b:2379": as --endpoints and CLUSTERLOCK_ENDPOINTS take them.
std::string join_endpoints(const std::vector<std::string>& urls);

/// Reads the password (see password.hpp) when --user is given. Does not validate: the lock_manager does.
options make_options(const common_arguments& args, const std::string& name, bool contend);

/// How a command speaks of etcd's errors. It keeps the last failed attempt the client reported (source
/// `request`) for each error: that one names the endpoint and what it answered, which the lock's own error does
/// not. (Per error, since attempts may fail in different ways, and the rate limit may drop the last of a kind.)
class etcd_trouble {
 public:
  void note(const diagnostic& d);
  /// "cannot reach etcd at http://a:2379,http://b:2379: <why>", "etcd at ... refused us: <why>",
  /// "http://a:8080 answered HTTP 404, not as etcd does: ...", "https://a:2379 does not speak TLS: try http://a:2379".
  std::string describe(const boost::system::error_code& ec, const options& o) const;

 private:
  std::map<boost::system::error_code, diagnostic> last_request_;
};

/// etcd failed one of the lock's own calls after the client's retries (all endpoints, each attempt): the watch's
/// open or a read. A single failed attempt (source `request`) is not that: another endpoint may answer.
bool etcd_failed(const diagnostic& d);

/// How long the manager's first read can take before it answers or fails: every attempt of the client's retry
/// policy at one request timeout each, the backoffs, and one request timeout more.
std::chrono::milliseconds answer_bound(const options& o);

}  // namespace clusterlock::cli
