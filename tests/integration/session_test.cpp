// Sessions across connections (MQTT 3.1.1 and 5.0): clean session / Clean
// Start, resuming a session with its subscriptions, the offline queue and its
// bound, redelivery of unacknowledged messages, the v5 Session Expiry
// Interval, and takeover by a new connection with the same client id.
//
// The session under test is a Paho client for ordinary flows and a RawClient
// where exact packets (DUP, packet identifiers, reason codes) matter; the
// publisher is libmosquitto, so at most one Paho client is connected at once.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/mosq_client.h"
#include "support/mqtt_wire.h"
#include "support/node_process.h"
#include "support/paho_client.h"
#include "support/raw_client.h"
#include "support/session_helpers.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

std::string ParamName(const ::testing::TestParamInfo<MqttVersion>& info) {
  return info.param == MqttVersion::kV5 ? "V5" : "V311";
}

PahoConnectOptions PersistentPaho() {
  PahoConnectOptions o;
  o.clean_start = false;
  o.session_expiry_s = 3600;  // v5 only; a 3.1.1 session with clean session 0 has no end
  return o;
}

PahoConnectOptions CleanPaho() { return PahoConnectOptions{}; }

class SessionBase : public ::testing::Test {
 protected:
  ::testing::AssertionResult StartNode(const std::string& extra_config = "") {
    NodeOptions options;
    options.extra_config = extra_config;
    node_ = std::make_unique<NodeProcess>(options);
    return node_->Start();
  }

  void TearDown() override {
    if (node_ && node_->Running()) {
      EXPECT_TRUE(node_->Stop());
    }
  }

  uint16_t port() const { return node_->port(); }

  std::unique_ptr<NodeProcess> node_;
};

// Tests run with both protocol versions.
class SessionTest : public SessionBase, public ::testing::WithParamInterface<MqttVersion> {
 protected:
  MqttVersion v() const { return GetParam(); }
  // A client id unique to this test and version.
  std::string Id(const std::string& base) const {
    return base + (v() == MqttVersion::kV5 ? "-v5" : "-v311");
  }
};

// Tests of v5-only features, or run once.
class SessionV5Test : public SessionBase {
 protected:
  static constexpr MqttVersion kV5 = MqttVersion::kV5;
};

TEST_P(SessionTest, CleanStartDiscardsTheOldSession) {
  ASSERT_TRUE(StartNode());
  MosqClient pub(port(), Id("clean-pub"), v());
  ASSERT_TRUE(pub.Connect());
  PahoClient sub(port(), Id("clean-sub"), v());
  ASSERT_TRUE(sub.Connect(PersistentPaho()));
  ASSERT_TRUE(sub.Subscribe("clean/old", 1));
  ASSERT_TRUE(sub.Disconnect());
  ASSERT_TRUE(pub.Publish("clean/old", "queued while away", 1));

  // [MQTT-3.1.2-6] (3.1.1) / [MQTT-3.1.2-4] (v5): clean session / Clean Start 1
  // discards the session; [MQTT-3.2.2-1] / [MQTT-3.2.2-2]: Session Present 0.
  ASSERT_TRUE(sub.Connect(CleanPaho()));
  EXPECT_FALSE(sub.session_present());
  ASSERT_TRUE(sub.Subscribe("clean/marker", 1));
  ASSERT_TRUE(pub.Publish("clean/old", "after the clean start", 1));
  ASSERT_TRUE(pub.Publish("clean/marker", "marker", 1));
  // Neither the queued message nor the old subscription survived.
  const std::optional<ReceivedMessage> m = sub.Receive();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->topic, "clean/marker");
  EXPECT_EQ(m->payload, "marker");
}

