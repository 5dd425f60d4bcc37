#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "core/broker_internal.h"
#include "core/log.h"

namespace ferry::core {

namespace {

// A write owns its bytes until libuv's callback [uv_write contract].
struct WriteReq {
  uv_write_t req;
  std::string data;
  Connection* conn;
};

// `listener` as the key of ctx.listener_counters, which outlives every
// connection: each connection holds a view of it, not a copy.
std::string_view ListenerKey(const BrokerContext& ctx, std::string_view listener) {
  auto it = ctx.listener_counters.find(listener);
  return it != ctx.listener_counters.end() ? std::string_view(it->first) : "unknown";
}

// Counts what happens to a connection's input buffer during its lifetime
// in its worker's partial_bytes(): its capacity is what it holds.
class InputAccount {
 public:
  InputAccount(Worker& worker, const std::vector<uint8_t>& in)
      : worker_(worker), in_(in), before_(in.capacity()) {}
  ~InputAccount() {
    if (in_.capacity() != before_) {
      worker_.AddPartialBytes(static_cast<int64_t>(in_.capacity()) - static_cast<int64_t>(before_));
    }
  }
  InputAccount(const InputAccount&) = delete;
  InputAccount& operator=(const InputAccount&) = delete;

 private:
  Worker& worker_;
  const std::vector<uint8_t>& in_;
  const size_t before_;
};

// The protocol level of a CONNECT whose fixed header is at the start of
// `bytes`, once enough of it has arrived: nullopt if not yet, 0 if it is no
// CONNECT of MQTT 3.1.1 or 5.0 ("MQTT" as protocol name).
std::optional<uint8_t> PeekConnectLevel(std::span<const uint8_t> bytes) {
  if (bytes.empty() || bytes[0] >> 4 != 1) return 0;
  size_t pos = 1;
  while (pos < bytes.size() && pos < 5 && (bytes[pos] & 0x80) != 0) ++pos;
  ++pos;  // past the last byte of the remaining length
  static constexpr uint8_t kName[] = {0x00, 0x04, 'M', 'Q', 'T', 'T'};
  for (uint8_t b : kName) {
    if (pos >= bytes.size()) return std::nullopt;
    if (bytes[pos++] != b) return 0;
  }
  if (pos >= bytes.size()) return std::nullopt;
  return bytes[pos];
}

}  // namespace

Connection::Connection(Worker& worker, uint64_t id, std::string_view listener)
    : worker_(worker), id_(id), listener_(ListenerKey(worker.ctx(), listener)) {}

Connection::~Connection() {
  if (counted_) worker_.ctx().ReleaseListenerSlot(listener_);
  worker_.AddPartialBytes(-static_cast<int64_t>(in_.capacity()));
  // Normally the handle is closed (and freed by its close callback) before
  // the connection is freed; this covers a loop that shuts down first.
  if (tcp_ != nullptr) {
    tcp_->data = nullptr;
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(tcp_))) {
      uv_close(reinterpret_cast<uv_handle_t*>(tcp_),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    }
  }
}

void Connection::CloseHandle() {
  if (tcp_ == nullptr || uv_is_closing(reinterpret_cast<uv_handle_t*>(tcp_))) return;
  // Write callbacks run before the close callback, so the connection is
  // freed only once libuv no longer refers to it.
  uv_close(reinterpret_cast<uv_handle_t*>(tcp_), [](uv_handle_t* h) {
    auto* c = static_cast<Connection*>(h->data);
    delete reinterpret_cast<uv_tcp_t*>(h);
    if (c != nullptr) {
      c->tcp_ = nullptr;
      c->worker_.OnClosed(*c);
    }
  });
}

std::string_view Connection::client_id() const {
  if (session_ != nullptr) return session_->client_id_;
  return own_client_id_ != nullptr ? std::string_view(*own_client_id_) : std::string_view();
}

void Connection::AttachSession(Session* s) {
  session_ = s;
  own_client_id_.reset();
}

void Connection::DetachSession() {
  if (session_ == nullptr) return;
  SetClientId(session_->client_id_);
  session_ = nullptr;
}

