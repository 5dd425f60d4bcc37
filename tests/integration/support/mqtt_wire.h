// Hand-built MQTT packets for byte-level tests, written from the
// specification (MQTT 3.1.1 and 5.0, chapter 3) and independent of ferry's own
// codec, so that a codec bug cannot hide behind the same bug in the test.
//
// Builders take what the test says, without validation: a test may build a
// malformed packet on purpose (a bad topic name, a QoS of 3, a wrong protocol
// level). Parsers read the broker's answers and return nullopt on anything
// that does not fit; they never crash on it.
//
// Thread: any; no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "types.h"

namespace ferry::testing::wire {

// Control packet types, MQTT 5.0 section 2.1.2.
enum PacketType : uint8_t {
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

// Field encoders (MQTT 5.0 section 1.5).
void AppendU16(Bytes* out, uint16_t v);
void AppendU32(Bytes* out, uint32_t v);
void AppendVarInt(Bytes* out, uint32_t v);  // REQUIRES: v < 268435456
void AppendString(Bytes* out, std::string_view s);

// Bounds-checked reader over bytes the peer sent: every read returns false
// instead of running past the end. Borrows `data` for its lifetime.
class Reader {
 public:
  explicit Reader(const Bytes& data) : data_(data) {}

  bool U8(uint8_t* v);
  bool U16(uint16_t* v);
  bool U32(uint32_t* v);
  bool VarInt(uint32_t* v);
  bool Take(size_t n, Bytes* out);
  // Two-byte length, then the bytes (UTF-8 string or binary data).
  bool String(std::string* s);
  // A v5 property list: its length, then that many bytes (unparsed).
  bool Properties(Bytes* props);
  Bytes Rest();
  bool AtEnd() const { return pos_ == data_.size(); }

 private:
  const Bytes& data_;
  size_t pos_ = 0;
};

// Fixed header (first byte, then the remaining length) followed by `body`.
Bytes Frame(uint8_t first_byte, const Bytes& body);

struct Will {
  std::string topic;
  std::string payload;
  int qos = 0;
  bool retain = false;
  Bytes properties;  // v5 will properties, without their length
};

struct ConnectFields {
  MqttVersion version = MqttVersion::kV311;
  std::string client_id;
  bool clean_start = true;  // "clean session" in 3.1.1
  uint16_t keepalive_s = 60;
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::optional<Will> will;
  Bytes properties;  // v5 CONNECT properties, without their length
};
Bytes Connect(const ConnectFields& f);

// One topic filter and its subscription options byte: the maximum QoS in bits
// 0-1; in v5 also No Local (bit 2), Retain As Published (3), Retain Handling
// (4-5) [MQTT-3.8.3.1].
struct Subscription {
  std::string filter;
  uint8_t options = 0;
};
Bytes Subscribe(MqttVersion v, uint16_t packet_id, const std::vector<Subscription>& subs,
                const Bytes& properties = {});
Bytes Unsubscribe(MqttVersion v, uint16_t packet_id, const std::vector<std::string>& filters);

struct PublishFields {
  std::string topic;
  std::string payload;
  int qos = 0;
  bool retain = false;
  bool dup = false;
  uint16_t packet_id = 0;  // written only when qos > 0
  Bytes properties;        // v5 only, without their length
};
Bytes Publish(MqttVersion v, const PublishFields& f);

// PUBACK, PUBREC, PUBREL or PUBCOMP. In v5 a reason code other than 0 is
// written; 0 uses the short form [MQTT-3.4.2.1].
Bytes PublishAck(PacketType type, MqttVersion v, uint16_t packet_id, uint8_t reason_code = 0);
Bytes PingReq();
// v3.1.1 DISCONNECT has no body; v5 carries `reason_code` when it is not 0.
Bytes Disconnect(MqttVersion v, uint8_t reason_code = 0);

// One whole packet split into its parts.
struct RawPacket {
  uint8_t type = 0;
  uint8_t flags = 0;
  Bytes body;
};
// Parses exactly one packet that fills `raw`.
std::optional<RawPacket> Parse(const Bytes& raw);

struct Connack {
  bool session_present = false;
  uint8_t code = 0;  // v3.1.1 return code or v5 reason code
};
std::optional<Connack> ParseConnack(const Bytes& raw);

struct ReceivedPublish {
  std::string topic;
  std::string payload;
  int qos = 0;
  bool retain = false;
  bool dup = false;
  uint16_t packet_id = 0;
  Bytes properties;
};
std::optional<ReceivedPublish> ParsePublish(MqttVersion v, const Bytes& raw);

// The packet identifier and the return/reason codes of a SUBACK or UNSUBACK.
struct Ack {
  uint16_t packet_id = 0;
  std::vector<uint8_t> codes;
};
std::optional<Ack> ParseSuback(MqttVersion v, const Bytes& raw);

// Reason code of a v5 DISCONNECT (0 when the body is empty).
std::optional<uint8_t> ParseDisconnect(const Bytes& raw);

// Bytes as "10 0c 00 04 ...", for failure messages.
std::string Hex(const Bytes& bytes);

}  // namespace ferry::testing::wire
