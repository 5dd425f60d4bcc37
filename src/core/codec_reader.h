// Bounds-checked reading of MQTT wire data types (MQTT 5.0 section 1.5).
//
// Private to the codec. A Reader walks a span of untrusted bytes; every read
// either succeeds or returns a 0x81 Malformed Packet Status naming the field,
// and never reads past the end of the span.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/packet.h"
#include "core/status.h"

// Returns the Status of `expr` from the enclosing function unless it is OK.
#define FERRY_CODEC_TRY(expr)                                  \
  do {                                                         \
    ::ferry::Status ferry_codec_status_ = (expr);              \
    if (!ferry_codec_status_.ok()) return ferry_codec_status_; \
  } while (0)

namespace ferry::core::codec {

// The largest value a variable byte integer can hold (MQTT 5.0 section 1.5.5).
inline constexpr uint32_t kMaxVarInt = 268'435'455;

inline Status Malformed(std::string_view what) {
  return Status::Protocol(ReasonCode::kMalformedPacket, what);
}
inline Status ProtocolError(std::string_view what) {
  return Status::Protocol(ReasonCode::kProtocolError, what);
}

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> bytes) : bytes_(bytes) {}

  size_t remaining() const { return bytes_.size() - pos_; }
  bool empty() const { return remaining() == 0; }

  Status ReadU8(uint8_t& v, std::string_view what) {
    if (remaining() < 1) return Truncated(what);
    v = bytes_[pos_++];
    return Status::Ok();
  }

  Status ReadU16(uint16_t& v, std::string_view what) {
    if (remaining() < 2) return Truncated(what);
    v = static_cast<uint16_t>(bytes_[pos_] << 8 | bytes_[pos_ + 1]);
    pos_ += 2;
    return Status::Ok();
  }

  Status ReadU32(uint32_t& v, std::string_view what) {
    if (remaining() < 4) return Truncated(what);
    v = uint32_t{bytes_[pos_]} << 24 | uint32_t{bytes_[pos_ + 1]} << 16 |
        uint32_t{bytes_[pos_ + 2]} << 8 | uint32_t{bytes_[pos_ + 3]};
    pos_ += 4;
    return Status::Ok();
  }

  // A variable byte integer of at most four bytes [MQTT-1.5.5-1]. Non-minimal
  // encodings are accepted: they are unambiguous and every broker we
  // interoperate with reads them.
  Status ReadVarInt(uint32_t& v, std::string_view what) {
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      if (remaining() < 1) return Truncated(what);
      uint8_t b = bytes_[pos_++];
      value |= uint32_t{b & 0x7Fu} << (7 * i);
      if ((b & 0x80) == 0) {
        v = value;
        return Status::Ok();
      }
    }
    return Malformed(std::string(what) + ": variable byte integer longer than 4 bytes");
  }

  // Two-byte length followed by that many bytes, copied once into `v`.
  Status ReadBinary(std::string& v, std::string_view what) {
    std::span<const uint8_t> raw;
    FERRY_CODEC_TRY(ReadLengthPrefixed(raw, what));
    v.assign(reinterpret_cast<const char*>(raw.data()), raw.size());
    return Status::Ok();
  }

  // A UTF-8 encoded string [MQTT-1.5.4-1] [MQTT-1.5.4-2]: checked before copy.
  Status ReadUtf8(std::string& v, std::string_view what) {
    std::span<const uint8_t> raw;
    FERRY_CODEC_TRY(ReadLengthPrefixed(raw, what));
    std::string_view s(reinterpret_cast<const char*>(raw.data()), raw.size());
    if (!IsValidMqttUtf8(s)) {
      return Malformed(std::string(what) + ": not well-formed MQTT UTF-8");
    }
    v.assign(s);
    return Status::Ok();
  }

  // Everything left, copied once into `v`.
  void ReadRest(std::string& v) {
    v.assign(reinterpret_cast<const char*>(bytes_.data() + pos_), remaining());
    pos_ = bytes_.size();
  }

  // A Reader over the next `n` bytes, which this one skips.
  // REQUIRES: n <= remaining().
  Reader Split(size_t n) {
    Reader sub(bytes_.subspan(pos_, n));
    pos_ += n;
    return sub;
  }

 private:
  static Status Truncated(std::string_view what) {
    return Malformed(std::string(what) + " runs past the end of the packet");
  }

  Status ReadLengthPrefixed(std::span<const uint8_t>& raw, std::string_view what) {
    uint16_t len = 0;
    FERRY_CODEC_TRY(ReadU16(len, what));
    if (remaining() < len) return Truncated(what);
    raw = bytes_.subspan(pos_, len);
    pos_ += len;
    return Status::Ok();
  }

  std::span<const uint8_t> bytes_;
  size_t pos_ = 0;
};

}  // namespace ferry::core::codec
