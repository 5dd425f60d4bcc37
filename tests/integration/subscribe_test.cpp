// Subscriptions on a real node: wildcard matching, $-topics, overlapping
// subscriptions, granted QoS, invalid filters, UNSUBSCRIBE, the v5
// subscription options and identifiers, and shared subscriptions.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "support/mqtt_wire.h"
#include "support/paho_client.h"
#include "support/v5_helpers.h"
#include "support/v5_session.h"

namespace ferry::testing::v5 {
namespace {

using Strings = std::vector<std::string>;

class Subscriptions : public NodeTest<::testing::TestWithParam<MqttVersion>> {
 protected:
  MqttVersion version() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Versions, Subscriptions,
                         ::testing::Values(MqttVersion::kV311, MqttVersion::kV5),
                         [](const auto& info) { return std::string(VersionLabel(info.param)); });

class SubscriptionsV5 : public NodeTest<> {};

TEST_P(Subscriptions, PlusMatchesOneLevelAndHashTheParentAndEveryLevelBelow) {
  PahoClient sub(port(), "wild-sub", version());
  ASSERT_TRUE(sub.Connect());
  ASSERT_TRUE(sub.Subscribe("m/+/score", 0));
  ASSERT_TRUE(sub.Subscribe("h/#", 0));
  RawSession pub(port(), MqttVersion::kV311);
  ASSERT_TRUE(pub.Connect("wild-pub"));
  for (const char* topic :
       {"m/a/score", "m/a/b/score", "m/score", "m//score", "h", "h/a", "h/a/b", "hx/a", "h/end"}) {
    ASSERT_TRUE(pub.Publish(topic, std::string("to ") + topic));
  }
  // '+' matches exactly one level, an empty one too [MQTT-4.7.1-2]; '#'
  // matches the parent and any number of levels below [MQTT-4.7.1-1].
  const std::vector<ReceivedMessage> got = ReceiveThrough(sub, "h/end");
  EXPECT_EQ(Topics(got), (Strings{"m/a/score", "m//score", "h", "h/a", "h/a/b", "h/end"}));
  for (const ReceivedMessage& m : got) EXPECT_EQ(m.payload, "to " + m.topic);
}

TEST_P(Subscriptions, DollarTopicsAreNotMatchedByALeadingWildcard) {
  RawSession wild(port(), version());
  ASSERT_TRUE(wild.Connect("dollar-wild"));
  ASSERT_EQ(wild.Subscribe({{"#", 0}, {"+/x", 0}}), (Codes{0, 0}));
  RawSession dollar(port(), version());
  ASSERT_TRUE(dollar.Connect("dollar-explicit"));
  ASSERT_EQ(dollar.Subscribe({{"$test/#", 0}}), (Codes{0}));
  RawSession pub(port(), version());
  ASSERT_TRUE(pub.Connect("dollar-pub"));
  ASSERT_TRUE(pub.Publish("$test/x", "dollar"));
  ASSERT_TRUE(pub.Publish("plain/x", "sentinel"));
  // [MQTT-4.7.2-1]: "#" and "+/x" must not match "$test/x".
  EXPECT_EQ(Topics(wild.ReceiveThrough("plain/x")), (Strings{"plain/x"}));
  // A filter that names the '$' level does match it.
  const std::optional<wire::ReceivedPublish> m = dollar.Receive();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->topic, "$test/x");
  EXPECT_EQ(m->payload, "dollar");
}

TEST_P(Subscriptions, OverlappingSubscriptionsDeliverOneCopyAtTheHighestGrantedQos) {
  RawSession sub(port(), version());
  ASSERT_TRUE(sub.Connect("overlap-sub"));
  ASSERT_EQ(sub.Subscribe({{"ov/#", 0}, {"ov/+", 2}, {"ov/a", 1}}), (Codes{0, 2, 1}));
  RawSession pub(port(), version());
  ASSERT_TRUE(pub.Connect("overlap-pub"));
  ASSERT_TRUE(pub.Publish("ov/a", "once", 2));
  ASSERT_TRUE(pub.Publish("ov/end", "sentinel", 0));
  // [MQTT-3.3.4-2] (5.0), [MQTT-3.3.5-1] (3.1.1): the highest QoS of all the
  // matching subscriptions. 3.1.1 would allow a copy per subscription; ferry
  // sends one in both versions (router.h, RouteTarget).
  const std::vector<wire::ReceivedPublish> got = sub.ReceiveThrough("ov/end");
  ASSERT_EQ(Topics(got), (Strings{"ov/a", "ov/end"}));
  EXPECT_EQ(got[0].qos, 2);
  EXPECT_EQ(got[0].payload, "once");
}

TEST_P(Subscriptions, SubackGrantsTheRequestedQosAndDeliveryUsesTheLowerQos) {
  RawSession sub(port(), version());
  ASSERT_TRUE(sub.Connect("granted-sub"));
  // One return code per filter, each the QoS granted [MQTT-3.8.4-5]
  // (3.1.1), [MQTT-3.8.4-6] [MQTT-3.8.4-7] (5.0).
  ASSERT_EQ(sub.Subscribe({{"g/0", 0}, {"g/1", 1}, {"g/2", 2}}), (Codes{0, 1, 2}));
  RawSession pub(port(), version());
  ASSERT_TRUE(pub.Connect("granted-pub"));
  for (const char* topic : {"g/0", "g/1", "g/2"}) ASSERT_TRUE(pub.Publish(topic, "at 2", 2));
  ASSERT_TRUE(pub.Publish("g/2", "at 1", 1));
  // min(published QoS, granted QoS) [MQTT-3.8.4-6] (3.1.1), [MQTT-3.8.4-8] (5.0).
  std::vector<int> qos;
  for (int i = 0; i < 4; ++i) {
    const std::optional<wire::ReceivedPublish> m = sub.Receive();
    ASSERT_TRUE(m.has_value()) << "message " << i;
    qos.push_back(m->qos);
  }
  EXPECT_EQ(qos, (std::vector<int>{0, 1, 2, 1}));
}

TEST_P(Subscriptions, MalformedFilterClosesTheConnectionAndSubscribesNothing) {
  // '#' must be last [MQTT-4.7.1-1]; '+' must fill a level [MQTT-4.7.1-2]. A
  // filter that breaks the syntax makes the SUBSCRIBE a malformed packet
  // (MQTT 5.0 section 4.13.1): DISCONNECT 0x81 in 5.0, a close in 3.1.1.
  // The valid filter of the same packet is not subscribed either.
  RawSession sub(port(), version());
  ASSERT_TRUE(sub.Connect("invalid-sub"));
  ASSERT_TRUE(sub.Send(wire::Subscribe(version(), 3, {{"ok/x", 1}, {"a/#/b", 1}})));
  EXPECT_TRUE(sub.ExpectDisconnect(0x81));

  RawSession again(port(), version());
  wire::ConnectFields resume;
  resume.client_id = "invalid-sub";
  resume.clean_start = false;
  ASSERT_TRUE(again.Connect(resume));
  RawSession pub(port(), version());
  ASSERT_TRUE(pub.Connect("invalid-pub"));
  ASSERT_TRUE(pub.Publish("ok/x", "not subscribed", 1));
  ASSERT_EQ(again.Subscribe({{"sentinel/x", 1}}), (Codes{1}));
  ASSERT_TRUE(pub.Publish("sentinel/x", "sentinel", 1));
  EXPECT_EQ(Topics(again.ReceiveThrough("sentinel/x")), (std::vector<std::string>{"sentinel/x"}));
}

TEST_P(Subscriptions, UnsubscribeStopsDelivery) {
  PahoClient sub(port(), "unsub-sub", version());
  ASSERT_TRUE(sub.Connect());
  ASSERT_TRUE(sub.Subscribe("u/a", 1));
  ASSERT_TRUE(sub.Subscribe("u/end", 1));
  RawSession pub(port(), version());
  ASSERT_TRUE(pub.Connect("unsub-pub"));
  ASSERT_TRUE(pub.Publish("u/a", "before", 1));
  std::optional<ReceivedMessage> m = sub.Receive();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->payload, "before");
  // Paho checks that the UNSUBACK carries the UNSUBSCRIBE's packet identifier
  // [MQTT-3.10.4-4]; the subscription is then gone [MQTT-3.10.4-1].
  ASSERT_TRUE(sub.Unsubscribe("u/a"));
  ASSERT_TRUE(pub.Publish("u/a", "after", 1));
  ASSERT_TRUE(pub.Publish("u/end", "sentinel", 1));
  EXPECT_EQ(Topics(ReceiveThrough(sub, "u/end")), (Strings{"u/end"}));
}

