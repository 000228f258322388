// validate(): every field the lock_manager's constructor checks, without I/O.
#include <clusterlock/error.hpp>
#include <clusterlock/options.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace clusterlock {
namespace {

using namespace std::chrono_literals;

options good() {
  options o;
  o.endpoints = {"http://127.0.0.1:2379"};
  o.name = "lock";
  return o;
}

std::string why_not(const options& o) {
  std::string why;
  const auto ec = validate(o, &why);
  if (!ec) return "";
  EXPECT_EQ(ec, errc::invalid_options);
  return why;
}

TEST(OptionsTest, DefaultsWithEndpointAndNameAreValid) { EXPECT_EQ(why_not(good()), ""); }

TEST(OptionsTest, RetryIsChecked) {
  auto o = good();
  o.retry.initial_backoff = -1ms;
  EXPECT_EQ(why_not(o), "retry: need 0 <= initial_backoff <= max_backoff");
  o = good();
  o.retry.initial_backoff = 3s;
  o.retry.max_backoff = 2s;
  EXPECT_EQ(why_not(o), "retry: need 0 <= initial_backoff <= max_backoff");
  o = good();
  o.retry.max_attempts = -1;
  EXPECT_EQ(why_not(o), "retry.max_attempts: must not be negative");
  o = good();
  o.retry.initial_backoff = 0ms;
  o.retry.max_backoff = 0ms;
  o.retry.max_attempts = 1;
  EXPECT_EQ(why_not(o), "");
}

TEST(OptionsTest, EachFieldIsNamed) {
  auto o = good();
  o.endpoints = {"ftp://x:1"};
  EXPECT_NE(why_not(o).find("endpoints:"), std::string::npos);
  o = good();
  o.name.clear();
  EXPECT_NE(why_not(o).find("name:"), std::string::npos);
  o = good();
  o.ttl = etcd::max_lease_ttl + std::chrono::seconds(1);  // etcd would refuse the lease
  EXPECT_NE(why_not(o).find("ttl: at most"), std::string::npos);
  o = good();
  o.clock_margin = o.ttl;
  EXPECT_NE(why_not(o).find("clock_margin:"), std::string::npos);
  o = good();
  o.tls.cert_file = "client.pem";
  EXPECT_NE(why_not(o).find("tls:"), std::string::npos);
  o = good();
  o.auth.user = "root";
  EXPECT_NE(why_not(o).find("auth:"), std::string::npos);
}

TEST(OptionsTest, PredecessorWatchNeedsAContender) {
  auto o = good();
  o.watch = watch_scope::predecessor;
  EXPECT_EQ(why_not(o), "");
  o.contend = false;
  EXPECT_NE(why_not(o).find("watch: predecessor needs contend"), std::string::npos);
  std::string why;
  EXPECT_EQ(validate_lock(o, &why), errc::invalid_options);  // a lock on a shared session too
  EXPECT_NE(why.find("watch:"), std::string::npos);
}

// The message of a URL with user info named it whole, password included.
TEST(OptionsTest, AUrlWithAPasswordIsRefusedWithoutRepeatingThePassword) {
  auto o = good();
  o.endpoints = {"http://root:s3cret@127.0.0.1:2379"};
  const auto why = why_not(o);
  EXPECT_NE(why.find("user info in the URL is not allowed"), std::string::npos) << why;
  EXPECT_NE(why.find("127.0.0.1:2379"), std::string::npos) << why;
  EXPECT_EQ(why.find("s3cret"), std::string::npos) << why;
}

}  // namespace
}  // namespace clusterlock
