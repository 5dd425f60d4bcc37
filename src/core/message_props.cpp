// The properties blob of a message as the durable store and the cluster keep
// it (format in message.h).

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "core/message.h"

namespace ferry::core {
namespace {

constexpr uint8_t kPropsFormatVersion = 1;

constexpr uint8_t kHasPayloadFormat = 0x01;
constexpr uint8_t kHasContentType = 0x02;
constexpr uint8_t kHasResponseTopic = 0x04;
constexpr uint8_t kHasCorrelationData = 0x08;
constexpr uint8_t kHasUserProperties = 0x10;
constexpr uint8_t kKnownFlags = 0x1F;

void PutU32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

void PutBytes(std::string& out, std::string_view bytes) {
  PutU32(out, static_cast<uint32_t>(bytes.size()));
  out.append(bytes);
}

// Reads the blob front to back; every read checks what is left first.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  size_t offset() const { return pos_; }
  size_t left() const { return bytes_.size() - pos_; }

  bool U8(uint8_t* v) {
    if (left() < 1) return false;
    *v = static_cast<uint8_t>(bytes_[pos_++]);
    return true;
  }
  bool U32(uint32_t* v) {
    if (left() < 4) return false;
    uint32_t r = 0;
    for (int i = 0; i < 4; ++i) r = (r << 8) | static_cast<uint8_t>(bytes_[pos_++]);
    *v = r;
    return true;
  }
  bool Bytes(std::string* out) {
    uint32_t n = 0;
    if (!U32(&n) || left() < n) return false;
    out->assign(bytes_.substr(pos_, n));
    pos_ += n;
    return true;
  }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

Status Bad(std::string_view what, size_t offset) {
  return Status::Corruption("properties blob: " + std::string(what) + " at offset " +
                            std::to_string(offset));
}

Status ReadOptionalBytes(Reader& r, std::optional<std::string>& field, std::string_view name) {
  std::string v;
  size_t at = r.offset();
  if (!r.Bytes(&v)) return Bad("truncated " + std::string(name), at);
  field = std::move(v);
  return Status::Ok();
}

Status ReadUserProperties(Reader& r, UserProperties& out) {
  uint32_t count = 0;
  size_t at = r.offset();
  if (!r.U32(&count)) return Bad("truncated user property count", at);
  // Each pair needs at least two length prefixes: bound the count by the
  // bytes left before reserving anything.
  if (count > r.left() / 8)
    return Bad("user property count " + std::to_string(count) + " too large", at);
  out.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    std::string key, value;
    at = r.offset();
    if (!r.Bytes(&key) || !r.Bytes(&value)) return Bad("truncated user property", at);
    out.emplace_back(std::move(key), std::move(value));
  }
  return Status::Ok();
}

}  // namespace

std::string EncodeMessageProperties(const Properties& props) {
  uint8_t flags = 0;
  if (props.payload_format_indicator) flags |= kHasPayloadFormat;
  if (props.content_type) flags |= kHasContentType;
  if (props.response_topic) flags |= kHasResponseTopic;
  if (props.correlation_data) flags |= kHasCorrelationData;
  if (!props.user_properties.empty()) flags |= kHasUserProperties;
  std::string out;
  if (flags == 0) return out;
  out.push_back(static_cast<char>(kPropsFormatVersion));
  out.push_back(static_cast<char>(flags));
  if (props.payload_format_indicator) {
    out.push_back(static_cast<char>(*props.payload_format_indicator));
  }
  if (props.content_type) PutBytes(out, *props.content_type);
  if (props.response_topic) PutBytes(out, *props.response_topic);
  if (props.correlation_data) PutBytes(out, *props.correlation_data);
  if (!props.user_properties.empty()) {
    PutU32(out, static_cast<uint32_t>(props.user_properties.size()));
    for (const auto& [key, value] : props.user_properties) {
      PutBytes(out, key);
      PutBytes(out, value);
    }
  }
  return out;
}

Result<Properties> DecodeMessageProperties(std::string_view blob) {
  Properties props;
  if (blob.empty()) return props;
  Reader r(blob);
  uint8_t version = 0, flags = 0;
  r.U8(&version);
  if (version != kPropsFormatVersion) {
    return Bad("unknown format version " + std::to_string(version), 0);
  }
  if (!r.U8(&flags)) return Bad("missing flags", 1);
  if (flags & ~kKnownFlags) {
    char hex[8];
    std::snprintf(hex, sizeof(hex), "0x%02x", flags);
    return Bad(std::string("unknown flags ") + hex, 1);
  }
  if (flags & kHasPayloadFormat) {
    uint8_t v = 0;
    if (!r.U8(&v)) return Bad("truncated payload format indicator", r.offset());
    props.payload_format_indicator = v;
  }
  Status s;
  if ((flags & kHasContentType) &&
      !(s = ReadOptionalBytes(r, props.content_type, "content type")).ok()) {
    return s;
  }
  if ((flags & kHasResponseTopic) &&
      !(s = ReadOptionalBytes(r, props.response_topic, "response topic")).ok()) {
    return s;
  }
  if ((flags & kHasCorrelationData) &&
      !(s = ReadOptionalBytes(r, props.correlation_data, "correlation data")).ok()) {
    return s;
  }
  if ((flags & kHasUserProperties) && !(s = ReadUserProperties(r, props.user_properties)).ok()) {
    return s;
  }
  if (r.left() != 0) return Bad(std::to_string(r.left()) + " trailing bytes", r.offset());
  return props;
}

}  // namespace ferry::core
