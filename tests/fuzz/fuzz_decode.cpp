// libFuzzer target for the MQTT codec.
//
// The input is read as a stream of packets, once as each protocol version.
// Every packet that decodes must encode to EncodedSize() bytes and decode
// back to an equal packet; a difference is a codec bug and aborts. Every
// input is also checked by IsValidMqttUtf8 against a slow reference.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

#include "core/packet.h"

namespace {

using ferry::core::Connect;
using ferry::core::Decode;
using ferry::core::Encode;
using ferry::core::EncodedSize;
using ferry::core::FixedHeader;
using ferry::core::Packet;
using ferry::core::ParseFixedHeader;
using ferry::core::ProtocolVersion;

constexpr uint32_t kMaxPacketSize = 1 << 20;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_decode: %s\n", what);
  std::abort();
}

void CheckRoundTrip(const Packet& packet, ProtocolVersion v) {
  // CONNECT is encoded in the version it carries, as Decode reads it.
  if (const auto* c = std::get_if<Connect>(&packet)) v = c->version;
  std::string out;
  Encode(packet, v, out);
  if (out.size() != EncodedSize(packet, v)) Fail("EncodedSize differs from Encode");
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(out.data()), out.size());
  auto header = ParseFixedHeader(bytes, UINT32_MAX);
  if (!header.ok() || !header.value()) Fail("re-encoded fixed header does not parse");
  const FixedHeader& h = *header.value();
  if (h.total_length() != out.size()) Fail("re-encoded remaining length is wrong");
  auto again = Decode(h, bytes.subspan(h.header_length), v);
  if (!again.ok()) {
    std::fprintf(stderr, "%s\n", again.status().ToString().c_str());
    Fail("re-encoded packet does not decode");
  }
  if (!(again.value() == packet)) Fail("round trip changed the packet");
}

// Unicode table 3-7 decoded code point by code point, without U+0000.
bool ReferenceUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80             ? 1
                 : (c & 0xE0) == 0xC0 ? 2
                 : (c & 0xF0) == 0xE0 ? 3
                 : (c & 0xF8) == 0xF0 ? 4
                                      : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = cp << 6 | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp == 0 || cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

void DecodeStream(std::span<const uint8_t> in, ProtocolVersion v) {
  while (!in.empty()) {
    auto header = ParseFixedHeader(in, kMaxPacketSize);
    if (!header.ok() || !header.value()) return;
    const FixedHeader& h = *header.value();
    if (h.total_length() > in.size()) return;
    auto packet = Decode(h, in.subspan(h.header_length, h.remaining_length), v);
    if (packet.ok()) CheckRoundTrip(packet.value(), v);
    in = in.subspan(h.total_length());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  for (ProtocolVersion v : {ProtocolVersion::kV31, ProtocolVersion::kV311, ProtocolVersion::kV5}) {
    DecodeStream(in, v);
  }
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (ferry::core::IsValidMqttUtf8(text) != ReferenceUtf8(text)) {
    Fail("IsValidMqttUtf8 disagrees with the reference decoder");
  }
  return 0;
}
