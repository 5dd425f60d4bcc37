#include "v5_helpers.h"

#include <gtest/gtest.h>

#include "mqtt_wire.h"

namespace ferry::testing::v5 {
namespace {

enum class Kind { kByte, kU16, kU32, kVarInt, kString, kPair, kUnknown };

// The wire form of each property, MQTT 5.0 section 2.2.2.2.
Kind KindOf(uint8_t id) {
  switch (id) {
    case 0x01:
    case 0x17:
    case 0x19:
    case 0x24:
    case 0x25:
    case 0x28:
    case 0x29:
    case 0x2A:
      return Kind::kByte;
    case 0x13:
    case 0x21:
    case 0x22:
    case 0x23:
      return Kind::kU16;
    case 0x02:
    case 0x11:
    case 0x18:
    case 0x27:
      return Kind::kU32;
    case 0x0B:
      return Kind::kVarInt;
    case 0x03:
    case 0x08:
    case 0x09:
    case 0x12:
    case 0x15:
    case 0x16:
    case 0x1A:
    case 0x1C:
    case 0x1F:
      return Kind::kString;
    case 0x26:
      return Kind::kPair;
    default:
      return Kind::kUnknown;
  }
}

using wire::Reader;

// A property list with its leading length.
bool ReadProperties(Reader& r, PropertyList* out) {
  Bytes block;
  if (!r.Properties(&block)) return false;
  std::optional<PropertyList> parsed = PropertyList::Parse(block);
  if (!parsed) return false;
  *out = std::move(*parsed);
  return true;
}

bool ReadValue(Reader& r, Kind kind, Property* p) {
  switch (kind) {
    case Kind::kByte: {
      uint8_t b = 0;
      if (!r.U8(&b)) return false;
      p->number = b;
      return true;
    }
    case Kind::kU16: {
      uint16_t x = 0;
      if (!r.U16(&x)) return false;
      p->number = x;
      return true;
    }
    case Kind::kU32:
      return r.U32(&p->number);
    case Kind::kVarInt:
      return r.VarInt(&p->number);
    case Kind::kString:
      return r.String(&p->text);
    case Kind::kPair:
      return r.String(&p->text) && r.String(&p->value);
    case Kind::kUnknown:
      return false;
  }
  return false;
}

}  // namespace

void AddByte(Bytes* props, PropertyId id, uint8_t value) {
  props->push_back(id);
  props->push_back(value);
}

void AddU16(Bytes* props, PropertyId id, uint16_t value) {
  props->push_back(id);
  wire::AppendU16(props, value);
}

void AddU32(Bytes* props, PropertyId id, uint32_t value) {
  props->push_back(id);
  wire::AppendU32(props, value);
}

void AddVarInt(Bytes* props, PropertyId id, uint32_t value) {
  props->push_back(id);
  wire::AppendVarInt(props, value);
}

void AddString(Bytes* props, PropertyId id, std::string_view value) {
  props->push_back(id);
  wire::AppendString(props, value);
}

void AddUserProperty(Bytes* props, std::string_view key, std::string_view value) {
  props->push_back(kUserProperty);
  wire::AppendString(props, key);
  wire::AppendString(props, value);
}

std::optional<PropertyList> PropertyList::Parse(const Bytes& bytes) {
  PropertyList list;
  Reader r(bytes);
  while (!r.AtEnd()) {
    Property p;
    uint32_t id;
    // Identifiers are variable byte integers; every one defined fits a byte.
    if (!r.VarInt(&id) || id > 0xFF) return std::nullopt;
    p.id = static_cast<uint8_t>(id);
    if (!ReadValue(r, KindOf(p.id), &p)) return std::nullopt;
    list.all_.push_back(std::move(p));
  }
  return list;
}

bool PropertyList::Has(uint8_t id) const {
  for (const Property& p : all_) {
    if (p.id == id) return true;
  }
  return false;
}

std::optional<uint32_t> PropertyList::Number(uint8_t id) const {
  for (const Property& p : all_) {
    if (p.id == id) return p.number;
  }
  return std::nullopt;
}

std::vector<uint32_t> PropertyList::Numbers(uint8_t id) const {
  std::vector<uint32_t> out;
  for (const Property& p : all_) {
    if (p.id == id) out.push_back(p.number);
  }
  return out;
}

std::optional<std::string> PropertyList::Text(uint8_t id) const {
  for (const Property& p : all_) {
    if (p.id == id) return p.text;
  }
  return std::nullopt;
}

UserProperties PropertyList::User() const {
  UserProperties out;
  for (const Property& p : all_) {
    if (p.id == kUserProperty) out.emplace_back(p.text, p.value);
  }
  return out;
}

PropertyList PublishProperties(const Bytes& raw_properties) {
  std::optional<PropertyList> parsed = PropertyList::Parse(raw_properties);
  if (!parsed) {
    ADD_FAILURE() << "PUBLISH properties do not parse: " << wire::Hex(raw_properties);
    return PropertyList{};
  }
  return std::move(*parsed);
}

std::optional<ConnackPacket> ParseConnack(const Bytes& raw) {
  std::optional<wire::RawPacket> p = wire::Parse(raw);
  if (!p || p->type != wire::kConnack) return std::nullopt;
  Reader r(p->body);
  uint8_t flags;
  ConnackPacket out;
  if (!r.U8(&flags) || !r.U8(&out.code)) return std::nullopt;
  out.session_present = (flags & 0x01) != 0;
  if (!r.AtEnd() && !ReadProperties(r, &out.props)) return std::nullopt;
  if (!r.AtEnd()) return std::nullopt;
  return out;
}

std::optional<DisconnectPacket> ParseDisconnect(const Bytes& raw) {
  std::optional<wire::RawPacket> p = wire::Parse(raw);
  if (!p || p->type != wire::kDisconnect) return std::nullopt;
  Reader r(p->body);
  DisconnectPacket out;
  if (r.AtEnd()) return out;  // reason 0x00, no properties [MQTT 5.0 3.14.2.1]
  if (!r.U8(&out.code)) return std::nullopt;
  if (!r.AtEnd() && !ReadProperties(r, &out.props)) return std::nullopt;
  if (!r.AtEnd()) return std::nullopt;
  return out;
}

std::optional<SubAckPacket> ParseSubAck(const Bytes& raw) {
  std::optional<wire::RawPacket> p = wire::Parse(raw);
  if (!p || (p->type != wire::kSuback && p->type != wire::kUnsuback)) return std::nullopt;
  Reader r(p->body);
  SubAckPacket out;
  out.type = p->type;
  if (!r.U16(&out.packet_id) || !ReadProperties(r, &out.props)) return std::nullopt;
  out.codes = r.Rest();
  return out;
}

Bytes Auth(uint8_t reason, const Bytes& props) {
  Bytes body{reason};
  wire::AppendVarInt(&body, static_cast<uint32_t>(props.size()));
  body.insert(body.end(), props.begin(), props.end());
  return wire::Frame(wire::kAuth << 4, body);
}

}  // namespace ferry::testing::v5
