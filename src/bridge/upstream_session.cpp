#include "bridge/upstream_session.h"

#include <algorithm>

namespace ferry::bridge {

namespace {


using core::PacketType;
using core::ProtocolVersion;
using ferry::Status;

bool IsFailure(ReasonCode r) { return static_cast<uint8_t>(r) >= 0x80; }

}  // namespace

UpstreamSession::UpstreamSession(UpstreamOptions options)
    : options_(std::move(options)), version_(options_.version) {}

void UpstreamSession::Send(const core::Packet& packet) { core::Encode(packet, version_, out_); }

void UpstreamSession::Connect(uint64_t now_ms) {
  version_ = options_.version;
  connected_ = false;
  connack_pending_ = true;
  out_.clear();
  in_.clear();
  in_pos_ = 0;
  inbound_.clear();
  subscribe_ids_.clear();
  ping_sent_ms_ = 0;
  last_tx_ms_ = last_rx_ms_ = now_ms;
  window_ = 0;
  // Without a session to resume, nothing of the old one matters.
  resumed_ = false;
  if (options_.clean_start) ForgetSession();

  core::Connect c;
  c.version = options_.version;
  c.bridge = options_.bridge_bit && options_.version != ProtocolVersion::kV5;
  c.clean_start = options_.clean_start;
  c.keepalive_s = options_.keepalive_s;
  c.client_id = options_.client_id;
  c.will = options_.will;
  c.username = options_.username;
  c.password = options_.password;
  if (IsV5(options_.version)) {
    if (options_.session_expiry_s != 0) c.props.session_expiry_interval = options_.session_expiry_s;
    c.props.receive_maximum = options_.receive_maximum;
    if (!options_.node_name.empty()) {
      c.props.user_properties.emplace_back(std::string(core::kBridgeNodeProperty),
                                           options_.node_name);
    }
  }
  Send(c);
}

Status UpstreamSession::Feed(std::span<const uint8_t> bytes, uint64_t now_ms,
                             std::vector<UpstreamEvent>& events) {
  if (!bytes.empty()) last_rx_ms_ = now_ms;
  in_.insert(in_.end(), bytes.begin(), bytes.end());
  Status error;
  while (error.ok()) {
    std::span<const uint8_t> rest(in_.data() + in_pos_, in_.size() - in_pos_);
    auto header = core::ParseFixedHeader(rest, 268435455 + 5);
    if (!header.ok()) return header.status();
    if (!header.value() || rest.size() < header.value()->total_length()) break;
    const core::FixedHeader h = *header.value();
    auto packet = core::Decode(h, rest.subspan(h.header_length, h.remaining_length), version_);
    in_pos_ += h.total_length();
    if (!packet.ok()) return packet.status();
    HandlePacket(std::move(packet).value(), events, &error);
  }
  // Keep the unparsed tail only.
  if (in_pos_ > 0) {
    in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(in_pos_));
    in_pos_ = 0;
  }
  return error;
}

void UpstreamSession::HandlePacket(core::Packet&& packet, std::vector<UpstreamEvent>& events,
                                   Status* error) {
  const PacketType type = core::TypeOf(packet);
  if (connack_pending_ && type != PacketType::kConnack) {
    *error = Status::Protocol(ReasonCode::kProtocolError,
                              std::string("expected CONNACK, got ") + core::PacketTypeName(type));
    return;
  }
  switch (type) {
    case PacketType::kConnack:
      return OnConnack(std::get<core::Connack>(std::move(packet)), events, error);
    case PacketType::kPublish:
      return OnPublish(std::get<core::Publish>(std::move(packet)), events, error);
    case PacketType::kPuback:
    case PacketType::kPubrec:
    case PacketType::kPubrel:
    case PacketType::kPubcomp:
      return OnAck(std::get<core::PubAck>(packet), events, error);
    case PacketType::kSuback: {
      auto& ack = std::get<core::Suback>(packet);
      subscribe_ids_.erase(ack.packet_id);
      upstream::Subscribed e{ack.packet_id, ack.reasons};
      events.emplace_back(std::move(e));
      return;
    }
    case PacketType::kUnsuback:
      return;
    case PacketType::kPingresp:
      ping_sent_ms_ = 0;
      return;
    case PacketType::kDisconnect: {
      auto& d = std::get<core::Disconnect>(packet);
      upstream::ServerDisconnect e{d.reason, d.props.reason_string.value_or("")};
      events.emplace_back(std::move(e));
      return;
    }
    default:
      *error = Status::Protocol(ReasonCode::kProtocolError,
                                std::string("unexpected ") + core::PacketTypeName(type) +
                                    " from the upstream");
  }
}

