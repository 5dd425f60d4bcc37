#include "bench/client.h"

#include <netinet/in.h>

#include <algorithm>

#include "bench/payload.h"
#include "bench/run_context.h"
#include "bench/worker.h"

namespace ferry::bench {
namespace {

constexpr uint32_t kMaxPacketSize = 256u * 1024 * 1024;
constexpr uint64_t kHandshakeTimeoutMs = 30000;

// A write that owns its bytes until libuv is done with them.
struct WriteReq {
  uv_write_t req;
  std::string data;
  Client* client;
};

}  // namespace

Client::Client(Worker& worker, ClientSpec spec) : worker_(worker), spec_(std::move(spec)) {
  const Options& o = *worker_.context().options;
  if (spec_.role == Role::kPublisher) {
    proto_.qos = static_cast<uint8_t>(spec_.qos);
    proto_.retain = o.retain;
    proto_.payload.assign(o.payload_size, 'x');
    topic_per_message_ = TemplateUsesSeq(spec_.topic);
    first_topic_ = ExpandTemplate(spec_.topic, {spec_.index, spec_.client_id, 0});
    proto_.topic = first_topic_;
  }
}

Client::~Client() = default;

void Client::Connect() {
  const RunContext& ctx = worker_.context();
  started_ms_ = worker_.NowMs();
  tcp_ = core::UvHandle<uv_tcp_t>::Make();
  const sockaddr_storage& broker =
      spec_.role == Role::kSubscriber ? ctx.sub_broker : ctx.broker;
  int family = broker.ss_family;
  int rc = uv_tcp_init_ex(worker_.loop(), tcp_.get(), static_cast<unsigned>(family));
  if (rc == 0 && !ctx.local_addrs.empty()) {
    const sockaddr_storage& local = ctx.local_addrs[spec_.index % ctx.local_addrs.size()];
    uv_os_fd_t fd;
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(tcp_.get()), &fd) == 0) {
      // Pick the port at connect() time, by 4-tuple, not at bind() time: one
      // source address then serves far more than its 28,000 ephemeral ports.
      int one = 1;
      setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    }
    rc = uv_tcp_bind(tcp_.get(), reinterpret_cast<const sockaddr*>(&local), 0);
  }
  tcp_->data = this;
  state_ = State::kTcp;
  if (rc == 0) {
    connect_req_ = std::make_unique<uv_connect_t>();
    connect_req_->data = this;
    rc = uv_tcp_connect(connect_req_.get(), tcp_.get(),
                        reinterpret_cast<const sockaddr*>(&broker), &Client::OnConnect);
  }
  if (rc != 0) Fail(false, std::string("connect: ") + uv_strerror(rc));
}

void Client::OnConnect(uv_connect_t* req, int status) {
  auto* self = static_cast<Client*>(req->data);
  if (self->state_ != State::kTcp) return;  // closed meanwhile
  if (status != 0) {
    self->Fail(false, std::string("connect: ") + uv_strerror(status));
    return;
  }
  self->OnTcpConnected();
}

void Client::OnTcpConnected() {
  uv_tcp_nodelay(tcp_.get(), 1);
  uv_read_start(reinterpret_cast<uv_stream_t*>(tcp_.get()), &Client::OnAlloc, &Client::OnRead);
  const RunContext& ctx = worker_.context();
  if (ctx.tls != nullptr) {
    state_ = State::kTls;
    tls_ = std::make_unique<TlsSession>(*ctx.tls, ctx.options->host);
    if (Status st = tls_->Handshake(); !st.ok()) {
      Fail(false, st.message());
      return;
    }
    Flush();
    return;
  }
  SendConnect();
}

void Client::SendConnect() {
  const Options& o = *worker_.context().options;
  core::Connect c;
  c.version = worker_.context().version;
  if (c.version == core::ProtocolVersion::kV31) c.protocol_name = "MQIsdp";
  c.clean_start = o.clean;
  c.keepalive_s = static_cast<uint16_t>(o.keepalive_s);
  c.client_id = spec_.client_id;
  if (!o.username.empty()) c.username = o.username;
  if (!o.password.empty()) c.password = o.password;
  if (core::IsV5(c.version) && o.session_expiry_s > 0) {
    c.props.session_expiry_interval = o.session_expiry_s;
  }
  core::Encode(c, c.version, out_);
  state_ = State::kMqtt;
  Flush();
}

