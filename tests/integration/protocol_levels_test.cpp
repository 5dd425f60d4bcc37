// What each protocol level allows, against a real ferryd, byte by byte:
// MQTT 3.1 (level 3) re-deliveries with DUP set on PUBREL, SUBSCRIBE and
// UNSUBSCRIBE, which 3.1.1 and 5.0 refuse as malformed; CONNECT refusals that
// 3.1 and 3.1.1 have no return code for (closed without a CONNACK), and
// topic filters that break the syntax (a malformed packet at every level).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "support/connect_helpers.h"
#include "support/mqtt_wire.h"
#include "support/node_process.h"
#include "support/raw_client.h"
#include "support/v5_session.h"

namespace ferry::testing::v5 {
namespace {

using std::chrono::milliseconds;

// A protocol level as a client announces it in CONNECT. 3.1 packets have the
// 3.1.1 layout, so the 3.1.1 builders and parsers serve both.
struct Level {
  const char* name;
  uint8_t level;
  MqttVersion wire;  // the layout of its packets
};
constexpr Level kLevel3{"MQTT 3.1", 3, MqttVersion::kV311};
constexpr Level kLevel4{"MQTT 3.1.1", 4, MqttVersion::kV311};
constexpr Level kLevel5{"MQTT 5.0", 5, MqttVersion::kV5};

// The CONNECT of `level` for `client_id`, with a Will when `will_topic` is
// set (Will QoS and RETAIN as given).
Bytes ConnectAt(const Level& level, const std::string& client_id, bool clean,
                std::optional<std::string> will_topic = std::nullopt, int will_qos = 0,
                bool will_retain = false) {
  if (level.level == 3) {
    uint8_t flags = clean ? 0x02 : 0x00;
    std::vector<std::string> payload{client_id};
    if (will_topic) {
      flags |= static_cast<uint8_t>(0x04 | will_qos << 3 | (will_retain ? 0x20 : 0));
      payload.push_back(*will_topic);
      payload.push_back("will");
    }
    return HeaderConnect({"MQIsdp", 3, flags}, payload);
  }
  wire::ConnectFields f;
  f.version = level.wire;
  f.client_id = client_id;
  f.clean_start = clean;
  if (will_topic) f.will = wire::Will{*will_topic, "will", will_qos, will_retain, {}};
  return wire::Connect(f);
}

// Opens a connection at `level` and expects CONNACK with code 0.
::testing::AssertionResult Open(RawClient& c, uint16_t port, const Level& level,
                                const std::string& client_id, bool clean = true) {
  if (auto ok = c.Connect(port); !ok) return ok;
  if (auto ok = c.Send(ConnectAt(level, client_id, clean)); !ok) return ok;
  const std::optional<Bytes> raw = c.ReadPacket();
  if (!raw) return ::testing::AssertionFailure() << "no CONNACK: " << c.error();
  const std::optional<ConnackFields> connack = ParseConnackFields(level.wire, *raw);
  if (!connack || connack->code != 0) {
    return ::testing::AssertionFailure() << "refused: " << wire::Hex(*raw);
  }
  return ::testing::AssertionSuccess();
}

// The next packet, as hex, or what went wrong.
std::string NextHex(RawClient& c) {
  const std::optional<Bytes> raw = c.ReadPacket();
  return raw ? wire::Hex(*raw) : "nothing (" + c.error() + ")";
}

// `bytes` with its first byte replaced: the same packet with other flags.
Bytes WithFirstByte(Bytes bytes, uint8_t first) {
  bytes[0] = first;
  return bytes;
}

// The server's answer to a malformed packet on an accepted connection:
// DISCONNECT 0x81 then the close in 5.0, the close alone before.
::testing::AssertionResult EndedAsMalformed(RawClient& c, const Level& level) {
  return level.level == 5 ? DisconnectedWith(c, 0x81) : ClosedSilently(c);
}

class ProtocolLevels : public NodeTest<> {};

// ---- MQTT 3.1 re-deliveries --------------------------------------------------

TEST_F(ProtocolLevels, Mqtt31ResumesAQos2FlowWithAPubrelMarkedDup) {
  RawSession sub(port(), MqttVersion::kV311);
  ASSERT_TRUE(sub.Connect("r31-sub"));
  ASSERT_EQ(sub.Subscribe({{"r31/#", 2}}), (Codes{2}));

  RawClient first;
  ASSERT_TRUE(Open(first, port(), kLevel3, "r31-pub", /*clean=*/false));
  ASSERT_TRUE(first.Send(wire::Publish(MqttVersion::kV311, PublishOf("r31/q2", "once", 2, 7))));
  EXPECT_EQ(NextHex(first), "50 02 00 07");  // PUBREC
  first.Close();                             // the client goes before its PUBREL

  // Back with the session, the 3.1 client re-sends PUBREL with DUP set
  // (MQTT 3.1 section 3.6): PUBCOMP for the same identifier, each time.
  RawClient back;
  ASSERT_TRUE(Open(back, port(), kLevel3, "r31-pub", /*clean=*/false));
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(back.Send(Bytes{0x6A, 0x02, 0x00, 0x07}));
    EXPECT_EQ(NextHex(back), "70 02 00 07") << "PUBREL DUP number " << i + 1;
  }
  ASSERT_TRUE(PublishAndComplete(back, MqttVersion::kV311, PublishOf("r31/end", "sentinel", 2, 8)));
  // Delivered onward once, not once per PUBREL.
  EXPECT_EQ(Topics(sub.ReceiveThrough("r31/end")), (std::vector<std::string>{"r31/q2", "r31/end"}));
}

TEST_F(ProtocolLevels, Mqtt31SubscribeAndUnsubscribeMarkedDupAreAnswered) {
  RawClient c;
  ASSERT_TRUE(Open(c, port(), kLevel3, "r31-dup"));
  const Bytes subscribe = WithFirstByte(wire::Subscribe(MqttVersion::kV311, 5, {{"d/x", 1}}), 0x8A);
  for (int i = 0; i < 2; ++i) {  // a re-sent SUBSCRIBE is answered as the first
    ASSERT_TRUE(c.Send(subscribe));
    EXPECT_EQ(NextHex(c), "90 03 00 05 01");
  }
  ASSERT_TRUE(c.Send(WithFirstByte(wire::Unsubscribe(MqttVersion::kV311, 6, {"d/x"}), 0xAA)));
  EXPECT_EQ(NextHex(c), "b0 02 00 06");
  EXPECT_TRUE(PingPong(c));
}

TEST_F(ProtocolLevels, Mqtt31SubscribeNotAtQos1IsMalformed) {
  // MQTT 3.1 section 3.8: SUBSCRIBE uses QoS 1; DUP is the only free bit.
  RawClient c;
  ASSERT_TRUE(Open(c, port(), kLevel3, "r31-qos0"));
  ASSERT_TRUE(c.Send(WithFirstByte(wire::Subscribe(MqttVersion::kV311, 5, {{"d/x", 1}}), 0x80)));
  EXPECT_TRUE(ClosedSilently(c));
}

TEST_F(ProtocolLevels, Mqtt31IgnoresDupOnAQos0Publish) {
  // [MQTT-3.3.1-2] forbids it from 3.1.1 on; 3.1 only says DUP is for QoS > 0.
  RawSession sub(port(), MqttVersion::kV311);
  ASSERT_TRUE(sub.Connect("d0-sub"));
  ASSERT_EQ(sub.Subscribe({{"d0/x", 0}}), (Codes{0}));
  RawClient c;
  ASSERT_TRUE(Open(c, port(), kLevel3, "d0-pub"));
  ASSERT_TRUE(
      c.Send(wire::Publish(MqttVersion::kV311, PublishOf("d0/x", "dup qos 0", 0, 0, true))));
  const std::optional<wire::ReceivedPublish> m = sub.Receive();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->payload, "dup qos 0");
  EXPECT_FALSE(m->dup);
  EXPECT_TRUE(PingPong(c));
}

