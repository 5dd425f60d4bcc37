// The receive fast path for PUBLISH. A benchmark client receives far more
// PUBLISH packets than anything else, and it only needs to look at them: this
// reads the topic, packet identifier and payload in place, without building a
// core::Publish. Every other packet goes through core::Decode.
//
// Wire layout (MQTT 5.0 section 3.3): fixed header flags DUP(3) QoS(2..1)
// RETAIN(0); then topic name (u16 length + bytes), packet identifier (u16,
// QoS > 0 only), v5 property length (variable byte integer) and properties,
// and the payload up to the end of the packet.
//
// Stateless; any thread may call it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace ferry::bench {

struct PublishView {
  std::string_view topic;
  std::span<const uint8_t> payload;
  uint8_t qos = 0;
  bool retain = false;
  bool dup = false;
  uint16_t packet_id = 0;
};

// Reads a PUBLISH from its first fixed-header byte and its body (the
// remaining-length bytes). nullopt if the body is malformed: truncated, QoS 3,
// a property length running past the end. The views point into `body`.
inline std::optional<PublishView> ParsePublish(uint8_t first_byte,
                                               std::span<const uint8_t> body, bool v5) {
  PublishView v;
  v.qos = static_cast<uint8_t>((first_byte >> 1) & 0x03);
  v.retain = (first_byte & 0x01) != 0;
  v.dup = (first_byte & 0x08) != 0;
  if (v.qos == 3 || body.size() < 2) return std::nullopt;
  size_t topic_len = (size_t{body[0]} << 8) | body[1];
  size_t pos = 2 + topic_len;
  if (pos > body.size()) return std::nullopt;
  v.topic = std::string_view(reinterpret_cast<const char*>(body.data() + 2), topic_len);
  if (v.qos > 0) {
    if (pos + 2 > body.size()) return std::nullopt;
    v.packet_id = static_cast<uint16_t>((body[pos] << 8) | body[pos + 1]);
    pos += 2;
  }
  if (v5) {
    uint64_t props = 0;
    int shift = 0;
    for (;;) {
      if (pos >= body.size() || shift > 21) return std::nullopt;
      uint8_t b = body[pos++];
      props |= uint64_t{b & 0x7Fu} << shift;
      shift += 7;
      if ((b & 0x80) == 0) break;
    }
    if (props > body.size() - pos) return std::nullopt;
    pos += static_cast<size_t>(props);
  }
  v.payload = body.subspan(pos);
  return v;
}

}  // namespace ferry::bench
