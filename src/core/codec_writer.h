// Appending MQTT wire data types (MQTT 5.0 section 1.5) to an output buffer.
//
// Private to the codec. These write packets we built ourselves, so a value
// that does not fit its wire type is a bug in the caller and is asserted, as
// the packet__write_* functions of mosquitto's lib/packet_datatypes.c do.
// Callers size the whole packet first and reserve once, so appends here do
// not reallocate.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/codec_reader.h"

namespace ferry::core::codec {

inline void PutU8(std::string& out, uint8_t v) { out.push_back(static_cast<char>(v)); }

inline void PutU16(std::string& out, uint16_t v) {
  PutU8(out, static_cast<uint8_t>(v >> 8));
  PutU8(out, static_cast<uint8_t>(v));
}

inline void PutU32(std::string& out, uint32_t v) {
  PutU16(out, static_cast<uint16_t>(v >> 16));
  PutU16(out, static_cast<uint16_t>(v));
}

inline size_t VarIntSize(size_t v) {
  assert(v <= kMaxVarInt);
  return v < 128 ? 1 : v < 16'384 ? 2 : v < 2'097'152 ? 3 : 4;
}

inline void PutVarInt(std::string& out, size_t v) {
  assert(v <= kMaxVarInt);
  do {
    uint8_t b = v & 0x7F;
    v >>= 7;
    if (v > 0) b |= 0x80;
    PutU8(out, b);
  } while (v > 0);
}

// A two-byte length and the bytes: UTF-8 strings and binary data alike.
inline size_t StringSize(std::string_view s) { return 2 + s.size(); }

inline void PutString(std::string& out, std::string_view s) {
  assert(s.size() <= 0xFFFF);
  PutU16(out, static_cast<uint16_t>(s.size()));
  out.append(s);
}

}  // namespace ferry::core::codec
