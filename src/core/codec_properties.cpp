#include "core/codec_properties.h"

#include <cassert>
#include <cstdio>
#include <optional>

#include "core/codec_writer.h"

namespace ferry::core::codec {
namespace {

constexpr uint64_t Bit(uint8_t id) { return uint64_t{1} << id; }

// Properties allowed in each place (MQTT 5.0 table 2-4, section 2.2.2.2).
constexpr uint64_t kMessageProps =
    Bit(0x01) | Bit(0x02) | Bit(0x03) | Bit(0x08) | Bit(0x09) | Bit(0x26);
constexpr uint64_t kAckProps = Bit(0x1F) | Bit(0x26);

uint64_t AllowedIds(PropertyScope scope) {
  switch (scope) {
    case PropertyScope::kConnect:
      return Bit(0x11) | Bit(0x15) | Bit(0x16) | Bit(0x17) | Bit(0x19) | Bit(0x21) | Bit(0x22) |
             Bit(0x26) | Bit(0x27);
    case PropertyScope::kConnack:
      return Bit(0x11) | Bit(0x12) | Bit(0x13) | Bit(0x15) | Bit(0x16) | Bit(0x1A) | Bit(0x1C) |
             Bit(0x1F) | Bit(0x21) | Bit(0x22) | Bit(0x24) | Bit(0x25) | Bit(0x26) | Bit(0x27) |
             Bit(0x28) | Bit(0x29) | Bit(0x2A);
    case PropertyScope::kPublish:
      return kMessageProps | Bit(0x0B) | Bit(0x23);
    case PropertyScope::kWill:
      return kMessageProps | Bit(0x18);
    case PropertyScope::kPubResponse:
    case PropertyScope::kSuback:
    case PropertyScope::kUnsuback:
      return kAckProps;
    case PropertyScope::kSubscribe:
      return Bit(0x0B) | Bit(0x26);
    case PropertyScope::kUnsubscribe:
      return Bit(0x26);
    case PropertyScope::kDisconnect:
      return Bit(0x11) | Bit(0x1C) | kAckProps;
    case PropertyScope::kAuth:
      return Bit(0x15) | Bit(0x16) | kAckProps;
  }
  return 0;
}

Status Duplicate(const char* name) {
  return ProtocolError(std::string(name) + " property appears more than once");
}
Status BadValue(const char* name) {
  return ProtocolError(std::string(name) + " property has a value the specification forbids");
}

// Each Read*Once reads one single-occurrence property: a second occurrence is
// a Protocol Error (MQTT 5.0 section 2.2.2.2, "It is a Protocol Error to
// include ... more than once").
Status ReadByteOnce(Reader& r, std::optional<uint8_t>& v, const char* name, uint8_t max) {
  if (v) return Duplicate(name);
  uint8_t b = 0;
  FERRY_CODEC_TRY(r.ReadU8(b, name));
  if (b > max) return BadValue(name);
  v = b;
  return Status::Ok();
}

Status ReadU16Once(Reader& r, std::optional<uint16_t>& v, const char* name, bool nonzero) {
  if (v) return Duplicate(name);
  uint16_t x = 0;
  FERRY_CODEC_TRY(r.ReadU16(x, name));
  if (nonzero && x == 0) return BadValue(name);
  v = x;
  return Status::Ok();
}

Status ReadU32Once(Reader& r, std::optional<uint32_t>& v, const char* name, bool nonzero) {
  if (v) return Duplicate(name);
  uint32_t x = 0;
  FERRY_CODEC_TRY(r.ReadU32(x, name));
  if (nonzero && x == 0) return BadValue(name);
  v = x;
  return Status::Ok();
}

Status ReadUtf8Once(Reader& r, std::optional<std::string>& v, const char* name) {
  if (v) return Duplicate(name);
  return r.ReadUtf8(v.emplace(), name);
}

Status ReadBinaryOnce(Reader& r, std::optional<std::string>& v, const char* name) {
  if (v) return Duplicate(name);
  return r.ReadBinary(v.emplace(), name);
}

// Subscription identifiers: several may arrive in a PUBLISH (one per matching
// subscription), at most one in a SUBSCRIBE; 0 is a Protocol Error
// (MQTT 5.0 section 3.3.2.3.8 and 3.8.2.1.2).
Status ReadSubscriptionId(Reader& r, PropertyScope scope, Properties& props) {
  const char* name = "subscription identifier";
  if (scope == PropertyScope::kSubscribe && !props.subscription_identifiers.empty()) {
    return Duplicate(name);
  }
  uint32_t id = 0;
  FERRY_CODEC_TRY(r.ReadVarInt(id, name));
  if (id == 0) return BadValue(name);
  props.subscription_identifiers.push_back(id);
  return Status::Ok();
}

Status ReadUserProperty(Reader& r, Properties& props) {
  auto& [key, value] = props.user_properties.emplace_back();
  FERRY_CODEC_TRY(r.ReadUtf8(key, "user property name"));
  return r.ReadUtf8(value, "user property value");
}

// Value rules: receive maximum, maximum packet size and topic alias 0, and
// the 0/1 flags (payload format indicator, request problem/response
// information, the *_available bytes) outside 0..1, and maximum QoS above 1
// are Protocol Errors (MQTT 5.0 sections 3.1.2.11, 3.2.2.3, 3.3.2.3). Topic
// alias 0 is caught here; its upper bound depends on the connection and is
// the broker's check.
Status ReadProperty(Reader& r, uint8_t id, PropertyScope scope, Properties& p) {
  switch (id) {
    case 0x01:
      return ReadByteOnce(r, p.payload_format_indicator, "payload format indicator", 1);
    case 0x02:
      return ReadU32Once(r, p.message_expiry_interval, "message expiry interval", false);
    case 0x03:
      return ReadUtf8Once(r, p.content_type, "content type");
    case 0x08:
      return ReadUtf8Once(r, p.response_topic, "response topic");
    case 0x09:
      return ReadBinaryOnce(r, p.correlation_data, "correlation data");
    case 0x0B:
      return ReadSubscriptionId(r, scope, p);
    case 0x11:
      return ReadU32Once(r, p.session_expiry_interval, "session expiry interval", false);
    case 0x12:
      return ReadUtf8Once(r, p.assigned_client_identifier, "assigned client identifier");
    case 0x13:
      return ReadU16Once(r, p.server_keep_alive, "server keep alive", false);
    case 0x15:
      return ReadUtf8Once(r, p.authentication_method, "authentication method");
    case 0x16:
      return ReadBinaryOnce(r, p.authentication_data, "authentication data");
    case 0x17:
      return ReadByteOnce(r, p.request_problem_information, "request problem information", 1);
    case 0x18:
      return ReadU32Once(r, p.will_delay_interval, "will delay interval", false);
    case 0x19:
      return ReadByteOnce(r, p.request_response_information, "request response information", 1);
    case 0x1A:
      return ReadUtf8Once(r, p.response_information, "response information");
    case 0x1C:
      return ReadUtf8Once(r, p.server_reference, "server reference");
    case 0x1F:
      return ReadUtf8Once(r, p.reason_string, "reason string");
    case 0x21:
      return ReadU16Once(r, p.receive_maximum, "receive maximum", true);
    case 0x22:
      return ReadU16Once(r, p.topic_alias_maximum, "topic alias maximum", false);
    case 0x23:
      // 0 is invalid, but that is the receiver's Topic Alias invalid (0x94)
      // to answer, not a malformed property [MQTT-3.3.2-8].
      return ReadU16Once(r, p.topic_alias, "topic alias", false);
    case 0x24:
      return ReadByteOnce(r, p.maximum_qos, "maximum qos", 1);
    case 0x25:
      return ReadByteOnce(r, p.retain_available, "retain available", 1);
    case 0x26:
      return ReadUserProperty(r, p);
    case 0x27:
      return ReadU32Once(r, p.maximum_packet_size, "maximum packet size", true);
    case 0x28:
      return ReadByteOnce(r, p.wildcard_subscription_available, "wildcard subscription available",
                          1);
    case 0x29:
      return ReadByteOnce(r, p.subscription_identifier_available,
                          "subscription identifier available", 1);
    case 0x2A:
      return ReadByteOnce(r, p.shared_subscription_available, "shared subscription available", 1);
  }
  return Malformed("unknown property identifier");
}

// Calls the visitor once per property present, in identifier order; user
// properties and subscription identifiers keep their order.
template <typename Visitor>
void VisitProperties(const Properties& p, Visitor& v) {
  v.Byte(0x01, p.payload_format_indicator);
  v.U32(0x02, p.message_expiry_interval);
  v.Str(0x03, p.content_type);
  v.Str(0x08, p.response_topic);
  v.Str(0x09, p.correlation_data);
  for (uint32_t id : p.subscription_identifiers) v.VarInt(0x0B, id);
  v.U32(0x11, p.session_expiry_interval);
  v.Str(0x12, p.assigned_client_identifier);
  v.U16(0x13, p.server_keep_alive);
  v.Str(0x15, p.authentication_method);
  v.Str(0x16, p.authentication_data);
  v.Byte(0x17, p.request_problem_information);
  v.U32(0x18, p.will_delay_interval);
  v.Byte(0x19, p.request_response_information);
  v.Str(0x1A, p.response_information);
  v.Str(0x1C, p.server_reference);
  v.Str(0x1F, p.reason_string);
  v.U16(0x21, p.receive_maximum);
  v.U16(0x22, p.topic_alias_maximum);
  v.U16(0x23, p.topic_alias);
  v.Byte(0x24, p.maximum_qos);
  v.Byte(0x25, p.retain_available);
  for (const auto& [key, value] : p.user_properties) v.Pair(0x26, key, value);
  v.U32(0x27, p.maximum_packet_size);
  v.Byte(0x28, p.wildcard_subscription_available);
  v.Byte(0x29, p.subscription_identifier_available);
  v.Byte(0x2A, p.shared_subscription_available);
}

class Sizer {
 public:
  explicit Sizer(PropertyScope scope) : allowed_(AllowedIds(scope)) {}
  size_t size() const { return size_; }