TEST_P(Subscriptions, UnsubackHasOneCodePerFilter) {
  RawSession sub(port(), version());
  ASSERT_TRUE(sub.Connect("unsuback-sub"));
  ASSERT_EQ(sub.Subscribe({{"x/1", 0}}), (Codes{0}));
  const std::optional<Codes> codes = sub.Unsubscribe({"x/1", "x/never"});
  ASSERT_TRUE(codes.has_value());
  if (version() == MqttVersion::kV5) {
    // [MQTT-3.11.3-1]: success, then 0x11 "no subscription existed".
    EXPECT_EQ(*codes, (Codes{0x00, 0x11}));
  } else {
    EXPECT_TRUE(codes->empty());  // a 3.1.1 UNSUBACK has no payload
  }
}

TEST_P(Subscriptions, SharedSubscriptionDeliversEachMessageToOneMemberInTurn) {
  for (const std::string filter : {"$share/g/rr/t", "$queue/rr/t"}) {
    SCOPED_TRACE(filter);
    const std::string group = filter.substr(1, 5);  // "share" or "queue"
    RawSession a(port(), version());
    RawSession b(port(), version());
    ASSERT_TRUE(a.Connect("rr-a-" + group));
    ASSERT_TRUE(b.Connect("rr-b-" + group));
    ASSERT_EQ(a.Subscribe({{filter, 1}, {"rr/end", 1}}), (Codes{1, 1}));
    ASSERT_EQ(b.Subscribe({{filter, 1}, {"rr/end", 1}}), (Codes{1, 1}));
    RawSession pub(port(), version());
    ASSERT_TRUE(pub.Connect("rr-pub-" + group));
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(pub.Publish("rr/t", std::to_string(i), 1));
    ASSERT_TRUE(pub.Publish("rr/end", "sentinel", 1));
    std::multiset<std::string> payloads;
    size_t counts[2] = {0, 0};
    RawSession* members[2] = {&a, &b};
    for (size_t i = 0; i < 2; ++i) {
      for (const wire::ReceivedPublish& m : members[i]->ReceiveThrough("rr/end")) {
        if (m.topic != "rr/t") continue;
        payloads.insert(m.payload);
        ++counts[i];
      }
    }
    // Each message goes to exactly one member of the group; ferry picks them
    // round robin (router.h, Router::Match).
    EXPECT_EQ(payloads,
              (std::multiset<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}));
    EXPECT_EQ(counts[0], 5u);
    EXPECT_EQ(counts[1], 5u);
  }
}