void UpstreamSession::OnConnack(core::Connack&& ack, std::vector<UpstreamEvent>& events,
                                Status* error) {
  if (!connack_pending_) {
    *error = Status::Protocol(ReasonCode::kProtocolError, "second CONNACK");
    return;
  }
  connack_pending_ = false;
  if (ack.reason != ReasonCode::kSuccess) {
    upstream::Refused e{ack.reason, ack.props.reason_string.value_or("")};
    events.emplace_back(std::move(e));
    return;
  }
  connected_ = true;
  window_ = options_.max_inflight;
  if (IsV5(version_)) {
    // The upstream's own limits [MQTT-3.3.4-7] [MQTT-3.2.2-9] [MQTT-3.2.2-14].
    if (ack.props.receive_maximum) window_ = std::min(window_, *ack.props.receive_maximum);
    max_qos_ = ack.props.maximum_qos.value_or(2);
    retain_available_ = ack.props.retain_available.value_or(1) != 0;
    max_packet_size_ = ack.props.maximum_packet_size.value_or(268435460);
    if (ack.props.server_keep_alive) options_.keepalive_s = *ack.props.server_keep_alive;
  }
  window_ = std::max<uint16_t>(window_, 1);
  resumed_ = ack.session_present;
  if (!ack.session_present) ForgetSession();
  upstream::Connected c;
  c.session_present = ack.session_present;
  for (const auto& [key, value] : ack.props.user_properties) {
    if (key == core::kNodeNameProperty) c.upstream_node = value;
  }
  events.emplace_back(std::move(c));
}

void UpstreamSession::OnPublish(core::Publish&& p, std::vector<UpstreamEvent>& events,
                                Status* error) {
  if (p.topic.empty()) {
    // We announced no topic aliases (Topic Alias Maximum 0) [MQTT-3.3.2-8].
    *error = Status::Protocol(ReasonCode::kTopicAliasInvalid, "PUBLISH without a topic name");
    return;
  }
  if (p.qos == 2 && qos2_received_.contains(p.packet_id)) {
    // Sent again before our PUBREC arrived: acknowledge, do not deliver twice.
    Send(core::PubAck{PacketType::kPubrec, p.packet_id, ReasonCode::kSuccess, {}});
    return;
  }
  if (p.qos > 0) {
    for (const Inbound& in : inbound_) {
      if (in.packet_id == p.packet_id && in.qos == 2) return;  // still being delivered
    }
    if (IsV5(version_) && inbound_.size() >= options_.receive_maximum) {
      *error = Status::Protocol(ReasonCode::kReceiveMaximumExceeded, "receive maximum exceeded");
      return;
    }
    inbound_.push_back(Inbound{p.packet_id, p.qos});
  }
  upstream::Message e{std::move(p)};
  events.emplace_back(std::move(e));
}

void UpstreamSession::OnAck(const core::PubAck& ack, std::vector<UpstreamEvent>& events,
                            Status* error) {
  if (ack.type == PacketType::kPubrel) {
    // Releases an incoming QoS 2 message [MQTT-4.3.3-11]; unknown ids get
    // PUBCOMP too (after a restart we no longer know them).
    qos2_received_.erase(ack.packet_id);
    Send(core::PubAck{PacketType::kPubcomp, ack.packet_id, ReasonCode::kSuccess, {}});
    return;
  }
  auto it = inflight_.find(ack.packet_id);
  if (it == inflight_.end()) {
    if (ack.type == PacketType::kPubrec) {
      Send(core::PubAck{PacketType::kPubrel, ack.packet_id,
                        ReasonCode::kPacketIdentifierNotFound, {}});
    }
    return;  // late or duplicate: harmless
  }
  OutState& st = it->second;
  auto complete = [&](ReasonCode reason) {
    upstream::Published e{st.token, reason};
    events.emplace_back(std::move(e));
    inflight_order_.erase(st.order);
    inflight_.erase(it);
  };
  switch (ack.type) {
    case PacketType::kPuback:
      if (st.qos != 1) {
        *error = Status::Protocol(ReasonCode::kProtocolError, "PUBACK for a QoS 2 message");
        return;
      }
      return complete(ack.reason);
    case PacketType::kPubrec:
      if (st.qos != 2) {
        *error = Status::Protocol(ReasonCode::kProtocolError, "PUBREC for a QoS 1 message");
        return;
      }
      if (IsFailure(ack.reason)) return complete(ack.reason);  // [MQTT-4.3.3-4]
      if (st.released) {
        // Our PUBREL crossed a PUBREC sent again: release again.
        Send(core::PubAck{PacketType::kPubrel, ack.packet_id, ReasonCode::kSuccess, {}});
        return;
      }
      if (st.hold_pubrel) {
        if (!st.received) {
          st.received = true;
          events.emplace_back(upstream::Received{st.token, ack.packet_id});
        }
        return;
      }
      st.released = true;
      Send(core::PubAck{PacketType::kPubrel, ack.packet_id, ReasonCode::kSuccess, {}});
      return;
    case PacketType::kPubcomp:
      // PUBCOMP before PUBREC: ignore. In particular "not found" from an
      // upstream that never had the message (a new session) is no delivery.
      if (!st.released) return;
      // The upstream had the message (PUBREC in this exchange, or a PUBREL
      // into the session that sent it); "not found" only means it completed
      // it before, e.g. before our restart.
      return complete(ReasonCode::kSuccess);
    default:
      return;
  }
}

