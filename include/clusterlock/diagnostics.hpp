#pragma once
// A hook for what the library retries, loses or recovers on its own: failed etcd calls, lost leases,
// re-authentications, watch restarts, probe failures.

#include <boost/system/error_code.hpp>

#include <functional>
#include <string>

namespace clusterlock {

struct diagnostic {
  enum class severity_type { info, warning, error };
  severity_type severity = severity_type::warning;
  std::string message;              // human-readable, says what failed and what happens next
  boost::system::error_code error;  // the precise error, if any
};

using diagnostics_handler = std::function<void(const diagnostic&)>;

}  // namespace clusterlock
