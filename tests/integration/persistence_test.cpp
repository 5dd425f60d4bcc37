// Durable state across a restart of the node, both a graceful one (SIGTERM)
// and a crash (SIGKILL): persistent sessions with their subscriptions, queued
// and in-flight messages, retained messages. src/core/broker.h states the
// contract: a QoS 1 or 2 message is acknowledged to its publisher only once
// it is committed, so whatever was acknowledged survives SIGKILL.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "support/mqtt_wire.h"
#include "support/node_process.h"
#include "support/paho_client.h"
#include "support/raw_client.h"
#include "support/session_helpers.h"
#include "support/temp_dir.h"

namespace ferry::testing {
namespace {

using std::chrono::seconds;

constexpr int kMessages = 500;

std::string Payload(int i) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "msg-%03d", i);
  return buf;
}

enum class StopBy { kSigterm, kSigkill };

const char* StopName(StopBy s) { return s == StopBy::kSigterm ? "Sigterm" : "Sigkill"; }
void PrintTo(StopBy s, std::ostream* os) { *os << StopName(s); }

class PersistenceTest : public ::testing::Test {
 protected:
  PersistenceTest() : node_(Options()) {}

  static NodeOptions Options() {
    NodeOptions o;
    o.extra_config = "[log]\nlevel = info\n";  // thousands of packets; debug logs each one
    return o;
  }

  void SetUp() override { ASSERT_TRUE(node_.Start()); }

  void TearDown() override {
    if (node_.Running()) {
      EXPECT_TRUE(node_.Stop());
    }
  }

  // Stops the node as `how` says and starts it again on the same data dir.
  ::testing::AssertionResult Bounce(StopBy how) {
    if (how == StopBy::kSigkill) {
      node_.Kill();
    } else if (auto stopped = node_.Stop(); !stopped) {
      return stopped;
    }
    return node_.Start();
  }

  uint16_t port() const { return node_.port(); }

  NodeProcess node_;
};

struct OfflineCase {
  MqttVersion version;
  int qos;
  StopBy stop;
};

void PrintTo(const OfflineCase& c, std::ostream* os) {
  *os << (c.version == MqttVersion::kV5 ? "v5" : "v3.1.1") << " QoS " << c.qos << " "
      << StopName(c.stop);
}

class OfflineSubscriberTest : public PersistenceTest,
                              public ::testing::WithParamInterface<OfflineCase> {};

// Every message acknowledged to the publisher while the persistent
// subscriber was away is delivered, in order, after the restart
// [MQTT-3.1.2-5] (3.1.1), [MQTT-4.6.0-6].
TEST_P(OfflineSubscriberTest, ReceivesEveryAcknowledgedMessageAfterTheRestart) {
  const OfflineCase c = GetParam();
  PahoConnectOptions persistent;
  persistent.clean_start = false;
  persistent.session_expiry_s = 3600;
  {
    PahoClient sub(port(), "offline-sub", c.version);
    ASSERT_TRUE(sub.Connect(persistent));
    ASSERT_TRUE(sub.Subscribe("persist/t", c.qos));
    ASSERT_TRUE(sub.Disconnect());
  }
  RawClient pub;
  ASSERT_TRUE(ConnectRaw(pub, port(), Clean(c.version, "offline-pub")));
  ASSERT_TRUE(PublishManyRaw(pub, c.version, "persist/t", c.qos, kMessages, Payload, seconds(20)));
  pub.Close();

  ASSERT_TRUE(Bounce(c.stop));

  PahoClient sub(port(), "offline-sub", c.version);
  ASSERT_TRUE(sub.Connect(persistent));
  EXPECT_TRUE(sub.session_present());
  for (int i = 0; i < kMessages; ++i) {
    const std::optional<ReceivedMessage> m = sub.Receive();
    ASSERT_TRUE(m.has_value()) << "message " << i << " of " << kMessages << " lost";
    ASSERT_EQ(m->payload, Payload(i)) << "out of order or duplicated";
    EXPECT_EQ(m->qos, c.qos);
  }
  EXPECT_FALSE(sub.Receive(std::chrono::milliseconds(200)).has_value()) << "a message came twice";
}

