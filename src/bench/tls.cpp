#include "bench/tls.h"

#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "bench/options.h"

namespace ferry::bench {
namespace {

std::string OpenSslError(std::string_view what) {
  std::string out(what);
  unsigned long e = ERR_get_error();
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += ": ";
    out += buf;
  }
  ERR_clear_error();
  return out;
}

}  // namespace

Result<std::unique_ptr<TlsContext>> TlsContext::Create(const Options& o) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return Status::IoError(OpenSslError("SSL_CTX_new"));
  std::unique_ptr<TlsContext> owner(new TlsContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (o.insecure) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    int ok = o.cafile.empty() ? SSL_CTX_set_default_verify_paths(ctx)
                              : SSL_CTX_load_verify_locations(ctx, o.cafile.c_str(), nullptr);
    if (ok != 1) return Status::InvalidArgument(OpenSslError("--cafile " + o.cafile));
  }
  if (!o.certfile.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, o.certfile.c_str()) != 1) {
      return Status::InvalidArgument(OpenSslError("--cert " + o.certfile));
    }
    const std::string& key = o.keyfile.empty() ? o.certfile : o.keyfile;
    if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
      return Status::InvalidArgument(OpenSslError("--key " + key));
    }
  }
  // Many short benchmark connections: let OpenSSL resume sessions.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
  return owner;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

TlsSession::TlsSession(const TlsContext& context, const std::string& server_name) {
  ssl_ = SSL_new(context.get());
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(in_, -1);
  BIO_set_mem_eof_return(out_, -1);
  SSL_set_bio(ssl_, in_, out_);
  SSL_set_connect_state(ssl_);
  in6_addr probe{};
  bool is_ip = inet_pton(AF_INET, server_name.c_str(), &probe) == 1 ||
               inet_pton(AF_INET6, server_name.c_str(), &probe) == 1;
  // SNI carries host names only (RFC 6066 section 3).
  if (!is_ip) SSL_set_tlsext_host_name(ssl_, server_name.c_str());
  if (SSL_get_verify_mode(ssl_) != SSL_VERIFY_NONE) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    if (is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str());
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, server_name.c_str(), 0);
    }
  }
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

Status TlsSession::Handshake() {
  if (established_) return Status::Ok();
  int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    established_ = true;
    return Status::Ok();
  }
  int err = SSL_get_error(ssl_, r);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Status::Ok();
  long verify = SSL_get_verify_result(ssl_);
  std::string what = "TLS handshake";
  if (verify != X509_V_OK) what += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
  return Status::IoError(OpenSslError(what));
}

Status TlsSession::Feed(std::string_view ciphertext, std::string* plaintext) {
  if (!ciphertext.empty() &&
      BIO_write(in_, ciphertext.data(), static_cast<int>(ciphertext.size())) <= 0) {
    return Status::IoError("TLS: cannot buffer input");
  }
  if (!established_) {
    Status st = Handshake();
    if (!st.ok() || !established_) return st;
  }
  char buf[16384];
  for (;;) {
    int n = SSL_read(ssl_, buf, sizeof buf);
    if (n > 0) {
      plaintext->append(buf, static_cast<size_t>(n));
      continue;
    }
    int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Status::Ok();
    if (err == SSL_ERROR_ZERO_RETURN) return Status::Unavailable("TLS: closed by peer");
    return Status::IoError(OpenSslError("TLS read"));
  }
}

Status TlsSession::Write(std::string_view plaintext) {
  while (!plaintext.empty()) {
    int n = SSL_write(ssl_, plaintext.data(), static_cast<int>(plaintext.size()));
    if (n <= 0) return Status::IoError(OpenSslError("TLS write"));
    plaintext.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

void TlsSession::Shutdown() {
  if (established_) SSL_shutdown(ssl_);
  ERR_clear_error();
}

void TlsSession::TakeCiphertext(std::string* out) {
  char* data = nullptr;
  long n = BIO_get_mem_data(out_, &data);
  if (n <= 0) return;
  out->append(data, static_cast<size_t>(n));
  (void)BIO_reset(out_);
}

}  // namespace ferry::bench
