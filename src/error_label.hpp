#pragma once
// A short, stable name for an error, for metrics labels and counts by error (stats.hpp).

#include <boost/system/error_code.hpp>

#include <string>

namespace clusterlock::detail {

/// The errc name ("timeout") for our errors, "operation_aborted" for a cancellation, else "<category>:<value>".
std::string error_label(const boost::system::error_code& ec);

}  // namespace clusterlock::detail