void Client::OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<Client*>(h->data);
  buf->base = self->worker_.read_buffer();
  buf->len = Worker::kReadBufferSize;
}

void Client::OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<Client*>(s->data);
  if (nread < 0) {
    self->Fail(true, nread == UV_EOF ? std::string("closed by the broker") : std::string("read: ") + uv_strerror(static_cast<int>(nread)));
    return;
  }
  if (nread > 0) self->OnBytes(buf->base, static_cast<size_t>(nread));
}

void Client::OnBytes(const char* data, size_t len) {
  if (tls_ != nullptr) {
    plain_.clear();
    bool was_established = tls_->Established();
    Status st = tls_->Feed(std::string_view(data, len), &plain_);
    if (!st.ok()) {
      Fail(was_established, st.message());
      return;
    }
    if (!was_established && tls_->Established()) SendConnect();
    Flush();  // handshake records
    if (plain_.empty()) return;
    data = plain_.data();
    len = plain_.size();
  }
  const auto* bytes = reinterpret_cast<const uint8_t*>(data);
  size_t consumed = 0;
  if (in_.empty()) {
    Parse(bytes, len, &consumed);
    if (state_ != State::kClosed && consumed < len) in_.assign(data + consumed, len - consumed);
  } else {
    in_.append(data, len);
    Parse(reinterpret_cast<const uint8_t*>(in_.data()), in_.size(), &consumed);
    if (state_ != State::kClosed) in_.erase(0, consumed);
  }
  if (state_ == State::kClosed) return;
  Flush();
  if (publishing_ && worker_.context().options->message_interval_us == 0 && CanPublish()) {
    worker_.MarkReady(this);
  }
}

void Client::Parse(const uint8_t* data, size_t len, size_t* consumed) {
  size_t pos = 0;
  while (pos < len && state_ != State::kClosed) {
    auto header = core::ParseFixedHeader(std::span<const uint8_t>(data + pos, len - pos),
                                         kMaxPacketSize);
    if (!header.ok()) {
      Fail(true, "bad packet from the broker: " + header.status().message());
      return;
    }
    if (!header->has_value()) break;
    const core::FixedHeader& h = **header;
    if (len - pos < h.total_length()) break;
    OnPacket(h.first_byte, std::span<const uint8_t>(data + pos + h.header_length,
                                                    h.remaining_length));
    pos += h.total_length();
  }
  *consumed = pos;
}

void Client::OnPacket(uint8_t first_byte, std::span<const uint8_t> body) {
  const auto type = static_cast<core::PacketType>(first_byte >> 4);
  const core::ProtocolVersion version = worker_.context().version;
  if (type == core::PacketType::kPublish && state_ == State::kConnected) {
    auto view = ParsePublish(first_byte, body, core::IsV5(version));
    if (!view) {
      Fail(true, "malformed PUBLISH from the broker");
      return;
    }
    OnPublish(*view);
    return;
  }
  if ((type == core::PacketType::kPuback || type == core::PacketType::kPubrec ||
       type == core::PacketType::kPubrel || type == core::PacketType::kPubcomp) &&
      body.size() >= 2) {
    OnAck(static_cast<uint8_t>(type), static_cast<uint16_t>((body[0] << 8) | body[1]));
    return;
  }
  core::FixedHeader h;
  h.first_byte = first_byte;
  h.remaining_length = static_cast<uint32_t>(body.size());
  auto packet = core::Decode(h, body, version);
  if (!packet.ok()) {
    Fail(true, "bad packet from the broker: " + packet.status().message());
    return;
  }
  OnControlPacket(*packet);
}

void Client::OnControlPacket(const core::Packet& packet) {
  Counters& c = worker_.counters();
  if (const auto* connack = std::get_if<core::Connack>(&packet)) {
    OnConnack(*connack);
  } else if (const auto* suback = std::get_if<core::Suback>(&packet)) {
    bool granted = !suback->reasons.empty() &&
                   static_cast<uint8_t>(suback->reasons[0]) < 0x80;
    if (!granted) {
      Fail(true, "subscription refused");
      return;
    }
    Bump(c.subscribed);
    if (worker_.context().options->exit_after_subscribe) Disconnect();
  } else if (std::holds_alternative<core::Disconnect>(packet)) {
    Fail(true, "DISCONNECT from the broker");
  }
}

