// MQTT 5.0 features on a real node: topic aliases both ways, message expiry,
// PUBLISH properties passed through, maximum packet size both ways, Request
// Problem Information, and AUTH without enhanced authentication.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/mqtt_wire.h"
#include "support/paho_client.h"
#include "support/v5_helpers.h"
#include "support/v5_session.h"

namespace ferry::testing::v5 {
namespace {

using Strings = std::vector<std::string>;

class FeaturesV5 : public NodeTest<> {
 protected:
  explicit FeaturesV5(NodeOptions options = {}) : NodeTest(std::move(options)) {}

  // A v5 session connected as `client_id` with `props` in its CONNECT.
  std::unique_ptr<RawSession> Open(const std::string& client_id, const Bytes& props = {}) {
    auto s = std::make_unique<RawSession>(port(), MqttVersion::kV5);
    wire::ConnectFields f;
    f.client_id = client_id;
    f.properties = props;
    EXPECT_TRUE(s->Connect(f)) << client_id;
    return s;
  }
};

wire::PublishFields Aliased(const std::string& topic, uint16_t alias, const std::string& payload,
                            int qos = 0) {
  wire::PublishFields f;
  f.topic = topic;
  f.payload = payload;
  f.qos = qos;
  AddU16(&f.properties, kTopicAlias, alias);
  return f;
}

TEST_F(FeaturesV5, TopicAliasFromTheClientStandsForItsTopic) {
  PahoClient sub(port(), "alias-sub", MqttVersion::kV5);
  ASSERT_TRUE(sub.Connect());
  ASSERT_TRUE(sub.Subscribe("ta/#", 1));
  auto pub = Open("alias-pub");
  // The node accepts aliases up to what CONNACK says (65535 by default).
  EXPECT_EQ(pub->connack()->props.Number(kTopicAliasMaximum), 65535u);
  ASSERT_TRUE(pub->Publish(Aliased("ta/x", 1, "sets alias 1", 1)));
  ASSERT_TRUE(pub->Publish(Aliased("", 1, "uses alias 1", 1)));
  // The same alias given another topic name now means that one.
  ASSERT_TRUE(pub->Publish(Aliased("ta/y", 1, "remaps alias 1", 1)));
  ASSERT_TRUE(pub->Publish(Aliased("", 1, "uses alias 1 again", 1)));
  std::vector<ReceivedMessage> got;
  for (int i = 0; i < 4; ++i) {
    std::optional<ReceivedMessage> m = sub.Receive();
    ASSERT_TRUE(m.has_value()) << "message " << i;
    got.push_back(*m);
  }
  EXPECT_EQ(Topics(got), (Strings{"ta/x", "ta/x", "ta/y", "ta/y"}));
  EXPECT_EQ(got[1].payload, "uses alias 1");
}

TEST_F(FeaturesV5, TopicAliasZeroIsRefusedWithDisconnect0x94) {
  auto pub = Open("alias-zero");
  ASSERT_TRUE(pub->Send(wire::Publish(MqttVersion::kV5, Aliased("ta/x", 0, "bad"))));
  // [MQTT-3.3.2-8] forbids alias 0; like an alias above the maximum it is
  // answered with 0x94 "topic alias invalid" (Worker::HandlePublish).
  EXPECT_TRUE(pub->ExpectDisconnect(0x94));
}

TEST_F(FeaturesV5, UnknownTopicAliasIsAProtocolError) {
  auto pub = Open("alias-unknown");
  // An empty topic name with an alias never set (MQTT 5.0 section 3.3.2.3.4).
  ASSERT_TRUE(pub->Send(wire::Publish(MqttVersion::kV5, Aliased("", 7, "which topic?"))));
  EXPECT_TRUE(pub->ExpectDisconnect(0x82));
}

TEST_F(FeaturesV5, TopicAliasesDoNotOutliveTheConnection) {
  auto first = Open("alias-carry");
  ASSERT_TRUE(first->Publish(Aliased("ta/x", 1, "sets alias 1", 1)));
  ASSERT_TRUE(first->Disconnect());
  auto second = Open("alias-carry");
  // [MQTT-3.3.2-7]: alias 1 means nothing on the new connection.
  ASSERT_TRUE(second->Send(wire::Publish(MqttVersion::kV5, Aliased("", 1, "old alias"))));
  EXPECT_TRUE(second->ExpectDisconnect(0x82));
}

class FeaturesAliasMax5 : public NodeTest<> {
 protected:
  FeaturesAliasMax5() : NodeTest(WithOverrides({{"mqtt", "topic_alias_maximum", "5"}})) {}
};

TEST_F(FeaturesAliasMax5, TopicAliasAboveTheAnnouncedMaximumIsRefused) {
  RawSession pub(port(), MqttVersion::kV5);
  ASSERT_TRUE(pub.Connect("alias-max"));
  EXPECT_EQ(pub.connack()->props.Number(kTopicAliasMaximum), 5u);
  // Up to the maximum is accepted [MQTT-3.3.2-12]...
  ASSERT_TRUE(pub.Publish(Aliased("ta/x", 5, "alias 5", 1)));
  // ...above it is an error [MQTT-3.3.2-9]: DISCONNECT 0x94.
  ASSERT_TRUE(pub.Send(wire::Publish(MqttVersion::kV5, Aliased("ta/x", 6, "alias 6"))));
  EXPECT_TRUE(pub.ExpectDisconnect(0x94));
}

TEST_F(FeaturesV5, ServerUsesTopicAliasesWithinTheClientsMaximum) {
  Bytes props;
  AddU16(&props, kTopicAliasMaximum, 1);
  auto sub = Open("alias-out", props);
  ASSERT_EQ(sub->Subscribe({{"sa/#", 1}}), (Codes{1}));
  auto pub = Open("alias-out-pub");
  const Strings sent = {"sa/a", "sa/a", "sa/b", "sa/b", "sa/a"};
  for (const std::string& topic : sent) ASSERT_TRUE(pub->Publish(topic, "m", 1));

  std::map<uint32_t, std::string> aliases;  // as the client keeps them
  std::vector<wire::ReceivedPublish> got;
  Strings resolved;
  for (size_t i = 0; i < sent.size(); ++i) {
    std::optional<wire::ReceivedPublish> m = sub->Receive();
    ASSERT_TRUE(m.has_value()) << "message " << i;
    const std::optional<uint32_t> alias = PublishProperties(m->properties).Number(kTopicAlias);
    if (alias) {
      // [MQTT-3.1.2-26] [MQTT-3.3.2-11]: never above the client's maximum.
      EXPECT_GE(*alias, 1u);
      EXPECT_LE(*alias, 1u);
      if (!m->topic.empty()) aliases[*alias] = m->topic;
    }
    if (m->topic.empty()) {
      ASSERT_TRUE(alias.has_value()) << "empty topic name without an alias";
      ASSERT_TRUE(aliases.count(*alias)) << "alias " << *alias << " used before it was set";
      resolved.push_back(aliases[*alias]);
    } else {
      resolved.push_back(m->topic);
    }
    got.push_back(std::move(*m));
  }
  EXPECT_EQ(resolved, sent);
  // The second message to the same topic carries only the alias.
  EXPECT_EQ(got[0].topic, "sa/a");
  EXPECT_TRUE(PublishProperties(got[0].properties).Has(kTopicAlias));
  EXPECT_EQ(got[1].topic, "");
}

TEST_F(FeaturesV5, ServerSendsNoTopicAliasWhenTheClientAllowsNone) {
  Bytes zero;
  AddU16(&zero, kTopicAliasMaximum, 0);
  auto announces_zero = Open("alias-none-0", zero);
  auto announces_nothing = Open("alias-none-absent");
  for (RawSession* s : {announces_zero.get(), announces_nothing.get()}) {
    ASSERT_EQ(s->Subscribe({{"na/#", 0}}), (Codes{0}));
  }
  auto pub = Open("alias-none-pub");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pub->Publish("na/t", std::to_string(i)));
  for (RawSession* s : {announces_zero.get(), announces_nothing.get()}) {
    for (int i = 0; i < 3; ++i) {
      std::optional<wire::ReceivedPublish> m = s->Receive();
      ASSERT_TRUE(m.has_value());
      EXPECT_EQ(m->topic, "na/t");
      // [MQTT-3.1.2-27]: maximum absent or 0, no alias at all.
      EXPECT_FALSE(PublishProperties(m->properties).Has(kTopicAlias));
    }
  }
}

TEST_F(FeaturesV5, MessageExpiryCountsDownWhileTheSessionIsOffline) {
  RawSession sub(port(), MqttVersion::kV5);
  wire::ConnectFields f;
  f.client_id = "expiry-sub";
  AddU32(&f.properties, kSessionExpiryInterval, 60);
  ASSERT_TRUE(sub.Connect(f));
  ASSERT_EQ(sub.Subscribe({{"me/t", 1}, {"me/end", 1}}), (Codes{1, 1}));
  ASSERT_TRUE(sub.Disconnect());

  auto pub = Open("expiry-pub");
  wire::PublishFields short_lived{"me/t", "short", 1, false, false, 0, {}};
  AddU32(&short_lived.properties, kMessageExpiryInterval, 1);
  wire::PublishFields long_lived{"me/t", "long", 1, false, false, 0, {}};
  AddU32(&long_lived.properties, kMessageExpiryInterval, 30);
  ASSERT_TRUE(pub->Publish(short_lived));
  ASSERT_TRUE(pub->Publish(long_lived));
  // The point of the test is time passing while the session is offline. Both
  // intervals started before the PUBACKs came back.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));

  RawSession back(port(), MqttVersion::kV5);
  f.clean_start = false;
  ASSERT_TRUE(back.Connect(f));
  ASSERT_TRUE(back.connack()->session_present);
  ASSERT_TRUE(pub->Publish("me/end", "sentinel", 1));
  const std::vector<wire::ReceivedPublish> got = back.ReceiveThrough("me/end");
  // [MQTT-3.3.2-5]: the expired message is not sent.
  ASSERT_EQ(Topics(got), (Strings{"me/t", "me/end"}));
  EXPECT_EQ(got[0].payload, "long");
  // [MQTT-3.3.2-6]: the interval sent is what is left of it.
  const std::optional<uint32_t> left =
      PublishProperties(got[0].properties).Number(kMessageExpiryInterval);
  ASSERT_TRUE(left.has_value());
  EXPECT_LE(*left, 29u);
  EXPECT_GE(*left, 25u);
  EXPECT_FALSE(PublishProperties(got[1].properties).Has(kMessageExpiryInterval));
}

TEST_F(FeaturesV5, PublishPropertiesReachSubscribersUnchanged) {
  auto sub0 = Open("props-sub-0");
  auto sub1 = Open("props-sub-1");
  ASSERT_EQ(sub0->Subscribe({{"pp/t", 0}}), (Codes{0}));
  ASSERT_EQ(sub1->Subscribe({{"pp/t", 1}}), (Codes{1}));
  auto pub = Open("props-pub");
  const std::string correlation("\x00\x01\x02\xfe\xff", 5);
  const UserProperties user = {{"k", "1"}, {"a", "2"}, {"k", "3"}, {"", ""}};
  wire::PublishFields f;
  f.topic = "pp/t";
  f.payload = "{\"on\":true}";
  f.qos = 1;
  AddByte(&f.properties, kPayloadFormatIndicator, 1);
  AddString(&f.properties, kContentType, "application/json");
  AddString(&f.properties, kResponseTopic, "pp/reply");
  AddString(&f.properties, kCorrelationData, correlation);
  for (const auto& [key, value] : user) AddUserProperty(&f.properties, key, value);
  ASSERT_TRUE(pub->Publish(f));
  for (RawSession* s : {sub0.get(), sub1.get()}) {
    std::optional<wire::ReceivedPublish> m = s->Receive();
    ASSERT_TRUE(m.has_value());
    const PropertyList got = PublishProperties(m->properties);
    EXPECT_EQ(m->payload, f.payload);
    EXPECT_EQ(got.Number(kPayloadFormatIndicator), 1u);     // [MQTT-3.3.2-4]
    EXPECT_EQ(got.Text(kResponseTopic), "pp/reply");        // [MQTT-3.3.2-15]
    EXPECT_EQ(got.Text(kCorrelationData), correlation);     // [MQTT-3.3.2-16]
    EXPECT_EQ(got.User(), user);                            // [MQTT-3.3.2-17] [MQTT-3.3.2-18]
    EXPECT_EQ(got.Text(kContentType), "application/json");  // [MQTT-3.3.2-20]
  }
}

TEST_F(FeaturesV5, MessageLargerThanAClientsMaximumPacketSizeIsNotSentToIt) {
  Bytes small_limit;
  AddU32(&small_limit, kMaximumPacketSize, 128);
  auto small = Open("maxpkt-small", small_limit);
  auto big = Open("maxpkt-big");
  ASSERT_EQ(small->Subscribe({{"mp/#", 1}}), (Codes{1}));
  ASSERT_EQ(big->Subscribe({{"mp/#", 1}}), (Codes{1}));
  auto pub = Open("maxpkt-pub");
  ASSERT_TRUE(pub->Publish("mp/big", std::string(300, 'x'), 1));
  ASSERT_TRUE(pub->Publish("mp/small", "fits", 1));
  // [MQTT-3.1.2-24]: never sent to the client that cannot take it; dropped
  // as if delivered [MQTT-3.1.2-25], so what follows still flows.
  const std::vector<wire::ReceivedPublish> got = small->ReceiveThrough("mp/small");
  EXPECT_EQ(Topics(got), (Strings{"mp/small"}));
  // Everyone else gets it.
  EXPECT_EQ(Topics(big->ReceiveThrough("mp/small")), (Strings{"mp/big", "mp/small"}));
}

class FeaturesMaxPacket1024 : public NodeTest<> {
 protected:
  FeaturesMaxPacket1024() : NodeTest(WithOverrides({{"mqtt", "max_packet_size", "1024"}})) {}
};

TEST_F(FeaturesMaxPacket1024, PublishLargerThanTheNodesMaximumPacketSizeIsRefused) {
  for (MqttVersion v : {MqttVersion::kV311, MqttVersion::kV5}) {
    SCOPED_TRACE(VersionLabel(v));
    RawSession pub(port(), v);
    ASSERT_TRUE(pub.Connect(std::string("too-large-") + VersionLabel(v)));
    if (v == MqttVersion::kV5) {
      EXPECT_EQ(pub.connack()->props.Number(kMaximumPacketSize), 1024u);
    }
    ASSERT_TRUE(pub.Publish("big/t", std::string(900, 'x'), 1));  // fits
    ASSERT_TRUE(
        pub.Send(wire::Publish(v, {"big/t", std::string(2000, 'x'), 1, false, false, 77, {}})));
    // MQTT 5.0 section 3.2.2.3.6: DISCONNECT 0x95 "packet too large", then
    // close; a 3.1.1 client is just disconnected.
    EXPECT_TRUE(pub.ExpectDisconnect(0x95));
  }
}

// A node that refuses wildcard subscriptions: a SUBACK with a failure code
// for a well-formed filter.
class FeaturesNoWildcards : public FeaturesV5 {
 protected:
  FeaturesNoWildcards()
      : FeaturesV5(WithOverrides({{"mqtt", "wildcard_subscription_available", "false"}})) {}
};

TEST_F(FeaturesNoWildcards, RequestProblemInformationZeroLeavesOutReasonStrings) {
  Bytes quiet;
  AddByte(&quiet, kRequestProblemInformation, 0);
  for (bool asked : {true, false}) {
    SCOPED_TRACE(asked ? "problem information requested" : "Request Problem Information 0");
    auto c = Open(asked ? "rpi-1" : "rpi-0", asked ? Bytes{} : quiet);
    // With 0, never on a SUBACK [MQTT-3.1.2-29].
    ASSERT_TRUE(c->Send(wire::Subscribe(MqttVersion::kV5, 5, {{"wild/#", 0}})));
    const std::optional<Bytes> raw = c->ReadControl();
    ASSERT_TRUE(raw.has_value());
    const std::optional<SubAckPacket> suback = ParseSubAck(*raw);
    ASSERT_TRUE(suback.has_value()) << wire::Hex(*raw);
    EXPECT_EQ(suback->codes, (Codes{0xA2}));  // wildcard subscriptions not supported
    if (!asked) {
      EXPECT_FALSE(suback->props.Has(kReasonString));
      EXPECT_FALSE(suback->props.Has(kUserProperty));
    }
    // On DISCONNECT the specification allows it either way; ferry sends one
    // only when asked (Worker::DisconnectClient).
    ASSERT_TRUE(c->Send(wire::Publish(MqttVersion::kV5, Aliased("", 9, "unknown alias"))));
    ASSERT_TRUE(c->ExpectDisconnect(0x82));
    EXPECT_EQ(c->disconnect()->props.Has(kReasonString), asked);
    EXPECT_FALSE(c->disconnect()->props.Has(kUserProperty));
  }
}

TEST_F(FeaturesV5, RefusingConnackHasAReasonStringOnlyWhenAsked) {
  for (bool asked : {true, false}) {
    SCOPED_TRACE(asked ? "problem information requested" : "Request Problem Information 0");
    RawClient c;
    ASSERT_TRUE(c.Connect(port()));
    wire::ConnectFields f;
    f.version = MqttVersion::kV5;
    f.client_id = "rpi-connack";
    AddString(&f.properties, kAuthenticationMethod, "SCRAM-SHA-1");
    if (!asked) AddByte(&f.properties, kRequestProblemInformation, 0);
    ASSERT_TRUE(c.Send(wire::Connect(f)));
    const std::optional<Bytes> raw = c.ReadPacket();
    ASSERT_TRUE(raw.has_value()) << c.error();
    const std::optional<ConnackPacket> connack = ParseConnack(*raw);
    ASSERT_TRUE(connack.has_value()) << wire::Hex(*raw);
    // [MQTT-4.12.0-1]: an authentication method it does not support: 0x8C,
    // then close.
    EXPECT_EQ(connack->code, 0x8C);
    EXPECT_EQ(connack->props.Has(kReasonString), asked);
    EXPECT_TRUE(c.IsClosed());
  }
}

TEST_F(FeaturesV5, AuthPacketWithoutEnhancedAuthenticationEndsTheConnection) {
  // [MQTT-4.12.0-7]: a client that sent no Authentication Method in CONNECT
  // must not send AUTH.
  Bytes method;
  AddString(&method, kAuthenticationMethod, "SCRAM-SHA-1");
  auto with_method = Open("auth-method");
  ASSERT_TRUE(with_method->Send(Auth(0x18, method)));  // Continue authentication
  EXPECT_TRUE(with_method->ExpectDisconnect(0x8C));    // bad authentication method

  auto without_method = Open("auth-bare");
  ASSERT_TRUE(without_method->Send(Auth(0x18, {})));
  EXPECT_TRUE(without_method->ExpectDisconnect(0x82));  // protocol error
}

}  // namespace
}  // namespace ferry::testing::v5
