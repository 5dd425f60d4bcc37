// Transport: resolve, connect, TLS through memory BIOs, read, write, close.
#include "bridge/transport.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <cstring>

#include "core/net_address.h"
#include "core/openssl_errors.h"

namespace ferry::bridge {

namespace {

using ferry::Result;
using ferry::Status;

constexpr size_t kReadBufferBytes = 64 * 1024;

bool IsIpLiteral(const std::string& host) {
  in6_addr a6;
  in_addr a4;
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

struct WriteReq {
  uv_write_t req;
  std::string data;
  uint64_t marker;
};

}  // namespace

Result<std::shared_ptr<SSL_CTX>> MakeTlsContext(const TlsOptions& o) {
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (!ctx) return Status::InvalidArgument("TLS: " + core::OpenSslErrors());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (o.verify) {
    int ok = o.ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx.get())
                               : SSL_CTX_load_verify_locations(ctx.get(), o.ca_file.c_str(), nullptr);
    if (ok != 1) {
      return Status::InvalidArgument("TLS: cannot load CA certificates" +
                                     (o.ca_file.empty() ? std::string() : " from " + o.ca_file) +
                                     ": " + core::OpenSslErrors());
    }
  }
  if (!o.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), o.cert_file.c_str()) != 1) {
      return Status::InvalidArgument("TLS: cannot load certificate " + o.cert_file + ": " +
                                     core::OpenSslErrors());
    }
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), o.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx.get()) != 1) {
      return Status::InvalidArgument("TLS: cannot load private key " + o.key_file + ": " +
                                     core::OpenSslErrors());
    }
  }
  SSL_CTX_set_verify(ctx.get(), o.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  return ctx;
}

Transport* Transport::Start(core::Loop& loop, Handler& handler, const UpstreamAddress& address,
                            std::shared_ptr<SSL_CTX> tls, const TlsOptions& tls_options,
                            std::chrono::milliseconds timeout) {
  auto* t = new Transport(loop, handler, address, std::move(tls), tls_options);
  t->Resolve(timeout);
  return t;
}

Transport::Transport(core::Loop& loop, Handler& handler, UpstreamAddress address,
                     std::shared_ptr<SSL_CTX> tls, TlsOptions tls_options)
    : loop_(loop),
      handler_(&handler),
      address_(std::move(address)),
      tls_ctx_(std::move(tls)),
      tls_options_(std::move(tls_options)) {}

Transport::~Transport() {
  if (ssl_ != nullptr) SSL_free(ssl_);  // frees the BIOs too
  if (addresses_ != nullptr) uv_freeaddrinfo(addresses_);
}

void Transport::Resolve(std::chrono::milliseconds timeout) {
  timer_ = new uv_timer_t;
  uv_timer_init(loop_.get(), timer_);
  timer_->data = this;
  ++open_handles_;
  uv_timer_start(timer_, &Transport::OnTimer, static_cast<uint64_t>(timeout.count()), 0);

  resolve_ = new uv_getaddrinfo_t;
  resolve_->data = this;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  const std::string port = std::to_string(address_.port);
  int rc = uv_getaddrinfo(
      loop_.get(), resolve_,
      [](uv_getaddrinfo_t* req, int status, addrinfo* res) {
        auto* self = static_cast<Transport*>(req->data);
        delete req;
        self->resolve_ = nullptr;
        self->OnResolved(status, res);
      },
      address_.host.c_str(), port.c_str(), &hints);
  if (rc != 0) {
    delete resolve_;
    resolve_ = nullptr;
    Fail(Status::IoError("cannot resolve '" + address_.host + "': " + uv_strerror(rc)));
  }
}

void Transport::OnTimer(uv_timer_t* t) {
  auto* self = static_cast<Transport*>(t->data);
  // While closing after writes: the peer would not take them in time.
  if (self->state_ == State::kClosing) return self->CloseHandles();
  self->Fail(Status::IoError("no connection to " + self->address_.ToString() +
                             " within the connect timeout" +
                             (self->last_error_.empty() ? "" : " (" + self->last_error_ + ")")));
}

void Transport::OnResolved(int status, addrinfo* res) {
  if (state_ == State::kClosing) {
    if (res != nullptr) uv_freeaddrinfo(res);
    MaybeDelete();
    return;
  }
  if (status != 0) {
    return Fail(Status::IoError("cannot resolve '" + address_.host + "': " + uv_strerror(status)));
  }
  addresses_ = res;
  next_address_ = res;
  state_ = State::kConnecting;
  TryNextAddress();
}

