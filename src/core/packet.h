// MQTT control packets (3.1, 3.1.1 and 5.0) and their wire codec.
//
// Decoding is for untrusted bytes: every failure is a Status whose reason() is
// the MQTT v5 reason code to answer with (0x81 Malformed Packet, 0x82 Protocol
// Error, 0x95 Packet Too Large, 0x84 Unsupported Protocol Version for a
// CONNECT with an unknown level). Decoding never throws and never reads past
// the span it is given. Encoding is for packets we built ourselves: it asserts
// on impossible input (e.g. a QoS 1 PUBLISH with packet identifier 0).
//
// The codec holds no state; any thread may call it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/status.h"

namespace ferry::core {

enum class PacketType : uint8_t {
  kConnect = 1,
  kConnack = 2,
  kPublish = 3,
  kPuback = 4,
  kPubrec = 5,
  kPubrel = 6,
  kPubcomp = 7,
  kSubscribe = 8,
  kSuback = 9,
  kUnsubscribe = 10,
  kUnsuback = 11,
  kPingreq = 12,
  kPingresp = 13,
  kDisconnect = 14,
  kAuth = 15,
};

// The protocol level byte of CONNECT.
enum class ProtocolVersion : uint8_t { kV31 = 3, kV311 = 4, kV5 = 5 };

inline bool IsV5(ProtocolVersion v) { return v == ProtocolVersion::kV5; }

using UserProperties = std::vector<std::pair<std::string, std::string>>;

// MQTT v5 properties (MQTT 5.0 section 2.2.2). Every property any packet may
// carry; each packet uses the subset the specification allows for it, and the
// decoder rejects a property that is not allowed in the packet it came in
// (0x81) or that appears twice where only one is allowed (0x82).
struct Properties {
  std::optional<uint8_t> payload_format_indicator;     // 0x01
  std::optional<uint32_t> message_expiry_interval;     // 0x02
  std::optional<std::string> content_type;             // 0x03
  std::optional<std::string> response_topic;           // 0x08
  std::optional<std::string> correlation_data;         // 0x09 (binary)
  std::vector<uint32_t> subscription_identifiers;      // 0x0B (PUBLISH may carry several)
  std::optional<uint32_t> session_expiry_interval;     // 0x11
  std::optional<std::string> assigned_client_identifier;  // 0x12
  std::optional<uint16_t> server_keep_alive;           // 0x13
  std::optional<std::string> authentication_method;    // 0x15
  std::optional<std::string> authentication_data;      // 0x16 (binary)
  std::optional<uint8_t> request_problem_information;  // 0x17
  std::optional<uint32_t> will_delay_interval;         // 0x18
  std::optional<uint8_t> request_response_information; // 0x19
  std::optional<std::string> response_information;     // 0x1A
  std::optional<std::string> server_reference;         // 0x1C
  std::optional<std::string> reason_string;            // 0x1F
  std::optional<uint16_t> receive_maximum;             // 0x21
  std::optional<uint16_t> topic_alias_maximum;         // 0x22
  std::optional<uint16_t> topic_alias;                 // 0x23
  std::optional<uint8_t> maximum_qos;                  // 0x24
  std::optional<uint8_t> retain_available;             // 0x25
  UserProperties user_properties;                      // 0x26, any number, order kept
  std::optional<uint32_t> maximum_packet_size;         // 0x27
  std::optional<uint8_t> wildcard_subscription_available;         // 0x28
  std::optional<uint8_t> subscription_identifier_available;       // 0x29
  std::optional<uint8_t> shared_subscription_available;           // 0x2A

  bool operator==(const Properties&) const = default;
};

struct Will {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  bool retain = false;
  Properties props;  // v5 will properties (will delay, expiry, content type, ...)

  bool operator==(const Will&) const = default;
};

struct Connect {
  std::string protocol_name = "MQTT";  // "MQIsdp" for 3.1
  ProtocolVersion version = ProtocolVersion::kV311;
  // Set when the protocol level byte had 0x80 set (mosquitto-style bridge).
  bool bridge = false;
  bool clean_start = true;  // "clean session" in 3.1.1
  uint16_t keepalive_s = 0;
  std::string client_id;
  std::optional<Will> will;
  std::optional<std::string> username;
  std::optional<std::string> password;  // binary
  Properties props;

  bool operator==(const Connect&) const = default;
};

struct Connack {
  bool session_present = false;
  // v5 reason code; for v3 the encoder maps it to a 3.1.1 return code.
  ReasonCode reason = ReasonCode::kSuccess;
  Properties props;

  bool operator==(const Connack&) const = default;
};

struct Publish {
  std::string topic;  // may be empty in v5 when a topic alias is used
  std::string payload;
  uint8_t qos = 0;
  bool retain = false;
  bool dup = false;
  uint16_t packet_id = 0;  // 0 for QoS 0
  Properties props;

  bool operator==(const Publish&) const = default;
};

// PUBACK, PUBREC, PUBREL and PUBCOMP share one shape.
struct PubAck {
  PacketType type = PacketType::kPuback;
  uint16_t packet_id = 0;
  ReasonCode reason = ReasonCode::kSuccess;
  Properties props;

  bool operator==(const PubAck&) const = default;
};

struct SubscribeTopic {
  std::string filter;
  uint8_t qos = 0;
  bool no_local = false;           // v5
  bool retain_as_published = false;  // v5
  uint8_t retain_handling = 0;     // v5: 0, 1 or 2

  bool operator==(const SubscribeTopic&) const = default;
};

struct Subscribe {
  uint16_t packet_id = 0;
  std::vector<SubscribeTopic> topics;
  Properties props;

