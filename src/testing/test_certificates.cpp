#include "testing/test_certificates.hpp"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "testing/child_process.hpp"

namespace clusterlock::testing::detail {
namespace {

// Our own config, so that the system's openssl.cnf (its default extensions) does not decide what the certificates say.
constexpr const char* openssl_config = R"([req]
distinguished_name = req_dn
[req_dn]
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[other_name_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:other-host.invalid
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
)";

struct key_pair {
  std::string cert;
  std::string key;
};

class certificate_maker {
 public:
  explicit certificate_maker(const std::filesystem::path& dir) : dir_(dir) {
    std::filesystem::create_directories(dir_);
    config_ = (dir_ / "openssl.cnf").string();
    std::ofstream(config_) << openssl_config;
  }

  // Self-signed when `issuer` is null.
  key_pair make(const std::string& name, const std::string& subject, const std::string& extensions,
                const key_pair* issuer) {
    key_pair out{(dir_ / (name + ".crt")).string(), (dir_ / (name + ".key")).string()};
    std::vector<std::string> argv = {"/usr/bin/openssl",
                                     "req",
                                     "-x509",
                                     "-config",
                                     config_,
                                     "-extensions",
                                     extensions,
                                     "-newkey",
                                     "ec",
                                     "-pkeyopt",
                                     "ec_paramgen_curve:prime256v1",
                                     "-nodes",
                                     "-keyout",
                                     out.key,
                                     "-out",
                                     out.cert,
                                     "-subj",
                                     subject,
                                     "-days",
                                     "7"};
    if (issuer) argv.insert(argv.end(), {"-CA", issuer->cert, "-CAkey", issuer->key});
    const command_result r = run_command(argv, env_, std::chrono::seconds(30));
    if (r.exit_code != 0) {
      throw std::runtime_error("openssl failed (" + join_command(argv) + "): " + r.err +
                               (r.timed_out ? " (timed out)" : ""));
    }
    return out;
  }

  std::string encrypt_key(const std::string& key, const std::string& name) {
    const std::string out = (dir_ / name).string();
    std::vector<std::string> argv = {"/usr/bin/openssl", "pkey", "-in", key, "-aes128", "-passout", "pass:secret",
                                     "-out", out};
    const command_result r = run_command(argv, env_, std::chrono::seconds(30));
    if (r.exit_code != 0) throw std::runtime_error("openssl failed (" + join_command(argv) + "): " + r.err);
    return out;
  }

 private:
  std::filesystem::path dir_;
  std::string config_;
  std::vector<std::string> env_ = clean_environment();
};

}  // namespace

test_certificates make_test_certificates(const std::filesystem::path& dir) {
  certificate_maker maker(dir);
  const key_pair ca = maker.make("ca", "/CN=clusterlock-test-ca", "ca_ext", nullptr);
  const key_pair server = maker.make("server", "/CN=localhost", "server_ext", &ca);
  const key_pair client = maker.make("client", "/O=clusterlock-test-client", "client_ext", &ca);
  const key_pair other_ca = maker.make("other-ca", "/CN=clusterlock-test-other-ca", "ca_ext", nullptr);
  const key_pair other_client = maker.make("other-client", "/O=clusterlock-test-other-client", "client_ext", &other_ca);
  const key_pair other_name = maker.make("other-name", "/CN=other-host.invalid", "other_name_ext", &ca);

  test_certificates out;
  out.dir = dir.string();
  out.other_name_cert_file = other_name.cert;
  out.other_name_key_file = other_name.key;
  out.encrypted_client_key_file = maker.encrypt_key(client.key, "client-encrypted.key");
  out.ca_file = ca.cert;
  out.server_cert_file = server.cert;
  out.server_key_file = server.key;
  out.client_cert_file = client.cert;
  out.client_key_file = client.key;
  out.other_ca_file = other_ca.cert;
  out.other_client_cert_file = other_client.cert;
  out.other_client_key_file = other_client.key;
  return out;
}

const test_certificates& shared_test_certificates() {
  struct owned {
    owned() {
      std::string pattern = (std::filesystem::temp_directory_path() / "clusterlock-certs-XXXXXX").string();
      if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed for test certificates");
      certs = make_test_certificates(pattern);
    }
    ~owned() {
      std::error_code ignored;
      std::filesystem::remove_all(certs.dir, ignored);
    }
    test_certificates certs;
  };
  static const owned instance;
  return instance.certs;
}

}  // namespace clusterlock::testing::detail
