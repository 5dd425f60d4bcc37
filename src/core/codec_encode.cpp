#include "core/codec_encode.h"

#include <cassert>

#include "core/codec_properties.h"
#include "core/codec_writer.h"

namespace ferry::core::codec {
namespace {

const char* ProtocolNameFor(ProtocolVersion v) {
  return v == ProtocolVersion::kV31 ? "MQIsdp" : "MQTT";
}

uint8_t ConnectFlagsByte(const Connect& c) {
  uint8_t b = 0;
  if (c.clean_start) b |= 0x02;
  if (c.will) {
    b |= 0x04;
    b |= static_cast<uint8_t>(c.will->qos << 3);
    if (c.will->retain) b |= 0x20;
  }
  if (c.password) b |= 0x40;
  if (c.username) b |= 0x80;
  return b;
}

uint8_t Code(ReasonCode reason) { return static_cast<uint8_t>(reason); }

// The v5 tail of PUBACK/PUBREC/PUBREL/PUBCOMP, DISCONNECT and AUTH in its
// shortest allowed form: nothing for success without properties, the reason
// code alone without properties, otherwise reason code and properties.
size_t ReasonTailSize(ReasonCode reason, const Properties& props, PropertyScope scope) {
  size_t body = PropertiesBodySize(props, scope);
  if (body == 0) return reason == ReasonCode::kSuccess ? 0 : 1;
  return 1 + VarIntSize(body) + body;
}

void PutReasonTail(std::string& out, ReasonCode reason, const Properties& props,
                   PropertyScope scope) {
  if (PropertiesBodySize(props, scope) == 0) {
    if (reason != ReasonCode::kSuccess) PutU8(out, Code(reason));
    return;
  }
  PutU8(out, Code(reason));
  PutProperties(out, props, scope);
}

size_t V5PropertiesSize(const Properties& props, PropertyScope scope, ProtocolVersion v) {
  return IsV5(v) ? PropertiesSize(props, scope) : 0;
}

void PutV5Properties(std::string& out, const Properties& props, PropertyScope scope,
                     ProtocolVersion v) {
  if (IsV5(v)) PutProperties(out, props, scope);
}

void PutPacketId(std::string& out, uint16_t id) {
  assert(id != 0 && "packet identifier 0 [MQTT-2.2.1-3]");
  PutU16(out, id);
}

}  // namespace

// ---- CONNECT: uses its own version, not the argument, as Decode does. -----

uint8_t FirstByte(const Connect&, ProtocolVersion) { return 0x10; }

size_t BodySize(const Connect& c, ProtocolVersion) {
  const ProtocolVersion v = c.version;
  size_t n = StringSize(ProtocolNameFor(v)) + 1 + 1 + 2;  // name, level, flags, keep alive
  n += V5PropertiesSize(c.props, PropertyScope::kConnect, v);
  n += StringSize(c.client_id);
  if (c.will) {
    n += V5PropertiesSize(c.will->props, PropertyScope::kWill, v);
    n += StringSize(c.will->topic) + StringSize(c.will->payload);
  }
  if (c.username) n += StringSize(*c.username);
  if (c.password) n += StringSize(*c.password);
  return n;
}

void PutBody(std::string& out, const Connect& c, ProtocolVersion) {
  const ProtocolVersion v = c.version;
  assert(v == ProtocolVersion::kV31 || v == ProtocolVersion::kV311 || IsV5(v));
  assert(c.protocol_name == ProtocolNameFor(v));
  assert(!c.will || c.will->qos <= 2);
  assert((IsV5(v) || !c.password || c.username) && "[MQTT-3.1.2-22]");
  PutString(out, ProtocolNameFor(v));
  PutU8(out, static_cast<uint8_t>(static_cast<uint8_t>(v) | (c.bridge ? 0x80 : 0)));
  PutU8(out, ConnectFlagsByte(c));
  PutU16(out, c.keepalive_s);
  PutV5Properties(out, c.props, PropertyScope::kConnect, v);
  PutString(out, c.client_id);
  if (c.will) {
    PutV5Properties(out, c.will->props, PropertyScope::kWill, v);
    PutString(out, c.will->topic);
    PutString(out, c.will->payload);
  }
  if (c.username) PutString(out, *c.username);
  if (c.password) PutString(out, *c.password);
}

// ---- CONNACK ----------------------------------------------------------------

uint8_t FirstByte(const Connack&, ProtocolVersion) { return 0x20; }

size_t BodySize(const Connack& c, ProtocolVersion v) {
  return 2 + V5PropertiesSize(c.props, PropertyScope::kConnack, v);
}

void PutBody(std::string& out, const Connack& c, ProtocolVersion v) {
  assert(c.reason == ReasonCode::kSuccess || Code(c.reason) >= 0x80);
  assert(!(c.session_present && c.reason != ReasonCode::kSuccess) && "[MQTT-3.2.2-4]");
  // 3.1 has no session present flag.
  PutU8(out, c.session_present && v != ProtocolVersion::kV31 ? 0x01 : 0x00);
  // A reason 3.1.1 has no code for is refused by closing without a CONNACK
  // (connect_handler.cpp); 0x03 is the nearest code should one be sent.
  PutU8(out, IsV5(v) ? Code(c.reason) : V3ConnackReturnCode(c.reason).value_or(0x03));
  PutV5Properties(out, c.props, PropertyScope::kConnack, v);
}

// ---- PUBLISH ----------------------------------------------------------------

uint8_t FirstByte(const Publish& p, ProtocolVersion) {
  assert(p.qos <= 2);
  assert(!(p.dup && p.qos == 0) && "[MQTT-3.3.1-2]");
  return static_cast<uint8_t>(0x30 | (p.dup ? 0x08 : 0) | (p.qos << 1) | (p.retain ? 0x01 : 0));
}

size_t BodySize(const Publish& p, ProtocolVersion v) {
  return StringSize(p.topic) + (p.qos > 0 ? 2 : 0) +
         V5PropertiesSize(p.props, PropertyScope::kPublish, v) + p.payload.size();
}

void PutBody(std::string& out, const Publish& p, ProtocolVersion v) {
  assert(!IsV5(v) || !p.topic.empty() || p.props.topic_alias);
  PutString(out, p.topic);
  if (p.qos > 0) PutPacketId(out, p.packet_id);
  PutV5Properties(out, p.props, PropertyScope::kPublish, v);
  out.append(p.payload);
}

// ---- PUBACK, PUBREC, PUBREL, PUBCOMP -----------------------------------------

uint8_t FirstByte(const PubAck& p, ProtocolVersion) {
  assert(p.type == PacketType::kPuback || p.type == PacketType::kPubrec ||
         p.type == PacketType::kPubrel || p.type == PacketType::kPubcomp);
  // PUBREL's fixed header flags are 0b0010 [MQTT-3.6.1-1].
  return static_cast<uint8_t>(static_cast<uint8_t>(p.type) << 4 |
                              (p.type == PacketType::kPubrel ? 0x02 : 0));
}

size_t BodySize(const PubAck& p, ProtocolVersion v) {
  if (!IsV5(v)) return 2;
  return 2 + ReasonTailSize(p.reason, p.props, PropertyScope::kPubResponse);
}

void PutBody(std::string& out, const PubAck& p, ProtocolVersion v) {
  PutPacketId(out, p.packet_id);
  if (IsV5(v)) PutReasonTail(out, p.reason, p.props, PropertyScope::kPubResponse);
}

// ---- SUBSCRIBE, SUBACK ---------------------------------------------------------

uint8_t FirstByte(const Subscribe&, ProtocolVersion) { return 0x82; }  // [MQTT-3.8.1-1]

size_t BodySize(const Subscribe& s, ProtocolVersion v) {
  size_t n = 2 + V5PropertiesSize(s.props, PropertyScope::kSubscribe, v);
  for (const SubscribeTopic& t : s.topics) n += StringSize(t.filter) + 1;
  return n;
}

void PutBody(std::string& out, const Subscribe& s, ProtocolVersion v) {
  assert(!s.topics.empty() && "[MQTT-3.8.3-3]");
  PutPacketId(out, s.packet_id);
  PutV5Properties(out, s.props, PropertyScope::kSubscribe, v);
  for (const SubscribeTopic& t : s.topics) {
    assert(t.qos <= 2 && t.retain_handling <= 2);
    PutString(out, t.filter);
    uint8_t options = t.qos;
    if (IsV5(v)) {
      if (t.no_local) options |= 0x04;
      if (t.retain_as_published) options |= 0x08;
      options |= static_cast<uint8_t>(t.retain_handling << 4);
    }
    PutU8(out, options);
  }
}

uint8_t FirstByte(const Suback&, ProtocolVersion) { return 0x90; }

size_t BodySize(const Suback& s, ProtocolVersion v) {
  return 2 + V5PropertiesSize(s.props, PropertyScope::kSuback, v) + s.reasons.size();
}

void PutBody(std::string& out, const Suback& s, ProtocolVersion v) {
  PutPacketId(out, s.packet_id);
  PutV5Properties(out, s.props, PropertyScope::kSuback, v);
  for (ReasonCode reason : s.reasons) {
    uint8_t code = Code(reason);
    assert(code <= 0x02 || code >= 0x80);
    // 3.1.1 has a single failure return code, 0x80 (MQTT 3.1.1 section 3.9.3).
    PutU8(out, IsV5(v) || code < 0x80 ? code : 0x80);
  }
}

// ---- UNSUBSCRIBE, UNSUBACK -----------------------------------------------------

uint8_t FirstByte(const Unsubscribe&, ProtocolVersion) { return 0xA2; }  // [MQTT-3.10.1-1]

size_t BodySize(const Unsubscribe& u, ProtocolVersion v) {
  size_t n = 2 + V5PropertiesSize(u.props, PropertyScope::kUnsubscribe, v);
  for (const std::string& f : u.filters) n += StringSize(f);
  return n;
}

void PutBody(std::string& out, const Unsubscribe& u, ProtocolVersion v) {
  assert(!u.filters.empty() && "[MQTT-3.10.3-2]");
  PutPacketId(out, u.packet_id);
  PutV5Properties(out, u.props, PropertyScope::kUnsubscribe, v);
  for (const std::string& f : u.filters) PutString(out, f);
}

uint8_t FirstByte(const Unsuback&, ProtocolVersion) { return 0xB0; }

// A 3.1.1 UNSUBACK carries only the packet identifier.
size_t BodySize(const Unsuback& u, ProtocolVersion v) {
  if (!IsV5(v)) return 2;
  return 2 + PropertiesSize(u.props, PropertyScope::kUnsuback) + u.reasons.size();
}

void PutBody(std::string& out, const Unsuback& u, ProtocolVersion v) {
  PutPacketId(out, u.packet_id);
  if (!IsV5(v)) return;
  PutProperties(out, u.props, PropertyScope::kUnsuback);
  for (ReasonCode reason : u.reasons) PutU8(out, Code(reason));
}

// ---- PINGREQ, PINGRESP -----------------------------------------------------------

uint8_t FirstByte(const Pingreq&, ProtocolVersion) { return 0xC0; }
size_t BodySize(const Pingreq&, ProtocolVersion) { return 0; }
void PutBody(std::string&, const Pingreq&, ProtocolVersion) {}

uint8_t FirstByte(const Pingresp&, ProtocolVersion) { return 0xD0; }
size_t BodySize(const Pingresp&, ProtocolVersion) { return 0; }
void PutBody(std::string&, const Pingresp&, ProtocolVersion) {}

// ---- DISCONNECT, AUTH ---------------------------------------------------------------

uint8_t FirstByte(const Disconnect&, ProtocolVersion) { return 0xE0; }

// A 3.1.1 DISCONNECT is the two bytes 0xE0 0x00.
size_t BodySize(const Disconnect& d, ProtocolVersion v) {
  return IsV5(v) ? ReasonTailSize(d.reason, d.props, PropertyScope::kDisconnect) : 0;
}

void PutBody(std::string& out, const Disconnect& d, ProtocolVersion v) {
  if (IsV5(v)) PutReasonTail(out, d.reason, d.props, PropertyScope::kDisconnect);
}

// AUTH exists only in v5.
uint8_t FirstByte(const Auth&, ProtocolVersion v) {
  assert(IsV5(v) && "AUTH is a v5 packet");
  (void)v;
  return 0xF0;
}

size_t BodySize(const Auth& a, ProtocolVersion) {
  return ReasonTailSize(a.reason, a.props, PropertyScope::kAuth);
}

void PutBody(std::string& out, const Auth& a, ProtocolVersion) {
  PutReasonTail(out, a.reason, a.props, PropertyScope::kAuth);
}

}  // namespace ferry::core::codec

namespace ferry::core {

std::optional<uint8_t> V3ConnackReturnCode(ReasonCode reason) {
  switch (reason) {
    case ReasonCode::kSuccess:
      return 0x00;
    case ReasonCode::kUnsupportedProtocolVersion:
      return 0x01;
    case ReasonCode::kClientIdentifierNotValid:
      return 0x02;
    case ReasonCode::kServerUnavailable:
    case ReasonCode::kServerBusy:
      return 0x03;
    case ReasonCode::kBadUserNameOrPassword:
      return 0x04;
    case ReasonCode::kNotAuthorized:
    case ReasonCode::kBanned:
      return 0x05;
    default:
      return std::nullopt;
  }
}

}  // namespace ferry::core