TEST_P(SessionTest, PersistentSessionResumesWithItsSubscriptions) {
  ASSERT_TRUE(StartNode());
  PahoClient sub(port(), Id("resume-sub"), v());
  ASSERT_TRUE(sub.Connect(PersistentPaho()));
  EXPECT_FALSE(sub.session_present());  // [MQTT-3.2.2-3]: no session yet
  ASSERT_TRUE(sub.Subscribe("resume/a", 1));
  ASSERT_TRUE(sub.Subscribe("resume/+/b", 2));
  ASSERT_TRUE(sub.Disconnect());

  // [MQTT-3.1.2-4] (3.1.1) / [MQTT-3.1.2-5] (v5): clean session / Clean Start 0
  // resumes the session; Session Present 1 [MQTT-3.2.2-2] / [MQTT-3.2.2-3].
  ASSERT_TRUE(sub.Connect(PersistentPaho()));
  EXPECT_TRUE(sub.session_present());
  MosqClient pub(port(), Id("resume-pub"), v());
  ASSERT_TRUE(pub.Connect());
  ASSERT_TRUE(pub.Publish("resume/a", "one", 2));
  ASSERT_TRUE(pub.Publish("resume/x/b", "two", 2));
  std::map<std::string, ReceivedMessage> got;
  for (int i = 0; i < 2; ++i) {
    std::optional<ReceivedMessage> m = sub.Receive();
    ASSERT_TRUE(m.has_value()) << "subscriptions were not kept; got " << got.size();
    got[m->topic] = *m;
  }
  EXPECT_EQ(got["resume/a"].payload, "one");
  EXPECT_EQ(got["resume/a"].qos, 1);  // the QoS granted before the disconnect
  EXPECT_EQ(got["resume/x/b"].payload, "two");
  EXPECT_EQ(got["resume/x/b"].qos, 2);
}

TEST_P(SessionTest, MessagesPublishedWhileAwayArriveInOrderOnReconnect) {
  ASSERT_TRUE(StartNode());
  PahoClient sub(port(), Id("away-sub"), v());
  ASSERT_TRUE(sub.Connect(PersistentPaho()));
  ASSERT_TRUE(sub.Subscribe("away/q1", 1));
  ASSERT_TRUE(sub.Subscribe("away/q2", 2));
  ASSERT_TRUE(sub.Disconnect());

  MosqClient pub(port(), Id("away-pub"), v());
  ASSERT_TRUE(pub.Connect());
  constexpr int kEach = 10;
  for (int i = 0; i < kEach; ++i) {
    ASSERT_TRUE(pub.Publish("away/q1", "q1-" + std::to_string(i), 1));
    ASSERT_TRUE(pub.Publish("away/q2", "q2-" + std::to_string(i), 2));
  }

  // [MQTT-3.1.2-5] (3.1.1): QoS 1 and 2 messages for a disconnected session
  // are stored; [MQTT-4.6.0-6]: each topic is delivered in order.
  ASSERT_TRUE(sub.Connect(PersistentPaho()));
  EXPECT_TRUE(sub.session_present());
  std::map<std::string, std::vector<std::string>> by_topic;
  for (int i = 0; i < 2 * kEach; ++i) {
    std::optional<ReceivedMessage> m = sub.Receive();
    ASSERT_TRUE(m.has_value()) << "only " << i << " of " << 2 * kEach << " messages arrived";
    EXPECT_EQ(m->qos, m->topic == "away/q1" ? 1 : 2) << m->topic;
    by_topic[m->topic].push_back(m->payload);
  }
  for (const char* topic : {"q1", "q2"}) {
    std::vector<std::string> expected;
    for (int i = 0; i < kEach; ++i)
      expected.push_back(std::string(topic) + "-" + std::to_string(i));
    EXPECT_EQ(by_topic[std::string("away/") + topic], expected);
  }
}

