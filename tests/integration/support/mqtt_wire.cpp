#include "mqtt_wire.h"

#include <cassert>
#include <cstdio>

namespace ferry::testing::wire {
namespace {

uint8_t Level(MqttVersion v) { return static_cast<uint8_t>(v); }

void AppendBinary(Bytes* out, std::string_view s) { AppendString(out, s); }

void AppendProperties(Bytes* out, MqttVersion v, const Bytes& properties) {
  if (v != MqttVersion::kV5) return;
  AppendVarInt(out, static_cast<uint32_t>(properties.size()));
  out->insert(out->end(), properties.begin(), properties.end());
}

std::optional<RawPacket> ParseType(const Bytes& raw, PacketType type) {
  std::optional<RawPacket> p = Parse(raw);
  if (!p || p->type != type) return std::nullopt;
  return p;
}

}  // namespace

bool Reader::U8(uint8_t* v) {
  if (pos_ >= data_.size()) return false;
  *v = data_[pos_++];
  return true;
}

bool Reader::U16(uint16_t* v) {
  uint8_t hi = 0, lo = 0;
  if (!U8(&hi) || !U8(&lo)) return false;
  *v = static_cast<uint16_t>(hi << 8 | lo);
  return true;
}

bool Reader::U32(uint32_t* v) {
  uint16_t hi = 0, lo = 0;
  if (!U16(&hi) || !U16(&lo)) return false;
  *v = static_cast<uint32_t>(hi) << 16 | lo;
  return true;
}

bool Reader::VarInt(uint32_t* v) {
  *v = 0;
  for (int i = 0; i < 4; ++i) {
    uint8_t b = 0;
    if (!U8(&b)) return false;
    *v |= static_cast<uint32_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

bool Reader::Take(size_t n, Bytes* out) {
  if (n > data_.size() - pos_) return false;
  out->assign(data_.begin() + static_cast<std::ptrdiff_t>(pos_),
              data_.begin() + static_cast<std::ptrdiff_t>(pos_ + n));
  pos_ += n;
  return true;
}

bool Reader::String(std::string* s) {
  uint16_t len = 0;
  Bytes raw;
  if (!U16(&len) || !Take(len, &raw)) return false;
  s->assign(raw.begin(), raw.end());
  return true;
}

bool Reader::Properties(Bytes* props) {
  uint32_t len = 0;
  return VarInt(&len) && Take(len, props);
}

Bytes Reader::Rest() {
  Bytes rest(data_.begin() + static_cast<std::ptrdiff_t>(pos_), data_.end());
  pos_ = data_.size();
  return rest;
}

void AppendU16(Bytes* out, uint16_t v) {
  out->push_back(static_cast<uint8_t>(v >> 8));
  out->push_back(static_cast<uint8_t>(v));
}

void AppendU32(Bytes* out, uint32_t v) {
  AppendU16(out, static_cast<uint16_t>(v >> 16));
  AppendU16(out, static_cast<uint16_t>(v));
}

void AppendVarInt(Bytes* out, uint32_t v) {
  assert(v < 268435456u);
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    if (v != 0) b |= 0x80;
    out->push_back(b);
  } while (v != 0);
}

void AppendString(Bytes* out, std::string_view s) {
  AppendU16(out, static_cast<uint16_t>(s.size()));
  out->insert(out->end(), s.begin(), s.end());
}

Bytes Frame(uint8_t first_byte, const Bytes& body) {
  Bytes out{first_byte};
  AppendVarInt(&out, static_cast<uint32_t>(body.size()));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

Bytes Connect(const ConnectFields& f) {
  Bytes body;
  AppendString(&body, "MQTT");  // protocol name [MQTT-3.1.2-1]
  body.push_back(Level(f.version));
  uint8_t flags = 0;
  if (f.username) flags |= 0x80;
  if (f.password) flags |= 0x40;
  if (f.will) {
    flags |= 0x04 | static_cast<uint8_t>((f.will->qos & 3) << 3);
    if (f.will->retain) flags |= 0x20;
  }
  if (f.clean_start) flags |= 0x02;
  body.push_back(flags);
  AppendU16(&body, f.keepalive_s);
  AppendProperties(&body, f.version, f.properties);
  AppendString(&body, f.client_id);
  if (f.will) {
    AppendProperties(&body, f.version, f.will->properties);
    AppendString(&body, f.will->topic);
    AppendBinary(&body, f.will->payload);
  }
  if (f.username) AppendString(&body, *f.username);
  if (f.password) AppendBinary(&body, *f.password);
  return Frame(kConnect << 4, body);
}

Bytes Subscribe(MqttVersion v, uint16_t packet_id, const std::vector<Subscription>& subs,
                const Bytes& properties) {
  Bytes body;
  AppendU16(&body, packet_id);
  AppendProperties(&body, v, properties);
  for (const Subscription& s : subs) {
    AppendString(&body, s.filter);
    body.push_back(s.options);
  }
  return Frame(kSubscribe << 4 | 0x02, body);  // reserved flags 0010 [MQTT-3.8.1-1]
}

Bytes Unsubscribe(MqttVersion v, uint16_t packet_id, const std::vector<std::string>& filters) {
  Bytes body;
  AppendU16(&body, packet_id);
  AppendProperties(&body, v, {});
  for (const std::string& f : filters) AppendString(&body, f);
  return Frame(kUnsubscribe << 4 | 0x02, body);  // [MQTT-3.10.1-1]
}

Bytes Publish(MqttVersion v, const PublishFields& f) {
  Bytes body;
  AppendString(&body, f.topic);
  if (f.qos > 0) AppendU16(&body, f.packet_id);
  AppendProperties(&body, v, f.properties);
  body.insert(body.end(), f.payload.begin(), f.payload.end());
  uint8_t first = kPublish << 4 | static_cast<uint8_t>((f.qos & 3) << 1);
  if (f.dup) first |= 0x08;
  if (f.retain) first |= 0x01;
  return Frame(first, body);
}

Bytes PublishAck(PacketType type, MqttVersion v, uint16_t packet_id, uint8_t reason_code) {
  Bytes body;
  AppendU16(&body, packet_id);
  if (v == MqttVersion::kV5 && reason_code != 0) body.push_back(reason_code);
  const uint8_t flags = type == kPubrel ? 0x02 : 0x00;  // [MQTT-3.6.1-1]
  return Frame(static_cast<uint8_t>(type << 4 | flags), body);
}

Bytes PingReq() { return Frame(kPingreq << 4, {}); }

Bytes Disconnect(MqttVersion v, uint8_t reason_code) {
  Bytes body;
  if (v == MqttVersion::kV5 && reason_code != 0) body.push_back(reason_code);
  return Frame(kDisconnect << 4, body);
}

std::optional<RawPacket> Parse(const Bytes& raw) {
  Reader r(raw);
  uint8_t first;
  uint32_t length;
  RawPacket p;
  if (!r.U8(&first) || !r.VarInt(&length) || !r.Take(length, &p.body) || !r.AtEnd()) {
    return std::nullopt;
  }
  p.type = first >> 4;
  p.flags = first & 0x0f;
  return p;
}

std::optional<Connack> ParseConnack(const Bytes& raw) {
  const std::optional<RawPacket> p = ParseType(raw, kConnack);
  if (!p || p->body.size() < 2) return std::nullopt;
  return Connack{(p->body[0] & 0x01) != 0, p->body[1]};
}

std::optional<ReceivedPublish> ParsePublish(MqttVersion v, const Bytes& raw) {
  const std::optional<RawPacket> p = ParseType(raw, kPublish);
  if (!p) return std::nullopt;
  ReceivedPublish out;
  out.dup = (p->flags & 0x08) != 0;
  out.qos = (p->flags >> 1) & 0x03;
  out.retain = (p->flags & 0x01) != 0;
  Reader r(p->body);
  if (!r.String(&out.topic)) return std::nullopt;
  if (out.qos > 0 && !r.U16(&out.packet_id)) return std::nullopt;
  if (v == MqttVersion::kV5 && !r.Properties(&out.properties)) return std::nullopt;
  const Bytes payload = r.Rest();
  out.payload.assign(payload.begin(), payload.end());
  return out;
}

std::optional<Ack> ParseSuback(MqttVersion v, const Bytes& raw) {
  std::optional<RawPacket> p = Parse(raw);
  if (!p || (p->type != kSuback && p->type != kUnsuback)) return std::nullopt;
  Ack ack;
  Reader r(p->body);
  Bytes properties;
  if (!r.U16(&ack.packet_id)) return std::nullopt;
  if (v == MqttVersion::kV5 && !r.Properties(&properties)) return std::nullopt;
  ack.codes = r.Rest();
  return ack;
}

std::optional<uint8_t> ParseDisconnect(const Bytes& raw) {
  const std::optional<RawPacket> p = ParseType(raw, kDisconnect);
  if (!p) return std::nullopt;
  return p->body.empty() ? uint8_t{0} : p->body[0];
}

std::string Hex(const Bytes& bytes) {
  std::string out;
  char buf[4];
  for (uint8_t b : bytes) {
    std::snprintf(buf, sizeof(buf), "%02x", b);
    if (!out.empty()) out += ' ';
    out += buf;
  }
  return out;
}

}  // namespace ferry::testing::wire