std::string Connection::Describe() const {
  std::string s = "client '";
  s += client_id();
  s += "' (";
  s += peer_;
  s += ")";
  return s;
}

const char* Connection::AwaitedStage() const {
  const char* stage = transport_ ? transport_->Stage() : nullptr;
  return stage != nullptr ? stage : "CONNECT";
}

Status Connection::Open(int fd, std::string peer, std::string pending, bool start_reading) {
  peer_ = std::move(peer);
  tcp_ = new uv_tcp_t();
  uv_tcp_init(worker_.loop().get(), tcp_);
  tcp_->data = this;
  int rc = uv_tcp_open(tcp_, fd);
  if (rc != 0) {
    ::close(fd);
    return Status::IoError(std::string("uv_tcp_open: ") + uv_strerror(rc));
  }
  uv_tcp_nodelay(tcp_, 1);
  accepted_ms_ = last_rx_ms_ = worker_.loop().Now();
  if (start_reading) StartReading(std::move(pending));
  return Status::Ok();
}

void Connection::StartReading(std::string pending) {
  if (!InputFits(pending.size())) {  // bytes read after a CONNECT handed over
    RefuseInput();
    return;
  }
  {
    InputAccount account(worker_, in_);
    in_.assign(pending.begin(), pending.end());
  }
  in_len_ = pending.size();
  in_pos_ = 0;
  want_ = 0;
  input_shared_ = false;
  int rc = uv_read_start(
      reinterpret_cast<uv_stream_t*>(tcp_),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) { static_cast<Connection*>(h->data)->AllocInput(buf); },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
        static_cast<Connection*>(s->data)->OnRead(nread, buf);
      });
  if (rc != 0) {
    FERRY_WARN("%s: cannot read: %s", Describe().c_str(), uv_strerror(rc));
    worker_.DisconnectClient(*this, ReasonCode::kSuccess, "");
    return;
  }
  if (in_len_ > 0) ProcessInput();
}

void Connection::AllocInput(uv_buf_t* buf) {
  // Most reads start at a packet boundary or with a small piece of a packet
  // held over from the last read: they go to the worker's read buffer, after
  // a copy of that piece, so that a connection keeps no input buffer of its
  // own between packets (an idle connection costs no read buffer). in_ keeps
  // the piece until OnRead has taken the new bytes.
  std::vector<uint8_t>& shared = worker_.read_buffer();
  if (transport_) {
    // Raw bytes go through the transport, which appends what it decodes to
    // in_ (OnRead), so nothing of the read buffer is kept.
    input_shared_ = false;
    buf->base = reinterpret_cast<char*>(shared.data());
    buf->len = shared.size();
    return;
  }
  if (in_len_ <= kSmallPartial) {
    if (in_len_ > 0) std::memcpy(shared.data(), in_.data(), in_len_);
    input_shared_ = true;
    buf->base = reinterpret_cast<char*>(shared.data() + in_len_);
    buf->len = shared.size() - in_len_;
    return;
  }
  // A large packet builds up in the connection's own buffer, which grows
  // with what arrives, a read at a time, never to the length the packet
  // declares before its bytes come: a peer that declares a large packet
  // and sends little costs little. Its capacity doubles (up to the packet's
  // length), so the copies cost a constant per byte.
  input_shared_ = false;
  const size_t room = want_ > in_len_ ? std::min(want_ - in_len_, shared.size()) : shared.size();
  const size_t size = in_len_ + room;
  if (in_.size() < size) {
    size_t capacity = in_.capacity();
    if (capacity < size) {
      capacity = std::max(size, std::min(std::max(want_, size), 2 * capacity));
      if (!InputFits(capacity)) capacity = size;  // only the exact size may fit
      if (!InputFits(capacity)) {
        // OnRead gets UV_ENOBUFS and closes the connection.
        *buf = uv_buf_init(nullptr, 0);
        return;
      }
    }
    InputAccount account(worker_, in_);
    in_.reserve(capacity);
    in_.resize(size);
  }
  buf->base = reinterpret_cast<char*>(in_.data() + in_len_);
  buf->len = in_.size() - in_len_;
}

