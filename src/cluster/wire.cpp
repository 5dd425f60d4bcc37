#include "cluster/wire.h"

#include <cassert>
#include <cstring>

namespace ferry::cluster {
namespace {

uint64_t ReadBigEndian(std::span<const uint8_t> bytes) {
  uint64_t v = 0;
  for (uint8_t b : bytes) v = v << 8 | b;
  return v;
}

void AppendBigEndian(std::string& out, uint64_t v, size_t bytes) {
  for (size_t i = bytes; i-- > 0;) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

}  // namespace

Result<std::optional<FrameView>> ParseFrame(std::span<const uint8_t> in, uint32_t max_payload) {
  if (in.size() < kFrameHeaderSize) return std::optional<FrameView>();
  const uint64_t length = ReadBigEndian(in.subspan(0, 4));
  if (length > max_payload) {
    return Status::Corruption("frame of " + std::to_string(length) +
                              " bytes is larger than the limit of " + std::to_string(max_payload));
  }
  FrameView f;
  f.type = in[4];
  f.flags = in[5];
  f.channel = static_cast<uint16_t>(ReadBigEndian(in.subspan(6, 2)));
  if ((f.flags & ~kFlagSkippable) != 0) return Status::Corruption("reserved frame flags set");
  if (in.size() - kFrameHeaderSize < length) return std::optional<FrameView>();
  f.payload = in.subspan(kFrameHeaderSize, length);
  return std::optional<FrameView>(f);
}

void AppendFrame(std::string& out, FrameType type, std::string_view payload, uint16_t channel,
                 uint8_t flags) {
  assert(payload.size() <= UINT32_MAX);
  out.reserve(out.size() + kFrameHeaderSize + payload.size());
  AppendBigEndian(out, payload.size(), 4);
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(flags));
  AppendBigEndian(out, channel, 2);
  out.append(payload);
}

void AppendFrame(std::string& out, FrameType type, std::string_view head, std::string_view body,
                 uint16_t channel, uint8_t flags) {
  const size_t size = head.size() + body.size();
  assert(size <= UINT32_MAX);
  out.reserve(out.size() + kFrameHeaderSize + size);
  AppendBigEndian(out, size, 4);
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(flags));
  AppendBigEndian(out, channel, 2);
  out.append(head);
  out.append(body);
}

void FieldWriter::U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
void FieldWriter::U16(uint16_t v) { AppendBigEndian(out_, v, 2); }
void FieldWriter::U32(uint32_t v) { AppendBigEndian(out_, v, 4); }
void FieldWriter::U64(uint64_t v) { AppendBigEndian(out_, v, 8); }

void FieldWriter::Str(std::string_view s) {
  assert(s.size() <= 0xFFFF);
  U16(static_cast<uint16_t>(s.size()));
  out_.append(s);
}

void FieldWriter::Blob(std::string_view s) {
  assert(s.size() <= UINT32_MAX);
  U32(static_cast<uint32_t>(s.size()));
  out_.append(s);
}

void FieldWriter::Fixed(std::span<const uint8_t> bytes) {
  out_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

bool FieldReader::Take(size_t n, const char* what, std::span<const uint8_t>& out) {
  if (!status_.ok()) return false;
  if (in_.size() - pos_ < n) {
    status_ = Status::Corruption(std::string(what) + " runs past the end of the frame");
    return false;
  }
  out = in_.subspan(pos_, n);
  pos_ += n;
  return true;
}

bool FieldReader::U8(uint8_t& v, const char* what) {
  std::span<const uint8_t> b;
  if (!Take(1, what, b)) return false;
  v = b[0];
  return true;
}

bool FieldReader::U16(uint16_t& v, const char* what) {
  std::span<const uint8_t> b;
  if (!Take(2, what, b)) return false;
  v = static_cast<uint16_t>(ReadBigEndian(b));
  return true;
}

bool FieldReader::U32(uint32_t& v, const char* what) {
  std::span<const uint8_t> b;
  if (!Take(4, what, b)) return false;
  v = static_cast<uint32_t>(ReadBigEndian(b));
  return true;
}

bool FieldReader::U64(uint64_t& v, const char* what) {
  std::span<const uint8_t> b;
  if (!Take(8, what, b)) return false;
  v = ReadBigEndian(b);
  return true;
}

bool FieldReader::Str(std::string& s, const char* what) {
  uint16_t n = 0;
  std::span<const uint8_t> b;
  if (!U16(n, what) || !Take(n, what, b)) return false;
  s.assign(reinterpret_cast<const char*>(b.data()), b.size());
  return true;
}

bool FieldReader::Blob(std::string& s, const char* what) {
  uint32_t n = 0;
  std::span<const uint8_t> b;
  if (!U32(n, what) || !Take(n, what, b)) return false;
  s.assign(reinterpret_cast<const char*>(b.data()), b.size());
  return true;
}

bool FieldReader::Fixed(std::span<uint8_t> out, const char* what) {
  std::span<const uint8_t> b;
  if (!Take(out.size(), what, b)) return false;
  if (!b.empty()) std::memcpy(out.data(), b.data(), b.size());
  return true;
}

bool FieldReader::End() {
  if (!status_.ok()) return false;
  if (pos_ != in_.size()) {
    status_ = Status::Corruption("trailing bytes after the last field");
    return false;
  }
  return true;
}

}  // namespace ferry::cluster