TEST_P(Subscriptions, EveryGroupAndEveryNonSharedSubscriberGetsACopy) {
  const std::vector<std::string> filters = {"$share/g1/grp/t", "$share/g2/grp/t", "$queue/grp/t",
                                            "grp/t"};
  std::vector<std::unique_ptr<RawSession>> subs;
  for (size_t i = 0; i < filters.size(); ++i) {
    subs.push_back(std::make_unique<RawSession>(port(), version()));
    ASSERT_TRUE(subs.back()->Connect("grp-" + std::to_string(i)));
    ASSERT_EQ(subs.back()->Subscribe({{filters[i], 0}, {"grp/end", 0}}), (Codes{0, 0}));
  }
  RawSession pub(port(), version());
  ASSERT_TRUE(pub.Connect("grp-pub"));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pub.Publish("grp/t", std::to_string(i)));
  ASSERT_TRUE(pub.Publish("grp/end", "sentinel"));
  for (size_t i = 0; i < filters.size(); ++i) {
    SCOPED_TRACE(filters[i]);
    EXPECT_EQ(Topics(subs[i]->ReceiveThrough("grp/end")),
              (Strings{"grp/t", "grp/t", "grp/t", "grp/end"}));
  }
}

class SubscriptionsMaxQos1 : public NodeTest<> {
 protected:
  SubscriptionsMaxQos1() : NodeTest(WithOverrides({{"mqtt", "max_qos", "1"}})) {}
};

