// Decoding well-formed packets and framing (ParseFixedHeader). Failures are
// in packet_decode_errors_test.cpp and packet_properties_test.cpp.

#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <vector>

#include "core/packet.h"

namespace ferry::core {
namespace {

using Bytes = std::vector<uint8_t>;
constexpr ProtocolVersion kV31 = ProtocolVersion::kV31;
constexpr ProtocolVersion kV311 = ProtocolVersion::kV311;
constexpr ProtocolVersion kV5 = ProtocolVersion::kV5;

// Decodes one whole frame (fixed header and body); T is the expected type.
template <typename T>
T DecodeAs(const Bytes& frame, ProtocolVersion v) {
  auto header = ParseFixedHeader(frame, 1u << 28);
  EXPECT_TRUE(header.ok()) << header.status().ToString();
  if (!header.ok() || !header.value()) {
    ADD_FAILURE() << "incomplete frame";
    return T{};
  }
  const FixedHeader& h = *header.value();
  EXPECT_EQ(h.total_length(), frame.size());
  auto packet = Decode(h, std::span(frame).subspan(h.header_length), v);
  EXPECT_TRUE(packet.ok()) << packet.status().ToString();
  if (!packet.ok() || !std::holds_alternative<T>(packet.value())) {
    ADD_FAILURE() << "not decoded as the expected type";
    return T{};
  }
  return std::get<T>(std::move(packet).value());
}

// ---- ParseFixedHeader -------------------------------------------------------

TEST(FixedHeader, EmptyBufferNeedsMoreBytes) {
  auto h = ParseFixedHeader({}, 1024);
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(h.value().has_value());
}

TEST(FixedHeader, FirstByteAloneNeedsMoreBytes) {
  Bytes b = {0x30};
  auto h = ParseFixedHeader(b, 1024);
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(h.value().has_value());
}

TEST(FixedHeader, ContinuationByteWithoutItsSuccessorNeedsMoreBytes) {
  Bytes b = {0x30, 0x80, 0x80};
  auto h = ParseFixedHeader(b, 1u << 28);
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(h.value().has_value());
}

TEST(FixedHeader, HeaderIsReturnedBeforeTheBodyArrives) {
  Bytes b = {0x30, 0x0A};
  auto h = ParseFixedHeader(b, 1024);
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.value().has_value());
  EXPECT_EQ(h.value()->type(), PacketType::kPublish);
  EXPECT_EQ(h.value()->remaining_length, 10u);
  EXPECT_EQ(h.value()->header_length, 2);
  EXPECT_EQ(h.value()->total_length(), 12u);
}

TEST(FixedHeader, FourByteRemainingLengthHoldsTheLargestValue) {
  Bytes b = {0x30, 0xFF, 0xFF, 0xFF, 0x7F};  // 268,435,455
  auto h = ParseFixedHeader(b, 0xFFFFFFFF);
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h.value().has_value());
  EXPECT_EQ(h.value()->remaining_length, 268'435'455u);
  EXPECT_EQ(h.value()->header_length, 5);
}

TEST(FixedHeader, TwoByteRemainingLengthIsLittleEndianSevenBitGroups) {
  Bytes b = {0x30, 0xC1, 0x02};  // 0x41 + 2 * 128 = 321
  auto h = ParseFixedHeader(b, 1024);
  ASSERT_TRUE(h.ok() && h.value().has_value());
  EXPECT_EQ(h.value()->remaining_length, 321u);
  EXPECT_EQ(h.value()->flags(), 0);
}

TEST(FixedHeader, FifthRemainingLengthByteIsMalformed) {
  Bytes b = {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
  auto h = ParseFixedHeader(b, 0xFFFFFFFF);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().reason(), ReasonCode::kMalformedPacket);
}

TEST(FixedHeader, FourContinuationBytesAreMalformedEvenBeforeMoreArrive) {
  Bytes b = {0x30, 0x80, 0x80, 0x80, 0x80};
  auto h = ParseFixedHeader(b, 0xFFFFFFFF);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().reason(), ReasonCode::kMalformedPacket);
}

