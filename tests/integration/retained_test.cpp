// Retained messages on a real node: store, replace, delete; the RETAIN flag
// on delivery; the QoS they are sent at; expiry; many of them; and the
// durability promise of broker.h: an acknowledged retained message survives a
// restart and a SIGKILL.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "support/mqtt_wire.h"
#include "support/paho_client.h"
#include "support/v5_helpers.h"
#include "support/v5_session.h"

namespace ferry::testing::v5 {
namespace {

using Strings = std::vector<std::string>;

class Retained : public NodeTest<::testing::TestWithParam<MqttVersion>> {
 protected:
  MqttVersion version() const { return GetParam(); }

  // What a new subscriber to `filter` is sent on subscribing: it subscribes
  // to `filter`, then to `sentinel` (a topic that holds a retained message),
  // and returns what arrived before the sentinel's retained message.
  std::vector<wire::ReceivedPublish> RetainedFor(const std::string& filter,
                                                 const std::string& sentinel, int qos = 0) {
    RawSession sub(port(), version());
    if (!sub.Connect("retained-reader-" + std::to_string(++readers_))) {
      ADD_FAILURE() << "reader cannot connect";
      return {};
    }
    if (sub.Subscribe({{filter, static_cast<uint8_t>(qos)}}) != Codes{static_cast<uint8_t>(qos)} ||
        sub.Subscribe({{sentinel, 0}}) != Codes{0}) {
      ADD_FAILURE() << "reader cannot subscribe";
      return {};
    }
    std::vector<wire::ReceivedPublish> got = sub.ReceiveThrough(sentinel);
    if (!got.empty()) got.pop_back();
    return got;
  }