INSTANTIATE_TEST_SUITE_P(Restarts, OfflineSubscriberTest,
                         ::testing::Values(OfflineCase{MqttVersion::kV311, 1, StopBy::kSigkill},
                                           OfflineCase{MqttVersion::kV5, 2, StopBy::kSigkill},
                                           OfflineCase{MqttVersion::kV5, 1, StopBy::kSigterm},
                                           OfflineCase{MqttVersion::kV311, 2, StopBy::kSigterm}),
                         [](const ::testing::TestParamInfo<OfflineCase>& info) {
                           return std::string(info.param.version == MqttVersion::kV5 ? "V5"
                                                                                     : "V311") +
                                  "Qos" + std::to_string(info.param.qos) +
                                  StopName(info.param.stop);
                         });

class StalledSubscriberTest : public PersistenceTest, public ::testing::WithParamInterface<int> {};

// The subscriber is connected when the node is killed but has acknowledged
// nothing: the messages in flight to it and those queued behind them all
// arrive after the restart, in order, the ones sent before the kill with DUP
// set [MQTT-4.4.0-1] [MQTT-3.3.1-1].
TEST_P(StalledSubscriberTest, InFlightAndQueuedMessagesSurviveSigkill) {
  const int qos = GetParam();
  const MqttVersion v = MqttVersion::kV311;
  RawClient sub;
  ASSERT_TRUE(ConnectRaw(sub, port(), Persistent(v, "stalled-sub")));
  ASSERT_TRUE(SubscribeRaw(sub, v, "stalled/t", qos));
  RawClient pub;
  ASSERT_TRUE(ConnectRaw(pub, port(), Clean(v, "stalled-pub")));
  ASSERT_TRUE(PublishManyRaw(pub, v, "stalled/t", qos, kMessages, Payload, seconds(20)));

  node_.Kill();
  sub.Close();
  pub.Close();
  ASSERT_TRUE(node_.Start());

  bool present = false;
  ASSERT_TRUE(ConnectRaw(sub, port(), Persistent(v, "stalled-sub"), &present));
  EXPECT_TRUE(present);
  std::vector<wire::ReceivedPublish> got;
  ASSERT_TRUE(ReceiveAndAck(sub, v, kMessages, &got, seconds(20)));
  EXPECT_TRUE(got.front().dup) << "the first message was in flight at the kill";
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_EQ(got[i].payload, Payload(i)) << "out of order or duplicated at " << i;
    EXPECT_EQ(got[i].qos, qos);
  }
  EXPECT_TRUE(ExpectNothingBeforePingresp(sub)) << "more than " << kMessages << " deliveries";
}

INSTANTIATE_TEST_SUITE_P(Qos, StalledSubscriberTest, ::testing::Values(1, 2),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return "Qos" + std::to_string(info.param);
                         });

class RestartTest : public PersistenceTest, public ::testing::WithParamInterface<StopBy> {};

// [MQTT-3.3.1-5]: the server keeps retained messages; [MQTT-3.3.1-6]: an
// empty retained message removes one. Both hold across a restart.
TEST_P(RestartTest, RetainedMessagesSurvive) {
  const MqttVersion v = MqttVersion::kV5;
  RawClient pub;
  ASSERT_TRUE(ConnectRaw(pub, port(), Clean(v, "retain-pub")));
  auto publish = [&](const std::string& topic, const std::string& payload, int qos) {
    wire::PublishFields f;
    f.topic = topic;
    f.payload = payload;
    f.qos = qos;
    f.retain = true;
    f.packet_id = 1;
    ASSERT_TRUE(pub.Send(wire::Publish(v, f)));
    if (qos == 1) {
      ASSERT_TRUE(ExpectPacket(pub, wire::kPuback));
    }
  };
  publish("retain/a", "A", 1);
  publish("retain/gone", "to be removed", 1);
  publish("retain/gone", "", 1);
  // A QoS 0 message has no acknowledgement to wait for: only a graceful stop
  // promises to keep it. PINGRESP proves the node has read it.
  if (GetParam() == StopBy::kSigterm) {
    publish("retain/q0", "zero", 0);
    ASSERT_TRUE(ExpectNothingBeforePingresp(pub));
  }
  pub.Close();

  ASSERT_TRUE(Bounce(GetParam()));

  RawClient sub;
  ASSERT_TRUE(ConnectRaw(sub, port(), Clean(v, "retain-sub")));
  ASSERT_TRUE(SubscribeRaw(sub, v, "retain/#", 1));
  const size_t expected = GetParam() == StopBy::kSigterm ? 2 : 1;
  std::map<std::string, wire::ReceivedPublish> got;
  for (size_t i = 0; i < expected; ++i) {
    wire::ReceivedPublish p;
    ASSERT_TRUE(ReadPublish(sub, v, &p)) << "retained messages missing; got " << got.size();
    got[p.topic] = p;
  }
  EXPECT_TRUE(ExpectNothingBeforePingresp(sub)) << "a removed retained message came back";
  ASSERT_TRUE(got.contains("retain/a"));
  EXPECT_EQ(got["retain/a"].payload, "A");
  EXPECT_TRUE(got["retain/a"].retain);  // [MQTT-3.3.1-8]
  if (GetParam() == StopBy::kSigterm) {
    ASSERT_TRUE(got.contains("retain/q0"));
    EXPECT_EQ(got["retain/q0"].payload, "zero");
  }
}

