#pragma once
// The lock manager's options from the command line, and how the commands speak of etcd's errors. The commands
// learn why etcd cannot be used from the manager itself: its diagnostics (options::diagnostics) and the errors its
// operations complete with. No second client.

#include <clusterlock/diagnostics.hpp>
#include <clusterlock/options.hpp>

#include "cli/arguments.hpp"

#include <boost/system/error_code.hpp>

#include <chrono>
#include <string>

namespace clusterlock::cli {

/// Reads the password (see password.hpp) when --user is given. Does not validate: the lock_manager does.
options make_options(const common_arguments& args, const std::string& name, bool contend);

/// Errors that waiting will not cure: etcd refused who we are or how we talk to it.
bool is_refusal(const boost::system::error_code& ec);

/// "cannot reach etcd at http://a:2379,http://b:2379: <why>", "etcd at ... refused us: <why>".
std::string describe_etcd_error(const boost::system::error_code& ec, const options& o);

/// etcd failed one of the lock's own calls after the client's retries (all endpoints, each attempt): the watch's
/// open or a read. A single failed attempt (source `request`) is not that: another endpoint may answer.
bool etcd_failed(const diagnostic& d);

/// How long the manager's first read can take before it answers or fails: every attempt of the client's retry
/// policy at one request timeout each, the backoffs, and one request timeout more.
std::chrono::milliseconds answer_bound(const options& o);

}  // namespace clusterlock::cli
