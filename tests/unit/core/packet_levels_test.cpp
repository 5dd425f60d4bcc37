// What each protocol level allows in the codec, byte-exact: the fixed-header
// flags of every packet type at levels 3 (MQTT 3.1), 4 (3.1.1) and 5, DUP on
// a QoS 0 PUBLISH, topic filter syntax in SUBSCRIBE and UNSUBSCRIBE, and the
// 3.1.1 CONNACK return codes.

#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "core/packet.h"

namespace ferry::core {
namespace {

using Bytes = std::vector<uint8_t>;
constexpr ProtocolVersion kAllLevels[] = {ProtocolVersion::kV31, ProtocolVersion::kV311,
                                          ProtocolVersion::kV5};

Result<Packet> DecodeFrame(const Bytes& frame, ProtocolVersion v) {
  auto header = ParseFixedHeader(frame, 1u << 28);
  if (!header.ok()) return header.status();
  EXPECT_TRUE(header.value().has_value() && header.value()->total_length() == frame.size());
  const FixedHeader& h = *header.value();
  return Decode(h, std::span(frame).subspan(h.header_length), v);
}

// A valid body for a packet of `type` at level `v`; the fixed header is the
// test's. CONNECT and PUBLISH have tests of their own.
Bytes BodyOf(PacketType type, ProtocolVersion v) {
  const bool v5 = IsV5(v);
  switch (type) {
    case PacketType::kConnack:
      return v5 ? Bytes{0x00, 0x00, 0x00} : Bytes{0x00, 0x00};
    case PacketType::kPuback:
    case PacketType::kPubrec:
    case PacketType::kPubrel:
    case PacketType::kPubcomp:
      return {0x00, 0x01};
    case PacketType::kSubscribe:
      return v5 ? Bytes{0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x01}
                : Bytes{0x00, 0x01, 0x00, 0x01, 'a', 0x01};
    case PacketType::kSuback:
      return v5 ? Bytes{0x00, 0x01, 0x00, 0x01} : Bytes{0x00, 0x01, 0x01};
    case PacketType::kUnsubscribe:
      return v5 ? Bytes{0x00, 0x01, 0x00, 0x00, 0x01, 'a'} : Bytes{0x00, 0x01, 0x00, 0x01, 'a'};
    case PacketType::kUnsuback:
      return v5 ? Bytes{0x00, 0x01, 0x00, 0x00} : Bytes{0x00, 0x01};
    default:  // PINGREQ, PINGRESP, DISCONNECT, AUTH
      return {};
  }
}

Bytes Frame(uint8_t first, const Bytes& body) {
  Bytes frame{first, static_cast<uint8_t>(body.size())};
  frame.insert(frame.end(), body.begin(), body.end());
  return frame;
}

// Whether `flags` are allowed on a packet of `type` at level `v`: exactly
// 0010 on PUBREL, SUBSCRIBE, UNSUBSCRIBE and 0000 elsewhere from 3.1.1 on
// [MQTT-2.1.3-1]; at 3.1, QoS 1 with DUP and RETAIN free on those three, and
// anything on the others, which do not use the bits.
bool FlagsAllowed(PacketType type, uint8_t flags, ProtocolVersion v) {
  const bool qos1 = type == PacketType::kPubrel || type == PacketType::kSubscribe ||
                    type == PacketType::kUnsubscribe;
  if (v == ProtocolVersion::kV31) return !qos1 || (flags & 0x06) == 0x02;
  return flags == (qos1 ? 0x02 : 0x00);
}

TEST(PacketLevels, FixedHeaderFlagsOfEveryTypeAtEveryLevel) {
  const PacketType types[] = {
      PacketType::kConnack, PacketType::kPuback,      PacketType::kPubrec,
      PacketType::kPubrel,  PacketType::kPubcomp,     PacketType::kSubscribe,
      PacketType::kSuback,  PacketType::kUnsubscribe, PacketType::kUnsuback,
      PacketType::kPingreq, PacketType::kPingresp,    PacketType::kDisconnect,
      PacketType::kAuth};
  for (ProtocolVersion v : kAllLevels) {
    for (PacketType type : types) {
      if (type == PacketType::kAuth && !IsV5(v)) continue;  // reserved before 5: its own test
      for (uint8_t flags = 0; flags < 16; ++flags) {
        const Bytes frame =
            Frame(static_cast<uint8_t>(static_cast<uint8_t>(type) << 4 | flags), BodyOf(type, v));
        auto packet = DecodeFrame(frame, v);
        SCOPED_TRACE(std::string(PacketTypeName(type)) + " flags " + std::to_string(flags) +
                     " level " + std::to_string(static_cast<int>(v)));
        if (FlagsAllowed(type, flags, v)) {
          EXPECT_TRUE(packet.ok()) << packet.status().ToString();
        } else {
          ASSERT_FALSE(packet.ok());
          EXPECT_EQ(packet.status().reason(), ReasonCode::kMalformedPacket);
        }
      }
    }
  }
}

TEST(PacketLevels, Mqtt31PubrelMarkedDupDecodesAsPubrel) {
  auto packet = DecodeFrame({0x6A, 0x02, 0x00, 0x07}, ProtocolVersion::kV31);
  ASSERT_TRUE(packet.ok()) << packet.status().ToString();
  const auto* ack = std::get_if<PubAck>(&*packet);
  ASSERT_NE(ack, nullptr);
  EXPECT_EQ(ack->type, PacketType::kPubrel);
  EXPECT_EQ(ack->packet_id, 7);
}

TEST(PacketLevels, Mqtt31SubscribeAndUnsubscribeMarkedDupDecode) {
  auto sub = DecodeFrame({0x8A, 0x06, 0x00, 0x05, 0x00, 0x01, 'a', 0x01}, ProtocolVersion::kV31);
  ASSERT_TRUE(sub.ok()) << sub.status().ToString();
  const auto* s = std::get_if<Subscribe>(&*sub);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->packet_id, 5);
  ASSERT_EQ(s->topics.size(), 1u);
  EXPECT_EQ(s->topics[0].filter, "a");
  EXPECT_EQ(s->topics[0].qos, 1);

