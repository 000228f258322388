#include "transport/endpoint.hpp"

#include <gtest/gtest.h>

#include <string>

namespace clusterlock::transport {
namespace {

struct good_case {
  const char* url;
  const char* host;
  const char* port;
  bool tls;
  const char* host_header;
};

TEST(endpoint, accepts_http_and_https_urls_with_names_and_addresses) {
  const good_case cases[] = {
      {"http://127.0.0.1:2379", "127.0.0.1", "2379", false, "127.0.0.1:2379"},
      {"https://localhost:2379/", "localhost", "2379", true, "localhost:2379"},
      {"http://[::1]:2379", "::1", "2379", false, "[::1]:2379"},
      {"https://[2001:db8::7]:12379/", "2001:db8::7", "12379", true, "[2001:db8::7]:12379"},
      {"http://etcd-0.example.com", "etcd-0.example.com", "80", false, "etcd-0.example.com:80"},
      {"https://10.0.0.1", "10.0.0.1", "443", true, "10.0.0.1:443"},
      {"HTTP://Etcd:1", "Etcd", "1", false, "Etcd:1"},
      {"http://h:65535", "h", "65535", false, "h:65535"},
  };
  for (const auto& c : cases) {
    std::string why;
    auto parsed = parse_endpoint(c.url, &why);
    ASSERT_TRUE(parsed) << c.url << ": " << why;
    EXPECT_EQ(parsed->url, c.url);
    EXPECT_EQ(parsed->host, c.host) << c.url;
    EXPECT_EQ(parsed->port, c.port) << c.url;
    EXPECT_EQ(parsed->tls, c.tls) << c.url;
    EXPECT_EQ(host_header(*parsed), c.host_header) << c.url;
    EXPECT_EQ(describe_endpoint_error(c.url), "") << c.url;
  }
}

struct bad_case {
  const char* url;
  const char* reason_mentions;  // a word the message must contain
};

TEST(endpoint, rejects_anything_but_scheme_host_and_port_with_a_reason) {
  const bad_case cases[] = {
      {"", "URL"},
      {"ftp://h:2379", "scheme"},
      {"unix:///tmp/etcd.sock", "scheme"},
      {"localhost:2379", "scheme"},  // parses as scheme "localhost"
      {"127.0.0.1:2379", "URL"},
      {"http:/h:2379", "host"},
      {"http://:2379", "host"},
      {"http:///", "host"},
      {"http://user:pw@h:2379", "user info"},
      {"http://h:2379/v3", "path"},
      {"http://h:2379/", nullptr},  // valid: checked below not to be here
      {"http://h:2379?x=1", "query"},
      {"http://h:2379#frag", "fragment"},
      {"http://h:0", "port"},
      {"http://h:65536", "port"},
      {"http://h:99999", "port"},
      {"http://h:", "port"},
      {"http://h:12a", "URL"},
      {"http://[v1.x]:2379", "host"},
      {"http://[::1:2379", "URL"},
      {"http://h%41:2379", "percent"},
  };
  for (const auto& c : cases) {
    if (!c.reason_mentions) continue;
    std::string why;
    auto parsed = parse_endpoint(c.url, &why);
    ASSERT_FALSE(parsed) << c.url << " was accepted";
    EXPECT_EQ(parsed.error(), make_error_code(errc::invalid_options)) << c.url;
    EXPECT_NE(why.find(c.reason_mentions), std::string::npos) << c.url << ": " << why;
    EXPECT_EQ(describe_endpoint_error(c.url), why) << c.url;
  }
}

TEST(endpoint, never_repeats_the_url_in_its_message) {
  std::string why;
  ASSERT_FALSE(parse_endpoint("http://root:hunter2@h:2379", &why));
  EXPECT_EQ(why.find("hunter2"), std::string::npos) << why;
  ASSERT_FALSE(parse_endpoint("http://root:hunter2@h:2379/secret-path", &why));
  EXPECT_EQ(why.find("hunter2"), std::string::npos) << why;
  EXPECT_EQ(why.find("secret-path"), std::string::npos) << why;
}

TEST(endpoint, tells_ip_literals_from_names) {
  EXPECT_TRUE(is_ip_literal("127.0.0.1"));
  EXPECT_TRUE(is_ip_literal("::1"));
  EXPECT_FALSE(is_ip_literal("localhost"));
  EXPECT_FALSE(is_ip_literal("etcd-0.example.com"));
}

}  // namespace
}  // namespace clusterlock::transport
