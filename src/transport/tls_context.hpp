#pragma once
// The client-side TLS settings shared by every connection to https endpoints.

#include <clusterlock/error.hpp>
#include <clusterlock/etcd/client_config.hpp>

#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <string>

namespace clusterlock::transport {

/// TLS 1.2 or newer; with `verify` (the default) the peer must present a certificate that chains to
/// `ca_file` (the system's CAs when empty). Each connection adds the host-name (or IP) check and SNI.
/// A client certificate is used when `cert_file` and `key_file` are both given.
/// Fails with errc::invalid_options, and a message in `*error_message` (when given) that names the
/// offending file or option and never any key material. An encrypted key fails too (no passphrase
/// prompt on the terminal).
result<std::shared_ptr<boost::asio::ssl::context>> make_tls_context(const etcd::tls_config& config,
                                                                    std::string* error_message = nullptr);

}  // namespace clusterlock::transport