  int readers_ = 0;
};

INSTANTIATE_TEST_SUITE_P(Versions, Retained,
                         ::testing::Values(MqttVersion::kV311, MqttVersion::kV5),
                         [](const auto& info) { return std::string(VersionLabel(info.param)); });

class RetainedV5 : public NodeTest<> {};
class RetainedMany : public NodeTest<> {};

// Publishes `count` retained QoS 1 messages with packet identifiers 1..count
// in one burst (message i's topic and payload from message(i)), and waits
// until each has its PUBACK.
::testing::AssertionResult StoreRetainedBurst(
    RawSession& pub, int count,
    const std::function<std::pair<std::string, std::string>(int)>& message) {
  Bytes burst;
  for (int i = 1; i <= count; ++i) {
    wire::PublishFields f;
    std::tie(f.topic, f.payload) = message(i);
    f.qos = 1;
    f.retain = true;
    f.packet_id = static_cast<uint16_t>(i);
    const Bytes one = wire::Publish(pub.version(), f);
    burst.insert(burst.end(), one.begin(), one.end());
  }
  if (auto sent = pub.Send(burst); !sent) return sent;
  std::set<uint16_t> acked;
  for (int i = 0; i < count; ++i) {
    const std::optional<Bytes> ack = pub.ReadControl();
    if (!ack) return ::testing::AssertionFailure() << "only " << acked.size() << " PUBACKs";
    if (ack->size() != 4 || (*ack)[0] != wire::kPuback << 4) {
      return ::testing::AssertionFailure() << "not a PUBACK: " << wire::Hex(*ack);
    }
    acked.insert(static_cast<uint16_t>((*ack)[2] << 8 | (*ack)[3]));
  }
  if (acked.size() != static_cast<size_t>(count)) {
    return ::testing::AssertionFailure() << acked.size() << " distinct PUBACKs for " << count;
  }
  return ::testing::AssertionSuccess();
}

// A node whose output buffer and queues are far smaller than the retained
// messages a `#` subscriber is owed.
class RetainedBeyondLimits : public NodeTest<> {
 protected:
  static NodeOptions Small() {
    NodeOptions o;
    o.extra_config = "[mqtt]\nmax_output_buffer = 1KB\nmax_queued_messages = 10\n"
                     "max_inflight = 2\n";
    return o;
  }
  RetainedBeyondLimits() : NodeTest(Small()) {}
};

TEST_P(Retained, IsStoredReplacedAndDeletedByAnEmptyPayload) {
  PahoClient pub(port(), "store-pub", version());
  ASSERT_TRUE(pub.Connect());
  ASSERT_TRUE(pub.Publish("r/end", "sentinel", 1, /*retain=*/true));

  // Stored and sent to a new subscriber [MQTT-3.3.1-5] (5.0),
  // [MQTT-3.3.1-5] [MQTT-3.3.1-6] (3.1.1).
  ASSERT_TRUE(pub.Publish("r/a", "one", 1, true));
  std::vector<wire::ReceivedPublish> got = RetainedFor("r/a", "r/end");
  ASSERT_EQ(Topics(got), (Strings{"r/a"}));
  EXPECT_EQ(got[0].payload, "one");

  // Replaced, here by a QoS 0 message [MQTT-3.3.1-5] (5.0), [MQTT-3.3.1-7] (3.1.1).
  ASSERT_TRUE(pub.Publish("r/a", "two", 0, true));
  // A message without RETAIN neither replaces nor removes it
  // [MQTT-3.3.1-8] (5.0), [MQTT-3.3.1-12] (3.1.1).
  ASSERT_TRUE(pub.Publish("r/a", "not retained", 1, false));
  got = RetainedFor("r/a", "r/end");
  ASSERT_EQ(Topics(got), (Strings{"r/a"}));
  EXPECT_EQ(got[0].payload, "two");

  // An empty payload removes it and is not stored itself
  // [MQTT-3.3.1-6] [MQTT-3.3.1-7] (5.0), [MQTT-3.3.1-10] [MQTT-3.3.1-11] (3.1.1).
  ASSERT_TRUE(pub.Publish("r/a", "", 1, true));
  EXPECT_TRUE(RetainedFor("r/a", "r/end").empty());
}

TEST_P(Retained, RetainFlagIsSetOnSubscribeAndClearedOnLiveDelivery) {
  RawSession pub(port(), version());
  ASSERT_TRUE(pub.Connect("flag-pub"));
  ASSERT_TRUE(pub.Publish("rf/t", "old", 1, /*retain=*/true));
  PahoClient sub(port(), "flag-sub", version());
  ASSERT_TRUE(sub.Connect());
  ASSERT_TRUE(sub.Subscribe("rf/t", 1));
  std::optional<ReceivedMessage> m = sub.Receive();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->payload, "old");
  // Sent because of a new subscription: RETAIN 1 [MQTT-3.3.1-8] (3.1.1);
  // MQTT 5.0 section 3.3.1.3 says the same.
  EXPECT_TRUE(m->retained);

  ASSERT_TRUE(pub.Publish("rf/t", "new", 1, true));
  m = sub.Receive();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->payload, "new");
  // To an established subscription: RETAIN 0 [MQTT-3.3.1-9] (3.1.1),
  // [MQTT-3.3.1-12] (5.0, Retain As Published 0).
  EXPECT_FALSE(m->retained);
}

TEST_P(Retained, IsSentAtTheLowerOfItsQosAndTheGrantedQos) {
  RawSession pub(port(), version());
  ASSERT_TRUE(pub.Connect("rq-pub"));
  for (int qos = 0; qos <= 2; ++qos) {
    ASSERT_TRUE(pub.Publish("rq/" + std::to_string(qos), "retained", qos, /*retain=*/true));
  }
  ASSERT_TRUE(pub.Publish("rq-end", "sentinel", 0, true));
  // [MQTT-3.8.4-6] (3.1.1), [MQTT-3.8.4-8] (5.0): min(message QoS, granted QoS).
  const std::map<int, std::map<std::string, int>> expected = {
      {0, {{"rq/0", 0}, {"rq/1", 0}, {"rq/2", 0}}},
      {1, {{"rq/0", 0}, {"rq/1", 1}, {"rq/2", 1}}},
      {2, {{"rq/0", 0}, {"rq/1", 1}, {"rq/2", 2}}},
  };
  for (const auto& [granted, want] : expected) {
    SCOPED_TRACE("subscribed at QoS " + std::to_string(granted));
    std::map<std::string, int> got;
    for (const wire::ReceivedPublish& m : RetainedFor("rq/+", "rq-end", granted)) {
      EXPECT_TRUE(m.retain);
      got[m.topic] = m.qos;
    }
    EXPECT_EQ(got, want);
  }
}