TEST(FixedHeader, PacketLargerThanTheMaximumIsTooLarge) {
  Bytes b = {0x30, 0x0A};  // 2 + 10 = 12 bytes
  auto h = ParseFixedHeader(b, 11);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().reason(), ReasonCode::kPacketTooLarge);
}

TEST(FixedHeader, PacketOfExactlyTheMaximumIsAccepted) {
  Bytes b = {0x30, 0x0A};
  auto h = ParseFixedHeader(b, 12);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h.value().has_value());
}

TEST(FixedHeader, HugeAnnouncedLengthIsRejectedBeforeTheBody) {
  Bytes b = {0x30, 0xFF, 0xFF, 0xFF, 0x7F};
  auto h = ParseFixedHeader(b, 1024 * 1024);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().reason(), ReasonCode::kPacketTooLarge);
}

// ---- CONNECT ------------------------------------------------------------------

TEST(PacketDecode, ConnectV311WithWillUserNameAndPassword) {
  const Bytes frame = {
      0x10, 0x1B,                      // CONNECT, remaining length 27
      0x00, 0x04, 'M', 'Q', 'T', 'T',  // protocol name
      0x04,                            // protocol level 4
      0xEC,                            // user name, password, will retain, will QoS 1, will
      0x00, 0x0A,                      // keep alive 10 s
      0x00, 0x01, 'c',                 // client identifier
      0x00, 0x01, 'w',                 // will topic
      0x00, 0x03, 'b', 'y', 'e',       // will payload
      0x00, 0x01, 'u',                 // user name
      0x00, 0x01, 'p',                 // password
  };
  Connect c = DecodeAs<Connect>(frame, kV5);  // CONNECT carries its own version
  EXPECT_EQ(c.protocol_name, "MQTT");
  EXPECT_EQ(c.version, kV311);
  EXPECT_FALSE(c.bridge);
  EXPECT_FALSE(c.clean_start);
  EXPECT_EQ(c.keepalive_s, 10);
  EXPECT_EQ(c.client_id, "c");
  ASSERT_TRUE(c.will.has_value());
  EXPECT_EQ(c.will->topic, "w");
  EXPECT_EQ(c.will->payload, "bye");
  EXPECT_EQ(c.will->qos, 1);
  EXPECT_TRUE(c.will->retain);
  EXPECT_EQ(c.username, "u");
  EXPECT_EQ(c.password, "p");
}

TEST(PacketDecode, ConnectV31UsesProtocolNameMQIsdp) {
  const Bytes frame = {
      0x10, 0x0F,                                // CONNECT, remaining length 15
      0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p',  // protocol name
      0x03,                                      // protocol level 3
      0x02,                                      // clean session
      0x00, 0x00,                                // keep alive 0
      0x00, 0x01, 'c',                           // client identifier
  };
  Connect c = DecodeAs<Connect>(frame, kV311);
  EXPECT_EQ(c.protocol_name, "MQIsdp");
  EXPECT_EQ(c.version, kV31);
  EXPECT_TRUE(c.clean_start);
  EXPECT_FALSE(c.will.has_value());
  EXPECT_FALSE(c.username.has_value());
}

TEST(PacketDecode, ConnectLevelWithTopBitIsABridge) {
  const Bytes frame = {
      0x10, 0x0D,                      // CONNECT, remaining length 13
      0x00, 0x04, 'M', 'Q', 'T', 'T',  // protocol name
      0x84,                            // bridge bit | protocol level 4
      0x02,                            // clean session
      0x00, 0x3C,                      // keep alive 60 s
      0x00, 0x01, 'b',                 // client identifier
  };
  Connect c = DecodeAs<Connect>(frame, kV311);
  EXPECT_TRUE(c.bridge);
  EXPECT_EQ(c.version, kV311);
}

