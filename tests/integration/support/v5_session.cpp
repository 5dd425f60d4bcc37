#include "v5_session.h"

#include <utility>

#include "wait.h"

namespace ferry::testing::v5 {
namespace {

using Clock = std::chrono::steady_clock;

uint16_t AckPacketId(const wire::RawPacket& p) {
  if (p.body.size() < 2) return 0;
  return static_cast<uint16_t>(p.body[0] << 8 | p.body[1]);
}

// "0x8f", for failure messages.
std::string HexByte(uint8_t b) { return "0x" + wire::Hex(Bytes{b}); }

const char* TypeName(uint8_t type) {
  static const char* const kNames[] = {"reserved",  "CONNECT",  "CONNACK",     "PUBLISH",
                                       "PUBACK",    "PUBREC",   "PUBREL",      "PUBCOMP",
                                       "SUBSCRIBE", "SUBACK",   "UNSUBSCRIBE", "UNSUBACK",
                                       "PINGREQ",   "PINGRESP", "DISCONNECT",  "AUTH"};
  return type < 16 ? kNames[type] : "?";
}

}  // namespace

RawSession::RawSession(uint16_t port, MqttVersion version) : port_(port), version_(version) {}

::testing::AssertionResult RawSession::Connect(wire::ConnectFields fields) {
  fields.version = version_;
  if (auto opened = raw_.Connect(port_); !opened) return opened;
  if (auto sent = raw_.Send(wire::Connect(fields)); !sent) return sent;
  const std::optional<Bytes> raw = raw_.ReadPacket();
  if (!raw) return ::testing::AssertionFailure() << "no CONNACK: " << raw_.error();
  if (version_ == MqttVersion::kV5) {
    connack_ = ParseConnack(*raw);
  } else if (std::optional<wire::Connack> c = wire::ParseConnack(*raw)) {
    connack_ = ConnackPacket{c->session_present, c->code, {}};
  }
  if (!connack_) return ::testing::AssertionFailure() << "not a CONNACK: " << wire::Hex(*raw);
  if (connack_->code != 0) {
    return ::testing::AssertionFailure() << "CONNACK code " << HexByte(connack_->code);
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult RawSession::Connect(const std::string& client_id) {
  wire::ConnectFields fields;
  fields.client_id = client_id;
  return Connect(std::move(fields));
}

uint16_t RawSession::NextId() {
  const uint16_t id = next_id_++;
  if (next_id_ == 0) next_id_ = 1;
  return id;
}

bool RawSession::Pump(Clock::time_point deadline) {
  const std::optional<Bytes> raw = raw_.ReadPacket(Remaining(deadline));
  if (!raw) return false;
  const std::optional<wire::RawPacket> p = wire::Parse(*raw);
  if (!p) {
    ADD_FAILURE() << "unparsable packet: " << wire::Hex(*raw);
    return false;
  }
  if (p->type == wire::kPublish) {
    std::optional<wire::ReceivedPublish> pub = wire::ParsePublish(version_, *raw);
    if (!pub) {
      ADD_FAILURE() << "malformed PUBLISH: " << wire::Hex(*raw);
      return false;
    }
    if (auto_ack_ && pub->qos == 1)
      raw_.Send(wire::PublishAck(wire::kPuback, version_, pub->packet_id));
    if (auto_ack_ && pub->qos == 2)
      raw_.Send(wire::PublishAck(wire::kPubrec, version_, pub->packet_id));
    publishes_.push_back(std::move(*pub));
    return true;
  }
  if (p->type == wire::kPubrel && auto_ack_) {
    raw_.Send(wire::PublishAck(wire::kPubcomp, version_, AckPacketId(*p)));
    return true;
  }
  control_.push_back(*raw);
  return true;
}

std::optional<Bytes> RawSession::ReadControl(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (control_.empty()) {
    if (!Pump(deadline)) return std::nullopt;
  }
  Bytes out = std::move(control_.front());
  control_.pop_front();
  return out;
}

std::optional<Bytes> RawSession::WaitControl(uint8_t type, uint16_t packet_id,
                                             Clock::time_point deadline) {
  std::optional<Bytes> raw = ReadControl(Remaining(deadline));
  if (!raw) {
    ADD_FAILURE() << "no " << TypeName(type) << " for packet identifier " << packet_id << ": "
                  << raw_.error();
    return std::nullopt;
  }
  const std::optional<wire::RawPacket> p = wire::Parse(*raw);
  if (!p || p->type != type || AckPacketId(*p) != packet_id) {
    ADD_FAILURE() << "expected " << TypeName(type) << " " << packet_id << ", got "
                  << wire::Hex(*raw);
    return std::nullopt;
  }
  return raw;
}

std::optional<Codes> RawSession::Subscribe(const std::vector<wire::Subscription>& subs,
                                           const Bytes& properties) {
  const uint16_t id = NextId();
  if (auto sent = raw_.Send(wire::Subscribe(version_, id, subs, properties)); !sent) {
    ADD_FAILURE() << sent.message();
    return std::nullopt;
  }
  std::optional<Bytes> raw = WaitControl(wire::kSuback, id, Clock::now() + kDefaultTimeout);
  if (!raw) return std::nullopt;
  std::optional<wire::Ack> ack = wire::ParseSuback(version_, *raw);
  if (!ack) {
    ADD_FAILURE() << "malformed SUBACK: " << wire::Hex(*raw);
    return std::nullopt;
  }
  return ack->codes;
}

std::optional<Codes> RawSession::SubscribeWithId(const wire::Subscription& sub, uint32_t id) {
  Bytes props;
  AddVarInt(&props, kSubscriptionIdentifier, id);
  return Subscribe({sub}, props);
}

std::optional<Codes> RawSession::Unsubscribe(const std::vector<std::string>& filters) {
  const uint16_t id = NextId();
  if (auto sent = raw_.Send(wire::Unsubscribe(version_, id, filters)); !sent) {
    ADD_FAILURE() << sent.message();
    return std::nullopt;
  }
  std::optional<Bytes> raw = WaitControl(wire::kUnsuback, id, Clock::now() + kDefaultTimeout);
  if (!raw) return std::nullopt;
  std::optional<wire::Ack> ack = wire::ParseSuback(version_, *raw);
  if (!ack) {
    ADD_FAILURE() << "malformed UNSUBACK: " << wire::Hex(*raw);
    return std::nullopt;
  }
  return ack->codes;
}

::testing::AssertionResult RawSession::Publish(wire::PublishFields fields) {
  if (fields.qos > 0 && fields.packet_id == 0) fields.packet_id = NextId();
  if (auto sent = raw_.Send(wire::Publish(version_, fields)); !sent) return sent;
  const auto deadline = Clock::now() + kDefaultTimeout;
  if (fields.qos == 1) {
    std::optional<Bytes> ack = WaitControl(wire::kPuback, fields.packet_id, deadline);
    if (!ack) return ::testing::AssertionFailure() << "no PUBACK for " << fields.topic;
  } else if (fields.qos == 2) {
    if (!WaitControl(wire::kPubrec, fields.packet_id, deadline)) {
      return ::testing::AssertionFailure() << "no PUBREC for " << fields.topic;
    }
    if (auto sent = raw_.Send(wire::PublishAck(wire::kPubrel, version_, fields.packet_id)); !sent) {
      return sent;
    }
    if (!WaitControl(wire::kPubcomp, fields.packet_id, deadline)) {
      return ::testing::AssertionFailure() << "no PUBCOMP for " << fields.topic;
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult RawSession::Publish(const std::string& topic, const std::string& payload,
                                               int qos, bool retain) {
  wire::PublishFields f;
  f.topic = topic;
  f.payload = payload;
  f.qos = qos;
  f.retain = retain;
  return Publish(std::move(f));
}

std::optional<wire::ReceivedPublish> RawSession::Receive(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (publishes_.empty()) {
    if (!Pump(deadline)) return std::nullopt;
  }
  wire::ReceivedPublish out = std::move(publishes_.front());
  publishes_.pop_front();
  return out;
}

std::vector<wire::ReceivedPublish> RawSession::ReceiveThrough(const std::string& topic,
                                                              std::chrono::milliseconds timeout) {
  std::vector<wire::ReceivedPublish> out;
  const auto deadline = Clock::now() + timeout;
  while (true) {
    std::optional<wire::ReceivedPublish> m = Receive(Remaining(deadline));
    if (!m) {
      ADD_FAILURE() << "nothing on " << topic << " within " << timeout.count()
                    << " ms: " << raw_.error();
      return out;
    }
    out.push_back(std::move(*m));
    if (out.back().topic == topic) return out;
  }
}

::testing::AssertionResult RawSession::ExpectDisconnect(uint8_t code,
                                                        std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  if (version_ == MqttVersion::kV5) {
    std::optional<Bytes> raw = ReadControl(timeout);
    if (!raw) return ::testing::AssertionFailure() << "no DISCONNECT: " << raw_.error();
    disconnect_ = ParseDisconnect(*raw);
    if (!disconnect_) {
      return ::testing::AssertionFailure() << "expected DISCONNECT, got " << wire::Hex(*raw);
    }
    if (disconnect_->code != code) {
      return ::testing::AssertionFailure() << "DISCONNECT reason " << HexByte(disconnect_->code)
                                           << ", expected " << HexByte(code);
    }
  }
  if (!raw_.IsClosed(Remaining(deadline))) {
    return ::testing::AssertionFailure() << "connection still open: " << raw_.error();
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult RawSession::Disconnect(uint8_t reason) {
  if (auto sent = raw_.Send(wire::Disconnect(version_, reason)); !sent) return sent;
  // The server closes after DISCONNECT [MQTT-3.14.4-1] (3.1.1: the client does).
  if (!raw_.IsClosed()) return ::testing::AssertionFailure() << "still open: " << raw_.error();
  raw_.Close();
  return ::testing::AssertionSuccess();
}

uint8_t SubOptions(int qos, bool no_local, bool retain_as_published, int retain_handling) {
  uint8_t b = static_cast<uint8_t>(qos & 0x03);
  if (no_local) b |= 0x04;
  if (retain_as_published) b |= 0x08;
  b |= static_cast<uint8_t>((retain_handling & 0x03) << 4);
  return b;
}

NodeOptions WithOverrides(
    std::vector<std::tuple<std::string, std::string, std::string>> overrides) {
  NodeOptions options;
  options.overrides = std::move(overrides);
  return options;
}

::testing::AssertionResult NodeStillServes(uint16_t port) {
  for (MqttVersion v : {MqttVersion::kV311, MqttVersion::kV5}) {
    RawSession s(port, v);
    if (auto ok = s.Connect(std::string("still-serves-") + VersionLabel(v)); !ok) {
      return ::testing::AssertionFailure()
             << "node no longer serves a new client: " << ok.message();
    }
    if (auto sent = s.Send(wire::PingReq()); !sent) return sent;
    std::optional<Bytes> pong = s.ReadControl();
    if (!pong || pong->size() != 2 || (*pong)[0] != wire::kPingresp << 4) {
      return ::testing::AssertionFailure() << "no PINGRESP from the node";
    }
    if (auto done = s.Disconnect(); !done) return done;
  }
  return ::testing::AssertionSuccess();
}

std::vector<std::string> Topics(const std::vector<wire::ReceivedPublish>& messages) {
  std::vector<std::string> out;
  for (const wire::ReceivedPublish& m : messages) out.push_back(m.topic);
  return out;
}

std::vector<std::string> Topics(const std::vector<ReceivedMessage>& messages) {
  std::vector<std::string> out;
  for (const ReceivedMessage& m : messages) out.push_back(m.topic);
  return out;
}

const char* VersionLabel(MqttVersion v) { return v == MqttVersion::kV5 ? "v5" : "v311"; }

}  // namespace ferry::testing::v5
