// The session's diagnostics sink: rate limiting, posting, and a handler that throws (no etcd).

#include "session/diagnostics_sink.hpp"
#include "support/bounded_wait.hpp"

#include <clusterlock/error.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace clusterlock {

using from = diagnostic::source_type;
using level = diagnostic::severity_type;
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST(DiagnosticsSink, OneMessageASecondPerKindAndErrorThenTheCountOfThoseSuppressed) {
  asio::io_context io;
  std::vector<diagnostic> seen;
  detail::diagnostics_sink sink(asio::make_strand(io), [&](const diagnostic& d) { seen.push_back(d); });
  for (int i = 0; i < 50; ++i) sink.report(from::probe, level::warning, "probe failed", make_error_code(errc::timeout));
  sink.report(from::probe, level::warning, "probe failed", make_error_code(errc::unavailable));  // another error
  sink.report(from::keepalive, level::warning, "keepalive failed", make_error_code(errc::timeout));  // another kind
  EXPECT_TRUE(seen.empty()) << "called inside report(), not posted";
  io.poll();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].message, "probe failed");
  EXPECT_EQ(seen[0].error, make_error_code(errc::timeout));
  EXPECT_EQ(seen[0].source, diagnostic::source_type::probe);
  EXPECT_EQ(seen[2].source, diagnostic::source_type::keepalive);
  // Past the window, the next one gets through and counts the suppressed ones (the window is the point: waiting it
  // out is what this test is about).
  test::run_for(io, 1100ms);
  sink.report(from::probe, level::warning, "probe failed", make_error_code(errc::timeout));
  io.restart();
  io.poll();
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_NE(seen[3].message.find("49 more like it suppressed"), std::string::npos) << seen[3].message;
}

TEST(DiagnosticsSink, AnExceptionFromTheHandlerIsDropped) {
  asio::io_context io;
  int calls = 0;
  detail::diagnostics_sink sink(asio::make_strand(io), [&](const diagnostic&) {
    ++calls;
    throw std::runtime_error("the user's handler fails");
  });
  sink.report(from::probe, level::warning, "one");
  sink.report(from::watch, level::error, "two");
  EXPECT_NO_THROW(io.poll());
  EXPECT_EQ(calls, 2);
}

TEST(DiagnosticsSink, NoHandlerNoWork) {
  asio::io_context io;
  detail::diagnostics_sink sink(asio::make_strand(io), nullptr);
  EXPECT_FALSE(sink.enabled());
  sink.report(from::probe, level::warning, "one");
  EXPECT_EQ(io.poll(), 0u);
}

}  // namespace
}  // namespace clusterlock