TEST_F(ProtocolLevels, From311OnDupOnPubrelSubscribeOrUnsubscribeIsMalformed) {
  // The flags are exactly 0010 [MQTT-3.6.1-1] [MQTT-3.8.1-1] [MQTT-3.10.1-1].
  for (const Level& level : {kLevel4, kLevel5}) {
    const std::vector<std::pair<const char*, Bytes>> packets{
        {"PUBREL", {0x6A, 0x02, 0x00, 0x07}},
        {"SUBSCRIBE", WithFirstByte(wire::Subscribe(level.wire, 5, {{"d/x", 1}}), 0x8A)},
        {"UNSUBSCRIBE", WithFirstByte(wire::Unsubscribe(level.wire, 6, {"d/x"}), 0xAA)},
        {"PUBLISH QoS 0 DUP", wire::Publish(level.wire, PublishOf("d/x", "x", 0, 0, true))},
    };
    for (const auto& [what, bytes] : packets) {
      SCOPED_TRACE(std::string(level.name) + ", " + what);
      RawClient c;
      ASSERT_TRUE(Open(c, port(), level, "strict"));
      ASSERT_TRUE(c.Send(bytes));
      EXPECT_TRUE(EndedAsMalformed(c, level));
    }
  }
}

// ---- CONNECT refusals without a return code ----------------------------------

