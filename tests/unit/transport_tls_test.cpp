// TLS: the client context and certificate checks, against the fake server serving throwaway certificates.
#include "transport/http_connection.hpp"
#include "transport/tls_context.hpp"

#include "support/async_test.hpp"
#include "support/fake_http_server.hpp"
#include "support/test_certificates.hpp"

#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

namespace clusterlock::transport {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::fake_http_server;
using test::run_until_done;
using test::shared_test_certificates;
using awaitable = asio::awaitable<void>;

http_request post() {
  http_request request;
  request.target = "/v3/kv/range";
  request.body = "{}";
  return request;
}

std::shared_ptr<asio::ssl::context> client_context(etcd::tls_config config) {
  std::string why;
  auto context = make_tls_context(config, &why);
  EXPECT_TRUE(context) << why;
  return context ? *context : nullptr;
}

etcd::tls_config trusting(const std::string& ca_file) {
  etcd::tls_config config;
  config.ca_file = ca_file;
  return config;
}

class transport_tls : public ::testing::Test {
 protected:
  // One exchange against `server` at `url`; its outcome.
  result<http_reply> exchange_once(const std::string& url, std::shared_ptr<asio::ssl::context> tls,
                                   std::chrono::milliseconds deadline = 5s) {
    result<http_reply> outcome = make_error_code(errc::server_error);
    http_connection connection(io.get_executor(), parse_endpoint(url).value(), std::move(tls), options());
    EXPECT_TRUE(run_until_done(io, [&]() -> awaitable { outcome = co_await connection.exchange(post(), deadline); }));
    return outcome;
  }
  transport_options options() {
    transport_options o;
    o.connects = connects;
    return o;
  }

  asio::io_context io;
  std::shared_ptr<std::uint64_t> connects = std::make_shared<std::uint64_t>(0);
};

std::shared_ptr<asio::ssl::context> server_with(const std::string& cert, const std::string& key,
                                                const std::string& client_ca = {}) {
  return test::make_server_tls_context(cert, key, client_ca);
}

TEST_F(transport_tls, the_right_ca_is_accepted_and_the_connection_kept_alive) {
  const auto& pki = shared_test_certificates();
  fake_http_server server(io.get_executor(), test::answer({200, {}, R"({"ok":true})"}),
                          server_with(pki.server_cert_file, pki.server_key_file));
  http_connection connection(io.get_executor(), parse_endpoint(server.url()).value(),
                             client_context(trusting(pki.ca_file)), options());
  EXPECT_TRUE(run_until_done(io, [&]() -> awaitable {
    for (int i = 0; i < 20; ++i) {
      auto reply = co_await connection.exchange(post(), 5s);
      CO_ASSERT_TRUE(reply);
      EXPECT_EQ(reply->status, 200u);
      EXPECT_EQ(reply->body, R"({"ok":true})");
    }
  }));
  EXPECT_EQ(*connects, 1u);
  EXPECT_EQ(server.accepted(), 1u);
}

TEST_F(transport_tls, a_host_name_in_the_certificate_is_accepted) {
  const auto& pki = shared_test_certificates();
  fake_http_server server(io.get_executor(), test::answer({200, {}, "{}"}), server_with(pki.server_cert_file, pki.server_key_file));
  auto reply = exchange_once("https://localhost:" + std::to_string(server.port()), client_context(trusting(pki.ca_file)));
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(reply->status, 200u);
}

// A plain-HTTP server's answer to a ClientHello: it reads no HTTP request in it, and says so in plain text.
asio::awaitable<void> plain_text_400(fake_http_server::connection& c) {
  co_await c.write("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
  co_await c.hold();
}

// What etcd's plain port does with a ClientHello: it reads it, finds no protocol it knows, and closes.
asio::awaitable<void> read_then_close(fake_http_server::connection& c) {
  co_await c.read_request();
  c.close();
}

// Issue 17: an https:// URL on a plain-HTTP port was "TLS handshake failed (certificate or host name not accepted)"
// when the server answered our ClientHello in plain text, and "no endpoint answered" when it closed (etcd does).
TEST_F(transport_tls, a_plain_http_port_does_not_speak_tls) {
  const auto& pki = shared_test_certificates();
  fake_http_server answers(io.get_executor(), plain_text_400);
  auto reply = exchange_once("https://127.0.0.1:" + std::to_string(answers.port()), client_context(trusting(pki.ca_file)));
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error(), make_error_code(errc::not_tls)) << reply.error().message();

  fake_http_server closes(io.get_executor(), read_then_close);
  reply = exchange_once("https://127.0.0.1:" + std::to_string(closes.port()), client_context(trusting(pki.ca_file)));
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error(), make_error_code(errc::not_tls)) << reply.error().message();
}

TEST_F(transport_tls, an_unrelated_ca_fails_the_handshake) {
  const auto& pki = shared_test_certificates();
  fake_http_server server(io.get_executor(), test::answer({200, {}, "{}"}), server_with(pki.server_cert_file, pki.server_key_file));
  auto reply = exchange_once(server.url(), client_context(trusting(pki.other_ca_file)));
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error(), make_error_code(errc::tls_handshake_failed));
  EXPECT_EQ(server.requests(), 0u);
}

