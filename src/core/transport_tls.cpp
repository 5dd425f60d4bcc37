// The TLS layer of a Transport: OpenSSL over two memory BIOs, so the
// handshake and records advance whenever bytes arrive, without a socket and
// without ever blocking the loop.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/transport_layers.h"

namespace ferry::core {

namespace {

// Plaintext read per SSL_read call: one TLS record at most.
constexpr size_t kReadChunk = 16384;

class TlsLayer : public TransportLayer {
 public:
  TlsLayer(SSL_CTX* ctx, Transport& owner) : owner_(owner), ssl_(SSL_new(ctx)) {
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    // An empty memory BIO means "no bytes yet", not end of stream.
    BIO_set_mem_eof_return(in_, -1);
    BIO_set_mem_eof_return(out_, -1);
    SSL_set_bio(ssl_, in_, out_);  // ssl_ owns both now
    SSL_set_accept_state(ssl_);
  }
  ~TlsLayer() override { SSL_free(ssl_); }
  TlsLayer(const TlsLayer&) = delete;
  TlsLayer& operator=(const TlsLayer&) = delete;

  Status Receive(std::string_view in, std::string* up, std::string* down) override {
    if (failed_ || peer_closed_) return Status::Ok();
    ERR_clear_error();
    if (!in.empty()) BIO_write(in_, in.data(), static_cast<int>(in.size()));
    if (!established_) {
      int rc = SSL_do_handshake(ssl_);
      if (rc != 1) {
        int err = SSL_get_error(ssl_, rc);
        Drain(down);  // handshake records, or the alert that explains a failure
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Status::Ok();
        return Fail("TLS handshake failed");
      }
      established_ = true;
      if (owner_.cn_as_username()) TakeCommonName();
    }
    while (true) {
      const size_t start = up->size();
      up->resize(start + kReadChunk);
      int n = SSL_read(ssl_, up->data() + start, static_cast<int>(kReadChunk));
      up->resize(start + static_cast<size_t>(n > 0 ? n : 0));
      if (n > 0) continue;
      int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
      if (err == SSL_ERROR_ZERO_RETURN) {
        peer_closed_ = true;  // close_notify
        break;
      }
      Drain(down);
      return Fail("TLS error");
    }
    Drain(down);  // session tickets after the handshake, key updates
    return Status::Ok();
  }

  void Send(std::string_view in, std::string* down) override {
    if (!established_ || failed_ || shutdown_sent_ || in.empty()) return;
    ERR_clear_error();
    // A memory BIO never refuses bytes, so SSL_write takes all of them.
    if (SSL_write(ssl_, in.data(), static_cast<int>(in.size())) <= 0) {
      failed_ = true;
      ERR_clear_error();
    }
    Drain(down);
  }

  void Close(std::string* down) override {
    if (!established_ || failed_ || shutdown_sent_) return;
    ERR_clear_error();
    SSL_shutdown(ssl_);  // queues close_notify
    ERR_clear_error();
    shutdown_sent_ = true;
    Drain(down);
  }

  bool established() const override { return established_; }
  bool peer_closed() const override { return peer_closed_; }
  const char* stage() const override { return "TLS handshake"; }
  Refusal refusal() const override { return Refusal::kTlsHandshake; }

 private:
  void Drain(std::string* down) {
    while (size_t pending = BIO_ctrl_pending(out_)) {
      const size_t start = down->size();
      down->resize(start + pending);
      int n = BIO_read(out_, down->data() + start, static_cast<int>(pending));
      down->resize(start + static_cast<size_t>(n > 0 ? n : 0));
      if (n <= 0) break;
    }
  }

  Status Fail(const char* what) {
    failed_ = true;
    std::string reason;
    unsigned long e = ERR_peek_error();
    if (e != 0) reason = ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "unknown";
    long verify = SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK) {
      if (!reason.empty()) reason += ": ";
      reason += X509_verify_cert_error_string(verify);
    }
    ERR_clear_error();
    return Status::Protocol(ReasonCode::kProtocolError,
                            std::string(what) + (reason.empty() ? "" : ": " + reason));
  }

  // The CN of a client certificate that verified.
  void TakeCommonName() {
    X509* cert = SSL_get0_peer_certificate(ssl_);
    if (cert == nullptr || SSL_get_verify_result(ssl_) != X509_V_OK) return;
    X509_NAME* name = X509_get_subject_name(cert);
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (idx < 0) return;
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
    if (len < 0) return;
    std::string cn(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
    OPENSSL_free(utf8);
    // A username never holds U+0000 [MQTT-1.5.4-2].
    if (!cn.empty() && cn.find('\0') == std::string::npos) owner_.set_certificate_cn(std::move(cn));
  }

  Transport& owner_;
  SSL* ssl_;
  BIO* in_ = nullptr;   // network -> OpenSSL, owned by ssl_
  BIO* out_ = nullptr;  // OpenSSL -> network, owned by ssl_
  bool established_ = false;
  bool failed_ = false;
  bool peer_closed_ = false;
  bool shutdown_sent_ = false;
};

}  // namespace

std::unique_ptr<TransportLayer> MakeTlsLayer(SSL_CTX* ctx, Transport& owner) {
  return std::make_unique<TlsLayer>(ctx, owner);
}

}  // namespace ferry::core