TEST_F(ProtocolLevels, InvalidWillTopicIsRefusedWithoutConnackBefore5) {
  // [MQTT-3.1.3-10] [MQTT-4.7.3-1]: a Will Topic is a topic name. 3.1 and
  // 3.1.1 have no return code for it: close without CONNACK [MQTT-3.1.4-1]
  // [MQTT-3.2.2-6]; 5.0 answers CONNACK 0x90 first [MQTT-3.2.2-7].
  for (const char* topic : {"", "w/+", "w/#", "#", "+"}) {
    for (const Level& level : {kLevel3, kLevel4, kLevel5}) {
      SCOPED_TRACE(std::string(level.name) + ", will topic '" + topic + "'");
      RawClient c;
      ASSERT_TRUE(c.Connect(port()));
      ASSERT_TRUE(c.Send(ConnectAt(level, "bad-will", true, std::string(topic))));
      if (level.level == 5) {
        EXPECT_TRUE(RefusedWith(c, MqttVersion::kV5, 0x90));
      } else {
        EXPECT_TRUE(ClosedSilently(c));
      }
    }
  }
}

// A node that supports neither QoS 2, nor retained messages, nor wildcard
// subscriptions: refusals by policy.
class ProtocolLevelsLimited : public NodeTest<> {
 protected:
  ProtocolLevelsLimited()
      : NodeTest(WithOverrides({{"mqtt", "max_qos", "1"},
                                {"mqtt", "retain_available", "false"},
                                {"mqtt", "wildcard_subscription_available", "false"}})) {}
};

TEST_F(ProtocolLevelsLimited, WillTheNodeCannotTakeIsRefusedWithoutConnackBefore5) {
  struct Case {
    const char* what;
    int qos;
    bool retain;
    uint8_t v5_code;
  };
  for (const Case& k : {Case{"will QoS 2", 2, false, 0x9B}, Case{"retained will", 0, true, 0x9A}}) {
    for (const Level& level : {kLevel3, kLevel4, kLevel5}) {
      SCOPED_TRACE(std::string(level.name) + ", " + k.what);
      RawClient c;
      ASSERT_TRUE(c.Connect(port()));
      ASSERT_TRUE(c.Send(ConnectAt(level, "limited-will", true, "w/x", k.qos, k.retain)));
      if (level.level == 5) {
        EXPECT_TRUE(RefusedWith(c, MqttVersion::kV5, k.v5_code));
      } else {
        EXPECT_TRUE(ClosedSilently(c));
      }
    }
  }
}

