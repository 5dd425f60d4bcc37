#include "cluster/peer_link.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <span>
#include <utility>

namespace ferry::cluster {
namespace {

// Requests that outlive the link that made them carry a weak reference to it.
struct ConnectReq {
  uv_connect_t req;
  std::weak_ptr<bool> alive;
  PeerLink* link;
};

struct ResolveReq {
  uv_getaddrinfo_t req;
  std::weak_ptr<bool> alive;
  PeerLink* link;
  uint16_t port;
};

// Owns the socket while its last bytes (a REFUSE, a kClose) drain.
struct ShutdownReq {
  uv_shutdown_t req;
  core::UvHandle<uv_tcp_t> tcp;
};

std::string U64Payload(uint64_t v) {
  std::string p;
  FieldWriter(p).U64(v);
  return p;
}

std::string Seconds(uint64_t ms) { return std::to_string(ms / 1000) + " s"; }

}  // namespace

struct PeerLink::Write {
  uv_write_t req;
  std::string data;
  std::weak_ptr<bool> alive;
  PeerLink* link;
};

PeerLink::PeerLink(core::Loop& loop, Handshake handshake, Listener& listener, LinkOptions options)
    : loop_(loop), handshake_(std::move(handshake)), listener_(listener), options_(options) {
  timer_ = core::UvHandle<uv_timer_t>::Make();
  uv_timer_init(loop_.get(), timer_.get());
  timer_->data = this;
  uv_timer_start(
      timer_.get(), [](uv_timer_t* t) { static_cast<PeerLink*>(t->data)->OnTimer(); },
      options_.heartbeat_ms, options_.heartbeat_ms);
  flush_ = core::UvHandle<uv_prepare_t>::Make();
  uv_prepare_init(loop_.get(), flush_.get());
  flush_->data = this;
  started_ms_ = last_heard_ms_ = loop_.Now();
}

PeerLink::~PeerLink() { *alive_ = false; }

std::unique_ptr<PeerLink> PeerLink::Connect(core::Loop& loop, LocalIdentity self,
                                            const PeerAddress& to, std::string purpose,
                                            Listener& listener, LinkOptions options) {
  std::unique_ptr<PeerLink> link(new PeerLink(
      loop, Handshake::Initiate(std::move(self), to.node, std::move(purpose)), listener, options));
  if (link->options_.tls_client) {
    link->tls_ = std::make_unique<PeerTls>(link->options_.tls_client.get(), true);
  }
  link->StartConnect(to);
  return link;
}

std::unique_ptr<PeerLink> PeerLink::Accept(core::Loop& loop, LocalIdentity self,
                                           core::UvHandle<uv_tcp_t> accepted,
                                           std::function<bool(std::string_view)> is_removed,
                                           Listener& listener, LinkOptions options) {
  std::unique_ptr<PeerLink> link(new PeerLink(
      loop, Handshake::Accept(std::move(self), std::move(is_removed)), listener, options));
  if (link->options_.tls_server) {
    link->tls_ = std::make_unique<PeerTls>(link->options_.tls_server.get(), false);
  }
  link->tcp_ = std::move(accepted);
  link->tcp_->data = link.get();
  uv_tcp_nodelay(link->tcp_.get(), 1);
  link->state_ = State::kHandshake;
  link->StartReading();
  return link;
}

void PeerLink::StartConnect(const PeerAddress& to) {
  sockaddr_storage addr{};
  if (uv_ip4_addr(to.host.c_str(), to.port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(to.host.c_str(), to.port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    // A host name: resolved on the thread pool, then connected.
    auto* r = new ResolveReq{{}, alive_, this, to.port};
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    const int rc = uv_getaddrinfo(
        loop_.get(), &r->req,
        [](uv_getaddrinfo_t* req, int status, addrinfo* res) {
          std::unique_ptr<ResolveReq> r(reinterpret_cast<ResolveReq*>(req));
          const auto alive = r->alive.lock();
          if (!alive || !*alive || r->link->closed()) {
            uv_freeaddrinfo(res);
            return;
          }
          if (status != 0 || res == nullptr) {
            uv_freeaddrinfo(res);
            return r->link->Fail("cannot resolve '" + r->link->peer().node +
                                 "': " + uv_strerror(status));
          }
          PeerAddress resolved;
          resolved.node = r->link->peer().node;
          char host[64] = {};
          if (res->ai_family == AF_INET6) {
            uv_ip6_name(reinterpret_cast<sockaddr_in6*>(res->ai_addr), host, sizeof host);
          } else {
            uv_ip4_name(reinterpret_cast<sockaddr_in*>(res->ai_addr), host, sizeof host);
          }
          uv_freeaddrinfo(res);
          resolved.host = host;
          resolved.port = r->port;
          r->link->StartConnect(resolved);
        },
        to.host.c_str(), nullptr, &hints);
    if (rc != 0) {
      delete r;
      Fail("cannot resolve '" + to.host + "': " + uv_strerror(rc));
    }
    return;
  }
  tcp_ = core::UvHandle<uv_tcp_t>::Make();
  uv_tcp_init(loop_.get(), tcp_.get());
  tcp_->data = this;
  uv_tcp_nodelay(tcp_.get(), 1);
  auto* c = new ConnectReq{{}, alive_, this};
  const int rc = uv_tcp_connect(&c->req, tcp_.get(), reinterpret_cast<const sockaddr*>(&addr),
                                [](uv_connect_t* req, int status) {
                                  std::unique_ptr<ConnectReq> c(reinterpret_cast<ConnectReq*>(req));
                                  const auto alive = c->alive.lock();
                                  if (alive && *alive) c->link->OnConnected(status);
                                });
  if (rc != 0) {
    delete c;
    Fail("cannot connect to '" + peer().node + "': " + uv_strerror(rc));
  }
}

void PeerLink::OnConnected(int status) {
  if (closed()) return;
  if (status != 0) {
    return Fail("cannot connect to '" + peer().node + "': " + uv_strerror(status));
  }
  state_ = State::kHandshake;
  last_heard_ms_ = loop_.Now();
  if (tls_) {
    tls_->Start();
    FlushTls();
  }
  AfterHandshakeFrame();  // sends the HELLO Initiate wrote (once TLS is up)
  StartReading();
}

void PeerLink::StartReading() {
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(tcp_.get()),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        thread_local char buffer[64 * 1024];
        *buf = uv_buf_init(buffer, sizeof buffer);
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        auto* link = static_cast<PeerLink*>(s->data);
        if (n > 0) return link->OnRead(buf->base, static_cast<size_t>(n));
        if (n == UV_EOF) return link->Fail("connection closed by '" + link->peer().node + "'");
        if (n < 0) {
          return link->Fail("connection to '" + link->peer().node +
                            "' failed: " + uv_strerror(static_cast<int>(n)));
        }
      });
}

void PeerLink::OnRead(const char* data, size_t n) {
  if (closed()) return;
  last_heard_ms_ = loop_.Now();
  if (tls_) {
    const bool was_ready = tls_->ready();
    Status st = tls_->Feed(std::string_view(data, n), in_);
    FlushTls();
    if (!st.ok()) {
      return Fail(peer().node.empty() ? st.message() : "'" + peer().node + "': " + st.message());
    }
    if (!was_ready && tls_->ready()) ScheduleFlush();  // the frames that waited for it
  } else {
    in_.append(data, n);
  }
  DrainInput();
}

bool PeerLink::DrainInput() {
  size_t pos = 0;
  while (!closed()) {
    std::span<const uint8_t> rest(reinterpret_cast<const uint8_t*>(in_.data()) + pos,
                                  in_.size() - pos);
    auto f = ParseFrame(rest, established() ? options_.max_payload
                                            : std::min(options_.max_payload, kMaxHandshakePayload));
    if (!f.ok()) {
      Fail("bad frame from '" + peer().node + "': " + f.status().message());
      break;
    }
    if (!f.value()) break;
    pos += f.value()->size();
    if (!OnLinkFrame(*f.value())) break;
  }
  if (closed()) return false;
  in_.erase(0, pos);
  return true;
}

bool PeerLink::OnLinkFrame(const FrameView& frame) {
  if (state_ == State::kHandshake) {
    handshake_.OnFrame(frame);
    AfterHandshakeFrame();
    return !closed();
  }
  FieldReader r(frame.payload);
  switch (static_cast<FrameType>(frame.type)) {
    case FrameType::kPing:
      AppendFrame(out_, FrameType::kPong,
                  std::string_view(reinterpret_cast<const char*>(frame.payload.data()),
                                   frame.payload.size()));
      ScheduleFlush();
      return true;
    case FrameType::kPong: {
      uint64_t sent = 0;
      if (r.U64(sent, "timestamp") && r.End()) rtt_us_ = (uv_hrtime() - sent) / 1000;
      return true;
    }
    case FrameType::kClose: {
      std::string why;
      r.Str(why, "reason");
      Fail("closed by '" + peer().node + "'" + (why.empty() ? "" : ": " + why));
      return false;
    }
    case FrameType::kHello:
    case FrameType::kHelloAck:
    case FrameType::kAuth:
    case FrameType::kWelcome:
    case FrameType::kRefuse:
      Fail("handshake frame from '" + peer().node + "' after the handshake");
      return false;
    default:
      listener_.OnFrame(*this, frame);
      return !closed();
  }
}

void PeerLink::AfterHandshakeFrame() {
  if (!handshake_.output().empty()) {
    out_ += handshake_.output();
    handshake_.output().clear();
    ScheduleFlush();
  }
  switch (handshake_.state()) {
    case Handshake::State::kInProgress:
      break;
    case Handshake::State::kEstablished:
      state_ = State::kEstablished;
      listener_.OnEstablished(*this);
      break;
    case Handshake::State::kFailed: {
      const HandshakeFailure failure = handshake_.failure();
      Fail(failure.text, &failure);
      break;
    }
  }
}

void PeerLink::OnTimer() {
  if (closed()) return;
  const uint64_t now = loop_.Now();
  if (state_ != State::kEstablished) {
    if (now - started_ms_ >= options_.handshake_timeout_ms) {
      Fail("no handshake with '" + peer().node + "' within " +
           std::to_string(options_.handshake_timeout_ms) + " ms");
    }
    return;
  }
  if (now - last_heard_ms_ >= options_.down_after_ms) {
    return Fail("no heartbeat from '" + peer().node + "' for " + Seconds(now - last_heard_ms_));
  }
  AppendFrame(out_, FrameType::kPing, U64Payload(uv_hrtime()));
  ScheduleFlush();
}

bool PeerLink::Send(FrameType type, std::string_view payload, uint16_t channel, uint8_t flags) {
  if (!established()) return false;
  if (buffered_bytes() + kFrameHeaderSize + payload.size() > options_.max_buffered_bytes) {
    return false;
  }
  AppendFrame(out_, type, payload, channel, flags);
  ScheduleFlush();
  return true;
}

bool PeerLink::Send(FrameType type, std::string_view head, std::string_view body) {
  if (!established()) return false;
  if (buffered_bytes() + kFrameHeaderSize + head.size() + body.size() >
      options_.max_buffered_bytes) {
    return false;
  }
  AppendFrame(out_, type, head, body, 0, 0);
  ScheduleFlush();
  return true;
}

void PeerLink::ScheduleFlush() {
  if (closed() || !tcp_ || uv_is_active(reinterpret_cast<uv_handle_t*>(flush_.get()))) return;
  uv_prepare_start(flush_.get(), [](uv_prepare_t* h) {
    uv_prepare_stop(h);
    static_cast<PeerLink*>(h->data)->Flush();
  });
}

void PeerLink::Flush() {
  if (out_.empty() || !tcp_ || state_ == State::kConnecting) return;
  if (tls_) {
    if (!tls_->ready()) return;  // frames wait for the TLS handshake
    if (Status st = tls_->Encrypt(out_); !st.ok()) {
      out_.clear();
      return Fail("'" + peer().node + "': " + st.message());
    }
    // What is buffered counts as written once encrypted.
    out_.clear();
    return FlushTls();
  }
  std::string bytes = std::move(out_);
  out_.clear();
  WriteRaw(std::move(bytes));
}

void PeerLink::FlushTls() {
  if (!tls_ || !tcp_) return;
  std::string cipher = tls_->TakeOutput();
  if (!cipher.empty()) WriteRaw(std::move(cipher));
}

void PeerLink::WriteRaw(std::string bytes) {
  auto* w = new Write{{}, std::move(bytes), alive_, this};
  writing_ += w->data.size();
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  const int rc = uv_write(
      &w->req, reinterpret_cast<uv_stream_t*>(tcp_.get()), &buf, 1,
      [](uv_write_t* req, int status) {
        std::unique_ptr<Write> w(reinterpret_cast<Write*>(req));
        const auto alive = w->alive.lock();
        if (!alive || !*alive) return;
        PeerLink* link = w->link;
        link->writing_ -= w->data.size();
        if (status != 0 && status != UV_ECANCELED) {
          return link->Fail("cannot write to '" + link->peer().node + "': " + uv_strerror(status));
        }
        // At a low-water mark rather than at zero: a steady stream of small
        // frames must not keep those waiting for room out for good.
        if (link->established() &&
            link->buffered_bytes() <= link->options_.max_buffered_bytes / 4) {
          link->listener_.OnDrained(*link);
        }
      });
  if (rc != 0) {
    writing_ -= w->data.size();
    delete w;
    Fail("cannot write to '" + peer().node + "': " + uv_strerror(rc));
  }
}

void PeerLink::Close(std::string why) {
  if (closed()) return;
  if (established()) {
    std::string payload;
    FieldWriter(payload).Str(why.substr(0, 1024));
    AppendFrame(out_, FrameType::kClose, payload);
  }
  Fail(std::move(why));
}

void PeerLink::Fail(std::string why, const HandshakeFailure* refusal) {
  if (closed()) return;
  const bool connected = state_ != State::kConnecting;
  state_ = State::kClosed;
  uv_timer_stop(timer_.get());
  uv_prepare_stop(flush_.get());
  if (tcp_ && connected) {
    // What is queued (a REFUSE, a kClose) still goes, then the socket closes.
    Flush();
    uv_read_stop(reinterpret_cast<uv_stream_t*>(tcp_.get()));
    auto* s = new ShutdownReq{{}, std::move(tcp_)};
    if (uv_shutdown(&s->req, reinterpret_cast<uv_stream_t*>(s->tcp.get()),
                    [](uv_shutdown_t* req, int) { delete reinterpret_cast<ShutdownReq*>(req); }) !=
        0) {
      delete s;
    }
  }
  tcp_.Reset();
  std::optional<HandshakeFailure> failure;
  if (refusal != nullptr) failure = *refusal;
  loop_.Post([alive = std::weak_ptr<bool>(alive_), this, why = std::move(why),
              failure = std::move(failure)] {
    const auto a = alive.lock();
    if (a && *a) listener_.OnClosed(*this, why, failure ? &*failure : nullptr);
  });
}

}  // namespace ferry::cluster
