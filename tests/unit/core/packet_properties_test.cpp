// MQTT v5 properties: legality per packet, repetition and value rules
// (MQTT 5.0 section 2.2.2), each failure asserting its reason code.

#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <vector>

#include "core/packet.h"

namespace ferry::core {
namespace {

using Bytes = std::vector<uint8_t>;
constexpr ProtocolVersion kV5 = ProtocolVersion::kV5;
constexpr ReasonCode kMalformed = ReasonCode::kMalformedPacket;
constexpr ReasonCode kProtocolError = ReasonCode::kProtocolError;

Result<Packet> DecodeFrame(const Bytes& frame) {
  auto header = ParseFixedHeader(frame, 1u << 28);
  if (!header.ok()) return header.status();
  if (!header.value() || header.value()->total_length() != frame.size()) {
    return Status::InvalidArgument("frame length does not match its remaining length");
  }
  const FixedHeader& h = *header.value();
  return Decode(h, std::span(frame).subspan(h.header_length), kV5);
}

ReasonCode ReasonOf(const Bytes& frame) {
  auto packet = DecodeFrame(frame);
  EXPECT_FALSE(packet.ok()) << "decoded although it should fail";
  return packet.status().reason();
}

// Frames around a property block `props` (without its length byte, < 128).
Bytes Frame(Bytes head, const Bytes& props, const Bytes& tail = {}) {
  head.push_back(static_cast<uint8_t>(props.size()));
  head.insert(head.end(), props.begin(), props.end());
  head.insert(head.end(), tail.begin(), tail.end());
  head.insert(head.begin() + 1, static_cast<uint8_t>(head.size() - 1));
  return head;
}

// PUBLISH QoS 0 to "t" with no payload.
Bytes PublishWith(const Bytes& props) { return Frame({0x30, 0x00, 0x01, 't'}, props); }

// CONNECT v5, clean start, client id "c".
Bytes ConnectWith(const Bytes& props) {
  return Frame({0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x00}, props,
               {0x00, 0x01, 'c'});
}

Bytes ConnackWith(const Bytes& props) { return Frame({0x20, 0x00, 0x00}, props); }

Bytes SubscribeWith(const Bytes& props) {
  return Frame({0x82, 0x00, 0x01}, props, {0x00, 0x01, 'a', 0x00});
}

TEST(Properties, PropertyLengthPastTheEndIsMalformed) {
  EXPECT_EQ(ReasonOf({0x30, 0x05, 0x00, 0x01, 't', 0x09, 0x01}), kMalformed);
}

TEST(Properties, UnknownIdentifierIsMalformed) {
  EXPECT_EQ(ReasonOf(PublishWith({0x7F, 0x00})), kMalformed);
}

TEST(Properties, MultiByteIdentifierIsMalformed) {
  EXPECT_EQ(ReasonOf(PublishWith({0x81, 0x00, 0x00})), kMalformed);
}

TEST(Properties, TopicAliasInConnectIsMalformed) {
  EXPECT_EQ(ReasonOf(ConnectWith({0x23, 0x00, 0x01})), kMalformed);
}

TEST(Properties, SessionExpiryInPublishIsMalformed) {
  EXPECT_EQ(ReasonOf(PublishWith({0x11, 0x00, 0x00, 0x00, 0x01})), kMalformed);
}

TEST(Properties, SessionExpiryInWillPropertiesIsMalformed) {
  const Bytes frame = {
      0x10, 0x18,                         // CONNECT, remaining length 24
      0x00, 0x04, 'M',  'Q',  'T',  'T',  // protocol name
      0x05, 0x06, 0x00, 0x00,             // level 5, will + clean start, keep alive 0
      0x00,                               // property length 0
      0x00, 0x01, 'c',                    // client identifier
      0x05,                               // will property length 5
      0x11, 0x00, 0x00, 0x00, 0x01,       //   session expiry interval (not a will property)
      0x00, 0x00, 0x00, 0x00,             // will topic, will payload
  };
  EXPECT_EQ(ReasonOf(frame), kMalformed);
}

TEST(Properties, TruncatedValueIsMalformed) {
  EXPECT_EQ(ReasonOf(PublishWith({0x02, 0x00, 0x00})), kMalformed);
}

TEST(Properties, RepeatedContentTypeIsProtocolError) {
  EXPECT_EQ(ReasonOf(PublishWith({0x03, 0x00, 0x01, 'a', 0x03, 0x00, 0x01, 'b'})), kProtocolError);
}

TEST(Properties, RepeatedSessionExpiryIsProtocolError) {
  EXPECT_EQ(ReasonOf(ConnectWith({0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2})), kProtocolError);
}

TEST(Properties, RepeatedUserPropertiesAreKeptInOrder) {
  auto packet = DecodeFrame(PublishWith({
      0x26, 0x00, 0x01, 'k', 0x00, 0x01, '1',  // user property k=1
      0x26, 0x00, 0x01, 'k', 0x00, 0x01, '2',  // user property k=2
      0x26, 0x00, 0x01, 'a', 0x00, 0x00,       // user property a=
  }));
  ASSERT_TRUE(packet.ok()) << packet.status().ToString();
  EXPECT_EQ(std::get<Publish>(packet.value()).props.user_properties,
            (UserProperties{{"k", "1"}, {"k", "2"}, {"a", ""}}));
}

TEST(Properties, TwoSubscriptionIdentifiersInSubscribeIsProtocolError) {
  EXPECT_EQ(ReasonOf(SubscribeWith({0x0B, 0x01, 0x0B, 0x02})), kProtocolError);
}

TEST(Properties, SubscriptionIdentifier0IsProtocolError) {
  EXPECT_EQ(ReasonOf(SubscribeWith({0x0B, 0x00})), kProtocolError);
}

TEST(Properties, SubscriptionIdentifierLongerThan4BytesIsMalformed) {
  EXPECT_EQ(ReasonOf(PublishWith({0x0B, 0x80, 0x80, 0x80, 0x80, 0x01})), kMalformed);
}

TEST(Properties, ReceiveMaximum0IsProtocolError) {
  EXPECT_EQ(ReasonOf(ConnectWith({0x21, 0x00, 0x00})), kProtocolError);
}

TEST(Properties, MaximumPacketSize0IsProtocolError) {
  EXPECT_EQ(ReasonOf(ConnectWith({0x27, 0x00, 0x00, 0x00, 0x00})), kProtocolError);
}

// [MQTT-3.3.2-8]: alias 0 decodes; the receiver answers it with DISCONNECT
// 0x94 (Topic Alias invalid), which the decoder cannot express.
TEST(Properties, TopicAlias0DecodesForTheReceiverToRefuse) {
  auto packet = DecodeFrame(PublishWith({0x23, 0x00, 0x00}));
  ASSERT_TRUE(packet.ok()) << packet.status().ToString();
  EXPECT_EQ(std::get<Publish>(packet.value()).props.topic_alias, uint16_t{0});
}

TEST(Properties, PayloadFormatIndicator2IsProtocolError) {
  EXPECT_EQ(ReasonOf(PublishWith({0x01, 0x02})), kProtocolError);
}

TEST(Properties, RequestProblemInformation2IsProtocolError) {
  EXPECT_EQ(ReasonOf(ConnectWith({0x17, 0x02})), kProtocolError);
}

TEST(Properties, RequestResponseInformation2IsProtocolError) {
  EXPECT_EQ(ReasonOf(ConnectWith({0x19, 0x02})), kProtocolError);
}

TEST(Properties, MaximumQos2IsProtocolError) {
  EXPECT_EQ(ReasonOf(ConnackWith({0x24, 0x02})), kProtocolError);
}

TEST(Properties, RetainAvailable2IsProtocolError) {
  EXPECT_EQ(ReasonOf(ConnackWith({0x25, 0x02})), kProtocolError);
}

TEST(Properties, AuthenticationDataWithoutMethodIsProtocolError) {
  EXPECT_EQ(ReasonOf(ConnectWith({0x16, 0x00, 0x01, 0xFF})), kProtocolError);
}

TEST(Properties, UserPropertyWithInvalidUtf8IsMalformed) {
  EXPECT_EQ(ReasonOf(PublishWith({0x26, 0x00, 0x01, 'k', 0x00, 0x01, 0xFF})), kMalformed);
}

TEST(Properties, ResponseTopicWithNulIsMalformed) {  // [MQTT-1.5.4-2]
  EXPECT_EQ(ReasonOf(PublishWith({0x08, 0x00, 0x02, 'a', 0x00})), kMalformed);
}

TEST(Properties, CorrelationDataMayHoldAnyBytes) {
  auto packet = DecodeFrame(PublishWith({0x09, 0x00, 0x03, 0x00, 0xFF, 0xED}));
  ASSERT_TRUE(packet.ok()) << packet.status().ToString();
  EXPECT_EQ(std::get<Publish>(packet.value()).props.correlation_data,
            std::string("\x00\xFF\xED", 3));
}

TEST(Properties, ReasonStringInDisconnectIsAccepted) {
  auto packet = DecodeFrame({0xE0, 0x06, 0x8B, 0x04, 0x1F, 0x00, 0x01, 'x'});
  ASSERT_TRUE(packet.ok()) << packet.status().ToString();
  EXPECT_EQ(std::get<Disconnect>(packet.value()).props.reason_string, "x");
}

TEST(Properties, AssignedClientIdentifierInDisconnectIsMalformed) {
  EXPECT_EQ(ReasonOf({0xE0, 0x06, 0x8B, 0x04, 0x12, 0x00, 0x01, 'x'}), kMalformed);
}

}  // namespace
}  // namespace ferry::core
