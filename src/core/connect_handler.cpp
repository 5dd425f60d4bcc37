// CONNECT: validation, authentication, the hand-over of the socket to the
// worker that owns the client id, takeover and session resume, CONNACK.
#include <random>
#include <utility>

#include "core/broker_internal.h"
#include "core/log.h"
#include "core/topic.h"

namespace ferry::core {

namespace {

constexpr uint32_t kNeverExpires = 0xFFFFFFFF;

std::string AssignClientId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char kHex[] = "0123456789abcdef";
  std::string id = "ferry-";
  uint64_t r = rng();
  for (int i = 0; i < 16; ++i) id += kHex[(r >> (i * 4)) & 0xF];
  return id;
}

// Refuses the CONNECT with `reason` and closes [MQTT-3.2.2-6]. A v5 client
// gets a CONNACK with the reason [MQTT-3.2.2-7]; a 3.1.1 or 3.1 client gets
// the matching return code, or, for a reason those versions have no code for
// (an invalid Will Topic, a Will QoS or RETAIN the server does not support),
// no CONNACK at all: the network connection is closed [MQTT-3.1.4-1]. Logs
// through `limiter` where a flood of clients could be refused alike.
void Refuse(Connection& c, ReasonCode reason, const char* why, LogLimiter* limiter = nullptr) {
  if (limiter != nullptr) {
    FERRY_LOG_LIMITED(*limiter, "%s: connection refused: %s", c.Describe().c_str(), why);
  } else {
    FERRY_INFO("%s: connection refused: %s", c.Describe().c_str(), why);
  }
  if (!IsV5(c.version_) && !V3ConnackReturnCode(reason)) {
    c.Close();
    return;
  }
  Connack ack;
  ack.reason = reason;
  if (IsV5(c.version_) && c.request_problem_info_) ack.props.reason_string = why;
  c.Send(ack);
  c.Close();
}

}  // namespace

uint32_t BrokerContext::OwnerOf(std::string_view client_id) const {
  return static_cast<uint32_t>(std::hash<std::string_view>{}(client_id) % workers.size());
}

void Worker::HandleConnect(Connection& c, Connect&& p) {
  const BrokerOptions& opt = ctx_.options;
  c.version_ = p.version;
  c.SetClientId(p.client_id);
  c.request_problem_info_ = p.props.request_problem_information.value_or(1) != 0;

  if (p.client_id.empty()) {
    // [MQTT-3.1.3-8]: 3.1.1 allows an empty id only with clean session;
    // 3.1 not at all. v5 gets an assigned id [MQTT-3.1.3-6].
    if (!opt.allow_zero_length_clientid || p.version == ProtocolVersion::kV31 ||
        (p.version == ProtocolVersion::kV311 && !p.clean_start)) {
      return Refuse(c, ReasonCode::kClientIdentifierNotValid, "empty client identifier");
    }
    p.client_id = AssignClientId();
    if (IsV5(p.version)) p.props.assigned_client_identifier = p.client_id;
    c.SetClientId(p.client_id);
  }
  if (p.client_id.size() > opt.max_client_id_length ||
      (p.version == ProtocolVersion::kV31 && p.client_id.size() > 23 &&
       opt.max_client_id_length < 65535)) {
    return Refuse(c, ReasonCode::kClientIdentifierNotValid, "client identifier too long");
  }
  if (!IsV5(p.version) && p.keepalive_s > opt.max_keepalive_s) {
    // As mosquitto does: 3.1.1 has no Server Keep Alive to tell the client
    // to ping sooner, and holding it to a shorter one would drop it later.
    return Refuse(c, ReasonCode::kClientIdentifierNotValid, "keep alive above max_keepalive");
  }
  if (IsV5(p.version) && p.props.authentication_method) {
    return Refuse(c, ReasonCode::kBadAuthenticationMethod, "authentication method not supported");
  }
  if (p.will) {
    if (!ValidateTopicName(p.will->topic).ok()) {
      return Refuse(c, ReasonCode::kTopicNameInvalid, "invalid will topic");
    }
    if (p.will->qos > opt.max_qos) {
      return Refuse(c, ReasonCode::kQosNotSupported, "will QoS not supported");
    }
    if (p.will->retain && !opt.retain_available) {
      return Refuse(c, ReasonCode::kRetainNotSupported, "retained will not supported");
    }
  }

  // A listener with use_cn_as_username authenticates by the client
  // certificate: its CN is the username, and nothing else is checked.
  if (c.transport_ && c.transport_->cn_as_username()) {
    if (!c.transport_->certificate_cn()) {
      return Refuse(c, ReasonCode::kNotAuthorized, "no verified client certificate with a CN");
    }
    p.username = *c.transport_->certificate_cn();
    p.password.reset();
    AfterAuthentication(c, std::move(p));
    return;
  }

  // Authentication. Checking a password hash costs milliseconds of CPU, so
  // it runs on the libuv thread pool; the connection reads nothing meanwhile.
  auto passwords = ctx_.Passwords();
  if (p.username && passwords) {
    if (!p.password) {
      return Refuse(c, ReasonCode::kBadUserNameOrPassword, "bad user name or password");
    }
    CheckPasswordThen(c, std::move(passwords), std::move(p));
    return;
  }
  if (!opt.allow_anonymous) {
    return Refuse(
        c, ReasonCode::kNotAuthorized,
        p.username ? "no password file to check credentials" : "anonymous access not allowed");
  }
  AfterAuthentication(c, std::move(p));
}