void Transport::TryNextAddress() {
  if (tcp_ != nullptr) {
    // The previous address failed; a handle is not reused after that.
    uv_close(reinterpret_cast<uv_handle_t*>(tcp_), [](uv_handle_t* h) {
      auto* self = static_cast<Transport*>(h->data);
      delete reinterpret_cast<uv_tcp_t*>(h);
      --self->open_handles_;
      self->MaybeDelete();
    });
    tcp_ = nullptr;
  }
  if (next_address_ == nullptr) {
    return Fail(Status::IoError("cannot connect to " + address_.ToString() + ": " +
                                (last_error_.empty() ? "no address" : last_error_)));
  }
  const addrinfo* ai = next_address_;
  next_address_ = next_address_->ai_next;
  peer_ = core::FormatSockaddr(ai->ai_addr);
  tcp_ = new uv_tcp_t;
  uv_tcp_init(loop_.get(), tcp_);
  tcp_->data = this;
  ++open_handles_;
  uv_tcp_nodelay(tcp_, 1);
  auto* req = new uv_connect_t;
  req->data = this;
  int rc = uv_tcp_connect(req, tcp_, ai->ai_addr, [](uv_connect_t* r, int st) {
    auto* self = static_cast<Transport*>(r->data);
    delete r;
    self->OnTcpConnected(st);
  });
  if (rc != 0) {
    delete req;
    last_error_ = peer_ + ": " + uv_strerror(rc);
    TryNextAddress();
  }
}

void Transport::OnTcpConnected(int status) {
  if (state_ == State::kClosing) return;
  if (status != 0) {
    last_error_ = peer_ + ": " + uv_strerror(status);
    return TryNextAddress();
  }
  StartReading();
  if (tls_ctx_) {
    StartTls();
  } else {
    Ready();
  }
}

void Transport::StartReading() {
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(tcp_),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* self = static_cast<Transport*>(h->data);
        self->read_buffer_.resize(kReadBufferBytes);
        *buf = uv_buf_init(self->read_buffer_.data(), static_cast<unsigned>(kReadBufferBytes));
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
        static_cast<Transport*>(s->data)->OnRead(nread, buf);
      });
}

void Transport::OnRead(ssize_t nread, const uv_buf_t* buf) {
  if (state_ == State::kClosing || nread == 0) return;
  if (nread < 0) {
    return Fail(Status::IoError(nread == UV_EOF ? "connection closed by the upstream"
                                                : std::string("read: ") + uv_strerror(static_cast<int>(nread))));
  }
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(buf->base),
                                 static_cast<size_t>(nread));
  if (ssl_ != nullptr) return FeedTls(bytes);
  handler_->OnData(bytes);
}

void Transport::StartTls() {
  state_ = State::kHandshaking;
  ssl_ = SSL_new(tls_ctx_.get());
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  if (ssl_ == nullptr || rbio_ == nullptr || wbio_ == nullptr) {
    return Fail(Status::IoError("TLS: " + core::OpenSslErrors()));
  }
  SSL_set_bio(ssl_, rbio_, wbio_);
  SSL_set_connect_state(ssl_);
  const std::string& name =
      tls_options_.server_name.empty() ? address_.host : tls_options_.server_name;
  if (!IsIpLiteral(name)) SSL_set_tlsext_host_name(ssl_, name.c_str());
  if (tls_options_.verify) {
    // The certificate must name what we connected to.
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    if (IsIpLiteral(name)) {
      X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
    } else {
      SSL_set1_host(ssl_, name.c_str());
    }
  }
  ContinueHandshake();
}

void Transport::ContinueHandshake() {
  int rc = SSL_do_handshake(ssl_);
  FlushTls(0);
  if (state_ == State::kClosing) return;
  if (rc == 1) return Ready();
  int err = SSL_get_error(ssl_, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
  std::string why = core::OpenSslErrors();
  long verify = SSL_get_verify_result(ssl_);
  if (verify != X509_V_OK) why += " (" + std::string(X509_verify_cert_error_string(verify)) + ")";
  Fail(Status::IoError("TLS handshake with " + address_.ToString() + " failed: " + why));
}

void Transport::FeedTls(std::span<const uint8_t> cipher) {
  BIO_write(rbio_, cipher.data(), static_cast<int>(cipher.size()));
  if (state_ == State::kHandshaking) {
    ContinueHandshake();
    if (state_ != State::kReady) return;
  }
  char plain[16 * 1024];
  for (;;) {
    int n = SSL_read(ssl_, plain, sizeof plain);
    if (n > 0) {
      handler_->OnData({reinterpret_cast<const uint8_t*>(plain), static_cast<size_t>(n)});
      if (state_ == State::kClosing) return;
      continue;
    }
    int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ) break;
    if (err == SSL_ERROR_ZERO_RETURN) return Fail(Status::IoError("TLS closed by the upstream"));
    return Fail(Status::IoError("TLS: " + core::OpenSslErrors()));
  }
  FlushTls(0);  // e.g. a key update answered
}