// After the restart the restored subscriptions route new messages, both
// while the client is away (queued) and once it is back.
TEST_P(RestartTest, RestoredSubscriptionsRouteNewMessages) {
  const MqttVersion v = MqttVersion::kV5;
  RawClient sub;
  ASSERT_TRUE(ConnectRaw(sub, port(), Persistent(v, "route-sub")));
  ASSERT_TRUE(SubscribeRaw(sub, v, "route/a", 1, 1));
  ASSERT_TRUE(SubscribeRaw(sub, v, "route/+/b", 2, 2));
  ASSERT_TRUE(sub.Send(wire::Disconnect(v)));
  ASSERT_TRUE(sub.IsClosed());

  ASSERT_TRUE(Bounce(GetParam()));

  RawClient pub;
  ASSERT_TRUE(ConnectRaw(pub, port(), Clean(v, "route-pub")));
  ASSERT_TRUE(PublishManyRaw(pub, v, "route/a", 2, 1, [](int) { return "queued a"; }));
  ASSERT_TRUE(PublishManyRaw(pub, v, "route/x/b", 2, 1, [](int) { return "queued b"; }));
  bool present = false;
  ASSERT_TRUE(ConnectRaw(sub, port(), Persistent(v, "route-sub"), &present));
  EXPECT_TRUE(present);
  std::vector<wire::ReceivedPublish> got;
  ASSERT_TRUE(ReceiveAndAck(sub, v, 2, &got));
  EXPECT_EQ(got[0].payload, "queued a");
  EXPECT_EQ(got[0].qos, 1);  // the granted QoS was restored too
  EXPECT_EQ(got[1].payload, "queued b");
  EXPECT_EQ(got[1].qos, 2);

  ASSERT_TRUE(PublishManyRaw(pub, v, "route/y/b", 1, 1, [](int) { return "live"; }));
  wire::ReceivedPublish live;
  ASSERT_TRUE(ReadPublish(sub, v, &live));
  EXPECT_EQ(live.topic, "route/y/b");
  EXPECT_EQ(live.payload, "live");
}

// Sessions hash to workers by client id; with two workers and forty ids both
// workers hold sessions, and every one of them is restored.
TEST_P(RestartTest, ManySessionsOnEveryWorkerSurvive) {
  const MqttVersion v = MqttVersion::kV311;
  constexpr int kClients = 40;
  auto id = [](int i) { return "many-" + std::to_string(i); };
  for (int i = 0; i < kClients; ++i) {
    RawClient sub;
    ASSERT_TRUE(ConnectRaw(sub, port(), Persistent(v, id(i))));
    ASSERT_TRUE(SubscribeRaw(sub, v, "many/" + id(i), 1));
    ASSERT_TRUE(sub.Send(wire::Disconnect(v)));
  }
  RawClient pub;
  ASSERT_TRUE(ConnectRaw(pub, port(), Clean(v, "many-pub")));
  for (int i = 0; i < kClients; ++i) {
    ASSERT_TRUE(PublishManyRaw(pub, v, "many/" + id(i), 1, 1, [&](int) { return id(i); }));
  }
  pub.Close();

  ASSERT_TRUE(Bounce(GetParam()));

  ASSERT_TRUE(ConnectRaw(pub, port(), Clean(v, "many-pub")));
  for (int i = 0; i < kClients; ++i) {
    SCOPED_TRACE(id(i));
    RawClient sub;
    bool present = false;
    ASSERT_TRUE(ConnectRaw(sub, port(), Persistent(v, id(i)), &present));
    EXPECT_TRUE(present);
    std::vector<wire::ReceivedPublish> got;
    ASSERT_TRUE(ReceiveAndAck(sub, v, 1, &got));
    EXPECT_EQ(got[0].payload, id(i));
    ASSERT_TRUE(PublishManyRaw(pub, v, "many/" + id(i), 1, 1, [](int) { return "new"; }));
    ASSERT_TRUE(ReceiveAndAck(sub, v, 1, &got));
    EXPECT_EQ(got[1].payload, "new");
  }
}

