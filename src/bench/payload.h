// What ferry-bench writes at the front of every payload, and the topic and
// client identifier templates.
//
// Payload stamp (24 bytes, little endian), followed by filler up to -s:
//   offset 0   u32  magic "FBv1"
//   offset 4   u32  publisher index (the client's %i)
//   offset 8   u64  sequence number within that publisher, from 0
//   offset 16  u64  send time, CLOCK_MONOTONIC nanoseconds
// A payload shorter than the stamp carries none; its messages are counted
// but neither timed nor checked for loss. CLOCK_MONOTONIC is one clock for
// the whole machine, so a publisher and a subscriber in different processes
// still measure end-to-end latency.
//
// Templates: %i is the client index (-n plus the client's position), %c the
// client identifier, %s the message's sequence number, %% a '%'. Any other
// '%' sequence is kept as written.
//
// Stateless; any thread may call these.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace ferry::bench {

inline constexpr uint32_t kStampMagic = 0x31764246;  // "FBv1" read as little endian
inline constexpr size_t kStampSize = 24;

struct Stamp {
  uint32_t publisher = 0;
  uint64_t seq = 0;
  uint64_t sent_ns = 0;
};

namespace internal {
inline void PutLe(uint8_t* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint64_t GetLe(const uint8_t* in, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{in[i]} << (8 * i);
  return v;
}
}  // namespace internal

// Writes the stamp over the first kStampSize bytes of `payload`; a shorter
// payload is left unchanged.
inline void WriteStamp(const Stamp& stamp, std::span<uint8_t> payload) {
  if (payload.size() < kStampSize) return;
  internal::PutLe(payload.data(), kStampMagic, 4);
  internal::PutLe(payload.data() + 4, stamp.publisher, 4);
  internal::PutLe(payload.data() + 8, stamp.seq, 8);
  internal::PutLe(payload.data() + 16, stamp.sent_ns, 8);
}

// The stamp at the front of `payload`, or nullopt if it carries none.
inline std::optional<Stamp> ReadStamp(std::span<const uint8_t> payload) {
  if (payload.size() < kStampSize) return std::nullopt;
  if (internal::GetLe(payload.data(), 4) != kStampMagic) return std::nullopt;
  Stamp s;
  s.publisher = static_cast<uint32_t>(internal::GetLe(payload.data() + 4, 4));
  s.seq = internal::GetLe(payload.data() + 8, 8);
  s.sent_ns = internal::GetLe(payload.data() + 16, 8);
  return s;
}

struct TemplateVars {
  uint64_t index = 0;
  std::string_view client_id;
  uint64_t seq = 0;
};

// Expands %i, %c, %s and %% in `tmpl` (see top of file).
inline std::string ExpandTemplate(std::string_view tmpl, const TemplateVars& vars) {
  std::string out;
  out.reserve(tmpl.size() + 16);
  for (size_t i = 0; i < tmpl.size(); ++i) {
    char c = tmpl[i];
    if (c != '%' || i + 1 == tmpl.size()) {
      out.push_back(c);
      continue;
    }
    char k = tmpl[i + 1];
    if (k == 'i') {
      out += std::to_string(vars.index);
    } else if (k == 'c') {
      out += vars.client_id;
    } else if (k == 's') {
      out += std::to_string(vars.seq);
    } else if (k == '%') {
      out.push_back('%');
    } else {
      out.push_back('%');
      continue;
    }
    ++i;
  }
  return out;
}

// True if the template's expansion depends on the message (it holds %s), so
// a topic cannot be computed once per client.
inline bool TemplateUsesSeq(std::string_view tmpl) {
  for (size_t i = 0; i + 1 < tmpl.size(); ++i) {
    if (tmpl[i] != '%') continue;
    if (tmpl[i + 1] == 's') return true;
    ++i;  // skip the escaped character, so "%%s" is a literal "%s"
  }
  return false;
}

}  // namespace ferry::bench
