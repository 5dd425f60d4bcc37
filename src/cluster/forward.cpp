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

void WriteMessageBody(FieldWriter& w, const core::Message& m, const std::string& props) {
  w.U8(m.qos);
  w.U8(m.retain ? kRetainFlag : 0);
  w.U64(m.expiry_at_ms);
  w.U64(m.received_at_ms);
  w.Str(m.topic);
  w.Str(m.origin_client);
  w.Blob(props);
  w.Blob(m.payload);
}

void WriteMessageBody(FieldWriter& w, const core::Message& m) {
  WriteMessageBody(w, m, core::EncodeMessageProperties(m.props));
}

std::string EncodeForwardBody(const core::Message& m) {
  const std::string props = core::EncodeMessageProperties(m.props);
  std::string out;
  out.reserve(64 + m.topic.size() + m.origin_client.size() + props.size() + m.payload.size());
  FieldWriter w(out);
  WriteMessageBody(w, m, props);
  return out;
}

Status ReadMessageBody(FieldReader& r, core::Message& m) {
  uint8_t flags = 0;
  std::string props;
  r.U8(m.qos, "qos");
  r.U8(flags, "flags");
  r.U64(m.expiry_at_ms, "expiry");
  r.U64(m.received_at_ms, "received time");
  r.Str(m.topic, "topic");
  r.Str(m.origin_client, "origin client");
  r.Blob(props, "properties");
  r.Blob(m.payload, "payload");
  if (!r.ok()) return r.status();
  if (m.qos > 2) return Status::Corruption("message with QoS " + std::to_string(m.qos));
  if ((flags & ~kRetainFlag) != 0) return Status::Corruption("message: reserved flags");
  m.retain = (flags & kRetainFlag) != 0;
  if (Status st = core::ValidateTopicName(m.topic); !st.ok()) {
    return Status::Corruption("message: " + st.message());
  }
  auto decoded = core::DecodeMessageProperties(props);
  if (!decoded.ok()) return Status::Corruption("message: " + decoded.status().message());
  m.props = std::move(decoded).value();
  // The path travels in the properties, as on an MQTT link (message.h).
  if (!m.props.user_properties.empty()) m.path = core::NodePathOf(m.props);
  return Status::Ok();
}

Result<ForwardFrame> ParseForward(std::span<const uint8_t> payload) {
  ForwardFrame f;
  FieldReader r(payload);
  uint8_t delivery = 0;
  uint16_t groups = 0;
  r.U64(f.seq, "seq");
  r.U8(delivery, "delivery");
  r.U16(groups, "group count");
  for (uint16_t i = 0; i < groups && r.ok(); ++i) {
    std::string g;
    if (r.Str(g, "shared group")) f.groups.push_back(std::move(g));
  }
  if (Status st = ReadMessageBody(r, f.message); !st.ok()) {
    return r.ok() ? Status::Corruption("forwarded " + st.message()) : st;
  }
  if (!r.End()) return r.status();
  if ((delivery & ~kPlainFlag) != 0) return Status::Corruption("forwarded message: reserved delivery bits");
  f.plain = (delivery & kPlainFlag) != 0;
  for (const std::string& g : f.groups) {
    auto shared = core::ParseSharedFilter(g);
    if (!shared.ok() || !shared.value().has_value() ||
        !core::ValidateTopicFilter(shared.value()->filter).ok()) {
      return Status::Corruption("forwarded message: '" + g + "' is no shared subscription");
    }
  }
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