TEST(PacketDecode, ConnectV5AllowsPasswordWithoutUserName) {
  const Bytes frame = {
      0x10, 0x10,                      // CONNECT, remaining length 16
      0x00, 0x04, 'M', 'Q', 'T', 'T',  // protocol name
      0x05,                            // protocol level 5
      0x42,                            // password, clean start
      0x00, 0x00,                      // keep alive 0
      0x00,                            // property length 0
      0x00, 0x00,                      // empty client identifier
      0x00, 0x01, 'p',                 // password
  };
  Connect c = DecodeAs<Connect>(frame, kV311);
  EXPECT_EQ(c.version, kV5);
  EXPECT_TRUE(c.client_id.empty());
  EXPECT_FALSE(c.username.has_value());
  EXPECT_EQ(c.password, "p");
}

TEST(PacketDecode, ConnectV5ReadsPropertiesAndWillProperties) {
  const Bytes frame = {
      0x10, 0x25,                         // CONNECT, remaining length 37
      0x00, 0x04, 'M',  'Q',  'T',  'T',  // protocol name
      0x05,                               // protocol level 5
      0x86,                               // user name, will, clean start
      0x00, 0x1E,                         // keep alive 30 s
      0x08,                               // property length 8
      0x11, 0x00, 0x00, 0x00, 0x78,       //   session expiry interval 120
      0x21, 0x00, 0x14,                   //   receive maximum 20
      0x00, 0x01, 'c',                    // client identifier
      0x05,                               // will property length 5
      0x18, 0x00, 0x00, 0x00, 0x05,       //   will delay interval 5
      0x00, 0x01, 'w',                    // will topic
      0x00, 0x01, 'x',                    // will payload
      0x00, 0x01, 'u',                    // user name
  };
  Connect c = DecodeAs<Connect>(frame, kV5);
  EXPECT_EQ(c.props.session_expiry_interval, 120u);
  EXPECT_EQ(c.props.receive_maximum, 20);
  ASSERT_TRUE(c.will.has_value());
  EXPECT_EQ(c.will->props.will_delay_interval, 5u);
  EXPECT_EQ(c.will->qos, 0);
  EXPECT_EQ(c.username, "u");
}

// ---- CONNACK ------------------------------------------------------------------

TEST(PacketDecode, ConnackV311ReturnCodeBecomesReasonCode) {
  const Bytes frame = {0x20, 0x02, 0x00, 0x05};  // refused: not authorized
  Connack c = DecodeAs<Connack>(frame, kV311);
  EXPECT_FALSE(c.session_present);
  EXPECT_EQ(c.reason, ReasonCode::kNotAuthorized);
}

TEST(PacketDecode, ConnackV31IgnoresTheReservedFlagsByte) {
  const Bytes frame = {0x20, 0x02, 0x01, 0x00};
  Connack c = DecodeAs<Connack>(frame, kV31);
  EXPECT_FALSE(c.session_present);
  EXPECT_EQ(c.reason, ReasonCode::kSuccess);
}

TEST(PacketDecode, ConnackV5WithProperties) {
  const Bytes frame = {
      0x20, 0x0C,             // CONNACK, remaining length 12
      0x01,                   // session present
      0x00,                   // success
      0x09,                   // property length 9
      0x12, 0x00, 0x01, 'a',  //   assigned client identifier
      0x22, 0x00, 0x0A,       //   topic alias maximum 10
      0x24, 0x01,             //   maximum QoS 1
  };
  Connack c = DecodeAs<Connack>(frame, kV5);
  EXPECT_TRUE(c.session_present);
  EXPECT_EQ(c.props.assigned_client_identifier, "a");
  EXPECT_EQ(c.props.topic_alias_maximum, 10);
  EXPECT_EQ(c.props.maximum_qos, 1);
}

// ---- PUBLISH --------------------------------------------------------------------

TEST(PacketDecode, PublishQos1WithRetainAndDup) {
  const Bytes frame = {
      0x3B, 0x09,                 // PUBLISH, DUP, QoS 1, RETAIN; remaining length 9
      0x00, 0x03, 'a', '/', 'b',  // topic name
      0x00, 0x0A,                 // packet identifier 10
      'h',  'i',                  // payload
  };
  Publish p = DecodeAs<Publish>(frame, kV311);
  EXPECT_EQ(p.topic, "a/b");
  EXPECT_EQ(p.payload, "hi");
  EXPECT_EQ(p.qos, 1);
  EXPECT_TRUE(p.retain);
  EXPECT_TRUE(p.dup);
  EXPECT_EQ(p.packet_id, 10);
}

