#include "support/test_pki.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace clusterlock::test {
namespace {

void run(const std::string& dir, const std::string& command) {
  const std::string line = "cd '" + dir + "' && " + command + " >/dev/null 2>&1";
  if (std::system(line.c_str()) != 0) throw std::runtime_error("test PKI: command failed: " + command);
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw std::runtime_error("test PKI: cannot write " + path);
}

constexpr const char* new_ec_key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

void make_ca(const std::string& dir, const std::string& name, const std::string& subject) {
  run(dir, std::string("openssl req -x509 -new ") + new_ec_key + " -keyout " + name + ".key -out " + name +
               ".crt -days 7 -subj '/CN=" + subject + "'" +
               " -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign'");
}

void make_leaf(const std::string& dir, const std::string& name, const std::string& subject,
               const std::string& extensions) {
  write_file(dir + "/" + name + ".ext", extensions);
  run(dir, std::string("openssl req -new ") + new_ec_key + " -keyout " + name + ".key -out " + name + ".csr -subj '/CN=" +
               subject + "'");
  run(dir, "openssl x509 -req -in " + name + ".csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 -out " + name +
               ".crt -extfile " + name + ".ext");
}

struct owned_pki {
  owned_pki() {
    std::string pattern = (std::filesystem::temp_directory_path() / "clusterlock-pki-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("test PKI: mkdtemp failed");
    const std::string& dir = pattern;
    pki.dir = dir;
    make_ca(dir, "ca", "clusterlock test CA");
    make_ca(dir, "other-ca", "unrelated test CA");
    const std::string leaf = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n";
    make_leaf(dir, "server", "localhost",
              leaf + "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n");
    make_leaf(dir, "other-name", "other-host.invalid",
              leaf + "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:other-host.invalid\n");
    make_leaf(dir, "client", "clusterlock-client", leaf + "extendedKeyUsage=clientAuth\n");
    run(dir, "openssl pkey -in client.key -aes128 -passout pass:secret -out client-encrypted.key");

    pki.ca_cert = dir + "/ca.crt";
    pki.ca_key = dir + "/ca.key";
    pki.server_cert = dir + "/server.crt";
    pki.server_key = dir + "/server.key";
    pki.other_name_cert = dir + "/other-name.crt";
    pki.other_name_key = dir + "/other-name.key";
    pki.client_cert = dir + "/client.crt";
    pki.client_key = dir + "/client.key";
    pki.encrypted_client_key = dir + "/client-encrypted.key";
    pki.other_ca_cert = dir + "/other-ca.crt";
  }
  ~owned_pki() {
    std::error_code ignored;
    std::filesystem::remove_all(pki.dir, ignored);
  }
  test_pki pki;
};

}  // namespace

const test_pki& shared_test_pki() {
  static const owned_pki instance;
  return instance.pki;
}

}  // namespace clusterlock::test
