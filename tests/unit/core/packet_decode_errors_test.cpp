// One test per decode failure, each asserting the reason code. v5 property
// failures are in packet_properties_test.cpp.

#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <vector>

#include "core/packet.h"

namespace ferry::core {
namespace {

using Bytes = std::vector<uint8_t>;
constexpr ProtocolVersion kV311 = ProtocolVersion::kV311;
constexpr ProtocolVersion kV5 = ProtocolVersion::kV5;
constexpr ReasonCode kMalformed = ReasonCode::kMalformedPacket;
constexpr ReasonCode kProtocolError = ReasonCode::kProtocolError;

// The reason code Decode fails a whole frame with.
ReasonCode ReasonOf(const Bytes& frame, ProtocolVersion v) {
  auto header = ParseFixedHeader(frame, 1u << 28);
  if (!header.ok()) return header.status().reason();
  if (!header.value() || header.value()->total_length() != frame.size()) {
    ADD_FAILURE() << "frame length does not match its remaining length";
    return ReasonCode::kSuccess;
  }
  const FixedHeader& h = *header.value();
  auto packet = Decode(h, std::span(frame).subspan(h.header_length), v);
  if (packet.ok()) {
    ADD_FAILURE() << "decoded although it should fail";
    return ReasonCode::kSuccess;
  }
  return packet.status().reason();
}

// A v3.1.1 or v5 CONNECT with the given level and flags and client id "c".
Bytes ConnectFrame(uint8_t level, uint8_t flags) {
  Bytes b = {0x10, 0x00, 0x00, 0x04, 'M', 'Q', 'T', 'T', level, flags, 0x00, 0x3C};
  if ((level & 0x7F) == 5) b.push_back(0x00);  // property length
  b.insert(b.end(), {0x00, 0x01, 'c'});
  b[1] = static_cast<uint8_t>(b.size() - 2);
  return b;
}

// ---- Fixed header ----------------------------------------------------------------

TEST(PacketDecodeError, ReservedPacketType0IsMalformed) {
  EXPECT_EQ(ReasonOf({0x00, 0x00}, kV311), kMalformed);
}

TEST(PacketDecodeError, AuthBeforeV5IsMalformed) {
  EXPECT_EQ(ReasonOf({0xF0, 0x00}, kV311), kMalformed);
}

TEST(PacketDecodeError, PubrelWithFlags0000IsMalformed) {  // [MQTT-3.6.1-1]
  EXPECT_EQ(ReasonOf({0x60, 0x02, 0x00, 0x01}, kV311), kMalformed);
}

TEST(PacketDecodeError, SubscribeWithFlags0000IsMalformed) {  // [MQTT-3.8.1-1]
  EXPECT_EQ(ReasonOf({0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00}, kV311), kMalformed);
}

TEST(PacketDecodeError, UnsubscribeWithFlags0000IsMalformed) {  // [MQTT-3.10.1-1]
  EXPECT_EQ(ReasonOf({0xA0, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'}, kV311), kMalformed);
}

TEST(PacketDecodeError, PubackWithFlagsSetIsMalformed) {  // [MQTT-2.1.3-1]
  EXPECT_EQ(ReasonOf({0x42, 0x02, 0x00, 0x01}, kV311), kMalformed);
}

TEST(PacketDecodeError, PingreqWithFlagsSetIsMalformed) {  // [MQTT-2.1.3-1]
  EXPECT_EQ(ReasonOf({0xC1, 0x00}, kV311), kMalformed);
}

TEST(PacketDecodeError, BodyShorterThanRemainingLengthIsMalformed) {
  Bytes body = {0x00};
  FixedHeader h{0x40, 2, 2};
  auto packet = Decode(h, body, kV311);
  ASSERT_FALSE(packet.ok());
  EXPECT_EQ(packet.status().reason(), kMalformed);
}

// ---- CONNECT ---------------------------------------------------------------------

TEST(PacketDecodeError, ConnectWithUnknownProtocolNameIsMalformed) {  // [MQTT-3.1.2-1]
  Bytes b = ConnectFrame(4, 0x02);
  b[7] = 'X';  // "MQTX"
  EXPECT_EQ(ReasonOf(b, kV311), kMalformed);
}

TEST(PacketDecodeError, ConnectMqttLevel3IsUnsupportedProtocolVersion) {
  EXPECT_EQ(ReasonOf(ConnectFrame(3, 0x02), kV311), ReasonCode::kUnsupportedProtocolVersion);
}

TEST(PacketDecodeError, ConnectLevel6IsUnsupportedProtocolVersion) {  // [MQTT-3.1.2-2]
  EXPECT_EQ(ReasonOf(ConnectFrame(6, 0x02), kV311), ReasonCode::kUnsupportedProtocolVersion);
}

TEST(PacketDecodeError, ConnectMQIsdpLevel4IsUnsupportedProtocolVersion) {
  const Bytes b = {0x10, 0x0F, 0x00, 0x06, 'M',  'Q',  'I',  's', 'd',
                   'p',  0x04, 0x02, 0x00, 0x00, 0x00, 0x01, 'c'};
  EXPECT_EQ(ReasonOf(b, kV311), ReasonCode::kUnsupportedProtocolVersion);
}

TEST(PacketDecodeError, ConnectWithReservedFlagIsMalformed) {  // [MQTT-3.1.2-3]
  EXPECT_EQ(ReasonOf(ConnectFrame(4, 0x03), kV311), kMalformed);
}

TEST(PacketDecodeError, ConnectWithWillQosButNoWillIsMalformed) {  // [MQTT-3.1.2-11]
  EXPECT_EQ(ReasonOf(ConnectFrame(4, 0x0A), kV311), kMalformed);
}

TEST(PacketDecodeError, ConnectWithWillRetainButNoWillIsMalformed) {  // [MQTT-3.1.2-13]
  EXPECT_EQ(ReasonOf(ConnectFrame(5, 0x22), kV5), kMalformed);
}

TEST(PacketDecodeError, ConnectWithWillQos3IsMalformed) {  // [MQTT-3.1.2-12]
  EXPECT_EQ(ReasonOf(ConnectFrame(4, 0x1E), kV311), kMalformed);
}

TEST(PacketDecodeError, ConnectV311PasswordWithoutUserNameIsMalformed) {  // [MQTT-3.1.2-22]
  Bytes b = ConnectFrame(4, 0x42);
  b.insert(b.end(), {0x00, 0x01, 'p'});
  b[1] += 3;
  EXPECT_EQ(ReasonOf(b, kV311), kMalformed);
}

TEST(PacketDecodeError, ConnectWithTruncatedClientIdIsMalformed) {
  Bytes b = ConnectFrame(4, 0x02);
  b.pop_back();
  b[1] -= 1;
  EXPECT_EQ(ReasonOf(b, kV311), kMalformed);
}

TEST(PacketDecodeError, ConnectWithMissingWillTopicIsMalformed) {
  EXPECT_EQ(ReasonOf(ConnectFrame(4, 0x06), kV311), kMalformed);
}

TEST(PacketDecodeError, ConnectWithClientIdContainingNulIsMalformed) {  // [MQTT-1.5.4-2]
  Bytes b = ConnectFrame(4, 0x02);
  b.back() = 0x00;
  EXPECT_EQ(ReasonOf(b, kV311), kMalformed);
}

TEST(PacketDecodeError, ConnectWithTrailingBytesIsMalformed) {
  Bytes b = ConnectFrame(4, 0x02);
  b.push_back('x');
  b[1] += 1;
  EXPECT_EQ(ReasonOf(b, kV311), kMalformed);
}

// ---- CONNACK ---------------------------------------------------------------------

TEST(PacketDecodeError, ConnackWithReservedFlagsIsMalformed) {  // [MQTT-3.2.2-1]
  EXPECT_EQ(ReasonOf({0x20, 0x02, 0x02, 0x00}, kV311), kMalformed);
}

TEST(PacketDecodeError, ConnackV311ReturnCode6IsProtocolError) {
  EXPECT_EQ(ReasonOf({0x20, 0x02, 0x00, 0x06}, kV311), kProtocolError);
}

TEST(PacketDecodeError, ConnackSessionPresentOnRefusalIsProtocolError) {  // [MQTT-3.2.2-4]
  EXPECT_EQ(ReasonOf({0x20, 0x02, 0x01, 0x05}, kV311), kProtocolError);
}

TEST(PacketDecodeError, ConnackV5WithUnlistedReasonCodeIsProtocolError) {
  EXPECT_EQ(ReasonOf({0x20, 0x03, 0x00, 0x10, 0x00}, kV5), kProtocolError);
}

// ---- PUBLISH ---------------------------------------------------------------------

TEST(PacketDecodeError, PublishQos3IsMalformed) {  // [MQTT-3.3.1-4]
  EXPECT_EQ(ReasonOf({0x36, 0x05, 0x00, 0x01, 't', 0x00, 0x01}, kV311), kMalformed);
}

TEST(PacketDecodeError, PublishDupOnQos0IsMalformed) {  // [MQTT-3.3.1-2]
  EXPECT_EQ(ReasonOf({0x38, 0x03, 0x00, 0x01, 't'}, kV311), kMalformed);
}

TEST(PacketDecodeError, PublishQos1WithPacketId0IsProtocolError) {  // [MQTT-2.2.1-3]
  EXPECT_EQ(ReasonOf({0x32, 0x05, 0x00, 0x01, 't', 0x00, 0x00}, kV311), kProtocolError);
}

TEST(PacketDecodeError, PublishQos2WithoutPacketIdIsMalformed) {
  EXPECT_EQ(ReasonOf({0x34, 0x03, 0x00, 0x01, 't'}, kV311), kMalformed);
}

TEST(PacketDecodeError, PublishTopicLongerThanThePacketIsMalformed) {
  EXPECT_EQ(ReasonOf({0x30, 0x03, 0x00, 0x05, 't'}, kV311), kMalformed);
}

TEST(PacketDecodeError, PublishTopicWithSurrogateIsMalformed) {  // [MQTT-1.5.4-1]
  EXPECT_EQ(ReasonOf({0x30, 0x05, 0x00, 0x03, 0xED, 0xA0, 0x80}, kV311), kMalformed);
}

TEST(PacketDecodeError, PublishTopicWithOverlongEncodingIsMalformed) {
  EXPECT_EQ(ReasonOf({0x30, 0x04, 0x00, 0x02, 0xC0, 0xAF}, kV311), kMalformed);
}

TEST(PacketDecodeError, PublishV5EmptyTopicWithoutAliasIsProtocolError) {
  EXPECT_EQ(ReasonOf({0x30, 0x03, 0x00, 0x00, 0x00}, kV5), kProtocolError);
}

TEST(PacketDecodeError, PublishV5WithoutPropertyLengthIsMalformed) {
  EXPECT_EQ(ReasonOf({0x30, 0x03, 0x00, 0x01, 't'}, kV5), kMalformed);
}

// ---- Acknowledgements ------------------------------------------------------------

TEST(PacketDecodeError, PubackWithPacketId0IsProtocolError) {  // [MQTT-2.2.1-3]
  EXPECT_EQ(ReasonOf({0x40, 0x02, 0x00, 0x00}, kV311), kProtocolError);
}

TEST(PacketDecodeError, PubackV311WithExtraByteIsMalformed) {
  EXPECT_EQ(ReasonOf({0x40, 0x03, 0x00, 0x01, 0x00}, kV311), kMalformed);
}

TEST(PacketDecodeError, PubackOfOneByteIsMalformed) {
  EXPECT_EQ(ReasonOf({0x40, 0x01, 0x01}, kV5), kMalformed);
}

TEST(PacketDecodeError, PubackV5WithUnlistedReasonCodeIsProtocolError) {
  EXPECT_EQ(ReasonOf({0x40, 0x03, 0x00, 0x01, 0x92}, kV5), kProtocolError);
}

TEST(PacketDecodeError, PubrelV5WithPubackReasonCodeIsProtocolError) {
  EXPECT_EQ(ReasonOf({0x62, 0x03, 0x00, 0x01, 0x10}, kV5), kProtocolError);
}

// ---- SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK --------------------------------------

TEST(PacketDecodeError, SubscribeWithPacketId0IsProtocolError) {  // [MQTT-2.2.1-3]
  EXPECT_EQ(ReasonOf({0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 'a', 0x00}, kV311), kProtocolError);
}

TEST(PacketDecodeError, SubscribeWithoutFiltersIsProtocolError) {  // [MQTT-3.8.3-3]
  EXPECT_EQ(ReasonOf({0x82, 0x02, 0x00, 0x01}, kV311), kProtocolError);
}

TEST(PacketDecodeError, SubscribeV5WithoutFiltersIsProtocolError) {  // [MQTT-3.8.3-3]
  EXPECT_EQ(ReasonOf({0x82, 0x03, 0x00, 0x01, 0x00}, kV5), kProtocolError);
}

TEST(PacketDecodeError, SubscribeV311WithReservedOptionBitsIsMalformed) {  // [MQTT-3-8.3-4]
  EXPECT_EQ(ReasonOf({0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x04}, kV311), kMalformed);
}

TEST(PacketDecodeError, SubscribeV311WithQos3IsMalformed) {  // [MQTT-3-8.3-4]
  EXPECT_EQ(ReasonOf({0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x03}, kV311), kMalformed);
}

TEST(PacketDecodeError, SubscribeV5WithReservedOptionBitsIsMalformed) {  // [MQTT-3.8.3-5]
  EXPECT_EQ(ReasonOf({0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x40}, kV5), kMalformed);
}

TEST(PacketDecodeError, SubscribeV5WithMaximumQos3IsProtocolError) {
  EXPECT_EQ(ReasonOf({0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x03}, kV5), kProtocolError);
}

TEST(PacketDecodeError, SubscribeV5WithRetainHandling3IsProtocolError) {
  EXPECT_EQ(ReasonOf({0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x30}, kV5), kProtocolError);
}

TEST(PacketDecodeError, SubscribeFilterWithoutOptionsIsMalformed) {
  EXPECT_EQ(ReasonOf({0x82, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'}, kV311), kMalformed);
}

TEST(PacketDecodeError, SubackV311WithUnknownReturnCodeIsProtocolError) {
  EXPECT_EQ(ReasonOf({0x90, 0x03, 0x00, 0x01, 0x03}, kV311), kProtocolError);
}

TEST(PacketDecodeError, UnsubscribeWithPacketId0IsProtocolError) {  // [MQTT-2.2.1-3]
  EXPECT_EQ(ReasonOf({0xA2, 0x05, 0x00, 0x00, 0x00, 0x01, 'a'}, kV311), kProtocolError);
}

TEST(PacketDecodeError, UnsubscribeWithoutFiltersIsProtocolError) {  // [MQTT-3.10.3-2]
  EXPECT_EQ(ReasonOf({0xA2, 0x02, 0x00, 0x01}, kV311), kProtocolError);
}

TEST(PacketDecodeError, UnsubackV311WithPayloadIsMalformed) {
  EXPECT_EQ(ReasonOf({0xB0, 0x03, 0x00, 0x01, 0x00}, kV311), kMalformed);
}

TEST(PacketDecodeError, UnsubackV5WithUnlistedReasonCodeIsProtocolError) {
  EXPECT_EQ(ReasonOf({0xB0, 0x04, 0x00, 0x01, 0x00, 0x10}, kV5), kProtocolError);
}

// ---- PINGREQ, DISCONNECT, AUTH ------------------------------------------------------

TEST(PacketDecodeError, PingreqWithBodyIsMalformed) {
  EXPECT_EQ(ReasonOf({0xC0, 0x01, 0x00}, kV311), kMalformed);
}

TEST(PacketDecodeError, DisconnectV311WithBodyIsMalformed) {
  EXPECT_EQ(ReasonOf({0xE0, 0x01, 0x00}, kV311), kMalformed);
}

TEST(PacketDecodeError, DisconnectV5WithUnlistedReasonCodeIsProtocolError) {
  EXPECT_EQ(ReasonOf({0xE0, 0x01, 0x01}, kV5), kProtocolError);
}

TEST(PacketDecodeError, DisconnectV5WithPropertyLengthPastTheEndIsMalformed) {
  EXPECT_EQ(ReasonOf({0xE0, 0x02, 0x00, 0x05}, kV5), kMalformed);
}

TEST(PacketDecodeError, AuthV5WithUnlistedReasonCodeIsProtocolError) {
  EXPECT_EQ(ReasonOf({0xF0, 0x01, 0x87}, kV5), kProtocolError);
}

}  // namespace
}  // namespace ferry::core
