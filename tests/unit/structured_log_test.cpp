// The structured diagnostics adapter: one logfmt or JSON line per diagnostic, its quoting, and no secrets in it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <clusterlock/error.hpp>
#include <clusterlock/structured_log.hpp>

#include <boost/json.hpp>

#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace clusterlock {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using clock_type = std::chrono::system_clock;

// 2024-05-01T10:34:56.789Z
const clock_type::time_point sample_time = clock_type::time_point(1714559696789ms);

diagnostic failed_request() {
  diagnostic d;
  d.source = diagnostic::source_type::request;
  d.severity = diagnostic::severity_type::warning;
  d.message = "etcd request failed";
  d.error = make_error_code(errc::timeout);
  d.endpoint = "http://127.0.0.1:2379";
  d.http_status = 503;
  return d;
}

std::string error_field(const boost::system::error_code& ec) {
  return std::string(ec.category().name()) + ":" + std::to_string(ec.value());
}

std::string logfmt_of(const diagnostic& d) { return format_diagnostic(d, log_format::logfmt, sample_time); }
json::object json_of(const diagnostic& d) {
  return json::parse(format_diagnostic(d, log_format::json, sample_time)).as_object();
}

TEST(StructuredLog, LogfmtLineHasEveryFieldInOrder) {
  const auto d = failed_request();
  EXPECT_EQ(logfmt_of(d), "time=2024-05-01T10:34:56.789Z level=warning source=request msg=\"etcd request failed\" "
                          "error=" + error_field(d.error) + " error_message=\"request deadline passed\" "
                          "endpoint=http://127.0.0.1:2379 http_status=503");
}

TEST(StructuredLog, FieldsNotSetAreLeftOut) {
  diagnostic d;
  d.source = diagnostic::source_type::callback;
  d.severity = diagnostic::severity_type::error;
  d.message = "a acquired callback threw";
  const auto line = logfmt_of(d);
  EXPECT_EQ(line, "time=2024-05-01T10:34:56.789Z level=error source=callback msg=\"a acquired callback threw\"");
  const auto o = json_of(d);
  EXPECT_EQ(o.size(), 4u) << json::serialize(o);
  EXPECT_FALSE(o.contains("error"));
  EXPECT_FALSE(o.contains("endpoint"));
  EXPECT_FALSE(o.contains("http_status"));
}

TEST(StructuredLog, LogfmtQuotesAndEscapesWhatNeedsIt) {
  auto with_message = [](std::string m) {
    diagnostic d;
    d.severity = diagnostic::severity_type::info;
    d.message = std::move(m);
    const auto line = logfmt_of(d);
    return line.substr(line.find(" msg=") + 5);
  };
  EXPECT_EQ(with_message("plain"), "plain");
  EXPECT_EQ(with_message(""), "\"\"");
  EXPECT_EQ(with_message("two words"), "\"two words\"");
  EXPECT_EQ(with_message("a=b"), "\"a=b\"");
  EXPECT_EQ(with_message("say \"hi\""), "\"say \\\"hi\\\"\"");
  EXPECT_EQ(with_message("C:\\path"), "\"C:\\\\path\"");
  EXPECT_EQ(with_message("line\nnext\r\tend"), "\"line\\nnext\\r\\tend\"");
  EXPECT_EQ(with_message(std::string("nul\0bell\a", 9) + "\x7f"), "\"nul\\u0000bell\\u0007\\u007f\"");
  EXPECT_EQ(with_message("caf\xc3\xa9"), "caf\xc3\xa9") << "UTF-8 is text";
  EXPECT_EQ(with_message("bad\xff"), "bad\xef\xbf\xbd") << "a byte that is not UTF-8 becomes U+FFFD";
}

TEST(StructuredLog, JsonParsesBackToTheSameFields) {
  auto d = failed_request();
  d.message = "quote \" backslash \\ newline \n tab \t nul " + std::string(1, '\0') + " end";
  const auto o = json_of(d);
  EXPECT_EQ(o.at("time").as_string(), "2024-05-01T10:34:56.789Z");
  EXPECT_EQ(o.at("level").as_string(), "warning");
  EXPECT_EQ(o.at("source").as_string(), "request");
  EXPECT_EQ(o.at("msg").as_string(), d.message);
  EXPECT_EQ(o.at("error").as_string(), error_field(d.error));
  EXPECT_EQ(o.at("error_message").as_string(), d.error.message());
  EXPECT_EQ(o.at("endpoint").as_string(), d.endpoint);
  EXPECT_EQ(o.at("http_status").as_int64(), 503);
  const auto line = format_diagnostic(d, log_format::json, sample_time);
  EXPECT_EQ(line.find('\n'), std::string::npos) << "one line";
  EXPECT_TRUE(line.starts_with("{\"time\":")) << line;
}