bool Connection::InputFits(size_t capacity) const {
  // A piece of up to kSmallPartial is always kept: a busy connection's
  // reads end in the middle of a packet all the time.
  const size_t held = in_.capacity();
  if (capacity <= held || capacity <= kSmallPartial) return true;
  return worker_.partial_bytes() + (capacity - held) <=
         worker_.ctx().options.max_partial_packet_memory;
}

void Connection::RefuseInput() {
  Inc(worker_.ctx().metrics.partial_packet_refusals);
  worker_.DisconnectClient(*this, ReasonCode::kServerBusy,
                           "incomplete packets fill max_partial_packet_memory");
}

void Connection::PauseReading() {
  paused_ = true;
  if (tcp_ != nullptr) uv_read_stop(reinterpret_cast<uv_stream_t*>(tcp_));
}

void Connection::ResumeReading() {
  paused_ = false;
  std::string pending(reinterpret_cast<const char*>(in_.data()), in_len_);
  StartReading(std::move(pending));
}

void Connection::OnRead(ssize_t nread, const uv_buf_t* buf) {
  if (nread <= 0 || state_ == State::kClosing) input_shared_ = false;  // in_ holds the input
  if (nread == UV_ENOBUFS) {  // AllocInput found no room under max_partial_packet_memory
    if (state_ != State::kClosing) RefuseInput();
    return;
  }
  if (nread < 0) {
    if (state_ != State::kClosing) {
      FERRY_DEBUG("%s: connection closed by peer (%s)", Describe().c_str(),
                  nread == UV_EOF ? "eof" : uv_strerror(static_cast<int>(nread)));
      worker_.DisconnectClient(*this, ReasonCode::kSuccess, "");
    }
    return;
  }
  if (nread == 0 || state_ == State::kClosing) return;
  last_rx_ms_ = worker_.loop().Now();
  Inc(worker_.ctx().metrics.bytes_received, static_cast<uint64_t>(nread));
  if (!transport_) {
    in_len_ += static_cast<size_t>(nread);
    ProcessInput();
    return;
  }
  if (!ReceiveThroughTransport(std::string_view(buf->base, static_cast<size_t>(nread)))) return;
  if (transport_ && transport_->PeerClosed() && state_ != State::kClosing && !detached_) {
    // TLS close_notify or a WebSocket close frame: the end of the stream.
    FERRY_DEBUG("%s: connection closed by peer (TLS close_notify or WebSocket close)",
                Describe().c_str());
    worker_.DisconnectClient(*this, ReasonCode::kSuccess, "");
  }
}

bool Connection::ReceiveThroughTransport(std::string_view raw) {
  std::string app;
  Status st = transport_->Receive(raw, &app, &wire_out_);
  if (std::optional<std::string> source = transport_->TakeProxiedSource()) {
    FERRY_DEBUG("connection from %s is from %s (PROXY protocol)", peer_.c_str(), source->c_str());
    peer_ = std::move(*source);
  }
  if (!wire_out_.empty() && !dirty_) worker_.MarkDirty(*this);
  if (!st.ok()) {
    Inc(worker_.ctx().metrics.protocol_errors);
    if (std::optional<Refusal> why = transport_->handshake_failure()) {
      worker_.ctx().CountRefusal(listener_, *why);
    }
    if (state_ == State::kAwaitingConnect) {
      FERRY_INFO("connection from %s: %s, closing", peer_.c_str(), st.message().c_str());
    } else {
      FERRY_INFO("%s: %s, closing", Describe().c_str(), st.message().c_str());
    }
    worker_.DisconnectClient(*this, ReasonCode::kSuccess, "");
    return false;
  }
  return ProcessDecoded(app);
}