// With queue_qos0 (default true, etc/ferry.conf) an offline persistent session
// also queues QoS 0 messages; the specification allows either (MQTT 3.1.1
// section 3.1.2.4, MQTT 5.0 section 4.1).
TEST_P(SessionTest, Qos0MessagesAreQueuedForAnOfflineSessionByDefault) {
  ASSERT_TRUE(StartNode());
  PahoClient sub(port(), Id("q0-sub"), v());
  ASSERT_TRUE(sub.Connect(PersistentPaho()));
  ASSERT_TRUE(sub.Subscribe("q0/data", 1));
  ASSERT_TRUE(sub.Subscribe("q0/marker", 1));
  ASSERT_TRUE(sub.Disconnect());
  MosqClient pub(port(), Id("q0-pub"), v());
  ASSERT_TRUE(pub.Connect());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pub.Publish("q0/data", "d" + std::to_string(i), 0));
  ASSERT_TRUE(pub.Publish("q0/marker", "marker", 1));

  ASSERT_TRUE(sub.Connect(PersistentPaho()));
  for (int i = 0; i < 3; ++i) {
    std::optional<ReceivedMessage> m = sub.Receive();
    ASSERT_TRUE(m.has_value()) << "queued QoS 0 message " << i << " missing";
    EXPECT_EQ(m->topic, "q0/data");
    EXPECT_EQ(m->payload, "d" + std::to_string(i));
    EXPECT_EQ(m->qos, 0);
  }
  std::optional<ReceivedMessage> m = sub.Receive();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->payload, "marker");
}

TEST_P(SessionTest, Qos0MessagesAreNotQueuedWhenQueueQos0IsFalse) {
  ASSERT_TRUE(StartNode("[mqtt]\nqueue_qos0 = false\n"));
  PahoClient sub(port(), Id("noq0-sub"), v());
  ASSERT_TRUE(sub.Connect(PersistentPaho()));
  ASSERT_TRUE(sub.Subscribe("noq0/data", 1));
  ASSERT_TRUE(sub.Subscribe("noq0/marker", 1));
  ASSERT_TRUE(sub.Disconnect());
  MosqClient pub(port(), Id("noq0-pub"), v());
  ASSERT_TRUE(pub.Connect());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pub.Publish("noq0/data", "d" + std::to_string(i), 0));
  ASSERT_TRUE(pub.Publish("noq0/marker", "marker", 1));

  ASSERT_TRUE(sub.Connect(PersistentPaho()));
  std::optional<ReceivedMessage> m = sub.Receive();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->topic, "noq0/marker") << "a QoS 0 message was queued: " << m->payload;
}

// [MQTT-4.4.0-1]: unacknowledged PUBLISH packets are sent again on resume
// with their original packet identifiers; [MQTT-3.3.1-1]: with DUP set.
TEST_P(SessionTest, UnacknowledgedPublishIsResentWithDupOnResume) {
  ASSERT_TRUE(StartNode());
  RawClient sub;
  ASSERT_TRUE(ConnectRaw(sub, port(), Persistent(v(), Id("dup-sub"))));
  ASSERT_TRUE(SubscribeRaw(sub, v(), "dup/t", 1));
  MosqClient pub(port(), Id("dup-pub"), v());
  ASSERT_TRUE(pub.Connect());
  ASSERT_TRUE(pub.Publish("dup/t", "once", 1));

  wire::ReceivedPublish first;
  ASSERT_TRUE(ReadPublish(sub, v(), &first));
  EXPECT_FALSE(first.dup);
  ASSERT_EQ(first.qos, 1);
  ASSERT_TRUE(sub.Send(wire::Disconnect(v())));  // no PUBACK
  ASSERT_TRUE(sub.IsClosed());

  bool present = false;
  ASSERT_TRUE(ConnectRaw(sub, port(), Persistent(v(), Id("dup-sub")), &present));
  EXPECT_TRUE(present);
  wire::ReceivedPublish again;
  ASSERT_TRUE(ReadPublish(sub, v(), &again));
  EXPECT_TRUE(again.dup);
  EXPECT_EQ(again.packet_id, first.packet_id);
  EXPECT_EQ(again.topic, "dup/t");
  EXPECT_EQ(again.payload, "once");
  EXPECT_EQ(again.qos, 1);
  ASSERT_TRUE(sub.Send(wire::PublishAck(wire::kPuback, v(), again.packet_id)));
  EXPECT_TRUE(ExpectNothingBeforePingresp(sub));

  // Once acknowledged it is not sent again.
  ASSERT_TRUE(sub.Send(wire::Disconnect(v())));
  ASSERT_TRUE(sub.IsClosed());
  ASSERT_TRUE(ConnectRaw(sub, port(), Persistent(v(), Id("dup-sub")), &present));
  EXPECT_TRUE(present);
  EXPECT_TRUE(ExpectNothingBeforePingresp(sub));
}

