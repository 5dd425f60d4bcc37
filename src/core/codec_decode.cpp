// Decoding of PUBLISH, the acknowledgements, SUBSCRIBE, UNSUBSCRIBE,
// DISCONNECT and AUTH (MQTT 3.1.1 and 5.0 sections 3.3 to 3.15).

#include "core/codec_decode.h"

#include <algorithm>
#include <initializer_list>

#include "core/codec_properties.h"
#include "core/topic.h"

namespace ferry::core::codec {
namespace {

bool Contains(std::initializer_list<uint8_t> codes, uint8_t code) {
  return std::find(codes.begin(), codes.end(), code) != codes.end();
}

Status CheckReason(PacketType type, uint8_t code) {
  if (IsReasonCodeAllowed(type, code)) return Status::Ok();
  return ProtocolError(std::string("reason code not allowed in ") + PacketTypeName(type));
}

// DISCONNECT and AUTH: "The Reason Code and Property Length can be omitted if
// the Reason Code is 0x00 and there are no Properties" (remaining length 0),
// and "If the Remaining Length is less than 2, a value of 0 is used" for the
// property length (MQTT 5.0 sections 3.14.2.1, 3.14.2.2, 3.15.2.1).
Status ReadOptionalReasonAndProperties(Reader& r, PacketType type, PropertyScope scope,
                                       ReasonCode& reason, Properties& props) {
  if (r.empty()) return Status::Ok();
  uint8_t code = 0;
  FERRY_CODEC_TRY(r.ReadU8(code, "reason code"));
  FERRY_CODEC_TRY(CheckReason(type, code));
  reason = static_cast<ReasonCode>(code);
  if (r.empty()) return Status::Ok();
  return DecodeProperties(r, scope, props);
}

// A topic filter of SUBSCRIBE or UNSUBSCRIBE. One that breaks the filter
// syntax (empty, '#' not alone in the last level, '+' not alone in its level,
// a `$share/` without a share name or a filter) makes the packet malformed
// (MQTT 5.0 sections 4.7.1, 4.7.3, 4.8.2 and 4.13.1; MQTT 3.1.1 section 4.7).
// A well-formed filter that policy refuses gets its SUBACK code instead.
Status ReadTopicFilter(Reader& r, std::string& filter) {
  FERRY_CODEC_TRY(r.ReadUtf8(filter, "topic filter"));
  Result<std::optional<SharedFilter>> shared = ParseSharedFilter(filter);
  Status valid = !shared.ok()     ? shared.status()
                 : shared.value() ? Status::Ok()
                                  : ValidateTopicFilter(filter);
  if (!valid.ok()) return Malformed("invalid topic filter: " + valid.message());
  return Status::Ok();
}

// Subscription options (MQTT 3.1.1 section 3.8.3.1, MQTT 5.0 section 3.8.3.1).
Status ReadSubscriptionOptions(Reader& r, ProtocolVersion v, SubscribeTopic& t) {
  uint8_t b = 0;
  FERRY_CODEC_TRY(r.ReadU8(b, "subscription options"));
  t.qos = b & 0x03;
  if (!IsV5(v)) {
    // "The Server MUST treat a SUBSCRIBE packet as malformed ... if any of
    // Reserved bits in the payload are non-zero, or QoS is not 0,1 or 2"
    // [MQTT-3-8.3-4].
    if (b & 0xFC) return Malformed("reserved subscription option bits are set");
    if (t.qos == 3) return Malformed("subscription QoS 3");
    return Status::Ok();
  }
  if (b & 0xC0) {
    return Malformed("reserved subscription option bits are set");  // [MQTT-3.8.3-5]
  }
  t.no_local = (b & 0x04) != 0;
  t.retain_as_published = (b & 0x08) != 0;
  t.retain_handling = (b >> 4) & 0x03;
  // v5 names both of these Protocol Errors, unlike 3.1.1 (MQTT 5.0 3.8.3.1).
  if (t.qos == 3) return ProtocolError("subscription maximum QoS 3");
  if (t.retain_handling == 3) return ProtocolError("subscription retain handling 3");
  return Status::Ok();
}

}  // namespace

Status ReadPacketId(Reader& r, uint16_t& id) {
  FERRY_CODEC_TRY(r.ReadU16(id, "packet identifier"));
  if (id == 0) return ProtocolError("packet identifier 0");  // [MQTT-2.2.1-3]
  return Status::Ok();
}

bool IsReasonCodeAllowed(PacketType type, uint8_t code) {
  switch (type) {
    case PacketType::kConnack:
      return Contains({0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
                       0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F},
                      code);
    case PacketType::kPuback:
    case PacketType::kPubrec:
      return Contains({0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99}, code);
    case PacketType::kPubrel:
    case PacketType::kPubcomp:
      return code == 0x00 || code == 0x92;
    case PacketType::kSuback:
      return Contains({0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2},
                      code);
    case PacketType::kUnsuback:
      return Contains({0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91}, code);
    case PacketType::kDisconnect:
      return code == 0x00 || code == 0x04 ||
             (code >= 0x80 && code <= 0xA2 &&
              !Contains({0x84, 0x85, 0x86, 0x88, 0x8A, 0x91, 0x92}, code));
    case PacketType::kAuth:
      return code == 0x00 || code == 0x18 || code == 0x19;
    default:
      return false;
  }
}

Status DecodePublish(Reader& r, uint8_t flags, ProtocolVersion v, Publish& out) {
  out.retain = (flags & 0x01) != 0;
  out.qos = (flags >> 1) & 0x03;
  out.dup = (flags & 0x08) != 0;
  if (out.qos == 3) return Malformed("PUBLISH QoS 3");  // [MQTT-3.3.1-4]
  if (out.dup && out.qos == 0) {
    // [MQTT-3.3.1-2], from 3.1.1 on; MQTT 3.1 only says DUP applies to
    // QoS > 0, so a 3.1 client's stray DUP on QoS 0 means nothing.
    if (v != ProtocolVersion::kV31) return Malformed("DUP set on a QoS 0 PUBLISH");
    out.dup = false;
  }
  FERRY_CODEC_TRY(r.ReadUtf8(out.topic, "topic name"));
  if (out.qos > 0) FERRY_CODEC_TRY(ReadPacketId(r, out.packet_id));
  if (IsV5(v)) {
    FERRY_CODEC_TRY(DecodeProperties(r, PropertyScope::kPublish, out.props));
    // "It is a Protocol Error if the Topic Name is zero length and there is
    // no Topic Alias" (MQTT 5.0 section 3.3.2.1).
    if (out.topic.empty() && !out.props.topic_alias) {
      return ProtocolError("empty topic name without topic alias");
    }
  }
  r.ReadRest(out.payload);
  return Status::Ok();
}

// v5 lets PUBACK, PUBREC, PUBREL and PUBCOMP end after the packet identifier
// (reason 0x00, no properties) or after the reason code (no properties)
// (MQTT 5.0 sections 3.4.2.1 and 3.4.2.2).
Status DecodePubAck(Reader& r, PacketType type, ProtocolVersion v, PubAck& out) {
  out.type = type;
  FERRY_CODEC_TRY(ReadPacketId(r, out.packet_id));
  if (!IsV5(v)) return Status::Ok();
  return ReadOptionalReasonAndProperties(r, type, PropertyScope::kPubResponse, out.reason,
                                         out.props);
}

Status DecodeSubscribe(Reader& r, ProtocolVersion v, Subscribe& out) {
  FERRY_CODEC_TRY(ReadPacketId(r, out.packet_id));
  if (IsV5(v)) FERRY_CODEC_TRY(DecodeProperties(r, PropertyScope::kSubscribe, out.props));
  if (r.empty()) return ProtocolError("SUBSCRIBE without topic filters");  // [MQTT-3.8.3-3]
  while (!r.empty()) {
    SubscribeTopic& t = out.topics.emplace_back();
    FERRY_CODEC_TRY(ReadTopicFilter(r, t.filter));
    FERRY_CODEC_TRY(ReadSubscriptionOptions(r, v, t));
  }
  return Status::Ok();
}

Status DecodeSuback(Reader& r, ProtocolVersion v, Suback& out) {
  FERRY_CODEC_TRY(ReadPacketId(r, out.packet_id));
  if (IsV5(v)) FERRY_CODEC_TRY(DecodeProperties(r, PropertyScope::kSuback, out.props));
  out.reasons.reserve(r.remaining());
  while (!r.empty()) {
    uint8_t code = 0;
    FERRY_CODEC_TRY(r.ReadU8(code, "reason code"));
    // 3.1.1 return codes are 0x00, 0x01, 0x02 and 0x80 (MQTT 3.1.1 3.9.3).
    bool allowed =
        IsV5(v) ? IsReasonCodeAllowed(PacketType::kSuback, code) : (code <= 0x02 || code == 0x80);
    if (!allowed) return ProtocolError("return code not allowed in SUBACK");
    out.reasons.push_back(static_cast<ReasonCode>(code));
  }
  return Status::Ok();
}

Status DecodeUnsubscribe(Reader& r, ProtocolVersion v, Unsubscribe& out) {
  FERRY_CODEC_TRY(ReadPacketId(r, out.packet_id));
  if (IsV5(v)) FERRY_CODEC_TRY(DecodeProperties(r, PropertyScope::kUnsubscribe, out.props));
  if (r.empty()) return ProtocolError("UNSUBSCRIBE without topic filters");  // [MQTT-3.10.3-2]
  while (!r.empty()) {
    FERRY_CODEC_TRY(ReadTopicFilter(r, out.filters.emplace_back()));
  }
  return Status::Ok();
}

// A 3.1.1 UNSUBACK is just the packet identifier.
Status DecodeUnsuback(Reader& r, ProtocolVersion v, Unsuback& out) {
  FERRY_CODEC_TRY(ReadPacketId(r, out.packet_id));
  if (!IsV5(v)) return Status::Ok();
  FERRY_CODEC_TRY(DecodeProperties(r, PropertyScope::kUnsuback, out.props));
  out.reasons.reserve(r.remaining());
  while (!r.empty()) {
    uint8_t code = 0;
    FERRY_CODEC_TRY(r.ReadU8(code, "reason code"));
    FERRY_CODEC_TRY(CheckReason(PacketType::kUnsuback, code));
    out.reasons.push_back(static_cast<ReasonCode>(code));
  }
  return Status::Ok();
}

// A 3.1.1 DISCONNECT has no variable header; its remaining length must be 0,
// which the caller's trailing-bytes check enforces.
Status DecodeDisconnect(Reader& r, ProtocolVersion v, Disconnect& out) {
  if (!IsV5(v)) return Status::Ok();
  return ReadOptionalReasonAndProperties(r, PacketType::kDisconnect, PropertyScope::kDisconnect,
                                         out.reason, out.props);
}

// Packet type 15 is reserved before v5 ("Forbidden", MQTT 3.1.1 table 2.1).
Status DecodeAuth(Reader& r, ProtocolVersion v, Auth& out) {
  if (!IsV5(v)) return Malformed("packet type 15 is reserved before MQTT 5");
  return ReadOptionalReasonAndProperties(r, PacketType::kAuth, PropertyScope::kAuth, out.reason,
                                         out.props);
}

}  // namespace ferry::core::codec