void Client::OnConnack(const core::Connack& connack) {
  if (state_ != State::kMqtt) return;
  worker_.OnHandshakeEnded();
  if (connack.reason != ReasonCode::kSuccess) {
    worker_.NoteError(std::string("CONNACK: ") + ReasonCodeName(connack.reason));
    Bump(worker_.counters().connect_failed);
    Close();
    return;
  }
  state_ = State::kConnected;
  Counters& c = worker_.counters();
  Bump(c.connected);
  Set(c.last_connack_ns, MonoNs());
  last_write_ms_ = worker_.NowMs();
  if (spec_.role == Role::kSubscriber) SendSubscribe();
  if (spec_.role == Role::kPublisher && want_publishing_) BeginPublishing();
}

void Client::SendSubscribe() {
  core::Subscribe s;
  s.packet_id = 1;
  core::SubscribeTopic t;
  t.filter = spec_.topic;
  t.qos = static_cast<uint8_t>(spec_.qos);
  s.topics.push_back(std::move(t));
  core::Encode(s, worker_.context().version, out_);
}

void Client::OnPublish(const PublishView& view) {
  uint64_t now = MonoNs();
  Counters& c = worker_.counters();
  Bump(c.received);
  if (Get(c.first_recv_ns) == 0) Set(c.first_recv_ns, now);
  Set(c.last_recv_ns, now);
  if (auto stamp = ReadStamp(view.payload)) {
    worker_.mutable_latency().Record(now > stamp->sent_ns ? now - stamp->sent_ns : 0);
    SequenceTracker& tracker = trackers_[stamp->publisher];
    uint64_t before = tracker.Next();
    tracker.Observe(stamp->seq);
    // Arrivals and the holes they jump over both free the publisher's window.
    const RunContext& ctx = worker_.context();
    uint64_t slot = uint64_t{stamp->publisher} - ctx.first_publisher;
    if (ctx.accounted != nullptr && tracker.Next() > before && slot < ctx.publishers) {
      ctx.accounted[slot].fetch_add(tracker.Next() - before, std::memory_order_relaxed);
    }
  }
  if (view.qos == 1) QueueAck(0x40, view.packet_id);  // PUBACK
  if (view.qos == 2) QueueAck(0x50, view.packet_id);  // PUBREC
}

void Client::OnAck(uint8_t type, uint16_t packet_id) {
  auto ptype = static_cast<core::PacketType>(type);
  if (ptype == core::PacketType::kPubrel) {
    QueueAck(0x70, packet_id);  // PUBCOMP
    return;
  }
  if (ptype == core::PacketType::kPubrec) {
    QueueAck(0x62, packet_id);  // PUBREL, flags 0010 [MQTT-3.6.1-1]
    if (spec_.qos == 2) return;
  }
  // PUBACK ends QoS 1, PUBCOMP ends QoS 2.
  if (inflight_ == 0) return;
  --inflight_;
  Counters& c = worker_.counters();
  Bump(c.acked);
  Drop(c.inflight);
  CheckDone();
}

void Client::QueueAck(uint8_t first_byte, uint16_t packet_id) {
  const char bytes[4] = {static_cast<char>(first_byte), 2, static_cast<char>(packet_id >> 8),
                         static_cast<char>(packet_id & 0xFF)};
  out_.append(bytes, 4);
}

void Client::Flush() {
  if (state_ == State::kClosed) return;
  std::string bytes;
  if (tls_ != nullptr) {
    if (!out_.empty()) {
      if (!tls_->Established()) return;  // CONNECT waits for the handshake
      if (!tls_->Write(out_).ok()) {
        Fail(false, "TLS write failed");
        return;
      }
      out_.clear();
    }
    tls_->TakeCiphertext(&bytes);
  } else {
    bytes.swap(out_);
  }
  if (!bytes.empty()) WriteRaw(bytes);
  // Keep the buffer's capacity for the next batch.
  if (tls_ == nullptr && out_.empty()) {
    bytes.clear();
    out_.swap(bytes);
  }
}

