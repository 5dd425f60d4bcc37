// Decoding of CONNECT and CONNACK (MQTT 3.1, 3.1.1 and 5.0 sections 3.1, 3.2).

#include <iterator>
#include <string>

#include "core/codec_decode.h"
#include "core/codec_properties.h"

namespace ferry::core::codec {
namespace {

constexpr uint8_t kBridgeBit = 0x80;

struct ConnectFlags {
  bool username = false;
  bool password = false;
  bool will = false;
  uint8_t will_qos = 0;
  bool will_retain = false;
};

// The protocol name and level together select the version.
//
// An unknown protocol name is 0x81 rather than 0x84: [MQTT-3.1.2-1] lets the
// server close the connection, and a peer that does not speak MQTT would not
// understand a CONNACK of any version, so the broker closes without one (as
// mosquitto does). A known name with a level we do not speak is 0x84
// Unsupported Protocol Version [MQTT-3.1.2-2], which the broker answers with
// CONNACK 0x01 (v3) or 0x84 (v5) before closing.
Status ReadProtocol(Reader& r, Connect& out) {
  FERRY_CODEC_TRY(r.ReadUtf8(out.protocol_name, "protocol name"));
  const bool is_mqtt = out.protocol_name == "MQTT";
  const bool is_mqisdp = out.protocol_name == "MQIsdp";
  if (!is_mqtt && !is_mqisdp) return Malformed("unknown protocol name");
  uint8_t level = 0;
  FERRY_CODEC_TRY(r.ReadU8(level, "protocol level"));
  // mosquitto-style bridges set the top bit of the level.
  out.bridge = (level & kBridgeBit) != 0;
  level &= static_cast<uint8_t>(~kBridgeBit);
  const bool known = (is_mqtt && (level == 4 || level == 5)) || (is_mqisdp && level == 3);
  if (!known) {
    return Status::Protocol(
        ReasonCode::kUnsupportedProtocolVersion,
        "unsupported protocol level " + std::to_string(level) + " for " + out.protocol_name);
  }
  out.version = static_cast<ProtocolVersion>(level);
  return Status::Ok();
}

Status ReadConnectFlags(Reader& r, ProtocolVersion v, Connect& out, ConnectFlags& f) {
  uint8_t b = 0;
  FERRY_CODEC_TRY(r.ReadU8(b, "connect flags"));
  if (b & 0x01) return Malformed("reserved connect flag is set");  // [MQTT-3.1.2-3]
  out.clean_start = (b & 0x02) != 0;
  f.will = (b & 0x04) != 0;
  f.will_qos = (b >> 3) & 0x03;
  f.will_retain = (b & 0x20) != 0;
  f.password = (b & 0x40) != 0;
  f.username = (b & 0x80) != 0;
  if (!f.will && f.will_qos != 0) {
    return Malformed("will QoS set without will flag");  // [MQTT-3.1.2-11]
  }
  if (!f.will && f.will_retain) {
    return Malformed("will retain set without will flag");  // [MQTT-3.1.2-13]
  }
  if (f.will_qos == 3) return Malformed("will QoS 3");  // [MQTT-3.1.2-12]
  // v3.1 and 3.1.1 forbid a password without a user name [MQTT-3.1.2-22];
  // v5 allows it (MQTT 5.0 section 3.1.2.9).
  if (!IsV5(v) && f.password && !f.username) {
    return Malformed("password flag set without user name flag");
  }
  return Status::Ok();
}

// Payload order: client identifier, will properties (v5), will topic, will
// payload, user name, password (MQTT 5.0 section 3.1.3).
Status ReadConnectPayload(Reader& r, const ConnectFlags& f, Connect& out) {
  FERRY_CODEC_TRY(r.ReadUtf8(out.client_id, "client identifier"));  // [MQTT-3.1.3-4]
  if (f.will) {
    Will& will = out.will.emplace();
    will.qos = f.will_qos;
    will.retain = f.will_retain;
    if (IsV5(out.version)) {
      FERRY_CODEC_TRY(DecodeProperties(r, PropertyScope::kWill, will.props));
    }
    FERRY_CODEC_TRY(r.ReadUtf8(will.topic, "will topic"));
    FERRY_CODEC_TRY(r.ReadBinary(will.payload, "will payload"));
  }
  if (f.username) FERRY_CODEC_TRY(r.ReadUtf8(out.username.emplace(), "user name"));
  if (f.password) FERRY_CODEC_TRY(r.ReadBinary(out.password.emplace(), "password"));
  return Status::Ok();
}

// v3.1.1 CONNACK return codes 1..5 as v5 reason codes (MQTT 3.1.1 table 3.1).
bool V3ReturnCodeToReason(uint8_t rc, ReasonCode& reason) {
  static constexpr ReasonCode kMap[] = {
      ReasonCode::kSuccess,
      ReasonCode::kUnsupportedProtocolVersion,
      ReasonCode::kClientIdentifierNotValid,
      ReasonCode::kServerUnavailable,
      ReasonCode::kBadUserNameOrPassword,
      ReasonCode::kNotAuthorized,
  };
  if (rc >= std::size(kMap)) return false;
  reason = kMap[rc];
  return true;
}

}  // namespace

Status DecodeConnect(Reader& r, Connect& out) {
  FERRY_CODEC_TRY(ReadProtocol(r, out));
  ConnectFlags flags;
  FERRY_CODEC_TRY(ReadConnectFlags(r, out.version, out, flags));
  FERRY_CODEC_TRY(r.ReadU16(out.keepalive_s, "keep alive"));
  if (IsV5(out.version)) {
    FERRY_CODEC_TRY(DecodeProperties(r, PropertyScope::kConnect, out.props));
  }
  return ReadConnectPayload(r, flags, out);
}

Status DecodeConnack(Reader& r, ProtocolVersion v, Connack& out) {
  uint8_t flags = 0;
  FERRY_CODEC_TRY(r.ReadU8(flags, "connect acknowledge flags"));
  // 3.1 has no session present flag: the whole byte is reserved and ignored.
  if (v != ProtocolVersion::kV31) {
    if (flags & 0xFE) return Malformed("reserved connack flags are set");  // [MQTT-3.2.2-1]
    out.session_present = (flags & 0x01) != 0;
  }
  uint8_t code = 0;
  FERRY_CODEC_TRY(r.ReadU8(code, IsV5(v) ? "reason code" : "return code"));
  if (IsV5(v)) {
    if (!IsReasonCodeAllowed(PacketType::kConnack, code)) {
      return ProtocolError("reason code not allowed in CONNACK");
    }
    out.reason = static_cast<ReasonCode>(code);
  } else if (!V3ReturnCodeToReason(code, out.reason)) {
    return ProtocolError("reserved CONNACK return code");
  }
  // [MQTT-3.2.2-4] (3.1.1), [MQTT-3.2.2-6] (5.0).
  if (out.session_present && out.reason != ReasonCode::kSuccess) {
    return ProtocolError("session present set on a refused connection");
  }
  if (IsV5(v)) FERRY_CODEC_TRY(DecodeProperties(r, PropertyScope::kConnack, out.props));
  return Status::Ok();
}

}  // namespace ferry::core::codec