// [MQTT-4.4.0-1]: a PUBREL not yet answered by PUBCOMP is sent again on
// resume, and the PUBLISH it releases is not.
TEST_P(SessionTest, PubrelIsResentForAQos2MessageWhosePubrecWasSent) {
  ASSERT_TRUE(StartNode());
  RawClient sub;
  ASSERT_TRUE(ConnectRaw(sub, port(), Persistent(v(), Id("rel-sub"))));
  ASSERT_TRUE(SubscribeRaw(sub, v(), "rel/t", 2));
  MosqClient pub(port(), Id("rel-pub"), v());
  ASSERT_TRUE(pub.Connect());
  ASSERT_TRUE(pub.Publish("rel/t", "exactly once", 2));

  wire::ReceivedPublish p;
  ASSERT_TRUE(ReadPublish(sub, v(), &p));
  ASSERT_EQ(p.qos, 2);
  ASSERT_TRUE(sub.Send(wire::PublishAck(wire::kPubrec, v(), p.packet_id)));
  wire::RawPacket rel;
  ASSERT_TRUE(ExpectPacket(sub, wire::kPubrel, &rel));
  EXPECT_EQ(rel.flags, 0x02);                    // [MQTT-3.6.1-1]
  ASSERT_TRUE(sub.Send(wire::Disconnect(v())));  // no PUBCOMP
  ASSERT_TRUE(sub.IsClosed());

  bool present = false;
  ASSERT_TRUE(ConnectRaw(sub, port(), Persistent(v(), Id("rel-sub")), &present));
  EXPECT_TRUE(present);
  wire::RawPacket again;
  ASSERT_TRUE(ExpectPacket(sub, wire::kPubrel, &again));
  ASSERT_GE(again.body.size(), 2u);
  EXPECT_EQ(again.body[0] << 8 | again.body[1], p.packet_id);
  EXPECT_TRUE(ExpectNothingBeforePingresp(sub));
  ASSERT_TRUE(sub.Send(wire::PublishAck(wire::kPubcomp, v(), p.packet_id)));
  EXPECT_TRUE(ExpectNothingBeforePingresp(sub));

  ASSERT_TRUE(sub.Send(wire::Disconnect(v())));
  ASSERT_TRUE(sub.IsClosed());
  ASSERT_TRUE(ConnectRaw(sub, port(), Persistent(v(), Id("rel-sub")), &present));
  EXPECT_TRUE(ExpectNothingBeforePingresp(sub)) << "the completed exchange was resumed";
}