TEST(PacketDecode, PublishWithEmptyPayload) {
  const Bytes frame = {0x30, 0x03, 0x00, 0x01, 't'};
  Publish p = DecodeAs<Publish>(frame, kV311);
  EXPECT_EQ(p.topic, "t");
  EXPECT_TRUE(p.payload.empty());
  EXPECT_EQ(p.packet_id, 0);
}

TEST(PacketDecode, PublishV5KeepsEverySubscriptionIdentifier) {
  const Bytes frame = {
      0x32, 0x0F,        // PUBLISH QoS 1, remaining length 15
      0x00, 0x01, 't',   // topic name
      0x00, 0x01,        // packet identifier 1
      0x08,              // property length 8
      0x0B, 0x01,        //   subscription identifier 1
      0x0B, 0xC8, 0x01,  //   subscription identifier 200
      0x23, 0x00, 0x03,  //   topic alias 3
      'p',               // payload
  };
  Publish p = DecodeAs<Publish>(frame, kV5);
  EXPECT_EQ(p.props.subscription_identifiers, (std::vector<uint32_t>{1, 200}));
  EXPECT_EQ(p.props.topic_alias, 3);
  EXPECT_EQ(p.payload, "p");
}

TEST(PacketDecode, PublishV5WithEmptyTopicAndTopicAlias) {
  const Bytes frame = {
      0x30, 0x06,        // PUBLISH QoS 0, remaining length 6
      0x00, 0x00,        // empty topic name
      0x03,              // property length 3
      0x23, 0x00, 0x07,  //   topic alias 7
  };
  Publish p = DecodeAs<Publish>(frame, kV5);
  EXPECT_TRUE(p.topic.empty());
  EXPECT_EQ(p.props.topic_alias, 7);
}

// ---- Acknowledgements and the v5 short forms -------------------------------------

TEST(PacketDecode, PubrelV311HasFlags0010) {
  PubAck a = DecodeAs<PubAck>({0x62, 0x02, 0x12, 0x34}, kV311);
  EXPECT_EQ(a.type, PacketType::kPubrel);
  EXPECT_EQ(a.packet_id, 0x1234);
}

TEST(PacketDecode, PubackV5OfRemainingLength2MeansSuccessWithoutProperties) {
  PubAck a = DecodeAs<PubAck>({0x40, 0x02, 0x00, 0x07}, kV5);
  EXPECT_EQ(a.reason, ReasonCode::kSuccess);
  EXPECT_EQ(a.props, Properties{});
}

TEST(PacketDecode, PubrecV5OfRemainingLength3HasReasonWithoutProperties) {
  PubAck a = DecodeAs<PubAck>({0x50, 0x03, 0x00, 0x07, 0x10}, kV5);
  EXPECT_EQ(a.type, PacketType::kPubrec);
  EXPECT_EQ(a.reason, ReasonCode::kNoMatchingSubscribers);
}

TEST(PacketDecode, PubcompV5WithReasonString) {
  const Bytes frame = {
      0x70, 0x09,                  // PUBCOMP, remaining length 9
      0x00, 0x07,                  // packet identifier 7
      0x92,                        // packet identifier not found
      0x05,                        // property length 5
      0x1F, 0x00, 0x02, 'n', 'o',  //   reason string
  };
  PubAck a = DecodeAs<PubAck>(frame, kV5);
  EXPECT_EQ(a.reason, ReasonCode::kPacketIdentifierNotFound);
  EXPECT_EQ(a.props.reason_string, "no");
}

TEST(PacketDecode, DisconnectV5OfRemainingLength0IsNormal) {
  Disconnect d = DecodeAs<Disconnect>({0xE0, 0x00}, kV5);
  EXPECT_EQ(d.reason, ReasonCode::kSuccess);
}

TEST(PacketDecode, DisconnectV5OfRemainingLength1HasReasonOnly) {
  Disconnect d = DecodeAs<Disconnect>({0xE0, 0x01, 0x04}, kV5);
  EXPECT_EQ(d.reason, ReasonCode::kDisconnectWithWill);
}