TEST_F(transport_tls, a_certificate_for_another_host_fails_the_handshake) {
  const auto& pki = shared_test_certificates();
  fake_http_server server(io.get_executor(), test::answer({200, {}, "{}"}),
                          server_with(pki.other_name_cert_file, pki.other_name_key_file));
  auto reply = exchange_once(server.url(), client_context(trusting(pki.ca_file)));  // 127.0.0.1: not in the cert
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error(), make_error_code(errc::tls_handshake_failed));
  auto by_name = exchange_once("https://localhost:" + std::to_string(server.port()),
                               client_context(trusting(pki.ca_file)));
  ASSERT_FALSE(by_name);
  EXPECT_EQ(by_name.error(), make_error_code(errc::tls_handshake_failed));
  EXPECT_EQ(server.requests(), 0u);
}

TEST_F(transport_tls, verify_off_accepts_any_certificate) {
  const auto& pki = shared_test_certificates();
  fake_http_server server(io.get_executor(), test::answer({200, {}, "{}"}),
                          server_with(pki.other_name_cert_file, pki.other_name_key_file));
  etcd::tls_config config = trusting(pki.other_ca_file);
  config.verify = false;
  auto reply = exchange_once(server.url(), client_context(config));
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(reply->status, 200u);
}

TEST_F(transport_tls, a_server_that_requires_a_client_certificate_gets_ours) {
  const auto& pki = shared_test_certificates();
  fake_http_server server(io.get_executor(), test::answer({200, {}, "{}"}),
                          server_with(pki.server_cert_file, pki.server_key_file, pki.ca_file));
  auto without = exchange_once(server.url(), client_context(trusting(pki.ca_file)));
  ASSERT_FALSE(without);
  EXPECT_EQ(without.error(), make_error_code(errc::tls_handshake_failed)) << without.error().message();

  etcd::tls_config config = trusting(pki.ca_file);
  config.cert_file = pki.client_cert_file;
  config.key_file = pki.client_key_file;
  auto with = exchange_once(server.url(), client_context(config));
  ASSERT_TRUE(with) << with.error().message();
  EXPECT_EQ(with->status, 200u);
}

asio::awaitable<void> accept_and_stay_silent(fake_http_server::connection& c) { co_await c.hold(); }

TEST_F(transport_tls, a_handshake_that_never_completes_times_out) {
  // A plain TCP server that never speaks: the client's ClientHello goes unanswered.
  fake_http_server server(io.get_executor(), [](fake_http_server::connection& c) { return accept_and_stay_silent(c); });
  const auto& pki = shared_test_certificates();
  auto started = std::chrono::steady_clock::now();
  auto reply = exchange_once("https://127.0.0.1:" + std::to_string(server.port()),
                             client_context(trusting(pki.ca_file)), 200ms);
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error(), make_error_code(errc::timeout));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
}

// ---- make_tls_context ----

struct context_failure {
  const char* name;
  etcd::tls_config config;
  std::string message_names;  // the file or option the message must name
};

TEST(make_tls_context, refuses_unusable_files_naming_them_and_never_their_content) {
  const auto& pki = shared_test_certificates();
  const std::string missing = pki.dir + "/no-such-file.pem";
  const std::string not_pem = pki.dir + "/not-pem.txt";
  std::ofstream(not_pem) << "hello\n";

  std::vector<context_failure> cases = {
      {"missing CA file", {missing, "", "", true}, missing},
      {"CA file without a certificate", {not_pem, "", "", true}, not_pem},
      {"certificate without key", {pki.ca_file, pki.client_cert_file, "", true}, "key_file"},
      {"key without certificate", {pki.ca_file, "", pki.client_key_file, true}, "cert_file"},
      {"missing key file", {pki.ca_file, pki.client_cert_file, missing, true}, missing},
      {"missing certificate file", {pki.ca_file, missing, pki.client_key_file, true}, missing},
      {"key that is not PEM", {pki.ca_file, pki.client_cert_file, not_pem, true}, not_pem},
      {"encrypted key", {pki.ca_file, pki.client_cert_file, pki.encrypted_client_key_file, true}, pki.encrypted_client_key_file},
      {"key of another certificate", {pki.ca_file, pki.client_cert_file, pki.server_key_file, true}, pki.server_key_file},
  };
  std::ifstream key_file(pki.client_key_file);
  const std::string key_text((std::istreambuf_iterator<char>(key_file)), std::istreambuf_iterator<char>());
  ASSERT_GT(key_text.size(), 100u);
  const std::string key_body = key_text.substr(40, 40);  // a piece of the base64 key material

  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::string why;
    auto context = make_tls_context(c.config, &why);
    ASSERT_FALSE(context);
    EXPECT_EQ(context.error(), make_error_code(errc::invalid_options));
    EXPECT_NE(why.find(c.message_names), std::string::npos) << why;
    EXPECT_EQ(why.find(key_body), std::string::npos) << why;
    EXPECT_EQ(why.find("PRIVATE KEY"), std::string::npos) << why;
  }
}

TEST(make_tls_context, accepts_a_ca_and_a_matching_client_pair) {
  const auto& pki = shared_test_certificates();
  etcd::tls_config config;
  config.ca_file = pki.ca_file;
  config.cert_file = pki.client_cert_file;
  config.key_file = pki.client_key_file;
  std::string why;
  EXPECT_TRUE(make_tls_context(config, &why)) << why;
  EXPECT_TRUE(make_tls_context(etcd::tls_config{}, &why)) << why;  // the system's CAs
}

}  // namespace
}  // namespace clusterlock::transport