  auto unsub = DecodeFrame({0xAA, 0x05, 0x00, 0x06, 0x00, 0x01, 'a'}, ProtocolVersion::kV31);
  ASSERT_TRUE(unsub.ok()) << unsub.status().ToString();
  const auto* u = std::get_if<Unsubscribe>(&*unsub);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->packet_id, 6);
  EXPECT_EQ(u->filters, std::vector<std::string>{"a"});
}

TEST(PacketLevels, DupOnAQos0PublishIsMalformedFrom311OnAndIgnoredAt31) {
  const Bytes frame{0x38, 0x04, 0x00, 0x01, 't', 'x'};  // DUP, QoS 0, topic "t", payload "x"
  for (ProtocolVersion v : {ProtocolVersion::kV311, ProtocolVersion::kV5}) {
    Bytes body = frame;
    if (IsV5(v)) {  // property length after the topic
      body.insert(body.begin() + 5, 0x00);
      body[1] = 0x05;
    }
    auto packet = DecodeFrame(body, v);
    ASSERT_FALSE(packet.ok());
    EXPECT_EQ(packet.status().reason(), ReasonCode::kMalformedPacket);  // [MQTT-3.3.1-2]
  }
  auto packet = DecodeFrame(frame, ProtocolVersion::kV31);
  ASSERT_TRUE(packet.ok()) << packet.status().ToString();
  const auto& p = std::get<Publish>(*packet);
  EXPECT_EQ(p.qos, 0);
  EXPECT_FALSE(p.dup);
  EXPECT_EQ(p.topic, "t");
  EXPECT_EQ(p.payload, "x");
}