  bool operator==(const Subscribe&) const = default;
};

struct Suback {
  uint16_t packet_id = 0;
  // One per topic: granted QoS (0x00-0x02) or a failure code. For v3 the
  // encoder writes 0x80 for every failure.
  std::vector<ReasonCode> reasons;
  Properties props;

  bool operator==(const Suback&) const = default;
};

struct Unsubscribe {
  uint16_t packet_id = 0;
  std::vector<std::string> filters;
  Properties props;

  bool operator==(const Unsubscribe&) const = default;
};

struct Unsuback {
  uint16_t packet_id = 0;
  std::vector<ReasonCode> reasons;  // v5 only; empty and not written for v3
  Properties props;

  bool operator==(const Unsuback&) const = default;
};

struct Pingreq {
  bool operator==(const Pingreq&) const = default;
};
struct Pingresp {
  bool operator==(const Pingresp&) const = default;
};

struct Disconnect {
  ReasonCode reason = ReasonCode::kSuccess;
  Properties props;

  bool operator==(const Disconnect&) const = default;
};

struct Auth {
  ReasonCode reason = ReasonCode::kSuccess;
  Properties props;

  bool operator==(const Auth&) const = default;
};

using Packet = std::variant<Connect, Connack, Publish, PubAck, Subscribe, Suback,
                            Unsubscribe, Unsuback, Pingreq, Pingresp, Disconnect, Auth>;

PacketType TypeOf(const Packet& packet);
const char* PacketTypeName(PacketType type);

// ---- Framing ---------------------------------------------------------------

// The fixed header of a packet at the front of a receive buffer.
struct FixedHeader {
  uint8_t first_byte = 0;        // packet type << 4 | flags
  uint32_t remaining_length = 0;
  uint8_t header_length = 0;     // 2 to 5 bytes
  PacketType type() const { return static_cast<PacketType>(first_byte >> 4); }
  uint8_t flags() const { return first_byte & 0x0F; }
  size_t total_length() const { return header_length + size_t{remaining_length}; }
};

// Parses the fixed header at the start of `bytes`.
// Returns std::nullopt (inside an ok Result) when more bytes are needed.
// Errors: 0x81 for a remaining length longer than four bytes or a non-minimal
// encoding that overflows; 0x95 when the total packet length exceeds
// `max_packet_size` (checked before the body is read, so nothing is allocated
// for an oversized packet).
Result<std::optional<FixedHeader>> ParseFixedHeader(std::span<const uint8_t> bytes,
                                                    uint32_t max_packet_size);

// Decodes one whole packet: `header` as returned by ParseFixedHeader and `body`
// the remaining_length bytes after it. `version` is the connection's protocol
// version; it is ignored for CONNECT, which carries its own.
// Errors: a Status with the reason code to answer with (see top of file).
// Validates every fixed-header flag, every length, UTF-8 strings (well formed,
// no U+0000, no surrogates) [MQTT-1.5.4-1..3], property legality, QoS 3,
// packet identifier 0 on QoS > 0 [MQTT-2.2.1-3], empty SUBSCRIBE/UNSUBSCRIBE
// payloads [MQTT-3.8.3-3] [MQTT-3.10.3-2] and reserved bits.
// Topic filters of SUBSCRIBE and UNSUBSCRIBE must be syntactically valid
// (core/topic.h: ValidateTopicFilter, ParseSharedFilter), or the packet is
// malformed; topic names are checked by the broker (aliases come first).
Result<Packet> Decode(const FixedHeader& header, std::span<const uint8_t> body,
                      ProtocolVersion version);

// Appends the encoding of `packet` for a peer speaking `version` to `out`.
// For v3 peers, v5-only fields (properties, reason codes other than those a
// v3 packet can carry) are not written.
// REQUIRES: the packet is well formed (asserted).
void Encode(const Packet& packet, ProtocolVersion version, std::string& out);

// The number of bytes Encode would append; used to honour a peer's maximum
// packet size before building a packet.
size_t EncodedSize(const Packet& packet, ProtocolVersion version);

// A PUBLISH whose topic, payload and properties are borrowed: the broker
// encodes each delivery from the shared message without copying it first.
struct PublishView {
  std::string_view topic;  // may be empty in v5 when props->topic_alias is set
  std::string_view payload;
  uint8_t qos = 0;
  bool retain = false;
  bool dup = false;
  uint16_t packet_id = 0;
  const Properties* props = nullptr;  // v5 only; nullptr = none
};

// Same contract as Encode / EncodedSize, for a borrowed PUBLISH.
void EncodePublish(const PublishView& publish, ProtocolVersion version, std::string& out);
size_t EncodedPublishSize(const PublishView& publish, ProtocolVersion version);

// Appends what Encode writes for PubAck{type, packet_id, kSuccess, {}} (the
// same four bytes in every version), without building the packet: the
// acknowledgements a broker sends for every QoS 1 and 2 message.
// REQUIRES: type is kPuback, kPubrec, kPubrel or kPubcomp.
void EncodeSuccessAck(PacketType type, uint16_t packet_id, std::string& out);

// The MQTT 3.1.1 (and 3.1) CONNACK return code for a refusal `reason`
// (MQTT 3.1.1 table 3.1), or nothing where those versions have no code for
// it: such a CONNECT is refused by closing the connection [MQTT-3.2.2-6].
std::optional<uint8_t> V3ConnackReturnCode(ReasonCode reason);

// True if `s` is a well-formed MQTT UTF-8 string: valid UTF-8, no U+0000, no
// UTF-16 surrogates [MQTT-1.5.4-1] [MQTT-1.5.4-2].
bool IsValidMqttUtf8(std::string_view s);

}  // namespace ferry::core
