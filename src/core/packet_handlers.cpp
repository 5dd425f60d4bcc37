// One handler per packet type a client sends after CONNECT.
#include <algorithm>

#include "core/broker_internal.h"
#include "core/log.h"
#include "core/topic.h"

namespace ferry::core {

namespace {

bool IsSuccess(ReasonCode r) { return static_cast<uint8_t>(r) < 0x80; }

// False if `filter` would be a new subscription of `s` past
// [mqtt] max_subscriptions_per_client; replacing one is always allowed.
bool RoomForSubscription(const Session& s, const std::string& filter) {
  const uint32_t limit = s.worker_.ctx().options.max_subscriptions_per_client;
  return limit == 0 || s.subscriptions_.size() < limit || s.subscriptions_.contains(filter);
}

// The options of the subscription granted for `t` on worker `worker`.
SubscriptionOptions GrantedOptions(const BrokerOptions& opt, const SubscribeTopic& t, bool v5,
                                   bool bridge, uint32_t sub_id, uint32_t worker) {
  SubscriptionOptions o;
  o.qos = std::min(t.qos, opt.max_qos);
  o.no_local = v5 && t.no_local;
  o.retain_as_published = v5 && t.retain_as_published;
  if (bridge) {
    // A mosquitto-style bridge (protocol level | 0x80, 3.1.1), on a
    // subscription that is not shared, gets what a v5 bridge asks for with
    // subscription options: what it published is not sent back to it, and
    // RETAIN is kept as published so retained messages propagate (as
    // eclipse/mosquitto src/subs.c does for is_bridge contexts).
    o.no_local = true;
    o.retain_as_published = true;
  }
  o.retain_handling = v5 ? t.retain_handling : 0;
  o.subscription_id = sub_id;
  o.worker = worker;
  return o;
}

}  // namespace

void Worker::OnPacket(Connection& c, Packet&& packet) {
  const PacketType type = TypeOf(packet);
  if (c.state() == Connection::State::kAwaitingConnect) {
    // [MQTT-3.1.0-1]: the first packet must be CONNECT.
    if (type != PacketType::kConnect) {
      return OnProtocolError(c, Status::Protocol(ReasonCode::kProtocolError,
                                                 "first packet is not CONNECT"));
    }
    return HandleConnect(c, std::get<Connect>(std::move(packet)));
  }
  switch (type) {
    case PacketType::kPublish:
      return HandlePublish(c, std::get<Publish>(std::move(packet)));
    case PacketType::kPuback:
    case PacketType::kPubrec:
    case PacketType::kPubrel:
    case PacketType::kPubcomp:
      return HandlePubAck(c, std::get<PubAck>(packet));
    case PacketType::kSubscribe:
      return HandleSubscribe(c, std::get<Subscribe>(std::move(packet)));
    case PacketType::kUnsubscribe:
      return HandleUnsubscribe(c, std::get<Unsubscribe>(std::move(packet)));
    case PacketType::kPingreq:
      return c.Send(Pingresp{});
    case PacketType::kDisconnect:
      return HandleDisconnect(c, std::get<::ferry::core::Disconnect>(packet));
    case PacketType::kAuth:
      return HandleAuth(c, std::get<Auth>(packet));
    case PacketType::kConnect:  // [MQTT-3.1.0-2]
      return OnProtocolError(c, Status::Protocol(ReasonCode::kProtocolError, "second CONNECT"));
    default:
      return OnProtocolError(c, Status::Protocol(ReasonCode::kProtocolError,
                                                 std::string("unexpected ") +
                                                     PacketTypeName(type) + " from a client"));
  }
}

void Worker::HandlePublish(Connection& c, Publish&& p) {
  const BrokerOptions& opt = ctx_.options;
  const bool v5 = IsV5(c.version_);
  Inc(ctx_.metrics.publish_received);
  Inc(ctx_.metrics.publish_received_qos[std::min<uint8_t>(p.qos, 2)]);
  if (p.qos > opt.max_qos) {
    return DisconnectClient(c, ReasonCode::kQosNotSupported, "QoS not supported");
  }
  if (p.retain && !opt.retain_available) {
    return DisconnectClient(c, ReasonCode::kRetainNotSupported, "retain not supported");
  }
  if (v5 && p.props.topic_alias) {
    uint16_t alias = *p.props.topic_alias;
    // [MQTT-3.3.2-9] [MQTT-3.3.2-10]: 0 and values above our maximum are errors.
    if (alias == 0 || alias > opt.topic_alias_maximum) {
      return DisconnectClient(c, ReasonCode::kTopicAliasInvalid, "topic alias out of range");
    }
    if (p.topic.empty()) {
      auto it = c.aliases().in.find(alias);
      if (it == c.aliases().in.end()) {
        return DisconnectClient(c, ReasonCode::kProtocolError, "unknown topic alias");
      }
      p.topic = it->second;
    } else {
      c.aliases().in[alias] = p.topic;
    }
  }
  if (Status st = ValidateTopicName(p.topic); !st.ok()) {
    return OnProtocolError(c, st);  // [MQTT-3.3.2-2] wildcards in a topic name
  }
  if (p.qos > 0 && v5) {
    // Flow control [MQTT-3.3.4-9]: more unacknowledged QoS 1/2 PUBLISHes
    // than our receive maximum is an error. 3.1.1 has no such limit; its
    // packet identifiers bound what a client can have open.
    if (c.inbound_unacked_ >= opt.receive_maximum) {
      return DisconnectClient(c, ReasonCode::kReceiveMaximumExceeded, "receive maximum exceeded");
    }
  }
  Session& s = *c.session_;
  if (p.qos == 2 && s.Qos2Received(p.packet_id)) {
    // A retransmission of a QoS 2 message we already took: acknowledge it
    // again, do not deliver it twice [MQTT-4.3.3-10]. With a persistent
    // session, only once the store has it: the first attempt may have
    // failed to commit (RefuseUnstored), and a commit now covers it.
    if (!s.persistent_ || !ctx_.store) return c.SendAck(PacketType::kPubrec, p.packet_id);
    ctx_.store->Sync([this, id = c.id(), packet_id = p.packet_id](const Status& st) {
      const ReasonCode rc = StoreFailureReason(st);
      loop_.Post([this, id, packet_id, rc] {
        Connection* conn = FindConnection(id);
        if (conn == nullptr || conn->state() != Connection::State::kConnected) return;
        if (rc != ReasonCode::kSuccess) return RefuseUnstored(*conn, packet_id, true, rc);
        conn->SendAck(PacketType::kPubrec, packet_id);
      });
    });
    return;
  }

  const Acl* acl = CurrentAcl();
  if (acl && !acl->CanPublish(s.username_, s.client_id_, p.topic)) {
    Inc(ctx_.metrics.dropped_not_authorized);
    FERRY_DEBUG("%s: publish to '%s' denied", c.Describe().c_str(), p.topic.c_str());
    // 3.1.1 has no way to say no: acknowledge and drop. v5 answers 0x87.
    ReasonCode rc = v5 ? ReasonCode::kNotAuthorized : ReasonCode::kSuccess;
    if (p.qos == 1) c.Send(PubAck{PacketType::kPuback, p.packet_id, rc, {}});
    if (p.qos == 2) {
      c.Send(PubAck{PacketType::kPubrec, p.packet_id, rc, {}});
      if (!v5) s.flight().qos2_inbound.insert(p.packet_id);
    }
    return;
  }

  auto msg = std::make_shared<Message>();
  msg->topic = std::move(p.topic);
  msg->payload = std::move(p.payload);
  msg->qos = p.qos;
  msg->retain = p.retain;
  msg->received_at_ms = UnixNowMs();
  msg->origin_client = s.client_id_;
  if (v5) TakeMessageProperties(std::move(p.props), *msg);

  RouteDone done;
  if (p.qos > 0) {
    ++c.inbound_unacked_;
    if (p.qos == 2) {
      s.flight().qos2_inbound.insert(p.packet_id);
      if (s.persistent_ && ctx_.store) ctx_.store->PutQos2Inbound(s.client_id_, p.packet_id);
    }
    // The acknowledgement goes out once the message is safe: handed to
    // every subscriber, and committed to disk where it was stored.
    // Connection id, QoS and packet identifier share one word, so that the
    // callback fits std::function's inline storage and costs no allocation
    // per message (connection ids stay far below 2^47).
    const uint64_t ack = c.id() << 17 | uint64_t{p.qos == 2} << 16 | p.packet_id;
    done = [this, ack](ReasonCode rc) {
      Connection* conn = FindConnection(ack >> 17);
      if (conn == nullptr || conn->state() != Connection::State::kConnected) return;
      const auto packet_id = static_cast<uint16_t>(ack & 0xFFFF);
      if (rc != ReasonCode::kSuccess) return RefuseUnstored(*conn, packet_id, ack >> 16 & 1, rc);
      if ((ack >> 16 & 1) == 0) {
        if (conn->inbound_unacked_ > 0) --conn->inbound_unacked_;
        conn->SendAck(PacketType::kPuback, packet_id);
      } else {
        conn->SendAck(PacketType::kPubrec, packet_id);
      }
    };
  }
  RouteMessage(std::move(msg), std::move(done));
}

ReasonCode Worker::StoreFailureReason(const Status& st) {
  if (st.ok()) return ReasonCode::kSuccess;
  // A full disk is quota exceeded; anything else unspecified. Both are valid
  // in PUBACK, PUBREC and DISCONNECT.
  return st.reason() == ReasonCode::kQuotaExceeded ? ReasonCode::kQuotaExceeded
                                                   : ReasonCode::kUnspecifiedError;
}

void Worker::RefuseUnstored(Connection& c, uint16_t packet_id, bool qos2, ReasonCode rc) {
  Inc(ctx_.metrics.store_refused);
  if (IsV5(c.version_)) {
    // v5 says so. A PUBREC of 0x80 or more ends the QoS 2 exchange: the
    // packet identifier is free again and no PUBREL follows.
    if (c.inbound_unacked_ > 0) --c.inbound_unacked_;
    Session* s = c.session_;
    if (qos2 && s != nullptr && s->ForgetQos2Received(packet_id) && s->persistent_ && ctx_.store) {
      ctx_.store->DeleteQos2Inbound(s->client_id_, packet_id);
    }
    PubAck refusal{qos2 ? PacketType::kPubrec : PacketType::kPuback, packet_id, rc, {}};
    if (c.request_problem_info_) {
      refusal.props.reason_string = "the durable store could not keep the message";
    }
    c.Send(refusal);
    return;
  }
  // 3.1.1 and 3.1 cannot say no: no acknowledgement, and the connection is
  // closed, so that the client publishes the message again (DUP) once it is
  // back. A QoS 2 identifier stays known: that retransmission gets its
  // PUBREC once the store has committed the first attempt.
  DisconnectClient(c, rc, "the durable store could not keep a message");
}

void Worker::HandlePubAck(Connection& c, const PubAck& p) {
  Session& s = *c.session_;
  switch (p.type) {
    case PacketType::kPuback:
      return s.OnPuback(p);
    case PacketType::kPubrec:
      return s.OnPubrec(p);
    case PacketType::kPubcomp:
      return s.OnPubcomp(p);
    case PacketType::kPubrel: {
      // Releases a QoS 2 message we received [MQTT-4.3.3-11].
      bool known = s.ForgetQos2Received(p.packet_id);
      if (known) {
        if (c.inbound_unacked_ > 0) --c.inbound_unacked_;
        if (s.persistent_ && ctx_.store) ctx_.store->DeleteQos2Inbound(s.client_id_, p.packet_id);
      }
      if (known) {
        c.SendAck(PacketType::kPubcomp, p.packet_id);
      } else {
        c.Send(PubAck{PacketType::kPubcomp, p.packet_id, ReasonCode::kPacketIdentifierNotFound, {}});
      }
      return;
    }
    default:
      return;
  }
}

void Worker::HandleSubscribe(Connection& c, Subscribe&& p) {
  const BrokerOptions& opt = ctx_.options;
  const bool v5 = IsV5(c.version_);
  Session& s = *c.session_;
  uint32_t sub_id = 0;
  if (!p.props.subscription_identifiers.empty()) sub_id = p.props.subscription_identifiers[0];
  const Acl* acl = CurrentAcl();

  Suback ack;
  ack.packet_id = p.packet_id;
  std::vector<std::pair<std::string, SubscriptionOptions>> added;
  std::vector<bool> existed;
  for (const SubscribeTopic& t : p.topics) {
    auto shared = ParseSharedFilter(t.filter);
    ReasonCode rc = ReasonCode::kSuccess;
    std::string_view plain = t.filter;
    if (!shared.ok()) {
      rc = ReasonCode::kTopicFilterInvalid;
    } else if (shared.value()) {
      plain = shared.value()->filter;
      if (!opt.shared_subscription_available) rc = ReasonCode::kSharedSubscriptionsNotSupported;
      // [MQTT-3.8.3-4]: No Local on a shared subscription is a protocol error.
      if (t.no_local) {
        return DisconnectClient(c, ReasonCode::kProtocolError, "no local on a shared subscription");
      }
    }
    if (rc == ReasonCode::kSuccess && !ValidateTopicFilter(plain).ok()) {
      rc = ReasonCode::kTopicFilterInvalid;
    }
    if (rc == ReasonCode::kSuccess && !opt.wildcard_subscription_available && HasWildcard(plain)) {
      rc = ReasonCode::kWildcardSubscriptionsNotSupported;
    }
    if (rc == ReasonCode::kSuccess && sub_id != 0 && !opt.subscription_identifier_available) {
      rc = ReasonCode::kSubscriptionIdentifiersNotSupported;
    }
    if (rc == ReasonCode::kSuccess && acl && !acl->CanSubscribe(s.username_, s.client_id_, plain)) {
      rc = ReasonCode::kNotAuthorized;
    }
    if (rc == ReasonCode::kSuccess && !RoomForSubscription(s, t.filter)) {
      Inc(ctx_.metrics.subscriptions_refused);
      rc = ReasonCode::kQuotaExceeded;  // 3.1.1: 0x80 Failure
    }
    if (!IsSuccess(rc)) {
      FERRY_DEBUG("%s: subscribe to '%s' refused: %s", c.Describe().c_str(), t.filter.c_str(),
                  ReasonCodeName(rc));
      ack.reasons.push_back(rc);
      continue;
    }
    const SubscriptionOptions o =
        GrantedOptions(opt, t, v5, c.bridge_ && !shared.value(), sub_id, index_);
    bool is_new = AddSubscription(s, t.filter, o);
    ack.reasons.push_back(static_cast<ReasonCode>(o.qos));
    // Shared subscriptions get no retained messages (MQTT 5.0 section 4.8.2).
    if (!shared.value()) {
      added.emplace_back(t.filter, o);
      existed.push_back(!is_new);
    }
  }
  auto send_retained = [this, added = std::move(added), existed = std::move(existed)](
                            Connection& conn) {
    if (!ctx_.options.retain_available || conn.session_ == nullptr) return;
    for (size_t i = 0; i < added.size(); ++i) {
      const SubscriptionOptions& o = added[i].second;
      // Retain handling [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11].
      if (o.retain_handling == 2 || (o.retain_handling == 1 && existed[i])) continue;
      SendRetained(*conn.session_, added[i].first, o);
    }
  };
  // [MQTT-3.8.4-1]
  SendWhenDurable(c, std::move(ack), s.persistent_ && ctx_.store, std::move(send_retained));
}

void Worker::SendWhenDurable(Connection& c, Packet ack, bool wait_for_store,
                             std::function<void(Connection&)> then) {
  if (!wait_for_store) {
    c.Send(ack);
    if (then) then(c);
    return;
  }
  // The acknowledgement promises that the change survives a SIGKILL, so it
  // waits for the commit. Matching messages may go out meanwhile, which the
  // specification allows (MQTT 3.1.1 section 3.8.4). Commits complete in
  // submission order, so acknowledgements keep the order of the requests.
  ctx_.store->Sync(
      [this, id = c.id(), ack = std::move(ack), then = std::move(then)](const Status& st) mutable {
        const ReasonCode rc = StoreFailureReason(st);
        loop_.Post([this, id, ack = std::move(ack), then = std::move(then), rc] {
          Connection* conn = FindConnection(id);
          if (conn == nullptr || conn->state() != Connection::State::kConnected) return;
          if (rc != ReasonCode::kSuccess) {
            // The change is not safe: no SUBACK or UNSUBACK says it is. The
            // client learns it from the closed connection (v5: DISCONNECT with
            // the reason) and subscribes again once it is back.
            Inc(ctx_.metrics.store_refused);
            return DisconnectClient(*conn, rc,
                                    "the durable store could not keep a subscription change");
          }
          conn->Send(ack);
          if (then) then(*conn);
        });
      });
}

bool Worker::AddSubscription(Session& s, const std::string& filter, const SubscriptionOptions& o) {
  bool is_new = ctx_.router.Subscribe(s.client_id_, filter, o);
  s.subscriptions_[filter] = o;
  if (s.persistent_ && ctx_.store) {
    ctx_.store->PutSubscription(
        s.client_id_, StoredSubscription{filter, o.qos, o.no_local, o.retain_as_published,
                                         o.retain_handling, o.subscription_id});
  }
  return is_new;
}

bool Worker::RemoveSubscription(Session& s, const std::string& filter) {
  bool existed = ctx_.router.Unsubscribe(s.client_id_, filter);
  s.subscriptions_.erase(filter);
  if (existed && s.persistent_ && ctx_.store) ctx_.store->DeleteSubscription(s.client_id_, filter);
  return existed;
}

void Worker::SendRetained(Session& s, const std::string& filter, const SubscriptionOptions& o) {
  const Acl* acl = CurrentAcl();
  for (const MessagePtr& m : ctx_.router.MatchRetained(filter, UnixNowMs())) {
    if (acl && !acl->CanReceive(s.username_, s.client_id_, m->topic)) continue;
    std::vector<uint32_t> ids;
    if (o.subscription_id != 0) ids.push_back(o.subscription_id);
    // Retained messages sent for a new subscription carry RETAIN 1 [MQTT-3.3.1-8].
    // Every one of them, however many: queued rather than dropped when they
    // outgrow the output buffer or the queue, and sent as the client reads.
    s.Deliver(m, std::min(o.qos, m->qos), true, std::move(ids), OverLimit::kQueue);
  }
}

void Worker::HandleUnsubscribe(Connection& c, Unsubscribe&& p) {
  Session& s = *c.session_;
  Unsuback ack;
  ack.packet_id = p.packet_id;
  for (const std::string& filter : p.filters) {
    bool existed = RemoveSubscription(s, filter);
    ack.reasons.push_back(existed ? ReasonCode::kSuccess : ReasonCode::kNoSubscriptionExisted);
  }
  // [MQTT-3.10.4-4]. Waits for the store like SUBACK, also so that an
  // UNSUBACK never overtakes the SUBACK of an earlier SUBSCRIBE.
  SendWhenDurable(c, std::move(ack), s.persistent_ && ctx_.store, nullptr);
}

void Worker::HandleDisconnect(Connection& c, const ::ferry::core::Disconnect& p) {
  if (IsV5(c.version_) && p.props.session_expiry_interval) {
    // [MQTT-3.14.2-2]: a session that was to end on disconnect cannot be
    // given an expiry now.
    if (c.session_expiry_s_ == 0 && *p.props.session_expiry_interval != 0) {
      return DisconnectClient(c, ReasonCode::kProtocolError, "session expiry set on DISCONNECT");
    }
    c.session_expiry_s_ = *p.props.session_expiry_interval;
    if (c.session_ != nullptr) c.session_->persistent_ = c.session_expiry_s_ != 0 &&
                                                       ctx_.options.persistence;
  }
  // [MQTT-3.14.4-3]: a normal DISCONNECT discards the will; 0x04 keeps it.
  c.disconnect_graceful_ = p.reason != ReasonCode::kDisconnectWithWill;
  DisconnectClient(c, ReasonCode::kSuccess, "");
}

void Worker::HandleAuth(Connection& c, const Auth& p) {
  // Enhanced authentication is not offered; a CONNECT that asked for it was
  // refused, so any AUTH is unexpected.
  if (p.props.authentication_method) {
    return DisconnectClient(c, ReasonCode::kBadAuthenticationMethod,
                      "authentication method not supported");
  }
  DisconnectClient(c, ReasonCode::kProtocolError, "AUTH without authentication method");
}

}  // namespace ferry::core