void Transport::FlushTls(uint64_t marker) {
  std::string cipher;
  char chunk[16 * 1024];
  int n;
  while ((n = BIO_read(wbio_, chunk, sizeof chunk)) > 0) cipher.append(chunk, static_cast<size_t>(n));
  if (!cipher.empty() || marker != 0) WriteRaw(std::move(cipher), marker);
}

void Transport::Ready() {
  state_ = State::kReady;
  uv_timer_stop(timer_);
  handler_->OnConnected(peer_);
}

void Transport::Write(std::string bytes, uint64_t marker) {
  if (state_ != State::kReady) return;
  if (ssl_ != nullptr) {
    // Memory BIOs take everything: SSL_write never waits for the socket.
    if (!bytes.empty() && SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) <= 0) {
      return Fail(Status::IoError("TLS: " + core::OpenSslErrors()));
    }
    FlushTls(marker);
    return;
  }
  WriteRaw(std::move(bytes), marker);
}

void Transport::WriteRaw(std::string bytes, uint64_t marker) {
  if (tcp_ == nullptr) return;
  auto* w = new WriteReq;
  w->data = std::move(bytes);
  w->marker = marker;
  w->req.data = this;
  pending_bytes_ += w->data.size();
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(tcp_), &buf, 1,
                    [](uv_write_t* req, int status) {
                      std::unique_ptr<WriteReq> w(reinterpret_cast<WriteReq*>(req));
                      auto* self = static_cast<Transport*>(req->data);
                      self->pending_bytes_ -= std::min<uint64_t>(self->pending_bytes_, w->data.size());
                      if (self->state_ == State::kClosing) return;
                      if (status != 0) {
                        return self->Fail(Status::IoError(std::string("write: ") + uv_strerror(status)));
                      }
                      if (w->marker != 0) self->handler_->OnWritten(w->marker);
                    });
  if (rc != 0) {
    pending_bytes_ -= w->data.size();
    delete w;
    Fail(Status::IoError(std::string("write: ") + uv_strerror(rc)));
  }
}

void Transport::Fail(Status why) {
  if (state_ == State::kClosing) return;
  Handler* h = handler_;
  handler_ = nullptr;
  CloseHandles();
  if (h != nullptr) h->OnClosed(why);
}

void Transport::Close() {
  if (state_ == State::kClosing) return;
  handler_ = nullptr;
  CloseHandles();
}

void Transport::CloseAfterWrites() {
  if (state_ != State::kReady || tcp_ == nullptr) return Close();
  handler_ = nullptr;
  state_ = State::kClosing;
  uv_timer_start(timer_, &Transport::OnTimer, 2000, 0);
  auto* req = new uv_shutdown_t;
  req->data = this;
  // uv_shutdown waits for queued writes; the handles close after it.
  int rc = uv_shutdown(req, reinterpret_cast<uv_stream_t*>(tcp_), [](uv_shutdown_t* r, int) {
    auto* self = static_cast<Transport*>(r->data);
    delete r;
    self->CloseHandles();
  });
  if (rc != 0) {
    delete req;
    CloseHandles();
  }
}

void Transport::CloseHandles() {
  state_ = State::kClosing;
  if (resolve_ != nullptr) uv_cancel(reinterpret_cast<uv_req_t*>(resolve_));
  auto closed = [](uv_handle_t* h) {
    auto* self = static_cast<Transport*>(h->data);
    if (h->type == UV_TCP) {
      delete reinterpret_cast<uv_tcp_t*>(h);
    } else {
      delete reinterpret_cast<uv_timer_t*>(h);
    }
    --self->open_handles_;
    self->MaybeDelete();
  };
  if (tcp_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(tcp_), closed);
    tcp_ = nullptr;
  }
  if (timer_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), closed);
    timer_ = nullptr;
  }
}

void Transport::MaybeDelete() {
  if (state_ == State::kClosing && open_handles_ == 0 && resolve_ == nullptr) delete this;
}

}  // namespace ferry::bridge
