// The public face of the codec: framing, dispatch on packet type, and the
// checks common to every packet (fixed-header flags, trailing bytes). The
// per-packet work is in codec_decode*.cpp and codec_encode.cpp.

#include "core/packet.h"

#include <cassert>
#include <iterator>

#include "core/codec_decode.h"
#include "core/codec_encode.h"
#include "core/codec_properties.h"
#include "core/codec_reader.h"
#include "core/codec_writer.h"

namespace ferry::core {
namespace {

using codec::Malformed;
using codec::Reader;

// Fixed header flags (MQTT 5.0 section 2.1.3): PUBREL, SUBSCRIBE and
// UNSUBSCRIBE carry 0b0010 [MQTT-3.6.1-1] [MQTT-3.8.1-1] [MQTT-3.10.1-1];
// PUBLISH's are checked by its decoder; every other type carries 0
// [MQTT-2.1.3-1]. Invalid flags make a Malformed Packet.
//
// Those rules exist from 3.1.1 on. MQTT 3.1 (level 3) gives every packet the
// DUP, QoS and RETAIN bits: PUBREL, SUBSCRIBE and UNSUBSCRIBE use QoS 1 and
// set DUP when re-sent after a reconnect (0x6A, 0x8A, 0xAA), RETAIN is not
// used, and the other types do not use the bits at all (MQTT 3.1 sections
// 2.1 and 3.x, "Fixed header").
Status CheckFixedHeaderFlags(const FixedHeader& header, ProtocolVersion v) {
  const PacketType type = header.type();
  if (static_cast<uint8_t>(type) == 0) return Malformed("reserved packet type 0");
  if (type == PacketType::kAuth && !IsV5(v)) {
    return Malformed("packet type 15 is reserved before MQTT 5");
  }
  if (type == PacketType::kPublish) return Status::Ok();
  const bool needs_0010 = type == PacketType::kPubrel || type == PacketType::kSubscribe ||
                          type == PacketType::kUnsubscribe;
  const bool ok = v == ProtocolVersion::kV31
                      ? !needs_0010 || (header.flags() & 0x06) == 0x02  // QoS 1, DUP free
                      : header.flags() == (needs_0010 ? 0x02 : 0x00);
  if (!ok) return Malformed(std::string("invalid fixed header flags for ") + PacketTypeName(type));
  return Status::Ok();
}

// Builds a T in place inside the Packet inside the Result, so decoded strings
// are copied out of the receive buffer once and the packet (a PUBLISH with
// its ~500-byte Properties) is not moved on its way out.
template <typename T, typename DecodeFn>
Result<Packet> DecodeAs(Reader& r, DecodeFn&& decode) {
  Result<Packet> packet(std::in_place, std::in_place_type<T>);
  FERRY_CODEC_TRY(decode(std::get<T>(*packet)));
  if (!r.empty()) return Malformed("trailing bytes after the end of the packet");
  return packet;
}

Result<Packet> DecodeBody(const FixedHeader& header, Reader& r, ProtocolVersion v) {
  using namespace codec;
  const PacketType type = header.type();
  switch (type) {
    case PacketType::kConnect:
      return DecodeAs<Connect>(r, [&](Connect& p) { return DecodeConnect(r, p); });
    case PacketType::kConnack:
      return DecodeAs<Connack>(r, [&](Connack& p) { return DecodeConnack(r, v, p); });
    case PacketType::kPublish:
      return DecodeAs<Publish>(r,
                               [&](Publish& p) { return DecodePublish(r, header.flags(), v, p); });
    case PacketType::kPuback:
    case PacketType::kPubrec:
    case PacketType::kPubrel:
    case PacketType::kPubcomp:
      return DecodeAs<PubAck>(r, [&](PubAck& p) { return DecodePubAck(r, type, v, p); });
    case PacketType::kSubscribe:
      return DecodeAs<Subscribe>(r, [&](Subscribe& p) { return DecodeSubscribe(r, v, p); });
    case PacketType::kSuback:
      return DecodeAs<Suback>(r, [&](Suback& p) { return DecodeSuback(r, v, p); });
    case PacketType::kUnsubscribe:
      return DecodeAs<Unsubscribe>(r, [&](Unsubscribe& p) { return DecodeUnsubscribe(r, v, p); });
    case PacketType::kUnsuback:
      return DecodeAs<Unsuback>(r, [&](Unsuback& p) { return DecodeUnsuback(r, v, p); });
    case PacketType::kPingreq:
      return DecodeAs<Pingreq>(r, [](Pingreq&) { return Status::Ok(); });
    case PacketType::kPingresp:
      return DecodeAs<Pingresp>(r, [](Pingresp&) { return Status::Ok(); });
    case PacketType::kDisconnect:
      return DecodeAs<Disconnect>(r, [&](Disconnect& p) { return DecodeDisconnect(r, v, p); });
    case PacketType::kAuth:
      return DecodeAs<Auth>(r, [&](Auth& p) { return DecodeAuth(r, v, p); });
  }
  return Malformed("reserved packet type");
}

struct Framing {
  uint8_t first_byte;
  size_t body_size;
  size_t total() const { return 1 + codec::VarIntSize(body_size) + body_size; }
};

Framing FramingOf(const Packet& packet, ProtocolVersion v) {
  return std::visit(
      [v](const auto& p) {
        return Framing{codec::FirstByte(p, v), codec::BodySize(p, v)};
      },
      packet);
}

}  // namespace

PacketType TypeOf(const Packet& packet) {
  // In the order of the Packet variant's alternatives.
  static constexpr PacketType kTypes[] = {
      PacketType::kConnect,     PacketType::kConnack,    PacketType::kPublish,
      PacketType::kPuback,      PacketType::kSubscribe,  PacketType::kSuback,
      PacketType::kUnsubscribe, PacketType::kUnsuback,   PacketType::kPingreq,
      PacketType::kPingresp,    PacketType::kDisconnect, PacketType::kAuth,
  };
  static_assert(std::size(kTypes) == std::variant_size_v<Packet>);
  if (const auto* ack = std::get_if<PubAck>(&packet)) return ack->type;
  return kTypes[packet.index()];
}

const char* PacketTypeName(PacketType type) {
  switch (type) {
    case PacketType::kConnect:
      return "CONNECT";
    case PacketType::kConnack:
      return "CONNACK";
    case PacketType::kPublish:
      return "PUBLISH";
    case PacketType::kPuback:
      return "PUBACK";
    case PacketType::kPubrec:
      return "PUBREC";
    case PacketType::kPubrel:
      return "PUBREL";
    case PacketType::kPubcomp:
      return "PUBCOMP";
    case PacketType::kSubscribe:
      return "SUBSCRIBE";
    case PacketType::kSuback:
      return "SUBACK";
    case PacketType::kUnsubscribe:
      return "UNSUBSCRIBE";
    case PacketType::kUnsuback:
      return "UNSUBACK";
    case PacketType::kPingreq:
      return "PINGREQ";
    case PacketType::kPingresp:
      return "PINGRESP";
    case PacketType::kDisconnect:
      return "DISCONNECT";
    case PacketType::kAuth:
      return "AUTH";
  }
  return "RESERVED";
}

Result<std::optional<FixedHeader>> ParseFixedHeader(std::span<const uint8_t> bytes,
                                                    uint32_t max_packet_size) {
  using Parsed = std::optional<FixedHeader>;
  if (bytes.empty()) return Parsed();
  FixedHeader header;
  header.first_byte = bytes[0];
  uint32_t value = 0;
  // Remaining length: a variable byte integer of at most 4 bytes (MQTT 5.0
  // section 1.5.5, section 2.1.4).
  for (size_t i = 0; i < 4; ++i) {
    if (1 + i >= bytes.size()) return Parsed();
    const uint8_t b = bytes[1 + i];
    value |= uint32_t{b & 0x7Fu} << (7 * i);
    if ((b & 0x80) == 0) {
      header.remaining_length = value;
      header.header_length = static_cast<uint8_t>(2 + i);
      // Before anything is allocated for the body (MQTT 5.0 section 3.1.2.11.4).
      if (header.total_length() > max_packet_size) {
        return Status::Protocol(ReasonCode::kPacketTooLarge,
                                "packet of " + std::to_string(header.total_length()) +
                                    " bytes exceeds the maximum packet size");
      }
      return Parsed(header);
    }
  }
  return Malformed("remaining length longer than 4 bytes");
}

Result<Packet> Decode(const FixedHeader& header, std::span<const uint8_t> body,
                      ProtocolVersion version) {
  if (body.size() != header.remaining_length) {
    return Malformed("body size differs from the remaining length");
  }
  FERRY_CODEC_TRY(CheckFixedHeaderFlags(header, version));
  Reader r(body);
  return DecodeBody(header, r, version);
}

void Encode(const Packet& packet, ProtocolVersion version, std::string& out) {
  const Framing framing = FramingOf(packet, version);
  const size_t start = out.size();
  out.reserve(start + framing.total());
  codec::PutU8(out, framing.first_byte);
  codec::PutVarInt(out, framing.body_size);
  std::visit([&](const auto& p) { codec::PutBody(out, p, version); }, packet);
  assert(out.size() - start == framing.total() && "EncodedSize disagrees with Encode");
  (void)start;
}

size_t EncodedSize(const Packet& packet, ProtocolVersion version) {
  return FramingOf(packet, version).total();
}

namespace {

size_t PublishViewBodySize(const PublishView& p, ProtocolVersion v) {
  size_t props = IsV5(v) ? (p.props != nullptr
                                ? codec::PropertiesSize(*p.props, codec::PropertyScope::kPublish)
                                : 1)
                         : 0;
  return codec::StringSize(p.topic) + (p.qos > 0 ? 2 : 0) + props + p.payload.size();
}

}  // namespace

size_t EncodedPublishSize(const PublishView& p, ProtocolVersion v) {
  size_t body = PublishViewBodySize(p, v);
  return 1 + codec::VarIntSize(body) + body;
}

void EncodePublish(const PublishView& p, ProtocolVersion v, std::string& out) {
  assert(p.qos <= 2);
  assert(!(p.dup && p.qos == 0) && "[MQTT-3.3.1-2]");
  assert(p.qos == 0 || p.packet_id != 0);
  const size_t body = PublishViewBodySize(p, v);
  out.reserve(out.size() + 1 + codec::VarIntSize(body) + body);
  codec::PutU8(
      out, static_cast<uint8_t>(0x30 | (p.dup ? 0x08 : 0) | (p.qos << 1) | (p.retain ? 0x01 : 0)));
  codec::PutVarInt(out, body);
  codec::PutString(out, p.topic);
  if (p.qos > 0) codec::PutU16(out, p.packet_id);
  if (IsV5(v)) {
    if (p.props != nullptr) {
      codec::PutProperties(out, *p.props, codec::PropertyScope::kPublish);
    } else {
      codec::PutVarInt(out, 0);
    }
  }
  out.append(p.payload);
}

void EncodeSuccessAck(PacketType type, uint16_t packet_id, std::string& out) {
  assert(type == PacketType::kPuback || type == PacketType::kPubrec ||
         type == PacketType::kPubrel || type == PacketType::kPubcomp);
  // PUBREL's fixed header flags are 0b0010 [MQTT-3.6.1-1]; a v5 reason code
  // 0x00 without properties may be left out [MQTT-3.4.2.1].
  const char bytes[4] = {
      static_cast<char>(static_cast<uint8_t>(type) << 4 | (type == PacketType::kPubrel ? 0x02 : 0)),
      0x02, static_cast<char>(packet_id >> 8), static_cast<char>(packet_id & 0xFF)};
  out.append(bytes, sizeof bytes);
}

}  // namespace ferry::core
