// Payload stamp, topic templates and the PUBLISH fast path.
#include "bench/payload.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bench/wire.h"
#include "core/packet.h"

namespace ferry::bench {
namespace {

TEST(Stamp, RoundTrips) {
  std::vector<uint8_t> payload(256, 'x');
  WriteStamp({7, 123456789012ull, 987654321098765ull}, payload);
  auto s = ReadStamp(payload);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->publisher, 7u);
  EXPECT_EQ(s->seq, 123456789012ull);
  EXPECT_EQ(s->sent_ns, 987654321098765ull);
  EXPECT_EQ(payload[kStampSize], 'x');  // filler after the stamp untouched
}

TEST(Stamp, LayoutIsLittleEndianWithMagicFirst) {
  std::vector<uint8_t> payload(kStampSize);
  WriteStamp({0x01020304, 0x05, 0x06}, payload);
  EXPECT_EQ(std::string(payload.begin(), payload.begin() + 4), "FBv1");
  EXPECT_EQ(payload[4], 0x04);  // publisher, low byte first
  EXPECT_EQ(payload[7], 0x01);
  EXPECT_EQ(payload[8], 0x05);  // sequence number
  EXPECT_EQ(payload[16], 0x06);  // send time
}

TEST(Stamp, ShortPayloadCarriesNone) {
  std::vector<uint8_t> payload(kStampSize - 1, 'x');
  WriteStamp({1, 2, 3}, payload);
  EXPECT_EQ(payload, std::vector<uint8_t>(kStampSize - 1, 'x'));
  EXPECT_FALSE(ReadStamp(payload).has_value());
}

TEST(Stamp, ForeignPayloadIsNotTaken) {
  std::vector<uint8_t> payload(64, 0);
  EXPECT_FALSE(ReadStamp(payload).has_value());
}

TEST(BenchTemplate, ExpandsIndexClientIdAndSequence) {
  TemplateVars v{42, "client-42", 9};
  EXPECT_EQ(ExpandTemplate("bench/%i", v), "bench/42");
  EXPECT_EQ(ExpandTemplate("t/%c/%s", v), "t/client-42/9");
  EXPECT_EQ(ExpandTemplate("%i%i", v), "4242");
  EXPECT_EQ(ExpandTemplate("plain", v), "plain");
}

TEST(BenchTemplate, KeepsUnknownAndTrailingPercent) {
  TemplateVars v{1, "c", 0};
  EXPECT_EQ(ExpandTemplate("100%%", v), "100%");
  EXPECT_EQ(ExpandTemplate("a/%x", v), "a/%x");
  EXPECT_EQ(ExpandTemplate("a/%", v), "a/%");
}

TEST(BenchTemplate, TellsWhetherTheTopicChangesPerMessage) {
  EXPECT_TRUE(TemplateUsesSeq("ret/%i/%s"));
  EXPECT_FALSE(TemplateUsesSeq("bench/%i"));
  EXPECT_FALSE(TemplateUsesSeq("literal/%%s"));
}

// Encodes with the core codec and parses with the fast path.
PublishView EncodeAndParse(const core::Publish& p, core::ProtocolVersion version,
                           std::string* storage) {
  storage->clear();
  core::Encode(p, version, *storage);
  const auto* bytes = reinterpret_cast<const uint8_t*>(storage->data());
  auto header = core::ParseFixedHeader(std::span<const uint8_t>(bytes, storage->size()), 1 << 20);
  EXPECT_TRUE(header.ok() && header->has_value());
  const core::FixedHeader& h = **header;
  auto view = ParsePublish(h.first_byte,
                           std::span<const uint8_t>(bytes + h.header_length, h.remaining_length),
                           core::IsV5(version));
  EXPECT_TRUE(view.has_value());
  return view.value_or(PublishView{});
}

TEST(ParsePublish, ReadsWhatTheCoreEncoderWrote) {
  core::Publish p;
  p.topic = "bench/7";
  p.payload = "hello";
  p.qos = 1;
  p.packet_id = 513;
  p.retain = true;
  for (auto version : {core::ProtocolVersion::kV311, core::ProtocolVersion::kV5}) {
    std::string storage;
    PublishView v = EncodeAndParse(p, version, &storage);
    EXPECT_EQ(v.topic, "bench/7");
    EXPECT_EQ(std::string(v.payload.begin(), v.payload.end()), "hello");
    EXPECT_EQ(v.qos, 1);
    EXPECT_EQ(v.packet_id, 513);
    EXPECT_TRUE(v.retain);
    EXPECT_FALSE(v.dup);
  }
}

TEST(ParsePublish, SkipsV5Properties) {
  core::Publish p;
  p.topic = "a";
  p.payload = "payload";
  p.props.message_expiry_interval = 60;
  p.props.user_properties = {{"k", "v"}};
  std::string storage;
  PublishView v = EncodeAndParse(p, core::ProtocolVersion::kV5, &storage);
  EXPECT_EQ(std::string(v.payload.begin(), v.payload.end()), "payload");
  EXPECT_EQ(v.qos, 0);
  EXPECT_EQ(v.packet_id, 0);
}

TEST(ParsePublish, RejectsMalformedBodies) {
  const std::vector<uint8_t> truncated_topic = {0x00, 0x05, 'a', 'b'};
  EXPECT_FALSE(ParsePublish(0x30, truncated_topic, false).has_value());
  const std::vector<uint8_t> no_packet_id = {0x00, 0x01, 'a'};
  EXPECT_FALSE(ParsePublish(0x32, no_packet_id, false).has_value());  // QoS 1
  const std::vector<uint8_t> ok = {0x00, 0x01, 'a'};
  EXPECT_FALSE(ParsePublish(0x36, ok, false).has_value());  // QoS 3
  const std::vector<uint8_t> props_too_long = {0x00, 0x01, 'a', 0x05, 0x01};
  EXPECT_FALSE(ParsePublish(0x30, props_too_long, true).has_value());
  const std::vector<uint8_t> endless_varint = {0x00, 0x01, 'a', 0x80, 0x80, 0x80, 0x80, 0x01};
  EXPECT_FALSE(ParsePublish(0x30, endless_varint, true).has_value());
  EXPECT_FALSE(ParsePublish(0x30, {}, false).has_value());
}

}  // namespace
}  // namespace ferry::bench