INSTANTIATE_TEST_SUITE_P(StopBy, RestartTest, ::testing::Values(StopBy::kSigterm, StopBy::kSigkill),
                         [](const ::testing::TestParamInfo<StopBy>& info) {
                           return StopName(info.param);
                         });

// A QoS 2 message the node has answered with PUBREC is still known after a
// crash: the publisher's retransmission is not delivered twice
// [MQTT-4.3.3-10] and its PUBREL completes normally (PUBCOMP 0x00, not 0x92
// Packet Identifier not found).
TEST_F(PersistenceTest, InboundQos2ExchangeSurvivesSigkill) {
  const MqttVersion v = MqttVersion::kV5;
  RawClient sub;
  ASSERT_TRUE(ConnectRaw(sub, port(), Persistent(v, "inbound-sub")));
  ASSERT_TRUE(SubscribeRaw(sub, v, "inbound/t", 2));
  ASSERT_TRUE(sub.Send(wire::Disconnect(v)));
  ASSERT_TRUE(sub.IsClosed());

  RawClient pub;
  ASSERT_TRUE(ConnectRaw(pub, port(), Persistent(v, "inbound-pub")));
  wire::PublishFields f;
  f.topic = "inbound/t";
  f.payload = "exactly once";
  f.qos = 2;
  f.packet_id = 7;
  ASSERT_TRUE(pub.Send(wire::Publish(v, f)));
  ASSERT_TRUE(ExpectPacket(pub, wire::kPubrec));

  node_.Kill();
  pub.Close();
  ASSERT_TRUE(node_.Start());

  bool present = false;
  ASSERT_TRUE(ConnectRaw(pub, port(), Persistent(v, "inbound-pub"), &present));
  EXPECT_TRUE(present);
  f.dup = true;  // [MQTT-4.4.0-1]: the client resends what it had not completed
  ASSERT_TRUE(pub.Send(wire::Publish(v, f)));
  ASSERT_TRUE(ExpectPacket(pub, wire::kPubrec));
  ASSERT_TRUE(pub.Send(wire::PublishAck(wire::kPubrel, v, 7)));
  wire::RawPacket comp;
  ASSERT_TRUE(ExpectPacket(pub, wire::kPubcomp, &comp));
  EXPECT_TRUE(comp.body.size() <= 2 || comp.body[2] == 0x00)
      << "PUBCOMP reason 0x" << std::hex << int{comp.body[2]};

  ASSERT_TRUE(ConnectRaw(sub, port(), Persistent(v, "inbound-sub"), &present));
  EXPECT_TRUE(present);
  std::vector<wire::ReceivedPublish> got;
  ASSERT_TRUE(ReceiveAndAck(sub, v, 1, &got));
  EXPECT_EQ(got[0].payload, "exactly once");
  EXPECT_TRUE(ExpectNothingBeforePingresp(sub)) << "delivered twice";
}

// A store file that is not a ferry store stops the node at start-up with an
// error naming the file (src/core/broker.h: Start fails on a corrupt store),
// and the file is left as it was: its bytes may be all there is to recover.
TEST(PersistenceStore, CorruptStoreFileIsRefusedAndLeftUntouched) {
  std::mt19937 rng(20240611);
  std::string garbage(8192, '\0');
  for (char& ch : garbage) ch = static_cast<char>(rng() & 0xff);
  // Random bytes, and random bytes behind a valid SQLite header.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"random bytes", garbage},
      {"SQLite header, random pages", std::string("SQLite format 3\0", 16) + garbage},
  };
  for (const auto& [what, contents] : cases) {
    SCOPED_TRACE(what);
    NodeProcess node;
    ASSERT_EQ(::mkdir(node.data_dir().c_str(), 0700), 0);
    const std::string store = node.data_dir() + "/ferry.db";
    ASSERT_TRUE(WriteFile(store, contents));

    EXPECT_FALSE(node.Start()) << "ferryd started on a corrupt store";
    ASSERT_TRUE(node.exit_status().has_value()) << "ferryd is still running";
    EXPECT_TRUE(node.exit_status()->exited) << node.exit_status()->ToString();
    EXPECT_NE(node.exit_status()->code, 0);
    EXPECT_NE(node.LogSinceStart().find(store), std::string::npos)
        << "the error does not name " << store << ":\n"
        << node.LogSinceStart();
    EXPECT_TRUE(ReadFileOrEmpty(store) == contents) << "ferryd changed the corrupt store";
  }
}

}  // namespace
}  // namespace ferry::testing