TEST_F(SubscriptionsMaxQos1, SubackGrantsAtMostTheNodesMaximumQos) {
  for (MqttVersion v : {MqttVersion::kV311, MqttVersion::kV5}) {
    SCOPED_TRACE(VersionLabel(v));
    RawSession sub(port(), v);
    ASSERT_TRUE(sub.Connect(std::string("maxqos-sub-") + VersionLabel(v)));
    // The server may grant less than asked [MQTT-3.8.4-6] (3.1.1), [MQTT-3.8.4-7] (5.0).
    ASSERT_EQ(sub.Subscribe({{"mq/t", 2}}), (Codes{1}));
    RawSession pub(port(), v);
    ASSERT_TRUE(pub.Connect(std::string("maxqos-pub-") + VersionLabel(v)));
    ASSERT_TRUE(pub.Publish("mq/t", "x", 1));
    const std::optional<wire::ReceivedPublish> m = sub.Receive();
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->qos, 1);
  }
}

TEST_F(SubscriptionsV5, SubscriptionIdentifierIsSentWithMatchingMessages) {
  RawSession sub(port(), MqttVersion::kV5);
  ASSERT_TRUE(sub.Connect("sid-sub"));
  ASSERT_EQ(sub.SubscribeWithId({"sid/a", 1}, 42), (Codes{1}));
  ASSERT_EQ(sub.Subscribe({{"sid/b", 1}}), (Codes{1}));
  RawSession pub(port(), MqttVersion::kV5);
  ASSERT_TRUE(pub.Connect("sid-pub"));
  ASSERT_TRUE(pub.Publish("sid/a", "with id", 1));
  ASSERT_TRUE(pub.Publish("sid/b", "without id", 1));
  std::optional<wire::ReceivedPublish> m = sub.Receive();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(PublishProperties(m->properties).Numbers(kSubscriptionIdentifier),
            (std::vector<uint32_t>{42}));  // [MQTT-3.3.4-3]
  m = sub.Receive();
  ASSERT_TRUE(m.has_value());
  EXPECT_FALSE(PublishProperties(m->properties).Has(kSubscriptionIdentifier));

  // Subscribing to the same filter again replaces the subscription and its
  // identifier [MQTT-3.8.4-3]; the largest identifier takes four bytes.
  ASSERT_EQ(sub.SubscribeWithId({"sid/a", 1}, 268435455), (Codes{1}));
  ASSERT_TRUE(pub.Publish("sid/a", "new id", 1));
  m = sub.Receive();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(PublishProperties(m->properties).Numbers(kSubscriptionIdentifier),
            (std::vector<uint32_t>{268435455}));
}

