// Transport: one TCP connection to an upstream broker, optionally with TLS,
// on the bridge's libuv loop. Host names are resolved with uv_getaddrinfo
// (the libuv thread pool), never on the loop; each resolved address is tried
// in turn; the whole attempt (resolve, TCP, TLS handshake) is bounded by a
// timeout.
//
// TLS is OpenSSL driven through memory BIOs: bytes read from the socket go
// into the SSL object, what it produces goes out with uv_write. The upstream's
// certificate is verified against the configured CA file (or the system's
// trusted CAs) and must name the host connected to, unless verification is
// turned off.
//
// Lifetime. A Transport is created with new and frees itself: after Close()
// (or a failure) it closes its handles and deletes itself once libuv has
// finished with them, on a later loop turn. The handler hears OnClosed
// exactly once, unless Close() was called, after which it hears nothing.
// The owner keeps a raw pointer and forgets it when it calls Close() or gets
// OnClosed.
//
// Thread: the loop's thread only.
#pragma once

#include <openssl/ssl.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "bridge/bridge_config.h"
#include "core/loop.h"
#include "core/status.h"

namespace ferry::bridge {

struct TlsOptions {
  std::string ca_file;    // "" = the system's trusted CAs
  std::string cert_file;  // client certificate; "" = none
  std::string key_file;
  bool verify = true;
  std::string server_name;  // "" = the address's host
};

// An SSL_CTX built from TlsOptions. Errors: InvalidArgument naming the file
// OpenSSL could not load and why.
ferry::Result<std::shared_ptr<SSL_CTX>> MakeTlsContext(const TlsOptions& options);

class Transport {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // TCP (and TLS) is up; the peer address in use is given.
    virtual void OnConnected(const std::string& peer) = 0;
    virtual void OnData(std::span<const uint8_t> bytes) = 0;
    // The write tagged `marker` reached the socket.
    virtual void OnWritten(uint64_t marker) = 0;
    // The connection failed or ended; `why` says how.
    virtual void OnClosed(const ferry::Status& why) = 0;
  };

  // Starts connecting. `tls` null = plain TCP.
  static Transport* Start(core::Loop& loop, Handler& handler, const UpstreamAddress& address,
                          std::shared_ptr<SSL_CTX> tls, const TlsOptions& tls_options,
                          std::chrono::milliseconds timeout);

  // Queues `bytes` (taken over); OnWritten(marker) follows once written.
  // Ignored unless connected.
  void Write(std::string bytes, uint64_t marker);
  // Bytes handed to Write and not yet written to the socket.
  uint64_t pending_bytes() const { return pending_bytes_; }
  bool connected() const { return state_ == State::kReady; }

  // Closes without telling the handler; frees itself later.
  void Close();
  // Like Close(), but what was written so far (e.g. a DISCONNECT) reaches
  // the socket first.
  void CloseAfterWrites();

 private:
  enum class State { kResolving, kConnecting, kHandshaking, kReady, kClosing };

  Transport(core::Loop& loop, Handler& handler, UpstreamAddress address,
            std::shared_ptr<SSL_CTX> tls, TlsOptions tls_options);
  ~Transport();

  static void OnTimer(uv_timer_t* timer);
  void Resolve(std::chrono::milliseconds timeout);
  void OnResolved(int status, addrinfo* res);
  void TryNextAddress();
  void OnTcpConnected(int status);
  void StartReading();
  void OnRead(ssize_t nread, const uv_buf_t* buf);
  void StartTls();
  void ContinueHandshake();
  void FeedTls(std::span<const uint8_t> cipher);
  void FlushTls(uint64_t marker);
  void WriteRaw(std::string bytes, uint64_t marker);
  void Ready();
  // Fails the connection: tells the handler (unless closing) and closes.
  void Fail(ferry::Status why);
  void CloseHandles();
  void MaybeDelete();

  core::Loop& loop_;
  Handler* handler_;  // null once Close() was called
  const UpstreamAddress address_;
  std::shared_ptr<SSL_CTX> tls_ctx_;
  const TlsOptions tls_options_;
  State state_ = State::kResolving;

  uv_getaddrinfo_t* resolve_ = nullptr;  // while resolving
  addrinfo* addresses_ = nullptr;
  addrinfo* next_address_ = nullptr;
  uv_tcp_t* tcp_ = nullptr;
  uv_timer_t* timer_ = nullptr;
  int open_handles_ = 0;
  std::string peer_;
  std::string last_error_;

  SSL* ssl_ = nullptr;
  BIO* rbio_ = nullptr;  // network -> SSL
  BIO* wbio_ = nullptr;  // SSL -> network
  std::string read_buffer_;
  uint64_t pending_bytes_ = 0;
};

}  // namespace ferry::bridge