  void Byte(uint8_t id, const std::optional<uint8_t>& v) { Add(id, v, 1); }
  void U16(uint8_t id, const std::optional<uint16_t>& v) { Add(id, v, 2); }
  void U32(uint8_t id, const std::optional<uint32_t>& v) { Add(id, v, 4); }
  void Str(uint8_t id, const std::optional<std::string>& v) {
    if (v) Count(id, StringSize(*v));
  }
  void VarInt(uint8_t id, uint32_t v) {
    assert(v != 0);
    Count(id, VarIntSize(v));
  }
  void Pair(uint8_t id, const std::string& key, const std::string& value) {
    Count(id, StringSize(key) + StringSize(value));
  }

 private:
  template <typename T>
  void Add(uint8_t id, const std::optional<T>& v, size_t n) {
    if (v) Count(id, n);
  }
  void Count([[maybe_unused]] uint8_t id, size_t value_size) {
    assert((allowed_ & Bit(id)) != 0 && "property not allowed in this packet");
    size_ += 1 + value_size;
  }

  [[maybe_unused]] uint64_t allowed_;
  size_t size_ = 0;
};

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  void Byte(uint8_t id, const std::optional<uint8_t>& v) {
    if (v) PutU8(Id(id), *v);
  }
  void U16(uint8_t id, const std::optional<uint16_t>& v) {
    if (v) PutU16(Id(id), *v);
  }
  void U32(uint8_t id, const std::optional<uint32_t>& v) {
    if (v) PutU32(Id(id), *v);
  }
  void Str(uint8_t id, const std::optional<std::string>& v) {
    if (v) PutString(Id(id), *v);
  }
  void VarInt(uint8_t id, uint32_t v) { PutVarInt(Id(id), v); }
  void Pair(uint8_t id, const std::string& key, const std::string& value) {
    PutString(Id(id), key);
    PutString(out_, value);
  }

