#include "test_certs.h"

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <fstream>
#include <vector>

#include "subprocess.h"
#include "temp_dir.h"

namespace ferry::testing {
namespace {

::testing::AssertionResult Run(const std::vector<std::string>& argv) {
  CommandResult r = RunCommand(argv, std::chrono::seconds(30));
  if (r.Succeeded()) return ::testing::AssertionSuccess();
  std::string cmd;
  for (const auto& a : argv) cmd += a + " ";
  return ::testing::AssertionFailure() << cmd << "\n" << r.ToString();
}

::testing::AssertionResult WriteFile(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  f.close();
  if (!f) return ::testing::AssertionFailure() << "cannot write " << path;
  return ::testing::AssertionSuccess();
}

// A key and a certificate for `subject`, signed by ca/ca_key, or
// self-signed as a CA when ca is empty.
::testing::AssertionResult MakeCert(const std::string& dir, const std::string& name,
                                    const std::string& subject, const std::string& extensions,
                                    const std::string& ca, const std::string& ca_key) {
  const std::string key = dir + "/" + name + ".key", cert = dir + "/" + name + ".pem";
  if (ca.empty()) {
    return Run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert, "-days",
                "2", "-subj", subject, "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                "keyUsage=critical,keyCertSign,cRLSign"});
  }
  const std::string csr = dir + "/" + name + ".csr", ext = dir + "/" + name + ".ext";
  if (auto ok = WriteFile(ext, extensions); !ok) return ok;
  if (auto ok = Run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr,
                     "-subj", subject});
      !ok) {
    return ok;
  }
  return Run({"openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
              "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext});
}

}  // namespace

::testing::AssertionResult MakeTestCerts(const std::string& dir, TestCerts* out) {
  const std::string ca = dir + "/ca.pem", ca_key = dir + "/ca.key";
  const std::string other = dir + "/other-ca.pem", other_key = dir + "/other-ca.key";
  const std::string server_ext =
      "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
      "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
  const std::string client_ext =
      "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n";
  // A cluster node dials and is dialled: both purposes.
  const std::string node_ext =
      "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
      "extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n";
  for (auto ok : {MakeCert(dir, "ca", "/CN=ferry test CA", "", "", ""),
                  MakeCert(dir, "other-ca", "/CN=unrelated CA", "", "", ""),
                  MakeCert(dir, "server", "/CN=localhost", server_ext, ca, ca_key),
                  MakeCert(dir, "client", "/CN=client1", client_ext, ca, ca_key),
                  MakeCert(dir, "intruder", "/CN=intruder", client_ext, other, other_key),
                  MakeCert(dir, "node", "/CN=ferry node", node_ext, ca, ca_key),
                  MakeCert(dir, "other-node", "/CN=other node", node_ext, other, other_key)}) {
    if (!ok) return ok;
  }
  out->ca = ca;
  out->other_ca = other;
  out->server_cert = dir + "/server.pem";
  out->server_key = dir + "/server.key";
  out->client_cert = dir + "/client.pem";
  out->client_key = dir + "/client.key";
  out->other_client_cert = dir + "/intruder.pem";
  out->other_client_key = dir + "/intruder.key";
  out->node_cert = dir + "/node.pem";
  out->node_key = dir + "/node.key";
  out->other_node_cert = dir + "/other-node.pem";
  out->other_node_key = dir + "/other-node.key";
  out->server_pem = dir + "/server-with-key.pem";
  return WriteFile(out->server_pem,
                   ReadFileOrEmpty(out->server_cert) + ReadFileOrEmpty(out->server_key));
}

Bytes TlsClientHello() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, in, out);
  SSL_set_connect_state(ssl);
  SSL_set_tlsext_host_name(ssl, "localhost");
  SSL_do_handshake(ssl);  // WANT_READ after writing the ClientHello
  Bytes hello(BIO_ctrl_pending(out));
  BIO_read(out, hello.data(), static_cast<int>(hello.size()));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return hello;
}

}  // namespace ferry::testing
