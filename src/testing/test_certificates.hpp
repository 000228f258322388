// Throwaway TLS material for tests, made with the openssl CLI (EC P-256 keys: much faster to make than RSA).
#pragma once

#include <filesystem>
#include <string>

namespace clusterlock::testing::detail {

struct test_certificates {
  std::string dir;      // where the files are
  std::string ca_file;  // the CA that signed the server and client certificates
  // Server: subjectAltName IP:127.0.0.1, DNS:localhost (Go, so etcd 3.4 and etcdctl, ignore the CN).
  // Extended key usage serverAuth AND clientAuth: etcd's gateway dials its own gRPC port with the server certificate.
  std::string server_cert_file;
  std::string server_key_file;
  // Client: no CommonName on purpose. etcd 3.4.23 with --client-cert-auth and auth enabled answers every gateway
  // request that carries a client certificate with a CommonName with 400 "CommonName of client sending a request
  // against gateway will be ignored and not used as expected" (checked by hand); without a CN it works.
  std::string client_cert_file;
  std::string client_key_file;
  // A second, unrelated CA and a client certificate it signed: "wrong CA" cases.
  std::string other_ca_file;
  std::string other_client_cert_file;
  std::string other_client_key_file;
  // Signed by the CA but naming another host only (SAN DNS:other-host.invalid): host-name verification must fail.
  std::string other_name_cert_file;
  std::string other_name_key_file;
  // client_key_file encrypted with the passphrase "secret": the library must refuse it rather than prompt.
  std::string encrypted_client_key_file;
};

// Writes the files into `dir` (created if missing). Throws std::runtime_error with openssl's stderr on failure.
test_certificates make_test_certificates(const std::filesystem::path& dir);

// One set for the whole test process, made on first use in a temp dir that is removed at exit.
const test_certificates& shared_test_certificates();

}  // namespace clusterlock::testing::detail
