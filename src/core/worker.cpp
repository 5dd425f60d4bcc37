// Worker: one thread, one libuv loop, the connections it accepted and the
// sessions whose client ids hash to it.
#include <unistd.h>

#include "core/broker_internal.h"
#include "core/log.h"

namespace ferry::core {

namespace {
constexpr uint64_t kHousekeepingMs = 500;
// A connection that does not finish closing (a peer that never reads what we
// flush before the shutdown, or never closes its side) is closed hard after
// this long.
constexpr uint64_t kCloseLingerMs = 5000;
}  // namespace

Worker::Worker(BrokerContext& ctx, uint32_t index)
    : ctx_(ctx), index_(index), queue_waits_(ctx.options.max_queue_wait_ms) {
  flush_ = UvHandle<uv_check_t>::Make();
  uv_check_init(loop_.get(), flush_.get());
  flush_->data = this;
  flush_before_poll_ = UvHandle<uv_prepare_t>::Make();
  uv_prepare_init(loop_.get(), flush_before_poll_.get());
  flush_before_poll_->data = this;
  housekeeping_ = UvHandle<uv_timer_t>::Make();
  uv_timer_init(loop_.get(), housekeeping_.get());
  housekeeping_->data = this;
  queue_wait_timer_ = UvHandle<uv_timer_t>::Make();
  uv_timer_init(loop_.get(), queue_wait_timer_.get());
  queue_wait_timer_->data = this;
}

Worker::~Worker() {
  // Connections refer to the loop; free them (and their handles) first.
  conns_.clear();
  session_ids_.clear();
  sessions_.clear();
  flush_.Reset();
  flush_before_poll_.Reset();
  housekeeping_.Reset();
  queue_wait_timer_.Reset();
}

void Worker::Start() {
  // Packets queued by reads and posted work go out after the poll (check);
  // those queued by timers and write completions, which run before the poll,
  // go out before the loop blocks in it (prepare), not at the next wake-up.
  uv_check_start(flush_.get(), [](uv_check_t* h) { static_cast<Worker*>(h->data)->FlushAll(); });
  uv_prepare_start(flush_before_poll_.get(),
                   [](uv_prepare_t* h) { static_cast<Worker*>(h->data)->FlushAll(); });
  uv_timer_start(
      housekeeping_.get(), [](uv_timer_t* t) { static_cast<Worker*>(t->data)->Housekeeping(); },
      kHousekeepingMs, kHousekeepingMs);
  thread_ = std::thread([this] {
    loop_.Run();
    FERRY_DEBUG("worker %u stopped", index_);
  });
}

void Worker::Join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::Adopt(int fd, std::string peer, std::string listener, std::string pending) {
  loop_.Post([this, fd, peer = std::move(peer), listener = std::move(listener),
              pending = std::move(pending)]() mutable {
    if (shutting_down_) {
      ::close(fd);
      ctx_.ReleaseListenerSlot(listener);
      return;
    }
    uint64_t id = next_conn_id_++;
    auto conn = std::make_unique<Connection>(*this, id, std::move(listener));
    Connection* c = conn.get();
    conns_.emplace(id, std::move(conn));
    Inc(ctx_.metrics.connections_total);
    auto transport = ctx_.transports.find(c->listener());
    if (transport != ctx_.transports.end() && transport->second->needed()) {
      c->SetTransport(transport->second->Make());
    }
    Status st = c->Open(fd, std::move(peer), std::move(pending));
    if (!st.ok()) {
      FERRY_WARN("cannot adopt connection: %s", st.ToString().c_str());
      c->Close();
    }
  });
}

Connection* Worker::FindConnection(uint64_t id) {
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : it->second.get();
}

Session* Worker::FindSession(std::string_view client_id) {
  auto it = sessions_.find(client_id);
  return it == sessions_.end() ? nullptr : it->second.get();
}

void Worker::MarkDirty(Connection& c) {
  c.dirty_ = true;
  dirty_.push_back(&c);
}

const Acl* Worker::CurrentAcl() {
  // One relaxed-cost load per call instead of a mutex and a shared_ptr copy
  // on a cache line every worker writes, for every message.
  const uint64_t generation = ctx_.auth_generation.load(std::memory_order_acquire);
  if (generation != acl_generation_) {
    acl_ = ctx_.GetAcl();
    acl_generation_ = generation;
  }
  return acl_.get();
}

void Worker::KeepOutputBuffer(std::string&& buffer) {
  // A few buffers of ordinary size: enough for the connections written in
  // one loop pass to take turns, without keeping a burst's worth of memory.
  constexpr size_t kMaxKept = 16;
  constexpr size_t kMaxCapacity = 1024 * 1024;
  if (spare_output_.size() >= kMaxKept || buffer.capacity() > kMaxCapacity) return;
  buffer.clear();
  spare_output_.push_back(std::move(buffer));
}

void Worker::ReuseOutputBuffer(std::string& out) {
  if (spare_output_.empty() || out.capacity() >= spare_output_.back().capacity()) return;
  out.swap(spare_output_.back());
  spare_output_.pop_back();
}

void Worker::FlushAll() {
  // One write per connection per loop pass, whatever number of packets.
  std::vector<Connection*> batch;
  batch.swap(dirty_);
  for (Connection* c : batch) {
    if (c->dirty_) c->Flush();
  }
}

void Worker::OnProtocolError(Connection& c, const Status& status) {
  Inc(ctx_.metrics.protocol_errors);
  const ReasonCode reason = status.reason();
  // Before CONNECT, two errors are answered with a CONNACK, then the close:
  // [MQTT-3.1.2-2] an unknown protocol level with 0x01 (v3.1.1 format, the
  // one every version can read), and a v5 CONNECT over the size limit with
  // 0x95 (Connection::ProcessInput read its protocol level).
  if (c.state() == Connection::State::kAwaitingConnect &&
      (reason == ReasonCode::kUnsupportedProtocolVersion ||
       (reason == ReasonCode::kPacketTooLarge && IsV5(c.version_)))) {
    FERRY_INFO("%s: protocol error, closing: %s", c.Describe().c_str(),
               status.ToString().c_str());
    Connack ack;
    ack.reason = reason;
    if (reason == ReasonCode::kUnsupportedProtocolVersion) c.version_ = ProtocolVersion::kV311;
    c.Send(ack);
    c.Close();
    return;
  }
  DisconnectClient(c, status.reason(), status.message());
}

void Worker::DisconnectClient(Connection& c, ReasonCode reason, std::string_view why) {
  if (c.state() == Connection::State::kClosing) return;
  // One line per client the node throws out for what it did (STYLE.md,
  // "Protocol errors"); a shutdown or a takeover is not the client's doing.
  // Keep alive timeouts are logged by Housekeeping, rate-limited.
  if (static_cast<uint8_t>(reason) >= 0x80 && reason != ReasonCode::kServerShuttingDown &&
      reason != ReasonCode::kSessionTakenOver && reason != ReasonCode::kKeepAliveTimeout) {
    FERRY_INFO("%s: closing: %s%s%.*s", c.Describe().c_str(), ReasonCodeName(reason),
               why.empty() ? "" : ": ", static_cast<int>(why.size()), why.data());
  }
  if (c.state() == Connection::State::kConnected && IsV5(c.version_) &&
      reason != ReasonCode::kSuccess) {
    ::ferry::core::Disconnect d;
    d.reason = reason;
    if (!why.empty() && c.request_problem_info_) d.props.reason_string = std::string(why);
    c.Send(d);
  }
  Session* s = c.session_;
  c.Close();
  if (s == nullptr) return;
  s->conn_ = nullptr;
  c.DetachSession();
  s->ReleaseQueueWaiters();  // publishers waiting on its queue wait no longer
  ctx_.metrics.clients_connected.fetch_sub(1, std::memory_order_relaxed);
  EndSessionWill(*s, &c);
}

// The network connection of `s` is gone: send or arm its will, and end the
// session or keep it for its expiry interval.
void Worker::EndSessionWill(Session& s, Connection* c) {
  const uint64_t now = UnixNowMs();
  const uint32_t expiry = c != nullptr ? c->session_expiry_s_ : s.expiry_interval_s_;
  s.expiry_interval_s_ = expiry;
  if (c != nullptr && c->will_ && !c->disconnect_graceful_) {
    uint32_t delay = c->will_->props.will_delay_interval.value_or(0);
    if (delay == 0 || expiry == 0) {
      // [MQTT-3.1.2-8]: the will goes out when the connection closes
      // abnormally; with a delay, at the earlier of the delay and session end.
      PublishWill(*c->will_, s.client_id_);
    } else {
      s.pending_will_ = std::move(c->will_);
      s.will_due_ms_ = now + uint64_t{delay} * 1000;
    }
  }
  if (expiry == 0) {
    DropSession(s);
    return;
  }
  s.disconnected_at_ms_ = now;
  StoreSession(s);
}

void Worker::StoreSession(Session& s) {
  if (!ctx_.store || !s.persistent_) return;
  ctx_.store->PutSession(s.client_id_, s.expiry_interval_s_, s.disconnected_at_ms_);
  s.stored_ = true;
}

void Worker::PublishWill(const Will& will, const std::string& client_id) {
  auto msg = std::make_shared<Message>();
  msg->topic = will.topic;
  msg->payload = will.payload;
  msg->qos = will.qos;
  msg->retain = will.retain;
  msg->received_at_ms = UnixNowMs();
  TakeMessageProperties(Properties(will.props), *msg);
  msg->origin_client = client_id;
  FERRY_DEBUG("publishing will of '%s' on '%s'", client_id.c_str(), will.topic.c_str());
  RouteMessage(std::move(msg), nullptr);
}

void Worker::DropSession(Session& s) {
  for (const auto& [filter, opts] : s.subscriptions_) ctx_.router.Unsubscribe(s.client_id_, filter);
  if (ctx_.store && s.stored_) ctx_.store->DeleteSession(s.client_id_);
  ctx_.metrics.sessions.fetch_sub(1, std::memory_order_relaxed);
  EraseSession(s);
}

Session& Worker::AddSession(std::unique_ptr<Session> session) {
  Session& s = *session;
  session_ids_.insert(s.client_id_);
  sessions_.emplace(s.client_id_, std::move(session));
  return s;
}

void Worker::EraseSession(Session& s) {
  session_ids_.erase(s.client_id_);
  // By iterator: the key is a view of the session's own client id.
  auto it = sessions_.find(s.client_id_);
  if (it != sessions_.end()) sessions_.erase(it);
}

void Worker::OnClosed(Connection& c) {
  // Called from the handle's close callback: libuv no longer refers to the
  // connection, so it can be freed here.
  std::erase(dirty_, &c);
  conns_.erase(c.id());
  if (shutting_down_ && conns_.empty()) StopLoop();
}

void Worker::StopLoop() {
  flush_.Reset();
  flush_before_poll_.Reset();
  housekeeping_.Reset();
  queue_wait_timer_.Reset();
  loop_.Stop();
}

void Worker::Housekeeping() {
  const uint64_t now = loop_.Now();
  const BrokerOptions& opt = ctx_.options;
  std::vector<Connection*> expired;
  for (auto& [id, conn] : conns_) {
    Connection& c = *conn;
    switch (c.state()) {
      case Connection::State::kAwaitingConnect:
        if (now - c.accepted_ms_ >= opt.connect_timeout_ms) expired.push_back(&c);
        break;
      case Connection::State::kConnected:
        // [MQTT-3.1.2-24]: one and a half times the keep alive.
        if (c.keepalive_s_ > 0 && now - c.last_rx_ms_ >= uint64_t{c.keepalive_s_} * 1500) {
          expired.push_back(&c);
        }
        break;
      case Connection::State::kClosing:
        if (now - c.closing_since_ms_ >= kCloseLingerMs) c.CloseHandle();
        break;
    }
  }
  // Thousands of sockets can time out together (a slowloris flood): one
  // line per 10 s and a count (BrokerContext::log_limits).
  BrokerContext::LogLimits& limits = ctx_.log_limits;
  for (Connection* c : expired) {
    if (c->state() == Connection::State::kAwaitingConnect) {
      const char* stage = c->AwaitedStage();
      LogLimiter& limiter =
          std::string_view(stage) == "CONNECT" ? limits.connect_timeout : limits.handshake_timeout;
      FERRY_LOG_LIMITED(limiter, "connection from %s did not complete its %s in time, closing",
                        c->peer().c_str(), stage);
      c->Close();
    } else {
      FERRY_LOG_LIMITED(limits.keepalive_timeout, "%s: keep alive timeout, closing",
                        c->Describe().c_str());
      DisconnectClient(*c, ReasonCode::kKeepAliveTimeout, "keep alive timeout");
    }
  }
  if (index_ == 0) limits.Flush();

  const uint64_t unix_now = UnixNowMs();
  std::vector<Session*> ended;
  for (auto& [id, session] : sessions_) {
    Session& s = *session;
    // A session moving between nodes has neither its Will nor its expiry
    // due: the move decides (session_transfer.cpp).
    if (s.transfer_ != nullptr) continue;
    if (s.pending_will_ && s.will_due_ms_ <= unix_now) {
      Will will = std::move(*s.pending_will_);
      s.pending_will_.reset();
      PublishWill(will, s.client_id_);
    }
    if (s.conn_ == nullptr && s.expiry_interval_s_ != 0xFFFFFFFF &&
        s.disconnected_at_ms_ + uint64_t{s.expiry_interval_s_} * 1000 <= unix_now) {
      ended.push_back(&s);
    }
  }
  for (Session* s : ended) {
    FERRY_DEBUG("session '%s' expired", s->client_id_.c_str());
    if (s->pending_will_) PublishWill(*s->pending_will_, s->client_id_);
    DropSession(*s);
  }

  if (index_ == 0) {
    for (const std::string& topic : ctx_.router.ExpireRetained(unix_now)) {
      if (ctx_.store) ctx_.store->DeleteRetained(topic);
    }
  }
}

size_t Worker::DisconnectClients(ReasonCode reason, std::string_view why) {
  std::vector<Connection*> connected;
  for (auto& [id, c] : conns_) {
    if (c->state() == Connection::State::kConnected && c->session_ != nullptr) {
      connected.push_back(c.get());
    }
  }
  for (Connection* c : connected) {
    // Not the client's doing: its session stays and its Will does not go,
    // as at a shutdown.
    c->disconnect_graceful_ = true;
    DisconnectClient(*c, reason, why);
  }
  return connected.size();
}

void Worker::Shutdown() {
  shutting_down_ = true;
  std::vector<Connection*> all;
  for (auto& [id, c] : conns_) all.push_back(c.get());
  for (Connection* c : all) {
    if (c->draining_) {
      c->CloseHandle();  // closed on our side already: no waiting for the peer
      continue;
    }
    if (c->session_ != nullptr) {
      Session* s = c->session_;
      // Server shutdown is not the client's fault: keep the session, don't
      // send the will; the session's expiry counts from now.
      c->disconnect_graceful_ = true;
      s->disconnected_at_ms_ = UnixNowMs();
    }
    DisconnectClient(*c, ReasonCode::kServerShuttingDown, "server shutting down");
  }
  if (conns_.empty()) StopLoop();
}

}  // namespace ferry::core