void Client::WriteRaw(std::string& bytes) {
  auto* stream = reinterpret_cast<uv_stream_t*>(tcp_.get());
  last_write_ms_ = worker_.NowMs();
  size_t offset = 0;
  if (uv_stream_get_write_queue_size(stream) == 0) {
    uv_buf_t buf = uv_buf_init(bytes.data(), static_cast<unsigned>(bytes.size()));
    int n = uv_try_write(stream, &buf, 1);
    if (n < 0 && n != UV_EAGAIN) {
      Fail(true, std::string("write: ") + uv_strerror(n));
      return;
    }
    if (n > 0) offset = static_cast<size_t>(n);
    if (offset == bytes.size()) return;
  }
  auto* w = new WriteReq{{}, bytes.substr(offset), this};
  w->req.data = w;
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->req, stream, &buf, 1, [](uv_write_t* req, int status) {
    auto* done = static_cast<WriteReq*>(req->data);
    Client* self = done->client;
    delete done;
    if (self->state_ == State::kClosed) return;
    if (status < 0) {
      self->Fail(true, std::string("write: ") + uv_strerror(status));
      return;
    }
    self->OnWritable();
  });
  if (rc != 0) {
    delete w;
    Fail(true, std::string("write: ") + uv_strerror(rc));
  }
}

void Client::OnWritable() {
  auto* stream = reinterpret_cast<const uv_stream_t*>(tcp_.get());
  if (uv_stream_get_write_queue_size(stream) >= kHighWater) return;
  if (worker_.context().options->message_interval_us == 0) {
    if (CanPublish()) worker_.MarkReady(this);
  } else if (publishing_) {
    PublishDue();
  }
}

void Client::Housekeeping(uint64_t now_ms) {
  if (state_ == State::kTcp || state_ == State::kTls || state_ == State::kMqtt) {
    if (now_ms - started_ms_ > kHandshakeTimeoutMs) Fail(false, "no CONNACK within 30 s");
    return;
  }
  uint32_t keepalive = worker_.context().options->keepalive_s;
  if (state_ == State::kConnected && keepalive > 0 &&
      now_ms - last_write_ms_ >= keepalive * 1000ull / 2) {
    out_.append("\xC0\x00", 2);  // PINGREQ
    Flush();
  }
}

void Client::Disconnect() {
  if (state_ != State::kConnected) {
    if (state_ != State::kLeaving) Close();
    return;
  }
  out_.append("\xE0\x00", 2);  // DISCONNECT, normal
  Flush();
  if (tls_ != nullptr && state_ != State::kClosed) {
    tls_->Shutdown();  // close_notify, so the broker sees an orderly end
    Flush();
  }
  if (state_ == State::kClosed) return;
  // uv_close would cancel writes still queued (the last publishes of a
  // -L run); uv_shutdown completes after them. Worker::Stop force-closes
  // whatever a stalled broker keeps from finishing.
  auto* stream = reinterpret_cast<uv_stream_t*>(tcp_.get());
  auto* req = new uv_shutdown_t{};
  req->data = this;
  uv_read_stop(stream);
  int rc = uv_shutdown(req, stream, [](uv_shutdown_t* r, int) {
    auto* self = static_cast<Client*>(r->data);
    delete r;
    self->Close();
  });
  if (rc != 0) {
    delete req;
    Close();
    return;
  }
  state_ = State::kLeaving;
  publishing_ = false;
  pace_.Reset();
}

void Client::Fail(bool by_broker, const std::string& why) {
  if (state_ == State::kClosed) return;
  if (state_ == State::kLeaving) return Close();  // an error while leaving is no news
  worker_.NoteError(why);
  Counters& c = worker_.counters();
  if (state_ == State::kConnected) {
    if (by_broker) Bump(c.closed_by_broker);
  } else {
    Bump(c.connect_failed);
    worker_.OnHandshakeEnded();
  }
  Close();
}

void Client::Close() {
  if (state_ == State::kClosed) return;
  if (spec_.role == Role::kPublisher && !done_ && spec_.limit > 0) {
    done_ = true;  // it will send no more; the run must not wait for it
    Bump(worker_.counters().publishers_done);
  }
  Drop(worker_.counters().inflight, inflight_);
  state_ = State::kClosed;
  publishing_ = false;
  pace_.Reset();
  tcp_.Reset();
}

}  // namespace ferry::bench