namespace {

struct PasswordCheck {
  uv_work_t req;
  Worker* worker;
  uint64_t conn_id;
  std::shared_ptr<const PasswordFile> passwords;
  Connect connect;
  bool ok = false;
};

}  // namespace

void Worker::CheckPasswordThen(Connection& c, std::shared_ptr<const PasswordFile> passwords,
                               Connect&& p) {
  auto* check = new PasswordCheck{};
  check->req.data = check;
  check->worker = this;
  check->conn_id = c.id();
  check->passwords = std::move(passwords);
  check->connect = std::move(p);
  c.PauseReading();
  int rc = uv_queue_work(
      loop_.get(), &check->req,
      [](uv_work_t* req) {
        auto* ck = static_cast<PasswordCheck*>(req->data);
        ck->ok = ck->passwords->Check(*ck->connect.username, *ck->connect.password);
      },
      [](uv_work_t* req, int status) {
        std::unique_ptr<PasswordCheck> ck(static_cast<PasswordCheck*>(req->data));
        Connection* conn = ck->worker->FindConnection(ck->conn_id);
        if (status != 0 || conn == nullptr ||
            conn->state() != Connection::State::kAwaitingConnect) {
          return;  // the client went away while we checked
        }
        if (!ck->ok) {
          return Refuse(*conn, ReasonCode::kBadUserNameOrPassword, "bad user name or password");
        }
        ck->worker->AfterAuthentication(*conn, std::move(ck->connect));
        if (conn->state() == Connection::State::kConnected && !conn->detached_)
          conn->ResumeReading();
      });
  if (rc != 0) {
    delete check;
    Refuse(c, ReasonCode::kServerUnavailable, "cannot check password");
  }
}

void Worker::AfterAuthentication(Connection& c, Connect&& p) {
  uint32_t owner = ctx_.OwnerOf(p.client_id);
  if (owner == index_) {
    CompleteConnect(c, std::move(p));
    return;
  }
  // Hand the socket, the CONNECT, any bytes read after it and the transport
  // (TLS or WebSocket state, the PROXY address) to the owner.
  FERRY_DEBUG("%s: moving from worker %u to worker %u, which owns its session",
              c.Describe().c_str(), index_, owner);
  auto h = std::make_shared<Connection::HandOver>(c.Detach());
  if (h->fd < 0) {
    // No descriptor for the dup: the client is told to come back later
    // rather than losing its connection without an answer.
    if (c.state() != Connection::State::kClosing) {
      Refuse(c, ReasonCode::kServerBusy, "no free descriptor to move it to its session's worker",
             &ctx_.log_limits.hand_over_failed);
    }
    return;
  }
  Worker* target = ctx_.workers[owner].get();
  target->loop().Post([target, h, p = std::move(p)]() mutable {
    target->AdoptConnected(std::move(*h), std::move(p));
  });
}

void Worker::AdoptConnected(Connection::HandOver h, Connect&& p) {
  if (shutting_down_) {
    ctx_.ReleaseListenerSlot(h.listener);
    return;  // h closes the socket
  }
  uint64_t id = next_conn_id_++;
  auto conn = std::make_unique<Connection>(*this, id, std::move(h.listener));
  Connection* c = conn.get();
  conns_.emplace(id, std::move(conn));
  c->SetTransport(std::move(h.transport));
  c->wire_out_ = std::move(h.unwritten);
  Status st = c->Open(std::exchange(h.fd, -1), std::move(h.peer), "", /*start_reading=*/false);
  if (!st.ok()) {
    FERRY_WARN("cannot adopt connection: %s", st.ToString().c_str());
    c->Close();
    return;
  }
  c->version_ = p.version;
  c->SetClientId(p.client_id);
  c->request_problem_info_ = p.props.request_problem_information.value_or(1) != 0;
  CompleteConnect(*c, std::move(p), std::move(h.pending));
}