bool Connection::ProcessDecoded(std::string_view app) {
  if (state_ != State::kConnected || paused_) {
    // Before CONNECT is accepted (the connection may be handed over with
    // its unread bytes), and while paused, it all waits in in_.
    if (!AppendInput(app)) {
      RefuseInput();
      return false;
    }
    if (paused_) return true;  // ResumeReading goes on
    ProcessInput();
    return state_ != State::kClosing && !detached_;
  }
  std::vector<uint8_t>& shared = worker_.read_buffer();
  while (!app.empty()) {
    if (in_len_ <= kSmallPartial) {
      // As a plain read: in the worker's read buffer after the piece held
      // over, so that in_ keeps (and is charged for) only what is left of
      // an unfinished packet.
      const size_t take = std::min(app.size(), shared.size() - in_len_);
      if (in_len_ > 0) std::memcpy(shared.data(), in_.data(), in_len_);
      std::memcpy(shared.data() + in_len_, app.data(), take);
      in_len_ += take;
      input_shared_ = true;
      app.remove_prefix(take);
    } else {
      // The rest of a packet larger than that piece, up to its end.
      const size_t take = want_ > in_len_ ? std::min(app.size(), want_ - in_len_) : app.size();
      if (!AppendInput(app.substr(0, take))) {
        RefuseInput();
        return false;
      }
      app.remove_prefix(take);
    }
    ProcessInput();
    if (state_ == State::kClosing || detached_) return false;
    if (paused_) return ProcessDecoded(app);
  }
  return true;
}

bool Connection::AppendInput(std::string_view bytes) {
  if (bytes.empty()) return true;  // in_ may have no storage: no memcpy from or to null
  if (in_.size() - in_len_ < bytes.size()) {
    const size_t size = in_len_ + bytes.size();
    if (size > in_.capacity()) {
      // Doubling, as vector would, unless only the exact size fits.
      size_t capacity = std::max(size, 2 * in_.capacity());
      if (!InputFits(capacity)) capacity = size;
      if (!InputFits(capacity)) return false;
      InputAccount account(worker_, in_);
      in_.reserve(capacity);
    }
    in_.resize(size);
  }
  std::memcpy(in_.data() + in_len_, bytes.data(), bytes.size());
  in_len_ += bytes.size();
  return true;
}

void Connection::ProcessInput() {
  const BrokerOptions& opt = worker_.ctx().options;
  uint8_t* const data = input_shared_ ? worker_.read_buffer().data() : in_.data();
  in_pos_ = 0;
  want_ = 0;
  while (state_ != State::kClosing && in_pos_ < in_len_) {
    // Before CONNECT is accepted a much smaller limit applies, so that an
    // unauthenticated peer cannot make us allocate a large buffer.
    uint32_t limit = state_ == State::kConnected ? opt.max_packet_size
                                                 : opt.max_connect_packet_size;
    std::span<const uint8_t> avail(data + in_pos_, in_len_ - in_pos_);
    auto header = ParseFixedHeader(avail, limit);
    if (!header.ok()) {
      if (state_ == State::kAwaitingConnect &&
          header.status().reason() == ReasonCode::kPacketTooLarge) {
        // A v5 client is told so with CONNACK 0x95 before the close (MQTT
        // 5.0 sections 3.2.2.2 and 4.13.1): wait for the protocol level,
        // a dozen bytes in, to know which version it speaks.
        const std::optional<uint8_t> level = PeekConnectLevel(avail);
        if (!level) break;
        if (*level == 5) version_ = ProtocolVersion::kV5;
      }
      worker_.OnProtocolError(*this, header.status());
      return;
    }
    if (!header.value().has_value()) break;
    const FixedHeader& h = *header.value();
    if (avail.size() < h.total_length()) {
      want_ = h.total_length();  // AllocInput makes room for all of it
      break;
    }
    auto packet = Decode(h, avail.subspan(h.header_length, h.remaining_length), version_);
    in_pos_ += h.total_length();
    Inc(worker_.ctx().metrics.messages_received);
    if (!packet.ok()) {
      worker_.OnProtocolError(*this, packet.status());
      return;
    }
    worker_.OnPacket(*this, std::move(packet).value());
    if (detached_) return;  // handed to another worker with the unread bytes
    if (paused_) break;     // waiting for a password check
  }
  if (state_ == State::kClosing) return;
  // Keep the unparsed rest (the start of the next packet) in in_.
  const size_t rest = in_len_ - in_pos_;
  InputAccount account(worker_, in_);
  if (input_shared_) {
    input_shared_ = false;
    if (rest > in_.capacity() && !InputFits(rest)) {
      in_len_ = in_pos_ = 0;
      RefuseInput();
      return;
    }
    in_.assign(data + in_pos_, data + in_len_);
  } else if (in_pos_ > 0) {
    std::memmove(in_.data(), in_.data() + in_pos_, rest);
  }
  in_len_ = rest;
  in_pos_ = 0;
  if (rest == 0) {
    std::vector<uint8_t>().swap(in_);
  } else if (in_.capacity() > 65536 && rest <= kSmallPartial) {
    // Give back memory a large packet needed.
    in_.resize(rest);
    in_.shrink_to_fit();
  }
}