// [MQTT-3.1.4-2] (3.1.1) / [MQTT-3.1.4-3] (v5): a second connection with the
// same client id closes the first (v5: DISCONNECT 0x8E Session taken over).
// With clean session / Clean Start 0 the session itself carries on.
TEST_P(SessionTest, TakeoverKeepsAPersistentSessionsSubscriptionsAndMessages) {
  ASSERT_TRUE(StartNode());
  RawClient first;
  ASSERT_TRUE(ConnectRaw(first, port(), Persistent(v(), Id("take"))));
  ASSERT_TRUE(SubscribeRaw(first, v(), "take/t", 1));
  MosqClient pub(port(), Id("take-pub"), v());
  ASSERT_TRUE(pub.Connect());
  ASSERT_TRUE(pub.Publish("take/t", "in flight", 1));
  wire::ReceivedPublish inflight;
  ASSERT_TRUE(ReadPublish(first, v(), &inflight));  // and not acknowledged

  RawClient second;
  bool present = false;
  ASSERT_TRUE(ConnectRaw(second, port(), Persistent(v(), Id("take")), &present));
  EXPECT_TRUE(present);
  if (v() == MqttVersion::kV5) {
    wire::RawPacket d;
    ASSERT_TRUE(ExpectPacket(first, wire::kDisconnect, &d));
    ASSERT_FALSE(d.body.empty());
    EXPECT_EQ(d.body[0], 0x8E);
  }
  EXPECT_TRUE(first.IsClosed());

  // The unacknowledged message follows the session [MQTT-4.4.0-1].
  wire::ReceivedPublish resent;
  ASSERT_TRUE(ReadPublish(second, v(), &resent));
  EXPECT_EQ(resent.payload, "in flight");
  EXPECT_EQ(resent.packet_id, inflight.packet_id);
  EXPECT_TRUE(resent.dup);
  ASSERT_TRUE(second.Send(wire::PublishAck(wire::kPuback, v(), resent.packet_id)));

  ASSERT_TRUE(pub.Publish("take/t", "after the takeover", 1));
  wire::ReceivedPublish after;
  ASSERT_TRUE(ReadPublish(second, v(), &after));
  EXPECT_EQ(after.payload, "after the takeover");
  EXPECT_FALSE(after.dup);
}

INSTANTIATE_TEST_SUITE_P(BothVersions, SessionTest,
                         ::testing::Values(MqttVersion::kV311, MqttVersion::kV5), ParamName);

// [mqtt] max_queued_messages bounds the offline queue; what does not fit is
// dropped (etc/ferry.conf) and counted in $SYS/brokers/<node>/messages/dropped.
TEST_F(SessionBase, OfflineQueueIsBoundedAndDropsAreCounted) {
  ASSERT_TRUE(StartNode("[mqtt]\nmax_queued_messages = 10\n[sys]\ninterval = 1s\n"));
  const MqttVersion v = MqttVersion::kV311;
  RawClient sub;
  ASSERT_TRUE(ConnectRaw(sub, port(), Persistent(v, "bounded-sub")));
  ASSERT_TRUE(SubscribeRaw(sub, v, "bounded/t", 1));
  ASSERT_TRUE(sub.Send(wire::Disconnect(v)));
  ASSERT_TRUE(sub.IsClosed());

  RawClient pub;
  ASSERT_TRUE(ConnectRaw(pub, port(), Clean(v, "bounded-pub")));
  ASSERT_TRUE(
      PublishManyRaw(pub, v, "bounded/t", 1, 25, [](int i) { return "m" + std::to_string(i); }));

  bool present = false;
  ASSERT_TRUE(ConnectRaw(sub, port(), Persistent(v, "bounded-sub"), &present));
  EXPECT_TRUE(present);
  std::vector<wire::ReceivedPublish> got;
  ASSERT_TRUE(ReceiveAndAck(sub, v, 10, &got));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(got[i].payload, "m" + std::to_string(i));
  EXPECT_TRUE(ExpectNothingBeforePingresp(sub)) << "more than max_queued_messages were queued";

  SysWatcher sys(port(), node_->name());
  ASSERT_TRUE(sys.Start("messages/dropped"));
  EXPECT_TRUE(sys.WaitForValue(
      "messages/dropped", [](const std::string& s) { return s == "15"; }, seconds(5)));
}