TEST_F(SubscriptionsV5, OverlappingSubscriptionsCarryEverySubscriptionIdentifier) {
  RawSession sub(port(), MqttVersion::kV5);
  ASSERT_TRUE(sub.Connect("sids-sub"));
  ASSERT_EQ(sub.SubscribeWithId({"ids/#", 0}, 1), (Codes{0}));
  ASSERT_EQ(sub.SubscribeWithId({"ids/+", 2}, 2), (Codes{2}));
  ASSERT_EQ(sub.SubscribeWithId({"ids/a", 1}, 3), (Codes{1}));
  ASSERT_EQ(sub.Subscribe({{"+/a", 0}}), (Codes{0}));  // no identifier
  RawSession pub(port(), MqttVersion::kV5);
  ASSERT_TRUE(pub.Connect("sids-pub"));
  ASSERT_TRUE(pub.Publish("ids/a", "overlap", 2));
  ASSERT_TRUE(pub.Publish("ids/end", "sentinel", 0));
  const std::vector<wire::ReceivedPublish> got = sub.ReceiveThrough("ids/end");
  ASSERT_EQ(Topics(got), (Strings{"ids/a", "ids/end"}));
  EXPECT_EQ(got[0].qos, 2);  // [MQTT-3.3.4-2]
  // One copy carries the identifiers of all matching subscriptions, in any
  // order [MQTT-3.3.4-3] [MQTT-3.3.4-4].
  std::vector<uint32_t> ids = PublishProperties(got[0].properties).Numbers(kSubscriptionIdentifier);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<uint32_t>{1, 2, 3}));
}

TEST_F(SubscriptionsV5, SubscriptionIdentifierZeroIsAProtocolError) {
  RawSession sub(port(), MqttVersion::kV5);
  ASSERT_TRUE(sub.Connect("sid0-sub"));
  Bytes props;
  AddVarInt(&props, kSubscriptionIdentifier, 0);
  // MQTT 5.0 section 3.8.2.1.2: "a value of 0 is a Protocol Error".
  ASSERT_TRUE(sub.Send(wire::Subscribe(MqttVersion::kV5, 9, {{"sid0/t", 0}}, props)));
  EXPECT_TRUE(sub.ExpectDisconnect(0x82));
}

TEST_F(SubscriptionsV5, NoLocalKeepsAClientsOwnMessagesFromIt) {
  RawSession a(port(), MqttVersion::kV5);
  ASSERT_TRUE(a.Connect("nl-a"));
  ASSERT_EQ(a.Subscribe({{"nl/t", SubOptions(1, /*no_local=*/true)}, {"nl/end", 1}}),
            (Codes{1, 1}));
  RawSession b(port(), MqttVersion::kV5);
  ASSERT_TRUE(b.Connect("nl-b"));
  ASSERT_EQ(b.Subscribe({{"nl/t", 1}}), (Codes{1}));

  ASSERT_TRUE(a.Publish("nl/t", "from a", 1));
  ASSERT_TRUE(a.Publish("nl/end", "sentinel", 1));
  // [MQTT-3.8.3-3]: not forwarded to the connection that published it...
  EXPECT_EQ(Topics(a.ReceiveThrough("nl/end")), (Strings{"nl/end"}));
  // ...but to everyone else.
  std::optional<wire::ReceivedPublish> m = b.Receive();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->payload, "from a");
  // And other clients' messages still reach the No Local subscriber.
  ASSERT_TRUE(b.Publish("nl/t", "from b", 1));
  m = a.Receive();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->payload, "from b");
}

