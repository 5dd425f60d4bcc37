// IsValidMqttUtf8: well-formed UTF-8 per RFC 3629 / Unicode table 3-7, without
// U+0000 [MQTT-1.5.4-2] and without the UTF-16 surrogates U+D800..U+DFFF
// [MQTT-1.5.4-1]. Overlong forms are rejected by the lead-byte ranges below.
//
// Almost every topic, client id and user name is plain ASCII, so the loop
// first checks eight bytes at a time for "no high bit and no zero byte" and
// only falls back to the per-character decoder where that fails.

#include <cstdint>
#include <cstring>
#include <string_view>

#include "core/packet.h"

namespace ferry::core {
namespace {

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighs = 0x8080808080808080ULL;

// True if all eight bytes of `w` are in 0x01..0x7F.
inline bool AllAsciiNonZero(uint64_t w) {
  // (w - kOnes) & ~w & kHighs is non-zero iff some byte of w is zero.
  uint64_t has_zero = (w - kOnes) & ~w & kHighs;
  return ((w & kHighs) | has_zero) == 0;
}

inline bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Decodes one multi-byte character at s[i] (a lead byte >= 0x80) and returns
// its length, or 0 if it is malformed, overlong or a surrogate.
size_t MultiByteLength(const unsigned char* s, size_t n, size_t i) {
  unsigned char c = s[i];
  size_t len = 0;
  unsigned char lo = 0x80;  // allowed range of the second byte
  unsigned char hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // U+D800..U+DFFF surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;  // 0x80..0xC1 (continuation or overlong lead) and 0xF5..0xFF
  }
  if (n - i < len) return 0;
  if (s[i + 1] < lo || s[i + 1] > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if (!IsContinuation(s[i + k])) return 0;
  }
  return len;
}

}  // namespace

bool IsValidMqttUtf8(std::string_view str) {
  const auto* s = reinterpret_cast<const unsigned char*>(str.data());
  const size_t n = str.size();
  size_t i = 0;
  while (i < n) {
    if (n - i >= 8) {
      uint64_t w;
      std::memcpy(&w, s + i, sizeof(w));
      if (AllAsciiNonZero(w)) {
        i += 8;
        continue;
      }
    }
    unsigned char c = s[i];
    if (c == 0) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = MultiByteLength(s, n, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

}  // namespace ferry::core