TEST(StructuredLog, JsonStaysValidWithBytesThatAreNotUtf8) {
  diagnostic d;
  d.message = "bad \xc3 \xed\xa0\x80 \xf8 end";  // truncated, a surrogate, no such lead byte
  const auto o = json_of(d);
  EXPECT_EQ(o.at("msg").as_string(), "bad \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd end");
}

TEST(StructuredLog, EndpointUserInfoIsNeverWritten) {
  for (const std::string url :
       {"https://alice:s3cret@host:2379", "http://s3cret@10.0.0.1:2379/", "alice:s3cret@host:2379"}) {
    auto d = failed_request();
    d.endpoint = url;
    for (auto format : {log_format::logfmt, log_format::json}) {
      const auto line = format_diagnostic(d, format, sample_time);
      EXPECT_THAT(line, Not(HasSubstr("s3cret"))) << line;
      EXPECT_THAT(line, Not(HasSubstr("alice"))) << line;
      EXPECT_THAT(line, Not(HasSubstr("@"))) << line;
    }
  }
  auto d = failed_request();
  d.endpoint = "https://alice:s3cret@host:2379";
  EXPECT_EQ(json_of(d).at("endpoint").as_string(), "https://host:2379");
  d.endpoint = "http://[::1]:2379";
  EXPECT_EQ(json_of(d).at("endpoint").as_string(), "http://[::1]:2379") << "left as it is";
}

TEST(StructuredLog, NamesEverySourceAndLevel) {
  using s = diagnostic::source_type;
  const std::vector<std::pair<s, std::string>> sources = {
      {s::request, "request"}, {s::lease, "lease"},     {s::keepalive, "keepalive"},   {s::watch, "watch"},
      {s::probe, "probe"},     {s::close, "close"},     {s::read, "read"},             {s::contention, "contention"},
      {s::release, "release"}, {s::callback, "callback"}};
  for (const auto& [source, name] : sources) {
    diagnostic d;
    d.source = source;
    EXPECT_EQ(to_string(source), name);
    EXPECT_EQ(json_of(d).at("source").as_string(), name);
  }
  EXPECT_STREQ(to_string(diagnostic::severity_type::info), "info");
  EXPECT_STREQ(to_string(diagnostic::severity_type::warning), "warning");
  EXPECT_STREQ(to_string(diagnostic::severity_type::error), "error");
}

TEST(StructuredLog, TimeIsUtcWithMilliseconds) {
  diagnostic d;
  const auto at = [&](clock_type::time_point t) {
    return json::parse(format_diagnostic(d, log_format::json, t)).as_object().at("time").as_string();
  };
  EXPECT_EQ(at(clock_type::time_point(5ms)), "1970-01-01T00:00:00.005Z");
  EXPECT_EQ(at(clock_type::time_point(951782400000ms)), "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(at(clock_type::time_point(-1ms)), "1969-12-31T23:59:59.999Z");
}

TEST(StructuredLog, HandlerWritesWholeLinesToTheStream) {
  std::ostringstream out;
  const auto handler = structured_log(out, log_format::json);
  ASSERT_TRUE(handler);
  const auto before = clock_type::now() - 1s;
  handler(failed_request());
  diagnostic other;
  other.source = diagnostic::source_type::lease;
  handler(other);
  std::istringstream lines(out.str());
  std::vector<json::object> parsed;
  for (std::string line; std::getline(lines, line);) parsed.push_back(json::parse(line).as_object());
  ASSERT_EQ(parsed.size(), 2u) << out.str();
  EXPECT_TRUE(out.str().ends_with("\n"));
  EXPECT_EQ(parsed[0].at("source").as_string(), "request");
  EXPECT_EQ(parsed[1].at("source").as_string(), "lease");
  const std::string earliest = format_diagnostic(other, log_format::json, before).substr(9, 24);
  EXPECT_GE(std::string(parsed[0].at("time").as_string()), earliest) << "stamped with the time it was called";
}

TEST(StructuredLog, CopiesOfOneHandlerOnTwoThreadsWriteWholeLines) {
  std::ostringstream out;
  const auto handler = structured_log(out, log_format::logfmt);
  auto write_many = [copy = handler] {
    for (int i = 0; i < 200; ++i) copy(failed_request());
  };
  std::thread a(write_many), b(write_many);
  a.join();
  b.join();
  std::istringstream lines(out.str());
  int count = 0;
  for (std::string line; std::getline(lines, line); ++count) {
    ASSERT_TRUE(line.starts_with("time=")) << line;
    ASSERT_TRUE(line.ends_with("http_status=503")) << line;
  }
  EXPECT_EQ(count, 400);
}

}  // namespace
}  // namespace clusterlock