void Connection::ReleaseInput() {
  InputAccount account(worker_, in_);
  std::vector<uint8_t>().swap(in_);
  in_len_ = in_pos_ = want_ = 0;
  input_shared_ = false;
}

std::span<const uint8_t> Connection::UnreadInput() const {
  const uint8_t* data = input_shared_ ? worker_.read_buffer().data() : in_.data();
  return {data + in_pos_, in_len_ - in_pos_};
}

void Connection::Send(const Packet& packet) {
  if (tcp_ == nullptr || detached_) return;
  if (out_.empty()) worker_.ReuseOutputBuffer(out_);
  Encode(packet, version_, out_);
  Inc(worker_.ctx().metrics.messages_sent);
  if (!dirty_) worker_.MarkDirty(*this);
}

void Connection::SendAck(PacketType type, uint16_t packet_id) {
  if (tcp_ == nullptr || detached_) return;
  if (out_.empty()) worker_.ReuseOutputBuffer(out_);
  EncodeSuccessAck(type, packet_id, out_);
  Inc(worker_.ctx().metrics.messages_sent);
  if (!dirty_) worker_.MarkDirty(*this);
}

void Connection::SendPublish(const PublishView& publish) {
  if (tcp_ == nullptr || detached_) return;
  if (out_.empty()) worker_.ReuseOutputBuffer(out_);
  EncodePublish(publish, version_, out_);
  Inc(worker_.ctx().metrics.messages_sent);
  if (!dirty_) worker_.MarkDirty(*this);
}

void Connection::Flush() {
  dirty_ = false;
  if (tcp_ == nullptr || detached_) return;
  if (transport_ && !out_.empty()) {
    transport_->Send(out_, &wire_out_);
    out_.clear();
  }
  std::string& data = transport_ ? wire_out_ : out_;
  if (data.empty()) return;
  auto* w = new WriteReq();
  w->data.swap(data);
  w->conn = this;
  w->req.data = w;
  writing_bytes_ += w->data.size();
  Inc(worker_.ctx().metrics.bytes_sent, w->data.size());
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(tcp_), &buf, 1,
                    [](uv_write_t* req, int status) {
                      auto* w = static_cast<WriteReq*>(req->data);
                      // The connection may be gone: handles close before their
                      // owners are freed, and a cancelled write reports here.
                      w->conn->writing_bytes_ -= w->data.size();
                      Connection* c = w->conn;
                      c->worker_.KeepOutputBuffer(std::move(w->data));
                      delete w;
                      if (status < 0) {
                        if (c->state_ != State::kClosing) {
                          c->worker_.DisconnectClient(*c, ReasonCode::kSuccess, "");
                        }
                      } else if (c->session_ != nullptr && !c->session_->queue_.empty() &&
                                 c->writing_bytes_ == 0) {
                        // The backlog drained: queued messages held back by
                        // the output limit can go now.
                        c->session_->Pump();
                      }
                    });
  if (rc != 0) {
    writing_bytes_ -= w->data.size();
    delete w;
  }
}