// A CONNECT waiting for the session hook's answer.
struct Worker::PendingConnect {
  Connect connect;
  std::optional<std::string> adopted;  // see CompleteConnect
};

void Worker::CompleteConnect(Connection& c, Connect&& p, std::optional<std::string> adopted) {
  std::shared_ptr<SessionHook> hook = ctx_.session_hook.load(std::memory_order_acquire);
  if (hook == nullptr) {
    FinishConnect(c, std::move(p), nullptr);
    if (adopted && c.state() == Connection::State::kConnected) c.StartReading(std::move(*adopted));
    return;
  }
  auto pc = std::make_shared<PendingConnect>();
  pc->connect = std::move(p);
  pc->adopted = std::move(adopted);
  SessionClaimRequest request{pc->connect.client_id, pc->connect.clean_start};
  std::optional<SessionClaim> now =
      hook->Claim(request, [this, pc, id = c.id()](SessionClaim claim) {
        loop_.Post([this, pc, id, claim = std::move(claim)]() mutable {
          OnClaimed(id, *pc, std::move(claim), /*later=*/true);
        });
      });
  if (now) {
    OnClaimed(c.id(), *pc, std::move(*now), /*later=*/false);
    return;
  }
  // The connection reads nothing until the hook answered.
  if (!pc->adopted) c.PauseReading();
}

void Worker::OnClaimed(uint64_t conn_id, PendingConnect& pc, SessionClaim claim, bool later) {
  std::shared_ptr<SessionHook> hook = ctx_.session_hook.load(std::memory_order_acquire);
  Connection* c = FindConnection(conn_id);
  const std::string client_id = pc.connect.client_id;
  if (c == nullptr || c->state() != Connection::State::kAwaitingConnect || shutting_down_) {
    // The client went away meanwhile. A session that moved here stays,
    // offline, for the client to find on its next CONNECT.
    if (claim.outcome == SessionClaim::Outcome::kImported && claim.session && !shutting_down_) {
      if (Session* old = FindSession(client_id); old != nullptr && old->conn_ == nullptr) {
        DropSession(*old);
      }
      if (FindSession(client_id) == nullptr) {
        Session& s = Install(std::move(*claim.session), /*write=*/ctx_.options.persistence);
        s.disconnected_at_ms_ = UnixNowMs();
        if (!s.persistent_ && s.stored_) {
          ctx_.store->DeleteSession(s.client_id_);
          s.stored_ = false;
        }
      }
    }
    if (hook) hook->Connected(client_id, claim.id, false);
    return;
  }
  if (claim.outcome == SessionClaim::Outcome::kBusy) {
    Refuse(*c, ReasonCode::kServerBusy,
           claim.why.empty() ? "another connection of this client is being set up"
                             : claim.why.c_str());
  } else {
    FinishConnect(*c, std::move(pc.connect), &claim);
  }
  const bool connected = c->state() == Connection::State::kConnected;
  if (hook) hook->Connected(client_id, claim.id, connected);
  if (!connected) return;
  if (pc.adopted) {
    c->StartReading(std::move(*pc.adopted));
  } else if (later) {
    c->ResumeReading();
  }
}