TEST_F(SubscriptionsV5, RetainAsPublishedKeepsTheRetainFlagOfLiveMessages) {
  RawSession sub(port(), MqttVersion::kV5);
  ASSERT_TRUE(sub.Connect("rap-sub"));
  ASSERT_EQ(sub.Subscribe({{"rap/kept", SubOptions(0, false, /*retain_as_published=*/true)},
                           {"rap/cleared", SubOptions(0)}}),
            (Codes{0, 0}));
  RawSession pub(port(), MqttVersion::kV5);
  ASSERT_TRUE(pub.Connect("rap-pub"));
  ASSERT_TRUE(pub.Publish("rap/kept", "retained", 0, /*retain=*/true));
  ASSERT_TRUE(pub.Publish("rap/kept", "plain", 0, /*retain=*/false));
  ASSERT_TRUE(pub.Publish("rap/cleared", "retained", 0, /*retain=*/true));
  const std::vector<wire::ReceivedPublish> got = sub.ReceiveThrough("rap/cleared");
  ASSERT_EQ(Topics(got), (Strings{"rap/kept", "rap/kept", "rap/cleared"}));
  EXPECT_TRUE(got[0].retain);   // [MQTT-3.3.1-13]: as published
  EXPECT_FALSE(got[1].retain);  // [MQTT-3.3.1-13]
  EXPECT_FALSE(got[2].retain);  // [MQTT-3.3.1-12]: Retain As Published 0
}

TEST_F(SubscriptionsV5, RetainHandlingDecidesWhetherRetainedMessagesAreSentOnSubscribe) {
  RawSession pub(port(), MqttVersion::kV5);
  ASSERT_TRUE(pub.Connect("rh-pub"));
  ASSERT_TRUE(pub.Publish("rh/x", "kept", 1, /*retain=*/true));
  ASSERT_TRUE(pub.Publish("rh/end", "sentinel", 1, /*retain=*/true));
  RawSession sub(port(), MqttVersion::kV5);
  ASSERT_TRUE(sub.Connect("rh-sub"));
  const wire::Subscription sentinel{"rh/end", SubOptions(0, false, false, 0)};

  // 0: sent on every subscribe, new or not [MQTT-3.3.1-9].
  const wire::Subscription rh0{"rh/x", SubOptions(0, false, false, 0)};
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(sub.Subscribe({rh0}), (Codes{0}));
    std::optional<wire::ReceivedPublish> m = sub.Receive();
    ASSERT_TRUE(m.has_value()) << "subscribe " << i;
    EXPECT_EQ(m->payload, "kept");
    EXPECT_TRUE(m->retain);
  }
  ASSERT_EQ(sub.Unsubscribe({"rh/x"}), (Codes{0}));

  // 1: only when the subscription is new [MQTT-3.3.1-10].
  const wire::Subscription rh1{"rh/x", SubOptions(0, false, false, 1)};
  ASSERT_EQ(sub.Subscribe({rh1}), (Codes{0}));
  std::optional<wire::ReceivedPublish> m = sub.Receive();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->topic, "rh/x");
  ASSERT_EQ(sub.Subscribe({rh1}), (Codes{0}));
  ASSERT_EQ(sub.Subscribe({sentinel}), (Codes{0}));
  EXPECT_EQ(Topics(sub.ReceiveThrough("rh/end")), (Strings{"rh/end"}));
  ASSERT_EQ(sub.Unsubscribe({"rh/x", "rh/end"}), (Codes{0, 0}));

  // 2: never [MQTT-3.3.1-11].
  ASSERT_EQ(sub.Subscribe({{"rh/x", SubOptions(0, false, false, 2)}}), (Codes{0}));
  ASSERT_EQ(sub.Subscribe({sentinel}), (Codes{0}));
  EXPECT_EQ(Topics(sub.ReceiveThrough("rh/end")), (Strings{"rh/end"}));
}

TEST_F(SubscriptionsV5, NoLocalOnASharedSubscriptionIsAProtocolError) {
  RawSession sub(port(), MqttVersion::kV5);
  ASSERT_TRUE(sub.Connect("nl-shared"));
  ASSERT_TRUE(sub.Send(wire::Subscribe(MqttVersion::kV5, 3,
                                       {{"$share/g/nls/t", SubOptions(1, /*no_local=*/true)}})));
  // [MQTT-3.8.3-4]: a Protocol Error, so DISCONNECT 0x82 and close.
  EXPECT_TRUE(sub.ExpectDisconnect(0x82));
}

}  // namespace
}  // namespace ferry::testing::v5
