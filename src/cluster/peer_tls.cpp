#include "cluster/peer_tls.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include "core/openssl_errors.h"

namespace ferry::cluster {
namespace {

Result<std::shared_ptr<SSL_CTX>> MakeContext(const PeerTlsFiles& f, bool server) {
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()),
                               SSL_CTX_free);
  if (!ctx) return Status::IoError("cannot create a TLS context: " + core::OpenSslErrors());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  auto failed = [](const std::string& what, const std::string& file) {
    return Status::InvalidArgument("cluster TLS: cannot load " + what + " '" + file +
                                   "': " + core::OpenSslErrors());
  };
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), f.certfile.c_str()) != 1) {
    return failed("certfile", f.certfile);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), f.keyfile.c_str(), SSL_FILETYPE_PEM) != 1) {
    return failed("keyfile", f.keyfile);
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    return Status::InvalidArgument("cluster TLS: keyfile '" + f.keyfile +
                                   "' does not match certfile '" + f.certfile + "'");
  }
  if (SSL_CTX_load_verify_locations(ctx.get(), f.cafile.c_str(), nullptr) != 1) {
    return failed("cafile", f.cafile);
  }
  // Mutual: the peer must present a certificate from the cluster's CA.
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  return ctx;
}

}  // namespace

Result<PeerTlsContexts> MakePeerTlsContexts(const PeerTlsFiles& files) {
  auto client = MakeContext(files, false);
  if (!client.ok()) return client.status();
  auto server = MakeContext(files, true);
  if (!server.ok()) return server.status();
  return PeerTlsContexts{std::move(client).value(), std::move(server).value()};
}

PeerTls::PeerTls(SSL_CTX* ctx, bool client) {
  ssl_ = SSL_new(ctx);
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl_, in_, out_);
  if (client) {
    SSL_set_connect_state(ssl_);
  } else {
    SSL_set_accept_state(ssl_);
  }
}

PeerTls::~PeerTls() { SSL_free(ssl_); }  // frees the BIOs too

void PeerTls::Start() { (void)Progress(); }

Status PeerTls::Progress() {
  if (ready_) return Status::Ok();
  ERR_clear_error();
  const int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    ready_ = true;
    return Status::Ok();
  }
  const int err = SSL_get_error(ssl_, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Status::Ok();
  const long verify = SSL_get_verify_result(ssl_);
  std::string why = verify != X509_V_OK
                        ? std::string("peer certificate refused: ") +
                              X509_verify_cert_error_string(verify)
                        : core::OpenSslErrors();
  if (why.empty()) why = "no TLS from the peer";
  return Status::IoError("TLS handshake failed: " + why);
}

Status PeerTls::Feed(std::string_view cipher, std::string& plain) {
  BIO_write(in_, cipher.data(), static_cast<int>(cipher.size()));
  if (Status st = Progress(); !st.ok() || !ready_) return st;
  char buffer[16 * 1024];
  while (true) {
    ERR_clear_error();
    const int n = SSL_read(ssl_, buffer, sizeof buffer);
    if (n > 0) {
      plain.append(buffer, static_cast<size_t>(n));
      got_data_ = true;
      continue;
    }
    const int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Status::Ok();
    if (err == SSL_ERROR_ZERO_RETURN) return Status::IoError("TLS closed by the peer");
    // With TLS 1.3 a client learns that the server refused its certificate
    // only after its side of the handshake is done, by an alert.
    return Status::IoError((got_data_ ? "TLS: " : "TLS handshake failed: ") +
                           core::OpenSslErrors());
  }
}

Status PeerTls::Encrypt(std::string_view plain) {
  // Memory BIOs take everything: SSL_write never waits for the socket.
  if (!plain.empty() && SSL_write(ssl_, plain.data(), static_cast<int>(plain.size())) <= 0) {
    return Status::IoError("TLS: " + core::OpenSslErrors());
  }
  return Status::Ok();
}

std::string PeerTls::TakeOutput() {
  std::string cipher;
  char chunk[16 * 1024];
  int n;
  while ((n = BIO_read(out_, chunk, sizeof chunk)) > 0) cipher.append(chunk, static_cast<size_t>(n));
  return cipher;
}

}  // namespace ferry::cluster
