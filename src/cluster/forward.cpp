#include "cluster/forward.h"

#include "cluster/wire.h"
#include "core/topic.h"

namespace ferry::cluster {
namespace {

constexpr uint8_t kRetainFlag = 0x01;
constexpr uint8_t kPlainFlag = 0x01;

}  // namespace

std::string EncodeForwardHead(uint64_t seq, bool plain, std::span<const std::string> groups) {
  std::string out;
  FieldWriter w(out);
  w.U64(seq);
  w.U8(plain ? kPlainFlag : 0);
  w.U16(static_cast<uint16_t>(groups.size()));
  for (const std::string& g : groups) w.Str(g);
  return out;
}

std::string EncodeForwardBody(const core::Message& m) {
  const std::string props = core::EncodeMessageProperties(m.props);
  std::string out;
  out.reserve(64 + m.topic.size() + m.origin_client.size() + props.size() + m.payload.size());
  FieldWriter w(out);
  w.U8(m.qos);
  w.U8(m.retain ? kRetainFlag : 0);
  w.U64(m.expiry_at_ms);
  w.U64(m.received_at_ms);
  w.Str(m.topic);
  w.Str(m.origin_client);
  w.Blob(props);
  w.Blob(m.payload);
  return out;
}

Result<ForwardFrame> ParseForward(std::span<const uint8_t> payload) {
  ForwardFrame f;
  core::Message& m = f.message;
  FieldReader r(payload);
  uint8_t flags = 0, delivery = 0;
  uint16_t groups = 0;
  std::string props;
  r.U64(f.seq, "seq");
  r.U8(delivery, "delivery");
  r.U16(groups, "group count");
  for (uint16_t i = 0; i < groups && r.ok(); ++i) {
    std::string g;
    if (r.Str(g, "shared group")) f.groups.push_back(std::move(g));
  }
  r.U8(m.qos, "qos");
  r.U8(flags, "flags");
  r.U64(m.expiry_at_ms, "expiry");
  r.U64(m.received_at_ms, "received time");
  r.Str(m.topic, "topic");
  r.Str(m.origin_client, "origin client");
  r.Blob(props, "properties");
  r.Blob(m.payload, "payload");
  if (!r.End()) return r.status();
  if (m.qos > 2) return Status::Corruption("forwarded message with QoS " + std::to_string(m.qos));
  if ((flags & ~kRetainFlag) != 0) return Status::Corruption("forwarded message: reserved flags");
  m.retain = (flags & kRetainFlag) != 0;
  if ((delivery & ~kPlainFlag) != 0) return Status::Corruption("forwarded message: reserved delivery bits");
  f.plain = (delivery & kPlainFlag) != 0;
  for (const std::string& g : f.groups) {
    auto shared = core::ParseSharedFilter(g);
    if (!shared.ok() || !shared.value().has_value() ||
        !core::ValidateTopicFilter(shared.value()->filter).ok()) {
      return Status::Corruption("forwarded message: '" + g + "' is no shared subscription");
    }
  }
  if (Status st = core::ValidateTopicName(m.topic); !st.ok()) {
    return Status::Corruption("forwarded message: " + st.message());
  }
  auto decoded = core::DecodeMessageProperties(props);
  if (!decoded.ok()) return Status::Corruption("forwarded message: " + decoded.status().message());
  m.props = std::move(decoded).value();
  // The path travels in the properties, as on an MQTT link (message.h).
  if (!m.props.user_properties.empty()) m.path = core::NodePathOf(m.props);
  return f;
}

std::string EncodeForwardAcks(const ForwardAcks& acks) {
  std::string out;
  FieldWriter w(out);
  w.U16(static_cast<uint16_t>(acks.size()));
  for (const auto& [seq, reason] : acks) {
    w.U64(seq);
    w.U8(reason);
  }
  return out;
}

Result<ForwardAcks> ParseForwardAcks(std::span<const uint8_t> payload) {
  FieldReader r(payload);
  uint16_t n = 0;
  r.U16(n, "ack count");
  ForwardAcks acks;
  for (uint16_t i = 0; i < n && r.ok(); ++i) {
    uint64_t seq = 0;
    uint8_t reason = 0;
    if (r.U64(seq, "acked seq") && r.U8(reason, "ack reason")) acks.emplace_back(seq, reason);
  }
  if (!r.End()) return r.status();
  return acks;
}

}  // namespace ferry::cluster