// A SUBSCRIBE (or UNSUBSCRIBE) of "ok" and `filter` at level `v`.
Bytes FilterPacket(bool unsubscribe, const std::string& filter, ProtocolVersion v) {
  Bytes body{0x00, 0x01};
  if (IsV5(v)) body.push_back(0x00);
  for (const std::string& f : {std::string("ok"), filter}) {
    body.push_back(static_cast<uint8_t>(f.size() >> 8));
    body.push_back(static_cast<uint8_t>(f.size()));
    body.insert(body.end(), f.begin(), f.end());
    if (!unsubscribe) body.push_back(0x01);
  }
  return Frame(unsubscribe ? 0xA2 : 0x82, body);
}

TEST(PacketLevels, TopicFilterSyntaxErrorsMakeSubscribeAndUnsubscribeMalformed) {
  const std::string bad[] = {"",
                             "a/#/b",
                             "a#",
                             "#/a",
                             "+a/b",
                             "a/b+",
                             "a/+b/c",
                             "$share/",
                             "$share//x",
                             "$share/g",
                             "$share/g/",
                             "$share/g+/x",
                             "$share/#/x",
                             "$share/g/a/#/b",
                             "$queue/",
                             "$queue/a#",
                             std::string("a\0b", 3)};
  for (ProtocolVersion v : kAllLevels) {
    for (const std::string& filter : bad) {
      for (bool unsubscribe : {false, true}) {
        SCOPED_TRACE(std::string(unsubscribe ? "UNSUBSCRIBE '" : "SUBSCRIBE '") + filter +
                     "' level " + std::to_string(static_cast<int>(v)));
        auto packet = DecodeFrame(FilterPacket(unsubscribe, filter, v), v);
        ASSERT_FALSE(packet.ok());
        EXPECT_EQ(packet.status().reason(), ReasonCode::kMalformedPacket);
      }
    }
  }
}

TEST(PacketLevels, WellFormedTopicFiltersDecode) {
  const char* const good[] = {"#",          "+",          "/",
                              "a//b",       "+/+/#",      "$SYS/#",
                              "a/+/c",      "$share/g/#", "$share/g/a/+",
                              "$queue/a/b", "$queue/#",   "sport/tennis/player1/#"};
  for (ProtocolVersion v : kAllLevels) {
    for (const char* filter : good) {
      for (bool unsubscribe : {false, true}) {
        SCOPED_TRACE(std::string(filter) + " level " + std::to_string(static_cast<int>(v)));
        auto packet = DecodeFrame(FilterPacket(unsubscribe, filter, v), v);
        EXPECT_TRUE(packet.ok()) << packet.status().ToString();
      }
    }
  }
}

TEST(PacketLevels, V3ConnackReturnCodes) {
  // MQTT 3.1.1 table 3.1; the rest have none and are refused by a close.
  EXPECT_EQ(V3ConnackReturnCode(ReasonCode::kSuccess), 0x00);
  EXPECT_EQ(V3ConnackReturnCode(ReasonCode::kUnsupportedProtocolVersion), 0x01);
  EXPECT_EQ(V3ConnackReturnCode(ReasonCode::kClientIdentifierNotValid), 0x02);
  EXPECT_EQ(V3ConnackReturnCode(ReasonCode::kServerUnavailable), 0x03);
  EXPECT_EQ(V3ConnackReturnCode(ReasonCode::kServerBusy), 0x03);
  EXPECT_EQ(V3ConnackReturnCode(ReasonCode::kBadUserNameOrPassword), 0x04);
  EXPECT_EQ(V3ConnackReturnCode(ReasonCode::kNotAuthorized), 0x05);
  EXPECT_EQ(V3ConnackReturnCode(ReasonCode::kBanned), 0x05);
  for (ReasonCode none :
       {ReasonCode::kTopicNameInvalid, ReasonCode::kQosNotSupported,
        ReasonCode::kRetainNotSupported, ReasonCode::kMalformedPacket, ReasonCode::kProtocolError,
        ReasonCode::kPacketTooLarge, ReasonCode::kQuotaExceeded}) {
    EXPECT_FALSE(V3ConnackReturnCode(none).has_value()) << static_cast<int>(none);
  }
}

}  // namespace
}  // namespace ferry::core
