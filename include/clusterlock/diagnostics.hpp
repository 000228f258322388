#pragma once
// What the library tells about trouble it handles itself: failed etcd calls it retries, lost leases,
// re-authentications, watch restarts, failed probes. Set `diagnostics` in session_options or options to hear it.

#include <boost/system/error_code.hpp>

#include <functional>
#include <string>

namespace clusterlock {

struct diagnostic {
  /// Where the trouble was: what a handler can switch on (the message is for people).
  enum class source_type {
    request,     ///< one attempt of an etcd request failed (the client may try another endpoint), or re-authentication
    lease,       ///< etcd says the session's lease is gone: its locks are REMOVED
    keepalive,   ///< a lease keepalive failed (the lease may still live)
    watch,       ///< the watch stream broke, was compacted, or fell behind, and is reopened
    probe,       ///< the session's liveness probe failed: held locks are UNKNOWN until one succeeds
    close,       ///< the lease's revoke at close failed (it lives until its TTL)
    read,        ///< a lock's read of its queue failed after the client's retries; it reads again
    contention,  ///< a lock stopped contending: an error retrying cannot cure (its operations complete with it)
    release,     ///< deleting a lock's key failed; it is retried
    callback,    ///< a lock's callback threw
  };
  /// Scoped (not `enum severity_type { info, warning, error }`): an unscoped enumerator `error` would clash with the
  /// member `error` below.
  enum class severity_type { info, warning, error };
  source_type source = source_type::request;
  severity_type severity = severity_type::warning;
  std::string message;              ///< human-readable: says what failed and what happens next
  boost::system::error_code error;  ///< the precise error, if any
  std::string endpoint;             ///< source `request`: the endpoint's URL
  unsigned http_status = 0;         ///< source `request`: the HTTP status it answered with (0: no reply)
};

/// Called on the session's strand, never inside the library's bookkeeping (each call is posted), so it may do
/// anything a handler on that strand may do, destroying lock managers and the session included. An exception it
/// throws is caught and dropped. Rate-limited: at most one message per second for each kind of trouble and error;
/// the next one that gets through says how many like it were suppressed meanwhile. Empty: no diagnostics.
using diagnostics_handler = std::function<void(const diagnostic&)>;

}  // namespace clusterlock