// A connected QoS 1 subscriber whose queue is full slows the publisher down
// instead of losing its messages (etc/ferry.conf, max_queued_messages): the
// publisher's PUBACKs wait until the subscriber has read enough, and every
// message arrives, in order. (For at most max_queue_wait, here long enough
// for any slow machine: one_client_limits_test covers what happens then.)
TEST_P(SessionTest, AFullQueueOfAConnectedSubscriberHoldsBackThePublisherNotItsMessages) {
  ASSERT_TRUE(
      StartNode("[mqtt]\nmax_queued_messages = 5\nmax_inflight = 1\nmax_queue_wait = 1m\n"));
  RawClient sub;
  ASSERT_TRUE(ConnectRaw(sub, port(), Clean(v(), Id("held-sub"))));
  ASSERT_TRUE(SubscribeRaw(sub, v(), "held/t", 1));

  RawClient pub;
  ASSERT_TRUE(ConnectRaw(pub, port(), Clean(v(), Id("held-pub"))));
  constexpr int kMessages = 20;
  Bytes burst;
  for (int i = 0; i < kMessages; ++i) {
    wire::PublishFields f{"held/t", "m" + std::to_string(i), 1, false, false,
                          static_cast<uint16_t>(i + 1), {}};
    const Bytes one = wire::Publish(v(), f);
    burst.insert(burst.end(), one.begin(), one.end());
  }
  ASSERT_TRUE(pub.Send(burst));
  // One message in flight to the subscriber and five queued: the fifth fills
  // the queue, so only the first five are acknowledged while it reads nothing.
  for (int i = 1; i <= 5; ++i) {
    wire::RawPacket ack;
    ASSERT_TRUE(ExpectPacket(pub, wire::kPuback, &ack)) << "PUBACK " << i;
  }
  EXPECT_TRUE(ExpectNothingBeforePingresp(pub)) << "a PUBACK did not wait for the queue";

  std::vector<wire::ReceivedPublish> got;
  ASSERT_TRUE(ReceiveAndAck(sub, v(), kMessages, &got));
  for (int i = 0; i < kMessages; ++i) EXPECT_EQ(got[i].payload, "m" + std::to_string(i));
  for (int i = 6; i <= kMessages; ++i) {
    ASSERT_TRUE(ExpectPacket(pub, wire::kPuback)) << "PUBACK " << i;
  }
  EXPECT_TRUE(ExpectNothingBeforePingresp(sub));
}

// MQTT 5.0 section 3.1.2.11.2: the session ends when the Session Expiry
// Interval has passed after the network connection closed.
TEST_F(SessionV5Test, SessionEndsWhenItsExpiryIntervalHasPassed) {
  ASSERT_TRUE(StartNode());
  RawClient sub;
  ASSERT_TRUE(ConnectRaw(sub, port(), Persistent(kV5, "expiry-1s", 1)));
  ASSERT_TRUE(SubscribeRaw(sub, kV5, "expiry/old", 1));
  const auto disconnected = Clock::now();
  ASSERT_TRUE(sub.Send(wire::Disconnect(kV5)));
  ASSERT_TRUE(sub.IsClosed());
  ASSERT_TRUE(node_->WaitForLog("session 'expiry-1s' expired", seconds(5)));
  EXPECT_GE(Clock::now() - disconnected, seconds(1)) << "the session ended early";

  bool present = true;
  ASSERT_TRUE(ConnectRaw(sub, port(), Persistent(kV5, "expiry-1s", 1), &present));
  EXPECT_FALSE(present);  // [MQTT-3.2.2-3]: no session any more
  ASSERT_TRUE(SubscribeRaw(sub, kV5, "expiry/marker", 1));
  RawClient pub;
  ASSERT_TRUE(ConnectRaw(pub, port(), Clean(kV5, "expiry-pub")));
  ASSERT_TRUE(PublishManyRaw(pub, kV5, "expiry/old", 1, 1, [](int) { return "stale"; }));
  ASSERT_TRUE(PublishManyRaw(pub, kV5, "expiry/marker", 1, 1, [](int) { return "marker"; }));
  wire::ReceivedPublish m;
  ASSERT_TRUE(ReadPublish(sub, kV5, &m));
  EXPECT_EQ(m.topic, "expiry/marker") << "the expired session's subscription still routes";
}