TEST(PacketDecode, AuthV5WithMethod) {
  const Bytes frame = {
      0xF0, 0x06,             // AUTH, remaining length 6
      0x18,                   // continue authentication
      0x04,                   // property length 4
      0x15, 0x00, 0x01, 'm',  //   authentication method
  };
  Auth a = DecodeAs<Auth>(frame, kV5);
  EXPECT_EQ(a.reason, ReasonCode::kContinueAuthentication);
  EXPECT_EQ(a.props.authentication_method, "m");
}

// ---- SUBSCRIBE family -------------------------------------------------------------

TEST(PacketDecode, SubscribeV311WithTwoFilters) {
  const Bytes frame = {
      0x82, 0x0C,                        // SUBSCRIBE, remaining length 12
      0x00, 0x01,                        // packet identifier 1
      0x00, 0x03, 'a', '/',  '#', 0x01,  // "a/#" QoS 1
      0x00, 0x01, 'b', 0x02,             // "b" QoS 2
  };
  Subscribe s = DecodeAs<Subscribe>(frame, kV311);
  ASSERT_EQ(s.topics.size(), 2u);
  EXPECT_EQ(s.topics[0].filter, "a/#");
  EXPECT_EQ(s.topics[0].qos, 1);
  EXPECT_EQ(s.topics[1].filter, "b");
  EXPECT_EQ(s.topics[1].qos, 2);
}

TEST(PacketDecode, SubscribeV5ReadsEverySubscriptionOption) {
  const Bytes frame = {
      0x82, 0x09,        // SUBSCRIBE, remaining length 9
      0x00, 0x02,        // packet identifier 2
      0x02, 0x0B, 0x05,  // properties: subscription identifier 5
      0x00, 0x01, 'x',   // topic filter
      0x2D,              // retain handling 2, RAP, no local, QoS 1
  };
  Subscribe s = DecodeAs<Subscribe>(frame, kV5);
  ASSERT_EQ(s.topics.size(), 1u);
  EXPECT_EQ(s.props.subscription_identifiers, std::vector<uint32_t>{5});
  EXPECT_EQ(s.topics[0].qos, 1);
  EXPECT_TRUE(s.topics[0].no_local);
  EXPECT_TRUE(s.topics[0].retain_as_published);
  EXPECT_EQ(s.topics[0].retain_handling, 2);
}

TEST(PacketDecode, SubackV311FailureBecomesUnspecifiedError) {
  Suback s = DecodeAs<Suback>({0x90, 0x04, 0x00, 0x01, 0x01, 0x80}, kV311);
  EXPECT_EQ(s.reasons,
            (std::vector<ReasonCode>{ReasonCode::kGrantedQos1, ReasonCode::kUnspecifiedError}));
}

TEST(PacketDecode, UnsubscribeV311WithTwoFilters) {
  const Bytes frame = {
      0xA2, 0x09,            // UNSUBSCRIBE, remaining length 9
      0x00, 0x03,            // packet identifier 3
      0x00, 0x01, 'a',       // topic filter
      0x00, 0x02, 'b', 'c',  // topic filter
  };
  Unsubscribe u = DecodeAs<Unsubscribe>(frame, kV311);
  EXPECT_EQ(u.packet_id, 3);
  EXPECT_EQ(u.filters, (std::vector<std::string>{"a", "bc"}));
}

TEST(PacketDecode, UnsubackV5HasOneReasonPerFilter) {
  Unsuback u = DecodeAs<Unsuback>({0xB0, 0x05, 0x00, 0x03, 0x00, 0x00, 0x11}, kV5);
  EXPECT_EQ(u.reasons,
            (std::vector<ReasonCode>{ReasonCode::kSuccess, ReasonCode::kNoSubscriptionExisted}));
}

TEST(PacketDecode, PingreqAndPingrespHaveNoBody) {
  DecodeAs<Pingreq>({0xC0, 0x00}, kV311);
  DecodeAs<Pingresp>({0xD0, 0x00}, kV5);
}

}  // namespace
}  // namespace ferry::core