uint16_t UpstreamSession::NextPacketId() {
  // [MQTT-2.2.1-4]: never reuse an identifier still in use. The own range
  // holds 256; a session has a few of its packets in flight at most.
  for (;;) {
    uint16_t id = next_packet_id_++;
    if (next_packet_id_ == 0) next_packet_id_ = kOwnPacketIdFirst;
    if (!inflight_.contains(id) && !subscribe_ids_.contains(id)) return id;
  }
}

bool UpstreamSession::EncodePublish(const OutgoingPublish& p, uint16_t packet_id, uint8_t qos,
                                    bool dup) {
  const core::Message& m = *p.message;
  core::PublishView v;
  v.topic = m.topic;
  v.payload = m.payload;
  v.qos = qos;
  v.retain = p.retain && retain_available_;
  v.dup = dup;
  v.packet_id = packet_id;
  core::Properties props;
  if (IsV5(version_)) {
    static const core::Properties kNone;
    v.props = &m.props;
    const bool with_path = !p.via.empty();
    if (with_path && m.expiry_at_ms == 0 && m.props == kNone) {
      // The usual case, a message published here without properties.
      if (path_only_.user_properties.size() != 1) {
        path_only_.user_properties.assign(1, {std::string(core::kNodePathProperty), ""});
      }
      std::string& value = path_only_.user_properties[0].second;
      value.clear();
      for (const std::string& node : m.path) value.append(node).push_back(',');
      value.append(p.via);
      v.props = &path_only_;
    } else if (m.expiry_at_ms != 0 || with_path) {
      props = m.props;
      if (with_path) {
        std::vector<std::string> path = m.path;
        path.emplace_back(p.via);
        core::SetNodePath(props, path);
      }
      if (m.expiry_at_ms != 0) {
        // [MQTT-3.3.2-6]: what remains of the expiry interval.
        const uint64_t now = core::UnixNowMs();
        props.message_expiry_interval =
            static_cast<uint32_t>(m.expiry_at_ms > now ? (m.expiry_at_ms - now + 999) / 1000 : 1);
      }
      v.props = &props;
    }
  }
  if (core::EncodedPublishSize(v, version_) > max_packet_size_) return false;
  core::EncodePublish(v, version_, out_);
  return true;
}

bool UpstreamSession::Publish(const OutgoingPublish& p, uint64_t now_ms) {
  const uint8_t qos = std::min(p.qos, max_qos_);
  const uint16_t id = qos == 0 ? 0 : p.packet_id != 0 ? p.packet_id : NextPacketId();
  if (!EncodePublish(p, id, qos, qos > 0 && p.dup)) return false;
  last_tx_ms_ = now_ms;
  if (qos > 0) {
    inflight_.emplace(id, OutState{p.token, qos, false, send_counter_, p.hold_pubrel && qos == 2});
    inflight_order_.emplace(send_counter_++, id);
  }
  return true;
}

