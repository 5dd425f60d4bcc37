// Encode: the exact bytes of every packet type, field by field, and how v5
// values are mapped down for v3 peers.

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/packet.h"

namespace ferry::core {
namespace {

using Bytes = std::vector<uint8_t>;
constexpr ProtocolVersion kV31 = ProtocolVersion::kV31;
constexpr ProtocolVersion kV311 = ProtocolVersion::kV311;
constexpr ProtocolVersion kV5 = ProtocolVersion::kV5;

std::string Hex(std::string_view bytes) {
  std::string s;
  for (unsigned char c : bytes) {
    char buf[4];
    std::snprintf(buf, sizeof(buf), "%02X ", c);
    s += buf;
  }
  return s;
}

std::string Hex(const Bytes& bytes) {
  return Hex(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

// The encoding as hex, after checking that EncodedSize agrees with it.
std::string Encoded(const Packet& packet, ProtocolVersion v) {
  std::string out;
  Encode(packet, v, out);
  EXPECT_EQ(out.size(), EncodedSize(packet, v));
  return Hex(out);
}

// ---- CONNECT --------------------------------------------------------------------

TEST(PacketEncode, ConnectV311Minimal) {
  Connect c;
  c.keepalive_s = 60;
  c.client_id = "cid";
  const Bytes expected = {
      0x10, 0x0F,                      // CONNECT, remaining length 15
      0x00, 0x04, 'M', 'Q', 'T', 'T',  // protocol name
      0x04,                            // protocol level 4
      0x02,                            // connect flags: clean session
      0x00, 0x3C,                      // keep alive 60 s
      0x00, 0x03, 'c', 'i', 'd',       // client identifier
  };
  EXPECT_EQ(Encoded(c, kV311), Hex(expected));
}

TEST(PacketEncode, ConnectV311WithWillUserNameAndPassword) {
  Connect c;
  c.clean_start = false;
  c.keepalive_s = 10;
  c.client_id = "c";
  c.will = Will{.topic = "w", .payload = "bye", .qos = 1, .retain = true, .props = {}};
  c.username = "u";
  c.password = "p";
  const Bytes expected = {
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
  EXPECT_EQ(Encoded(c, kV311), Hex(expected));
}

TEST(PacketEncode, ConnectV31UsesMQIsdpAndLevel3) {
  Connect c;
  c.protocol_name = "MQIsdp";
  c.version = kV31;
  c.client_id = "c";
  const Bytes expected = {
      0x10, 0x0F,                                // CONNECT, remaining length 15
      0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p',  // protocol name
      0x03,                                      // protocol level 3
      0x02,                                      // clean session
      0x00, 0x00,                                // keep alive 0
      0x00, 0x01, 'c',                           // client identifier
  };
  EXPECT_EQ(Encoded(c, kV31), Hex(expected));
}

TEST(PacketEncode, ConnectOfABridgeSetsTheTopBitOfTheLevel) {
  Connect c;
  c.bridge = true;
  c.keepalive_s = 60;
  c.client_id = "b";
  const Bytes expected = {
      0x10, 0x0D, 0x00, 0x04, 'M',  'Q', 'T', 'T',
      0x84,  // bridge bit | protocol level 4
      0x02, 0x00, 0x3C, 0x00, 0x01, 'b',
  };
  EXPECT_EQ(Encoded(c, kV311), Hex(expected));
}

TEST(PacketEncode, ConnectV5WithPropertiesAndWillProperties) {
  Connect c;
  c.version = kV5;
  c.keepalive_s = 30;
  c.client_id = "c";
  c.props.session_expiry_interval = 120;
  c.props.receive_maximum = 20;
  c.will.emplace();
  c.will->topic = "w";
  c.will->payload = "x";
  c.will->props.will_delay_interval = 5;
  c.username = "u";
  const Bytes expected = {
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
  EXPECT_EQ(Encoded(c, kV5), Hex(expected));
}

// ---- CONNACK --------------------------------------------------------------------

TEST(PacketEncode, ConnackV311WithSessionPresent) {
  Connack c;
  c.session_present = true;
  EXPECT_EQ(Encoded(c, kV311), Hex({0x20, 0x02, 0x01, 0x00}));
}

TEST(PacketEncode, ConnackV31NeverSetsSessionPresent) {
  Connack c;
  c.session_present = true;
  EXPECT_EQ(Encoded(c, kV31), Hex({0x20, 0x02, 0x00, 0x00}));
}

TEST(PacketEncode, ConnackV311MapsReasonCodesToReturnCodes) {
  const std::pair<ReasonCode, uint8_t> cases[] = {
      {ReasonCode::kSuccess, 0x00},
      {ReasonCode::kUnsupportedProtocolVersion, 0x01},
      {ReasonCode::kClientIdentifierNotValid, 0x02},
      {ReasonCode::kServerUnavailable, 0x03},
      {ReasonCode::kServerBusy, 0x03},
      {ReasonCode::kBadUserNameOrPassword, 0x04},
      {ReasonCode::kNotAuthorized, 0x05},
      {ReasonCode::kBanned, 0x05},
      {ReasonCode::kMalformedPacket, 0x03},
      {ReasonCode::kQuotaExceeded, 0x03},
  };
  for (const auto& [reason, code] : cases) {
    Connack c;
    c.reason = reason;
    c.props.reason_string = "dropped for v3";
    EXPECT_EQ(Encoded(c, kV311), Hex({0x20, 0x02, 0x00, code})) << ReasonCodeName(reason);
  }
}

TEST(PacketEncode, ConnackV5WithProperties) {
  Connack c;
  c.props.assigned_client_identifier = "a";
  c.props.topic_alias_maximum = 10;
  c.props.maximum_qos = 1;
  const Bytes expected = {
      0x20, 0x0C,             // CONNACK, remaining length 12
      0x00,                   // no session present
      0x00,                   // success
      0x09,                   // property length 9
      0x12, 0x00, 0x01, 'a',  //   assigned client identifier
      0x22, 0x00, 0x0A,       //   topic alias maximum 10
      0x24, 0x01,             //   maximum QoS 1
  };
  EXPECT_EQ(Encoded(c, kV5), Hex(expected));
}

// ---- PUBLISH --------------------------------------------------------------------

TEST(PacketEncode, PublishQos0) {
  Publish p{.topic = "a/b", .payload = "hi", .props = {}};
  EXPECT_EQ(Encoded(p, kV311), Hex({0x30, 0x07, 0x00, 0x03, 'a', '/', 'b', 'h', 'i'}));
}

TEST(PacketEncode, PublishQos1WithRetainAndDup) {
  Publish p{.topic = "a/b",
            .payload = "hi",
            .qos = 1,
            .retain = true,
            .dup = true,
            .packet_id = 10,
            .props = {}};
  const Bytes expected = {
      0x3B, 0x09,                 // PUBLISH, DUP, QoS 1, RETAIN; remaining length 9
      0x00, 0x03, 'a', '/', 'b',  // topic name
      0x00, 0x0A,                 // packet identifier 10
      'h',  'i',                  // payload
  };
  EXPECT_EQ(Encoded(p, kV311), Hex(expected));
}

TEST(PacketEncode, PublishV5WithSubscriptionIdentifiersAndTopicAlias) {
  Publish p{.topic = "t", .payload = "p", .qos = 1, .packet_id = 1, .props = {}};
  p.props.subscription_identifiers = {1, 200};
  p.props.topic_alias = 3;
  const Bytes expected = {
      0x32, 0x0F,        // PUBLISH QoS 1, remaining length 15
      0x00, 0x01, 't',   // topic name
      0x00, 0x01,        // packet identifier 1
      0x08,              // property length 8
      0x0B, 0x01,        //   subscription identifier 1
      0x0B, 0xC8, 0x01,  //   subscription identifier 200
      0x23, 0x00, 0x03,  //   topic alias 3
      'p',               // payload
  };
  EXPECT_EQ(Encoded(p, kV5), Hex(expected));
}

TEST(PacketEncode, PublishForV311DropsProperties) {
  Publish p{.topic = "t", .payload = "p", .qos = 1, .packet_id = 1, .props = {}};
  p.props.subscription_identifiers = {1, 200};
  p.props.content_type = "text/plain";
  EXPECT_EQ(Encoded(p, kV311), Hex({0x32, 0x06, 0x00, 0x01, 't', 0x00, 0x01, 'p'}));
}

TEST(PacketEncode, PublishOf200BytesUsesTwoRemainingLengthBytes) {
  Publish p{.topic = "t", .payload = std::string(200, 'x'), .props = {}};
  std::string out;
  Encode(p, kV311, out);
  ASSERT_EQ(out.size(), 206u);
  EXPECT_EQ(Hex(out.substr(0, 6)), Hex({0x30, 0xCB, 0x01, 0x00, 0x01, 't'}));  // 203
}

TEST(PacketEncode, EncodeAppendsToWhatIsAlreadyInTheBuffer) {
  std::string out = "ab";
  Encode(Pingreq{}, kV311, out);
  EXPECT_EQ(Hex(out), Hex({'a', 'b', 0xC0, 0x00}));
}

// ---- Acknowledgements -------------------------------------------------------------

TEST(PacketEncode, PubAckFamilyV311) {
  const std::pair<PacketType, uint8_t> cases[] = {
      {PacketType::kPuback, 0x40},
      {PacketType::kPubrec, 0x50},
      {PacketType::kPubrel, 0x62},  // flags 0b0010 [MQTT-3.6.1-1]
      {PacketType::kPubcomp, 0x70},
  };
  for (const auto& [type, first] : cases) {
    PubAck a{.type = type, .packet_id = 0x1234, .reason = ReasonCode::kSuccess, .props = {}};
    EXPECT_EQ(Encoded(a, kV311), Hex({first, 0x02, 0x12, 0x34})) << PacketTypeName(type);
  }
}

TEST(PacketEncode, PubackV5SuccessWithoutPropertiesUsesTheShortForm) {
  PubAck a{.type = PacketType::kPuback, .packet_id = 0x1234, .props = {}};
  EXPECT_EQ(Encoded(a, kV5), Hex({0x40, 0x02, 0x12, 0x34}));
}

TEST(PacketEncode, PubackV5ReasonWithoutPropertiesOmitsPropertyLength) {
  PubAck a{.type = PacketType::kPuback,
           .packet_id = 0x1234,
           .reason = ReasonCode::kNoMatchingSubscribers,
           .props = {}};
  EXPECT_EQ(Encoded(a, kV5), Hex({0x40, 0x03, 0x12, 0x34, 0x10}));
}

TEST(PacketEncode, PubackV5WithReasonString) {
  PubAck a{.type = PacketType::kPuback, .packet_id = 0x1234, .props = {}};
  a.props.reason_string = "no";
  const Bytes expected = {
      0x40, 0x09,                  // PUBACK, remaining length 9
      0x12, 0x34,                  // packet identifier
      0x00,                        // success
      0x05,                        // property length 5
      0x1F, 0x00, 0x02, 'n', 'o',  //   reason string
  };
  EXPECT_EQ(Encoded(a, kV5), Hex(expected));
}

// ---- SUBSCRIBE family ----------------------------------------------------------------

TEST(PacketEncode, SubscribeV311) {
  Subscribe s{.packet_id = 1,
              .topics = {{.filter = "a/#", .qos = 1}, {.filter = "b", .qos = 2}},
              .props = {}};
  const Bytes expected = {
      0x82, 0x0C,                        // SUBSCRIBE (flags 0b0010), remaining length 12
      0x00, 0x01,                        // packet identifier 1
      0x00, 0x03, 'a', '/',  '#', 0x01,  // "a/#" QoS 1
      0x00, 0x01, 'b', 0x02,             // "b" QoS 2
  };
  EXPECT_EQ(Encoded(s, kV311), Hex(expected));
}

TEST(PacketEncode, SubscribeV5WithOptionsAndSubscriptionIdentifier) {
  Subscribe s{.packet_id = 2,
              .topics = {{.filter = "x",
                          .qos = 1,
                          .no_local = true,
                          .retain_as_published = true,
                          .retain_handling = 2}},
              .props = {}};
  s.props.subscription_identifiers = {5};
  const Bytes expected = {
      0x82, 0x09,        // SUBSCRIBE, remaining length 9
      0x00, 0x02,        // packet identifier 2
      0x02, 0x0B, 0x05,  // properties: subscription identifier 5
      0x00, 0x01, 'x',   // topic filter
      0x2D,              // retain handling 2, RAP, no local, QoS 1
  };
  EXPECT_EQ(Encoded(s, kV5), Hex(expected));
  // A v3 peer sees only the QoS bits.
  EXPECT_EQ(Encoded(s, kV311), Hex({0x82, 0x06, 0x00, 0x02, 0x00, 0x01, 'x', 0x01}));
}

TEST(PacketEncode, SubackV311WritesEveryFailureAs0x80) {
  Suback s{.packet_id = 1,
           .reasons = {ReasonCode::kGrantedQos1, ReasonCode::kNotAuthorized},
           .props = {}};
  EXPECT_EQ(Encoded(s, kV311), Hex({0x90, 0x04, 0x00, 0x01, 0x01, 0x80}));
}

TEST(PacketEncode, SubackV5KeepsReasonCodes) {
  Suback s{
      .packet_id = 1, .reasons = {ReasonCode::kSuccess, ReasonCode::kNotAuthorized}, .props = {}};
  s.props.reason_string = "x";
  const Bytes expected = {
      0x90, 0x09,                   // SUBACK, remaining length 9
      0x00, 0x01,                   // packet identifier 1
      0x04, 0x1F, 0x00, 0x01, 'x',  // properties: reason string
      0x00, 0x87,                   // granted QoS 0, not authorized
  };
  EXPECT_EQ(Encoded(s, kV5), Hex(expected));
}

TEST(PacketEncode, UnsubscribeV311AndV5) {
  Unsubscribe u{.packet_id = 3, .filters = {"a", "bc"}, .props = {}};
  EXPECT_EQ(Encoded(u, kV311),
            Hex({0xA2, 0x09, 0x00, 0x03, 0x00, 0x01, 'a', 0x00, 0x02, 'b', 'c'}));
  EXPECT_EQ(Encoded(u, kV5),  // property length 0 after the packet identifier
            Hex({0xA2, 0x0A, 0x00, 0x03, 0x00, 0x00, 0x01, 'a', 0x00, 0x02, 'b', 'c'}));
}

TEST(PacketEncode, UnsubackV311HasNoPayload) {
  Unsuback u{.packet_id = 3, .reasons = {ReasonCode::kSuccess}, .props = {}};
  EXPECT_EQ(Encoded(u, kV311), Hex({0xB0, 0x02, 0x00, 0x03}));
}

TEST(PacketEncode, UnsubackV5HasOneReasonPerFilter) {
  Unsuback u{.packet_id = 3,
             .reasons = {ReasonCode::kSuccess, ReasonCode::kNoSubscriptionExisted},
             .props = {}};
  EXPECT_EQ(Encoded(u, kV5), Hex({0xB0, 0x05, 0x00, 0x03, 0x00, 0x00, 0x11}));
}

// ---- PINGREQ, PINGRESP, DISCONNECT, AUTH ---------------------------------------------

TEST(PacketEncode, PingreqAndPingresp) {
  EXPECT_EQ(Encoded(Pingreq{}, kV311), Hex({0xC0, 0x00}));
  EXPECT_EQ(Encoded(Pingresp{}, kV5), Hex({0xD0, 0x00}));
}

TEST(PacketEncode, DisconnectV311IsTwoBytesWhateverTheReason) {
  Disconnect d{.reason = ReasonCode::kServerShuttingDown, .props = {}};
  d.props.reason_string = "bye";
  EXPECT_EQ(Encoded(d, kV311), Hex({0xE0, 0x00}));
}

TEST(PacketEncode, DisconnectV5ShortForms) {
  EXPECT_EQ(Encoded(Disconnect{}, kV5), Hex({0xE0, 0x00}));
  EXPECT_EQ(Encoded(Disconnect{.reason = ReasonCode::kServerShuttingDown, .props = {}}, kV5),
            Hex({0xE0, 0x01, 0x8B}));
}

TEST(PacketEncode, DisconnectV5WithSessionExpiry) {
  Disconnect d;
  d.props.session_expiry_interval = 0;
  const Bytes expected = {
      0xE0, 0x07,                    // DISCONNECT, remaining length 7
      0x00,                          // normal disconnection
      0x05,                          // property length 5
      0x11, 0x00, 0x00, 0x00, 0x00,  //   session expiry interval 0
  };
  EXPECT_EQ(Encoded(d, kV5), Hex(expected));
}

TEST(PacketEncode, AuthV5) {
  Auth a{.reason = ReasonCode::kContinueAuthentication, .props = {}};
  a.props.authentication_method = "m";
  const Bytes expected = {
      0xF0, 0x06,             // AUTH, remaining length 6
      0x18,                   // continue authentication
      0x04,                   // property length 4
      0x15, 0x00, 0x01, 'm',  //   authentication method
  };
  EXPECT_EQ(Encoded(a, kV5), Hex(expected));
  EXPECT_EQ(Encoded(Auth{}, kV5), Hex({0xF0, 0x00}));
}

// The shortcut for the acknowledgements of every QoS 1 and 2 message writes
// exactly what Encode writes for the same packet, in every version.
TEST(PacketEncode, SuccessAckMatchesTheGenericEncoding) {
  for (PacketType type : {PacketType::kPuback, PacketType::kPubrec, PacketType::kPubrel,
                          PacketType::kPubcomp}) {
    for (uint16_t id : {uint16_t{1}, uint16_t{0x1234}, uint16_t{0xFFFF}}) {
      std::string shortcut = "x";  // appends, keeps what was there
      EncodeSuccessAck(type, id, shortcut);
      ASSERT_EQ(shortcut.size(), 5u);
      for (ProtocolVersion v : {kV31, kV311, kV5}) {
        EXPECT_EQ(Hex(shortcut.substr(1)), Encoded(PubAck{type, id, ReasonCode::kSuccess, {}}, v))
            << PacketTypeName(type) << " " << id << " v" << static_cast<int>(v);
      }
    }
  }
  std::string pubrel;
  EncodeSuccessAck(PacketType::kPubrel, 7, pubrel);
  EXPECT_EQ(Hex(pubrel), "62 02 00 07 ");  // flags 0010 [MQTT-3.6.1-1]
}

}  // namespace
}  // namespace ferry::core
