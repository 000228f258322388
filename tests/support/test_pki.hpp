#pragma once
// Throwaway certificates for TLS tests, made with the openssl command-line tool.

#include <string>

namespace clusterlock::test {

/// PEM files (paths) in a private temporary directory. ECDSA P-256 keys, valid for a week,
/// with subjectAltName (etcd rejects certificates without one).
struct test_pki {
  std::string dir;
  std::string ca_cert, ca_key;          ///< the CA that signs everything below
  std::string server_cert, server_key;  ///< SAN IP:127.0.0.1, DNS:localhost; serverAuth
  std::string other_name_cert, other_name_key;  ///< signed by the CA, SAN DNS:other-host.invalid only
  std::string client_cert, client_key;  ///< CN=clusterlock-client; clientAuth
  std::string encrypted_client_key;     ///< client_key encrypted with the passphrase "secret"
  std::string other_ca_cert;            ///< an unrelated CA: trusting it must fail
};

/// Made on first use (a few openssl runs) and shared by the process; the directory is removed at exit.
/// Throws std::runtime_error naming the command when openssl fails.
const test_pki& shared_test_pki();

}  // namespace clusterlock::test