void Worker::FinishConnect(Connection& c, Connect&& p, SessionClaim* claim) {
  const BrokerOptions& opt = ctx_.options;
  c.clean_start_ = p.clean_start;
  c.bridge_ = p.bridge;

  // Keep alive: v5 clients are told the server's value [MQTT-3.2.2-21]; a
  // 3.1.1 client cannot be told, so one asking for more than the maximum was
  // refused in HandleConnect.
  Connack ack;
  c.keepalive_s_ = p.keepalive_s;
  if (IsV5(p.version) && opt.max_keepalive_s < 65535 &&
      (p.keepalive_s == 0 || p.keepalive_s > opt.max_keepalive_s)) {
    c.keepalive_s_ = opt.max_keepalive_s;
    ack.props.server_keep_alive = opt.max_keepalive_s;
  }

  // Session expiry: 3.1.1 clean session 0 keeps the session forever.
  uint32_t expiry = 0;
  if (IsV5(p.version)) {
    expiry = p.props.session_expiry_interval.value_or(0);
  } else if (!p.clean_start) {
    expiry = kNeverExpires;
  }
  if (opt.max_session_expiry_s != 0 && expiry > opt.max_session_expiry_s) {
    expiry = opt.max_session_expiry_s;
    if (IsV5(p.version)) ack.props.session_expiry_interval = expiry;
  }
  c.session_expiry_s_ = expiry;
  c.will_ = p.will ? std::make_unique<Will>(std::move(*p.will)) : nullptr;

  if (IsV5(p.version)) {
    c.client_receive_max_ = p.props.receive_maximum.value_or(65535);
    c.client_max_packet_ = p.props.maximum_packet_size.value_or(268435460);
    c.client_topic_alias_max_ = p.props.topic_alias_maximum.value_or(0);
  }

  // Takeover [MQTT-3.1.4-3]: the old connection goes, with 0x8E for v5.
  Session* s = FindSession(p.client_id);
  if (s != nullptr && s->conn_ != nullptr) {
    Connection& old = *s->conn_;
    FERRY_INFO("%s: session taken over by a new connection from %s", old.Describe().c_str(),
               c.peer().c_str());
    DisconnectClient(old, ReasonCode::kSessionTakenOver, "session taken over");
    s = FindSession(p.client_id);  // a non-persistent session ended just now
  }
  if (claim != nullptr && claim->outcome == SessionClaim::Outcome::kImported && claim->session) {
    // The session was on another node and moved here; a copy here is
    // older (this node was apart from the cluster when the client came
    // back elsewhere) and goes without its Will.
    if (s != nullptr) DropSession(*s);
    s = &Install(std::move(*claim->session), /*write=*/opt.persistence && expiry != 0);
    s->StartImport();
  }
  bool session_present = false;
  if (s != nullptr && p.clean_start) {
    if (s->pending_will_) {
      // The old session ends now, so its delayed will goes now.
      PublishWill(*s->pending_will_, s->client_id_);
    }
    DropSession(*s);
    s = nullptr;
  }
  if (s != nullptr) {
    session_present = true;    // [MQTT-3.2.2-2]
    s->pending_will_.reset();  // a new connection cancels a delayed will
  } else {
    auto owned = std::make_unique<Session>(*this, p.client_id);
    s = owned.get();
    AddSession(std::move(owned));
    IncGauge(ctx_.metrics.sessions, ctx_.metrics.sessions_max);
  }
  s->conn_ = &c;
  s->connected_at_ms_ = UnixNowMs();
  c.AttachSession(s);
  s->username_ = p.username;
  s->expiry_interval_s_ = expiry;
  s->disconnected_at_ms_ = 0;
  bool was_persistent = s->persistent_;
  s->persistent_ = expiry != 0 && opt.persistence;
  if (was_persistent && !s->persistent_ && s->stored_) {
    ctx_.store->DeleteSession(s->client_id_);
    s->stored_ = false;
  }
  if (s->persistent_) StoreSession(*s);

  ack.session_present = session_present;
  ack.reason = ReasonCode::kSuccess;
  if (IsV5(p.version)) {
    ack.props.receive_maximum = opt.receive_maximum;
    if (opt.max_qos < 2) ack.props.maximum_qos = opt.max_qos;
    if (!opt.retain_available) ack.props.retain_available = 0;
    ack.props.maximum_packet_size = opt.max_packet_size;
    ack.props.assigned_client_identifier = p.props.assigned_client_identifier;
    ack.props.topic_alias_maximum = opt.topic_alias_maximum;
    if (!opt.wildcard_subscription_available) ack.props.wildcard_subscription_available = 0;
    if (!opt.subscription_identifier_available) ack.props.subscription_identifier_available = 0;
    if (!opt.shared_subscription_available) ack.props.shared_subscription_available = 0;
    for (const auto& [key, value] : p.props.user_properties) {
      if (key != kBridgeNodeProperty) continue;
      FERRY_INFO("%s is a bridge from node %s", c.Describe().c_str(), value.c_str());
      ack.props.user_properties.emplace_back(std::string(kNodeNameProperty), opt.node_name);
      break;
    }
  }
  c.state_ = Connection::State::kConnected;
  c.Send(ack);
  IncGauge(ctx_.metrics.clients_connected, ctx_.metrics.clients_connected_max);
  FERRY_DEBUG("%s connected (v%d, clean start %d, keep alive %u, expiry %u, session present %d)",
              c.Describe().c_str(), static_cast<int>(p.version), p.clean_start, c.keepalive_s_,
              expiry, session_present);
  if (session_present) {
    s->ResendInflight();
    s->Pump();
  }
}

}  // namespace ferry::core
