// Boost.JSON compiled into the fuzzers (instead of linking Debian's libboost_json), so that its parser is built
// with the fuzzers' instrumentation.
#include <boost/json/src.hpp>