void UpstreamSession::PublishReleased(uint64_t token, uint16_t packet_id, uint64_t now_ms) {
  last_tx_ms_ = now_ms;
  inflight_.emplace(packet_id, OutState{token, 2, true, send_counter_, true, true});
  inflight_order_.emplace(send_counter_++, packet_id);
  Send(core::PubAck{PacketType::kPubrel, packet_id, ReasonCode::kSuccess, {}});
}

bool UpstreamSession::Release(uint64_t token, uint16_t packet_id, uint64_t now_ms) {
  auto it = inflight_.find(packet_id);
  if (it == inflight_.end() || it->second.token != token || !it->second.received) return false;
  if (it->second.released) return true;
  it->second.released = true;
  if (!connected_) return true;  // InflightForResend() says released
  last_tx_ms_ = now_ms;
  Send(core::PubAck{PacketType::kPubrel, packet_id, ReasonCode::kSuccess, {}});
  return true;
}

std::vector<UpstreamInflight> UpstreamSession::InflightForResend() const {
  std::vector<UpstreamInflight> out;
  for (const auto& [order, id] : inflight_order_) {
    const OutState& st = inflight_.at(id);
    out.push_back(UpstreamInflight{id, st.token, st.qos, st.released});
  }
  return out;
}

bool UpstreamSession::Resend(const UpstreamInflight& entry, const OutgoingPublish& p,
                             uint64_t now_ms) {
  last_tx_ms_ = now_ms;
  if (entry.released) {
    Send(core::PubAck{PacketType::kPubrel, entry.packet_id, ReasonCode::kSuccess, {}});
    return true;
  }
  return EncodePublish(p, entry.packet_id, entry.qos, /*dup=*/true);
}

void UpstreamSession::ForgetSession() {
  inflight_.clear();
  inflight_order_.clear();
  // A QoS 2 message the new session sends under an identifier we PUBREC'd
  // in the old one is a new message, not one sent again.
  qos2_received_.clear();
}

uint16_t UpstreamSession::Subscribe(const std::vector<std::pair<std::string, uint8_t>>& filters) {
  core::Subscribe s;
  s.packet_id = NextPacketId();
  for (const auto& [filter, qos] : filters) {
    core::SubscribeTopic t;
    t.filter = filter;
    t.qos = qos;
    // What this bridge publishes upstream must not come back down to it, and
    // retained flags must survive the hop [MQTT-3.8.3-3] [MQTT-3.3.1-12].
    t.no_local = IsV5(version_);
    t.retain_as_published = IsV5(version_);
    s.topics.push_back(std::move(t));
  }
  subscribe_ids_.insert(s.packet_id);
  Send(s);
  return s.packet_id;
}

void UpstreamSession::Acknowledge(uint16_t packet_id) {
  for (Inbound& in : inbound_) {
    if (in.packet_id == packet_id && !in.acknowledged) {
      in.acknowledged = true;
      break;
    }
  }
  FlushAcknowledgements();
}

void UpstreamSession::FlushAcknowledgements() {
  // [MQTT-4.6.0-2] [MQTT-4.6.0-3]: acknowledgements in the order received.
  while (!inbound_.empty() && inbound_.front().acknowledged) {
    const Inbound in = inbound_.front();
    inbound_.pop_front();
    if (!connected_) continue;
    if (in.qos == 1) {
      Send(core::PubAck{PacketType::kPuback, in.packet_id, ReasonCode::kSuccess, {}});
    } else {
      qos2_received_.insert(in.packet_id);
      Send(core::PubAck{PacketType::kPubrec, in.packet_id, ReasonCode::kSuccess, {}});
    }
  }
}

bool UpstreamSession::Tick(uint64_t now_ms) {
  if (!connected_ || options_.keepalive_s == 0) return true;
  const uint64_t keepalive_ms = uint64_t{options_.keepalive_s} * 1000;
  if (ping_sent_ms_ != 0) return now_ms - ping_sent_ms_ < keepalive_ms;
  // Ping when we sent nothing for a keep alive [MQTT-3.1.2-23], or heard
  // nothing (so a half-dead link is found even while we only send QoS 0).
  if (now_ms - last_tx_ms_ >= keepalive_ms || now_ms - last_rx_ms_ >= keepalive_ms) {
    Send(core::Pingreq{});
    ping_sent_ms_ = now_ms;
    last_tx_ms_ = now_ms;
  }
  return true;
}

void UpstreamSession::Disconnect() {
  if (connected_) Send(core::Disconnect{});
  connected_ = false;
}

}  // namespace ferry::bridge
