// Round trips of every packet type in 3.1.1 and 5.0 (with every property the
// packet allows), EncodedSize against Encode, and hostile input: every
// encoding truncated at every byte and corrupted byte by byte must give an
// error or a packet that itself round-trips, never a crash.

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/packet.h"

namespace ferry::core {
namespace {

constexpr ProtocolVersion kV31 = ProtocolVersion::kV31;
constexpr ProtocolVersion kV311 = ProtocolVersion::kV311;
constexpr ProtocolVersion kV5 = ProtocolVersion::kV5;

struct Sample {
  std::string name;
  Packet packet;
  ProtocolVersion version;
};

std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Decodes the packet at the front of `frame`; nullopt if it is incomplete.
std::optional<Result<Packet>> DecodeFront(std::string_view frame, ProtocolVersion v) {
  auto header = ParseFixedHeader(AsBytes(frame), 1u << 28);
  if (!header.ok()) return Result<Packet>(header.status());
  if (!header.value() || header.value()->total_length() > frame.size()) return std::nullopt;
  const FixedHeader& h = *header.value();
  return Decode(h, AsBytes(frame).subspan(h.header_length, h.remaining_length), v);
}

// CONNECT is encoded in its own version, as Decode reads it.
ProtocolVersion EncodingVersion(const Packet& p, ProtocolVersion v) {
  if (const auto* c = std::get_if<Connect>(&p)) return c->version;
  return v;
}

// Encode, check EncodedSize, decode, and compare.
void ExpectRoundTrip(const Packet& packet, ProtocolVersion v) {
  const ProtocolVersion ev = EncodingVersion(packet, v);
  std::string out;
  Encode(packet, ev, out);
  ASSERT_EQ(out.size(), EncodedSize(packet, ev));
  auto decoded = DecodeFront(out, ev);
  ASSERT_TRUE(decoded.has_value()) << "encoding is incomplete";
  ASSERT_TRUE(decoded->ok()) << decoded->status().ToString();
  EXPECT_TRUE(decoded->value() == packet) << "decoded packet differs";
}

UserProperties Users() { return {{"k", "v"}, {"k", "w"}, {"\xC3\xA9", ""}}; }

Properties ConnectProps() {
  Properties p;
  p.session_expiry_interval = 3600;
  p.authentication_method = "SCRAM-SHA-1";
  p.authentication_data = std::string("\x00\x01\xFF", 3);
  p.request_problem_information = 0;
  p.request_response_information = 1;
  p.receive_maximum = 100;
  p.topic_alias_maximum = 16;
  p.user_properties = Users();
  p.maximum_packet_size = 1 << 20;
  return p;
}

Properties MessageProps() {
  Properties p;
  p.payload_format_indicator = 1;
  p.message_expiry_interval = 60;
  p.content_type = "application/json";
  p.response_topic = "reply/here";
  p.correlation_data = std::string("\x00\x42", 2);
  p.user_properties = Users();
  return p;
}

Properties ConnackProps() {
  Properties p;
  p.session_expiry_interval = 0;
  p.assigned_client_identifier = "auto-1";
  p.server_keep_alive = 30;
  p.authentication_method = "SCRAM-SHA-1";
  p.authentication_data = "server-final";
  p.response_information = "resp/";
  p.server_reference = "other:1883";
  p.reason_string = "welcome";
  p.receive_maximum = 65535;
  p.topic_alias_maximum = 10;
  p.maximum_qos = 1;
  p.retain_available = 0;
  p.user_properties = Users();
  p.maximum_packet_size = 268'435'460;
  p.wildcard_subscription_available = 1;
  p.subscription_identifier_available = 0;
  p.shared_subscription_available = 1;
  return p;
}

Properties AckProps() {
  Properties p;
  p.reason_string = "because";
  p.user_properties = Users();
  return p;
}

Connect FullConnect(ProtocolVersion v) {
  Connect c;
  c.version = v;
  c.protocol_name = v == kV31 ? "MQIsdp" : "MQTT";
  c.clean_start = false;
  c.keepalive_s = 65535;
  c.client_id = "client-\xE2\x82\xAC";
  c.will = Will{.topic = "last/will",
                .payload = std::string("\x00gone", 5),
                .qos = 2,
                .retain = true,
                .props = {}};
  c.username = "user";
  c.password = std::string("p\x00ss", 4);
  if (IsV5(v)) {
    c.props = ConnectProps();
    c.will->props = MessageProps();
    c.will->props.will_delay_interval = 10;
  }
  return c;
}

Publish FullPublish(ProtocolVersion v, uint8_t qos) {
  Publish p{.topic = "sensors/a/temp",
            .payload = std::string("\x00\x01 payload", 10),
            .qos = qos,
            .retain = true,
            .dup = qos > 0,
            .packet_id = static_cast<uint16_t>(qos > 0 ? 7 : 0),
            .props = {}};
  if (IsV5(v)) {
    p.props = MessageProps();
    p.props.subscription_identifiers = {1, 127, 128, 16384, 268'435'455};
    p.props.topic_alias = 5;
  }
  return p;
}

std::vector<Sample> Samples() {
  std::vector<Sample> s;
  for (ProtocolVersion v : {kV311, kV5}) {
    const std::string tag = IsV5(v) ? "v5 " : "v3.1.1 ";
    const Properties ack = IsV5(v) ? AckProps() : Properties{};
    Connack connack{.session_present = true, .reason = ReasonCode::kSuccess, .props = {}};
    if (IsV5(v)) connack.props = ConnackProps();
    Subscribe sub{.packet_id = 9,
                  .topics = {{.filter = "a/+/c", .qos = 2}, {.filter = "$share/g/#", .qos = 0}},
                  .props = {}};
    if (IsV5(v)) {
      sub.topics[0].no_local = true;
      sub.topics[0].retain_as_published = true;
      sub.topics[1].retain_handling = 2;
      sub.props.subscription_identifiers = {42};
      sub.props.user_properties = Users();
    }
    Unsubscribe unsub{.packet_id = 10, .filters = {"a/+/c", "b"}, .props = {}};
    if (IsV5(v)) unsub.props.user_properties = Users();
    const std::vector<ReasonCode> granted = {ReasonCode::kGrantedQos2, ReasonCode::kSuccess,
                                             ReasonCode::kUnspecifiedError};
    Unsuback unsuback{.packet_id = 10, .reasons = {}, .props = ack};
    if (IsV5(v)) unsuback.reasons = {ReasonCode::kSuccess, ReasonCode::kNoSubscriptionExisted};
    Disconnect disconnect;
    if (IsV5(v)) {
      disconnect.reason = ReasonCode::kServerMoved;
      disconnect.props = AckProps();
      disconnect.props.session_expiry_interval = 0;
      disconnect.props.server_reference = "elsewhere:1883";
    }

    s.push_back({tag + "CONNECT", FullConnect(v), v});
    s.push_back({tag + "CONNACK", connack, v});
    s.push_back({tag + "PUBLISH QoS 0", FullPublish(v, 0), v});
    s.push_back({tag + "PUBLISH QoS 1", FullPublish(v, 1), v});
    s.push_back({tag + "PUBLISH QoS 2", FullPublish(v, 2), v});
    for (PacketType t :
         {PacketType::kPuback, PacketType::kPubrec, PacketType::kPubrel, PacketType::kPubcomp}) {
      ReasonCode reason = IsV5(v) ? (t == PacketType::kPubrel || t == PacketType::kPubcomp
                                         ? ReasonCode::kPacketIdentifierNotFound
                                         : ReasonCode::kQuotaExceeded)
                                  : ReasonCode::kSuccess;
      s.push_back({tag + PacketTypeName(t),
                   PubAck{.type = t, .packet_id = 0xFFFF, .reason = reason, .props = ack}, v});
    }
    s.push_back({tag + "SUBSCRIBE", sub, v});
    s.push_back({tag + "SUBACK", Suback{.packet_id = 9, .reasons = granted, .props = ack}, v});
    s.push_back({tag + "UNSUBSCRIBE", unsub, v});
    s.push_back({tag + "UNSUBACK", unsuback, v});
    s.push_back({tag + "PINGREQ", Pingreq{}, v});
    s.push_back({tag + "PINGRESP", Pingresp{}, v});
    s.push_back({tag + "DISCONNECT", disconnect, v});
  }
  Properties auth_props = AckProps();
  auth_props.authentication_method = "SCRAM-SHA-1";
  auth_props.authentication_data = "client-final";
  s.push_back(
      {"v5 AUTH", Auth{.reason = ReasonCode::kContinueAuthentication, .props = auth_props}, kV5});
  s.push_back(
      {"v5 PUBACK short", PubAck{.type = PacketType::kPuback, .packet_id = 1, .props = {}}, kV5});
  s.push_back({"v5 DISCONNECT short", Disconnect{}, kV5});
  s.push_back({"v5 AUTH short", Auth{}, kV5});
  s.push_back({"v3.1 CONNECT", FullConnect(kV31), kV31});
  s.push_back({"v3.1 CONNACK", Connack{.reason = ReasonCode::kNotAuthorized, .props = {}}, kV31});
  return s;
}

TEST(PacketRoundTrip, EveryPacketTypeInV311AndV5SurvivesEncodeAndDecode) {
  std::set<std::pair<PacketType, ProtocolVersion>> covered;
  for (const Sample& sample : Samples()) {
    SCOPED_TRACE(sample.name);
    ExpectRoundTrip(sample.packet, sample.version);
    covered.insert({TypeOf(sample.packet), sample.version});
  }
  for (uint8_t t = 1; t <= 15; ++t) {
    EXPECT_TRUE(covered.count({static_cast<PacketType>(t), kV5})) << "v5 type " << int{t};
    if (t != 15) {
      EXPECT_TRUE(covered.count({static_cast<PacketType>(t), kV311})) << "v3 type " << int{t};
    }
  }
}

TEST(PacketRoundTrip, EncodedSizeMatchesEncodeAcrossRemainingLengthBoundaries) {
  // Remaining lengths 127/128, 16383/16384 and 2097151/2097152 change the
  // number of remaining length bytes.
  for (size_t remaining : {0ul, 127ul, 128ul, 16'383ul, 16'384ul, 2'097'151ul, 2'097'152ul}) {
    for (ProtocolVersion v : {kV311, kV5}) {
      const size_t overhead = IsV5(v) ? 4 : 3;  // topic "t", v5 property length
      if (remaining < overhead) continue;
      Publish p{.topic = "t", .payload = std::string(remaining - overhead, 'x'), .props = {}};
      SCOPED_TRACE(remaining);
      ExpectRoundTrip(p, v);
      EXPECT_EQ(EncodedSize(p, v), remaining + 1 +
                                       (remaining < 128         ? 1
                                        : remaining < 16'384    ? 2
                                        : remaining < 2'097'152 ? 3
                                                                : 4));
    }
  }
}

TEST(PacketRoundTrip, EncodingSeveralPacketsAppendsThemBackToBack) {
  std::string out;
  size_t expected = 0;
  for (const Sample& sample : Samples()) {
    const ProtocolVersion ev = EncodingVersion(sample.packet, sample.version);
    Encode(sample.packet, ev, out);
    expected += EncodedSize(sample.packet, ev);
    ASSERT_EQ(out.size(), expected) << sample.name;
  }
}

// The property a decoded packet must have: it round-trips itself.
void ExpectErrorOrStablePacket(const std::optional<Result<Packet>>& decoded, ProtocolVersion v) {
  if (!decoded || !decoded->ok()) return;
  ExpectRoundTrip(decoded->value(), v);
}

TEST(PacketRoundTrip, TruncatedEncodingsNeedMoreBytesAndShortBodiesNeverCrash) {
  for (const Sample& sample : Samples()) {
    SCOPED_TRACE(sample.name);
    std::string full;
    Encode(sample.packet, EncodingVersion(sample.packet, sample.version), full);
    for (size_t cut = 0; cut < full.size(); ++cut) {
      const std::string_view prefix(full.data(), cut);
      auto header = ParseFixedHeader(AsBytes(prefix), 1u << 28);
      ASSERT_TRUE(header.ok()) << cut;
      EXPECT_TRUE(!header.value() || header.value()->total_length() > cut) << cut;
      if (!header.value()) continue;
      // The same cut with a header that claims only the bytes that are there.
      const FixedHeader& h = *header.value();
      FixedHeader shorter = h;
      shorter.remaining_length = static_cast<uint32_t>(cut - h.header_length);
      auto decoded = Decode(shorter, AsBytes(prefix).subspan(h.header_length), sample.version);
      ExpectErrorOrStablePacket(decoded, sample.version);
    }
  }
}

TEST(PacketRoundTrip, CorruptedBytesGiveAnErrorOrAStablePacket) {
  size_t rejected = 0;
  for (const Sample& sample : Samples()) {
    SCOPED_TRACE(sample.name);
    std::string full;
    Encode(sample.packet, EncodingVersion(sample.packet, sample.version), full);
    for (size_t pos = 0; pos < full.size(); ++pos) {
      const uint8_t original = static_cast<uint8_t>(full[pos]);
      for (uint8_t corrupt : {uint8_t{0x00}, uint8_t{0xFF}, uint8_t(original ^ 0x01),
                              uint8_t(original ^ 0x80), uint8_t(original + 1)}) {
        if (corrupt == original) continue;
        std::string bad = full;
        bad[pos] = static_cast<char>(corrupt);
        auto decoded = DecodeFront(bad, sample.version);
        if (decoded && !decoded->ok()) ++rejected;
        ExpectErrorOrStablePacket(decoded, sample.version);
      }
    }
  }
  EXPECT_GT(rejected, 0u);
}

}  // namespace
}  // namespace ferry::core