TEST_P(Retained, SurvivesARestart) {
  RawSession pub(port(), version());
  ASSERT_TRUE(pub.Connect("restart-pub"));
  for (int qos = 0; qos <= 2; ++qos) {
    ASSERT_TRUE(pub.Publish("rs/" + std::to_string(qos), "qos " + std::to_string(qos), qos, true));
  }
  pub.Drop();
  ASSERT_TRUE(node_.Restart());  // SIGTERM, then start on the same data dir

  PahoClient sub(port(), "restart-sub", version());
  ASSERT_TRUE(sub.Connect());
  ASSERT_TRUE(sub.Subscribe("rs/#", 2));
  std::map<std::string, std::string> got;
  for (int i = 0; i < 3; ++i) {
    const std::optional<ReceivedMessage> m = sub.Receive();
    ASSERT_TRUE(m.has_value()) << "only " << got.size() << " retained messages after the restart";
    EXPECT_TRUE(m->retained);
    got[m->topic] = m->payload;
  }
  EXPECT_EQ(got, (std::map<std::string, std::string>{
                     {"rs/0", "qos 0"}, {"rs/1", "qos 1"}, {"rs/2", "qos 2"}}));
}

TEST_P(Retained, AcknowledgedChangesSurviveSigkill) {
  RawSession pub(port(), version());
  ASSERT_TRUE(pub.Connect("kill-pub"));
  // Each returns once acknowledged: PUBACK for QoS 1, PUBREC (then PUBCOMP)
  // for QoS 2. broker.h promises the store committed it by then.
  ASSERT_TRUE(pub.Publish("rk/q1", "one", 1, /*retain=*/true));
  ASSERT_TRUE(pub.Publish("rk/q2", "two", 2, true));
  ASSERT_TRUE(pub.Publish("rk/gone", "doomed", 1, true));
  ASSERT_TRUE(pub.Publish("rk/gone", "", 1, true));  // acknowledged deletion
  ASSERT_TRUE(pub.Publish("rk-end", "sentinel", 1, true));
  node_.Kill();
  ASSERT_TRUE(node_.Restart());

  std::map<std::string, std::string> got;
  for (const wire::ReceivedPublish& m : RetainedFor("rk/#", "rk-end", 1)) {
    EXPECT_TRUE(m.retain);
    got[m.topic] = m.payload;
  }
  EXPECT_EQ(got, (std::map<std::string, std::string>{{"rk/q1", "one"}, {"rk/q2", "two"}}));
}

TEST_F(RetainedV5, ExpiresAfterItsMessageExpiryInterval) {
  RawSession pub(port(), MqttVersion::kV5);
  ASSERT_TRUE(pub.Connect("rx-pub"));
  ASSERT_TRUE(pub.Publish("rx-end", "sentinel", 1, /*retain=*/true));
  wire::PublishFields f;
  f.topic = "rx/t";
  f.payload = "short-lived";
  f.qos = 1;
  f.retain = true;
  AddU32(&f.properties, kMessageExpiryInterval, 1);
  ASSERT_TRUE(pub.Publish(f));
  // The interval started before the PUBACK came back.
  const auto acknowledged = std::chrono::steady_clock::now();

  RawSession early(port(), MqttVersion::kV5);
  ASSERT_TRUE(early.Connect("rx-early"));
  ASSERT_EQ(early.Subscribe({{"rx/t", 1}}), (Codes{1}));
  const std::optional<wire::ReceivedPublish> m = early.Receive();
  ASSERT_TRUE(m.has_value()) << "not retained before it expired";
  // What is left of the interval [MQTT-3.3.2-6].
  const std::optional<uint32_t> left =
      PublishProperties(m->properties).Number(kMessageExpiryInterval);
  ASSERT_TRUE(left.has_value());
  EXPECT_EQ(*left, 1u);

  // The point of the test is time passing: the interval runs out.
  std::this_thread::sleep_until(acknowledged + std::chrono::milliseconds(1500));
  RawSession late(port(), MqttVersion::kV5);
  ASSERT_TRUE(late.Connect("rx-late"));
  ASSERT_EQ(late.Subscribe({{"rx/t", 1}}), (Codes{1}));
  ASSERT_EQ(late.Subscribe({{"rx-end", 1}}), (Codes{1}));
  // [MQTT-3.3.2-5]: an expired message is not sent.
  EXPECT_EQ(Topics(late.ReceiveThrough("rx-end")), (Strings{"rx-end"}));
}