TEST_F(ProtocolLevelsLimited, WellFormedFilterRefusedByPolicyGetsASubackFailure) {
  // SUBACK 0x80 (3.1, 3.1.1) or 0xA2 (5.0) for a valid filter the node does
  // not serve; the connection stays.
  for (const Level& level : {kLevel3, kLevel4, kLevel5}) {
    SCOPED_TRACE(level.name);
    RawClient c;
    ASSERT_TRUE(Open(c, port(), level, "policy"));
    const std::optional<std::vector<uint8_t>> codes =
        RawSubscribe(c, level.wire, 9, {{"wild/#", 1}, {"plain/x", 1}});
    ASSERT_TRUE(codes.has_value());
    const uint8_t refused = level.level == 5 ? 0xA2 : 0x80;
    EXPECT_EQ(*codes, (std::vector<uint8_t>{refused, 1}));
    EXPECT_TRUE(PingPong(c));
  }
}

// ---- Topic filters that break the syntax -------------------------------------

TEST_F(ProtocolLevels, MalformedTopicFilterEndsTheConnectionAtEveryLevel) {
  // MQTT 5.0 sections 4.7.1, 4.7.3 and 4.8.2; a malformed packet (4.13.1).
  const char* const filters[] = {"",           "a/#/b",          "a#",        "#/a",
                                 "+a/b",       "a/b+",           "a/+b/c",    "$share/",
                                 "$share//x",  "$share/g",       "$share/g/", "$share/g+/x",
                                 "$share/#/x", "$share/g/a/#/b", "$queue/",   "$queue/a#"};
  for (const Level& level : {kLevel3, kLevel4, kLevel5}) {
    for (const char* filter : filters) {
      for (bool unsubscribe : {false, true}) {
        SCOPED_TRACE(std::string(level.name) + (unsubscribe ? ", UNSUBSCRIBE '" : ", SUBSCRIBE '") +
                     filter + "'");
        RawClient c;
        ASSERT_TRUE(Open(c, port(), level, "bad-filter"));
        ASSERT_TRUE(c.Send(unsubscribe
                               ? wire::Unsubscribe(level.wire, 4, {"ok/x", filter})
                               : wire::Subscribe(level.wire, 4, {{"ok/x", 1}, {filter, 1}})));
        EXPECT_TRUE(EndedAsMalformed(c, level));
      }
    }
  }
}

TEST_F(ProtocolLevels, WellFormedFiltersAreSubscribed) {
  for (const Level& level : {kLevel3, kLevel4, kLevel5}) {
    SCOPED_TRACE(level.name);
    RawClient c;
    ASSERT_TRUE(Open(c, port(), level, "good-filter"));
    const std::optional<std::vector<uint8_t>> codes = RawSubscribe(c, level.wire, 4,
                                                                   {{"#", 0},
                                                                    {"+", 0},
                                                                    {"/", 0},
                                                                    {"a//b", 0},
                                                                    {"+/+/#", 0},
                                                                    {"$SYS/#", 0},
                                                                    {"$share/g/a/+", 0},
                                                                    {"$queue/q/#", 0}});
    ASSERT_TRUE(codes.has_value());
    EXPECT_EQ(*codes, std::vector<uint8_t>(8, 0));
    ASSERT_TRUE(
        c.Send(wire::Unsubscribe(level.wire, 5, {"#", "$share/g/a/+", "never/subscribed"})));
    EXPECT_TRUE(c.ReadPacket().has_value()) << "no UNSUBACK: " << c.error();
    EXPECT_TRUE(PingPong(c));
  }
}

}  // namespace
}  // namespace ferry::testing::v5