void Connection::Close() {
  if (state_ == State::kClosing) return;
  state_ = State::kClosing;
  closing_since_ms_ = worker_.loop().Now();
  ReleaseInput();  // what arrives from now on is dropped
  if (tcp_ == nullptr) return;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(tcp_));
  if (transport_) transport_->Close(&wire_out_);
  Flush();
  // Shut down after the queued bytes (a final DISCONNECT) are written; a peer
  // that never reads is closed by the worker's housekeeping instead.
  auto* req = new uv_shutdown_t();
  req->data = this;
  int rc = uv_shutdown(req, reinterpret_cast<uv_stream_t*>(tcp_),
                       [](uv_shutdown_t* r, int status) {
                         auto* c = static_cast<Connection*>(r->data);
                         delete r;
                         if (status == UV_ECANCELED) return;
                         if (status < 0) {
                           c->CloseHandle();
                         } else {
                           c->DrainUntilPeerCloses();
                         }
                       });
  if (rc != 0) {
    delete req;
    CloseHandle();
  }
}

// Our FIN went out after the last bytes, often a DISCONNECT with a reason
// code. The peer may still be sending (PUBRELs for PUBRECs it has not read
// yet): closing the socket now would make the kernel answer that input with
// a reset, which fails the peer's writes and can destroy the DISCONNECT
// before the peer reads it. So read and drop until the peer closes its side;
// housekeeping closes one that never does after kCloseLingerMs. A node that
// is shutting down does not wait.
void Connection::DrainUntilPeerCloses() {
  if (worker_.shutting_down()) {
    CloseHandle();
    return;
  }
  draining_ = true;
  int rc = uv_read_start(
      reinterpret_cast<uv_stream_t*>(tcp_),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        std::vector<uint8_t>& scratch = static_cast<Connection*>(h->data)->worker_.read_buffer();
        *buf = uv_buf_init(reinterpret_cast<char*>(scratch.data()),
                           static_cast<unsigned>(scratch.size()));
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
        if (nread < 0) static_cast<Connection*>(s->data)->CloseHandle();
      });
  if (rc != 0) CloseHandle();
}

Connection::HandOver Connection::Detach() {
  HandOver h;
  h.listener = std::string(listener_);
  auto* stream = reinterpret_cast<uv_stream_t*>(tcp_);
  // Bytes already handed to libuv but not yet to the kernel would be lost
  // with this handle, and a transport's stream would be torn. A client
  // cannot get here that way (it answered what we sent before its CONNECT),
  // so this only closes a connection that misbehaves.
  if (uv_stream_get_write_queue_size(stream) > 0) {
    FERRY_INFO("%s: cannot move to the session's worker with output unwritten, closing",
               Describe().c_str());
    worker_.DisconnectClient(*this, ReasonCode::kSuccess, "");
    return h;
  }
  uv_os_fd_t fd = -1;
  uv_fileno(reinterpret_cast<uv_handle_t*>(tcp_), &fd);
  h.fd = ::dup(fd);
  if (h.fd < 0) return h;  // no descriptor free: the caller refuses the client
  h.peer = peer_;
  const std::span<const uint8_t> unread = UnreadInput();
  h.pending.assign(reinterpret_cast<const char*>(unread.data()), unread.size());
  h.transport = std::move(transport_);
  h.unwritten.swap(wire_out_);
  counted_ = false;  // the connection that adopts the socket counts it now
  uv_read_stop(stream);
  detached_ = true;
  state_ = State::kClosing;
  closing_since_ms_ = worker_.loop().Now();
  CloseHandle();
  return h;
}

Connection::HandOver::HandOver(HandOver&& other) noexcept
    : fd(std::exchange(other.fd, -1)),
      peer(std::move(other.peer)),
      listener(std::move(other.listener)),
      pending(std::move(other.pending)),
      unwritten(std::move(other.unwritten)),
      transport(std::move(other.transport)) {}

Connection::HandOver::~HandOver() {
  if (fd >= 0) ::close(fd);
}

}  // namespace ferry::core