// MQTT 5.0 section 3.1.2.11.2: an absent Session Expiry Interval means 0, and
// the session ends when the network connection closes.
TEST_F(SessionV5Test, ExpiryZeroEndsTheSessionAtDisconnect) {
  ASSERT_TRUE(StartNode());
  wire::ConnectFields f = Clean(kV5, "expiry-0");
  f.clean_start = false;  // no Session Expiry Interval property
  RawClient sub;
  ASSERT_TRUE(ConnectRaw(sub, port(), f));
  ASSERT_TRUE(SubscribeRaw(sub, kV5, "expiry0/t", 1));
  ASSERT_TRUE(sub.Send(wire::Disconnect(kV5)));
  ASSERT_TRUE(sub.IsClosed());
  bool present = true;
  ASSERT_TRUE(ConnectRaw(sub, port(), f, &present));
  EXPECT_FALSE(present);
}

// MQTT 5.0 section 3.14.2.2.2: DISCONNECT may change the Session Expiry
// Interval; 0 ends the session now.
TEST_F(SessionV5Test, DisconnectWithExpiryZeroEndsAPersistentSession) {
  ASSERT_TRUE(StartNode());
  RawClient sub;
  ASSERT_TRUE(ConnectRaw(sub, port(), Persistent(kV5, "shorten", 3600)));
  ASSERT_TRUE(SubscribeRaw(sub, kV5, "shorten/t", 1));
  ASSERT_TRUE(sub.Send(DisconnectWithExpiry(0)));
  ASSERT_TRUE(sub.IsClosed());
  bool present = true;
  ASSERT_TRUE(ConnectRaw(sub, port(), Persistent(kV5, "shorten", 3600), &present));
  EXPECT_FALSE(present);
}

// The other direction: a session that would expire after 1 s is given an hour
// on DISCONNECT and outlives a control session that kept its 1 s.
TEST_F(SessionV5Test, DisconnectCanExtendTheSessionExpiry) {
  ASSERT_TRUE(StartNode());
  RawClient extended;
  RawClient control;
  ASSERT_TRUE(ConnectRaw(extended, port(), Persistent(kV5, "extend", 1)));
  ASSERT_TRUE(ConnectRaw(control, port(), Persistent(kV5, "extend-control", 1)));
  const auto disconnected = Clock::now();
  ASSERT_TRUE(extended.Send(DisconnectWithExpiry(3600)));
  ASSERT_TRUE(control.Send(wire::Disconnect(kV5)));
  ASSERT_TRUE(extended.IsClosed());
  ASSERT_TRUE(control.IsClosed());
  ASSERT_TRUE(node_->WaitForLog("session 'extend-control' expired", seconds(5)));
  // The two sessions may live on different workers, whose expiry sweeps run
  // 500 ms apart at most; by 2 s a 1 s expiry has certainly been applied.
  std::this_thread::sleep_until(disconnected + seconds(2));
  bool present = false;
  ASSERT_TRUE(ConnectRaw(extended, port(), Persistent(kV5, "extend", 1), &present));
  EXPECT_TRUE(present);
}

// [MQTT-3.14.2-2]: with Session Expiry Interval 0 at CONNECT, a non-zero one
// on DISCONNECT is a Protocol Error (DISCONNECT 0x82 from the server).
TEST_F(SessionV5Test, NonZeroExpiryOnDisconnectAfterZeroAtConnectIsAProtocolError) {
  ASSERT_TRUE(StartNode());
  wire::ConnectFields f = Clean(kV5, "late-expiry");
  f.clean_start = false;
  RawClient sub;
  ASSERT_TRUE(ConnectRaw(sub, port(), f));
  ASSERT_TRUE(SubscribeRaw(sub, kV5, "late/t", 1));
  ASSERT_TRUE(sub.Send(DisconnectWithExpiry(60)));
  wire::RawPacket d;
  ASSERT_TRUE(ExpectPacket(sub, wire::kDisconnect, &d));
  ASSERT_FALSE(d.body.empty());
  EXPECT_EQ(d.body[0], 0x82);
  EXPECT_TRUE(sub.IsClosed());
  // The session still ended with its connection.
  bool present = true;
  ASSERT_TRUE(ConnectRaw(sub, port(), f, &present));
  EXPECT_FALSE(present);
}

}  // namespace
}  // namespace ferry::testing