 private:
  std::string& Id(uint8_t id) {
    PutU8(out_, id);
    return out_;
  }
  std::string& out_;
};

}  // namespace

Status DecodeProperties(Reader& r, PropertyScope scope, Properties& props) {
  uint32_t len = 0;
  FERRY_CODEC_TRY(r.ReadVarInt(len, "property length"));
  if (len > r.remaining()) return Malformed("property length runs past the end of the packet");
  Reader pr = r.Split(len);
  const uint64_t allowed = AllowedIds(scope);
  while (!pr.empty()) {
    uint8_t id = 0;
    FERRY_CODEC_TRY(pr.ReadU8(id, "property identifier"));
    if (id >= 64 || (allowed & Bit(id)) == 0) {
      char msg[64];
      std::snprintf(msg, sizeof(msg), "property 0x%02X is not allowed in this packet", id);
      return Malformed(msg);
    }
    FERRY_CODEC_TRY(ReadProperty(pr, id, scope, props));
  }
  // "It is a Protocol Error to include Authentication Data if there is no
  // Authentication Method" (MQTT 5.0 section 3.1.2.11.10).
  if (scope == PropertyScope::kConnect && props.authentication_data &&
      !props.authentication_method) {
    return ProtocolError("authentication data without authentication method");
  }
  return Status::Ok();
}

size_t PropertiesBodySize(const Properties& props, PropertyScope scope) {
  Sizer sizer(scope);
  VisitProperties(props, sizer);
  assert(scope != PropertyScope::kSubscribe || props.subscription_identifiers.size() <= 1);
  return sizer.size();
}

size_t PropertiesSize(const Properties& props, PropertyScope scope) {
  size_t body = PropertiesBodySize(props, scope);
  return VarIntSize(body) + body;
}

void PutProperties(std::string& out, const Properties& props, PropertyScope scope) {
  PutVarInt(out, PropertiesBodySize(props, scope));
  Writer writer(out);
  VisitProperties(props, writer);
}

}  // namespace ferry::core::codec
