// TLS for ferry-bench clients: OpenSSL driven through memory BIOs, so the
// client's libuv stream carries ciphertext and the MQTT code above sees
// plaintext, with no extra threads and no blocking.
//
// TlsContext is built once per run from --cafile/--cert/--key/--insecure and
// then shared read-only by every loop thread (OpenSSL allows SSL_new on one
// SSL_CTX from several threads). A TlsSession belongs to one client and is
// used only on that client's loop thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

using SSL_CTX = struct ssl_ctx_st;
using SSL = struct ssl_st;
using BIO = struct bio_st;

namespace ferry::bench {

struct Options;

class TlsContext {
 public:
  // Errors: InvalidArgument naming the file OpenSSL could not load.
  static Result<std::unique_ptr<TlsContext>> Create(const Options& options);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* get() const { return ctx_; }

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

class TlsSession {
 public:
  // `server_name` is sent as SNI and, unless --insecure, checked against the
  // certificate.
  TlsSession(const TlsContext& context, const std::string& server_name);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Advances the handshake. OK while it is in progress or done; IoError with
  // OpenSSL's reason when it failed.
  Status Handshake();
  bool Established() const { return established_; }

  // Takes ciphertext from the network; appends any plaintext it yields.
  Status Feed(std::string_view ciphertext, std::string* plaintext);
  // Encrypts plaintext. REQUIRES: Established().
  Status Write(std::string_view plaintext);
  // Queues a close_notify alert.
  void Shutdown();
  // Moves the ciphertext waiting to be sent to the end of `out`.
  void TakeCiphertext(std::string* out);

 private:
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // network -> OpenSSL, owned by ssl_
  BIO* out_ = nullptr;  // OpenSSL -> network, owned by ssl_
  bool established_ = false;
};

}  // namespace ferry::bench
