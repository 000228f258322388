#include "transport/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace clusterlock::transport {
namespace {

namespace ssl = boost::asio::ssl;

// Why `path` cannot be opened for reading, or "" when it can. Checked up front because OpenSSL's
// own message for a missing file ("system lib") does not say which file.
std::string unreadable(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) return std::strerror(errno);
  std::fclose(file);
  return {};
}

// Fills *message with "WHAT 'PATH': REASON" and returns invalid_options.
result<std::shared_ptr<ssl::context>> fail(std::string* message, std::string what) {
  ERR_clear_error();  // leave no stale OpenSSL errors behind for later, unrelated calls on this thread
  if (message) *message = std::move(what);
  return make_error_code(errc::invalid_options);
}

std::string about_file(const char* role, const std::string& path, const std::string& reason) {
  return std::string("TLS ") + role + " '" + path + "': " + reason;
}

}  // namespace

result<std::shared_ptr<ssl::context>> make_tls_context(const etcd::tls_config& config, std::string* error_message) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
  if (SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION) != 1)
    return fail(error_message, "TLS: cannot require TLS 1.2 or newer");
  // OpenSSL's default for an encrypted key is to prompt on the terminal: a library must not block on that.
  context->set_password_callback([](std::size_t, ssl::context::password_purpose) { return std::string(); });

  boost::system::error_code ec;
  if (config.verify) {
    context->set_verify_mode(ssl::verify_peer, ec);
    if (config.ca_file.empty()) {
      context->set_default_verify_paths(ec);
      if (ec) return fail(error_message, "TLS: cannot load the system's default CA certificates: " + ec.message());
    } else {
      if (auto why = unreadable(config.ca_file); !why.empty())
        return fail(error_message, about_file("CA file", config.ca_file, why));
      context->load_verify_file(config.ca_file, ec);
      if (ec) return fail(error_message, about_file("CA file", config.ca_file, "no usable PEM certificate: " + ec.message()));
    }
  } else {
    context->set_verify_mode(ssl::verify_none, ec);
  }

  if (config.cert_file.empty() != config.key_file.empty())
    return fail(error_message, "TLS: cert_file and key_file go together: give both or neither");
  if (!config.cert_file.empty()) {
    if (auto why = unreadable(config.cert_file); !why.empty())
      return fail(error_message, about_file("client certificate file", config.cert_file, why));
    if (auto why = unreadable(config.key_file); !why.empty())
      return fail(error_message, about_file("client key file", config.key_file, why));
    context->use_certificate_chain_file(config.cert_file, ec);
    if (ec) return fail(error_message, about_file("client certificate file", config.cert_file, "not a usable PEM certificate: " + ec.message()));
    context->use_private_key_file(config.key_file, ssl::context::pem, ec);
    if (ec) return fail(error_message, about_file("client key file", config.key_file, "not a usable unencrypted PEM key: " + ec.message()));
    if (SSL_CTX_check_private_key(context->native_handle()) != 1)
      return fail(error_message, about_file("client key file", config.key_file, "does not match the certificate in '" + config.cert_file + "'"));
  }
  return context;
}

}  // namespace clusterlock::transport