TEST_F(RetainedMany, AThousandRetainedTopicsAllReachAHashSubscriber) {
  constexpr int kTopics = 1000;
  RawSession pub(port(), MqttVersion::kV311);
  ASSERT_TRUE(pub.Connect("bulk-pub"));
  ASSERT_TRUE(StoreRetainedBurst(pub, kTopics, [](int i) {
    return std::pair("bulk/" + std::to_string(i % 10) + "/" + std::to_string(i), std::to_string(i));
  }));

  RawSession sub(port(), MqttVersion::kV5);
  ASSERT_TRUE(sub.Connect("bulk-sub"));
  ASSERT_EQ(sub.Subscribe({{"#", 1}}), (Codes{1}));
  std::set<std::string> topics;
  for (int i = 0; i < kTopics; ++i) {
    const std::optional<wire::ReceivedPublish> m = sub.Receive();
    ASSERT_TRUE(m.has_value()) << "only " << topics.size() << " retained messages";
    EXPECT_TRUE(m->retain);
    EXPECT_EQ(m->topic.substr(m->topic.rfind('/') + 1), m->payload);
    topics.insert(m->topic);
  }
  EXPECT_EQ(topics.size(), static_cast<size_t>(kTopics));
}

// Retained messages sent for a new subscription are a finite set the
// subscriber asked for: they wait in its queue and go out as it reads, at QoS
// 0 and QoS 1, instead of being dropped beyond max_output_buffer or
// max_queued_messages as live traffic to a slow reader is.
TEST_F(RetainedBeyondLimits, EveryRetainedMessageReachesANewSubscriber) {
  constexpr int kTopics = 300;
  RawSession pub(port(), MqttVersion::kV311);
  ASSERT_TRUE(pub.Connect("big-pub"));
  ASSERT_TRUE(StoreRetainedBurst(pub, kTopics, [](int i) {
    return std::pair("big/" + std::to_string(i), std::to_string(i) + std::string(100, '.'));
  }));
  for (int qos : {0, 1}) {
    RawSession sub(port(), MqttVersion::kV5);
    ASSERT_TRUE(sub.Connect("big-sub-" + std::to_string(qos)));
    ASSERT_EQ(sub.Subscribe({{"big/#", static_cast<uint8_t>(qos)}}),
              (Codes{static_cast<uint8_t>(qos)}));
    std::set<std::string> topics;
    for (int i = 0; i < kTopics; ++i) {
      const std::optional<wire::ReceivedPublish> m = sub.Receive();
      ASSERT_TRUE(m.has_value()) << "QoS " << qos << ": only " << topics.size() << " arrived";
      EXPECT_TRUE(m->retain);
      EXPECT_EQ(m->qos, qos);
      EXPECT_EQ(m->topic.substr(4) + std::string(100, '.'), m->payload);
      topics.insert(m->topic);
    }
    EXPECT_EQ(topics.size(), static_cast<size_t>(kTopics)) << "QoS " << qos;
  }
}

}  // namespace
}  // namespace ferry::testing::v5
