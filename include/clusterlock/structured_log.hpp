#pragma once
// A ready diagnostics handler: each diagnostic as one structured line (logfmt or JSON), for log collectors.
//
//   auto o = clusterlock::options{...};
//   o.diagnostics = clusterlock::structured_log(clusterlock::log_format::json);  // to stderr
//
// Fields, in this order, each only when it says something: time (UTC, RFC 3339 with milliseconds), level (info,
// warning, error), source (request, lease, keepalive, watch, probe, close, read, contention, release, callback), msg,
// error ("category:value", e.g. "clusterlock:2") and error_message (its message) when the diagnostic has an error,
// endpoint and http_status when set (source `request`).
//
//   time=2024-05-01T10:34:56.789Z level=warning source=request msg="etcd request POST ..." error=system:111 ...
//   {"time":"2024-05-01T10:34:56.789Z","level":"warning","source":"request","msg":"etcd request POST ...",...}
//
// Secrets: an endpoint's user info (`https://user:pass@host:2379`) is never written. The library's messages carry
// no passwords and no auth tokens: they name endpoints, keys, leases, the user name of a re-authentication, and
// errors. The one text the library does not write itself is a throwing callback's exception message (source
// `callback`): what the application put there.

#include <clusterlock/diagnostics.hpp>

#include <chrono>
#include <iosfwd>
#include <string>

namespace clusterlock {

enum class log_format {
  logfmt,  ///< key=value pairs; a value with a space, '=', '"', '\\' or a control character is quoted and escaped
  json,    ///< one JSON object per line (Boost.JSON's serializer)
};

/// "request", "lease", ...: the enumerator's name.
const char* to_string(diagnostic::source_type s) noexcept;
/// "info", "warning", "error".
const char* to_string(diagnostic::severity_type s) noexcept;

/// One line (without its newline) saying `d`, as it was at `at`. Pure: no clock, no I/O. Text that is not valid UTF-8
/// has each bad byte replaced by U+FFFD, so that the line is always valid JSON (and logfmt) text.
std::string format_diagnostic(const diagnostic& d, log_format format, std::chrono::system_clock::time_point at);

/// A handler that writes each diagnostic as format_diagnostic's line, stamped with the time it is called, to
/// stderr: the whole line, newline included, in one write(2), so that lines from several sessions (or processes)
/// sharing stderr do not interleave. Errors writing are ignored (a diagnostic must not break the session).
///
/// Like every diagnostics handler it is called on the session's strand (see diagnostics.hpp); it blocks that strand
/// only for the write.
diagnostics_handler structured_log(log_format format);

/// The same, written to `out`, which must outlive every copy of the handler. Each line is one `write` of the whole
/// line and a flush. Copies of the handler share one mutex, so one handler given to sessions that run on different
/// threads writes whole lines; anyone else writing to `out` meanwhile must not (or must use that same handler).
diagnostics_handler structured_log(std::ostream& out, log_format format);

}  // namespace clusterlock
