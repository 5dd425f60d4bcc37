// PUBLISH against a real ferryd: every QoS in both directions between Paho
// and libmosquitto, the QoS a subscription grants, QoS 2 exactly once,
// ordering, flow control in both directions, delivery across workers, and a
// subscriber that stops reading.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "support/connect_helpers.h"
#include "support/mosq_client.h"
#include "support/mqtt_wire.h"
#include "support/node_process.h"
#include "support/paho_client.h"
#include "support/raw_client.h"
#include "support/wait.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr MqttVersion kBothVersions[] = {MqttVersion::kV311, MqttVersion::kV5};

class PublishTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Configure(node_.config());
    ASSERT_TRUE(node_.Start());
  }

  void TearDown() override {
    if (node_.Running()) {
      EXPECT_TRUE(node_.Stop());
    }
  }

  virtual void Configure(IniConfig&) {}

  uint16_t port() { return node_.port(); }

  // A connected raw client.
  void Open(RawClient& c, MqttVersion v, const std::string& id, const Bytes& properties = {}) {
    wire::ConnectFields f;
    f.version = v;
    f.client_id = id;
    f.properties = properties;
    ASSERT_TRUE(RawConnect(c, port(), f));
  }

  // Subscribes and checks the SUBACK grants each requested QoS.
  static void Subscribe(RawClient& c, MqttVersion v, const std::vector<wire::Subscription>& subs) {
    const std::optional<std::vector<uint8_t>> codes = RawSubscribe(c, v, 1, subs);
    ASSERT_TRUE(codes.has_value());
    std::vector<uint8_t> want;
    for (const wire::Subscription& s : subs) want.push_back(s.options & 0x03);
    ASSERT_EQ(*codes, want);
  }

  NodeProcess node_;
};

// ---------------------------------------------------------------------------
// Every QoS, both directions, real clients

class Delivery : public PublishTest, public ::testing::WithParamInterface<MqttVersion> {};

TEST_P(Delivery, EveryQosFlowsBothWaysBetweenPahoAndLibmosquitto) {
  const MqttVersion v = GetParam();
  PahoClient paho(port(), "paho-both-ways", v);
  MosqClient mosq(port(), "mosq-both-ways", v);
  ASSERT_TRUE(paho.Connect());
  ASSERT_TRUE(mosq.Connect());
  ASSERT_TRUE(paho.Subscribe("to-paho/#", 2));
  ASSERT_TRUE(mosq.Subscribe("to-mosq/#", 2));
  for (int qos = 0; qos <= 2; ++qos) {
    SCOPED_TRACE("QoS " + std::to_string(qos));
    const std::string n = std::to_string(qos);
    ASSERT_TRUE(mosq.Publish("to-paho/" + n, "from libmosquitto at QoS " + n, qos));
    ASSERT_TRUE(paho.Publish("to-mosq/" + n, "from Paho at QoS " + n, qos));
    const std::optional<ReceivedMessage> at_paho = paho.Receive();
    const std::optional<ReceivedMessage> at_mosq = mosq.Receive();
    ASSERT_TRUE(at_paho.has_value() && at_mosq.has_value());
    EXPECT_EQ(at_paho->topic, "to-paho/" + n);
    EXPECT_EQ(at_paho->payload, "from libmosquitto at QoS " + n);
    EXPECT_EQ(at_paho->qos, qos);
    EXPECT_EQ(at_mosq->topic, "to-mosq/" + n);
    EXPECT_EQ(at_mosq->payload, "from Paho at QoS " + n);
    EXPECT_EQ(at_mosq->qos, qos);
  }
}

INSTANTIATE_TEST_SUITE_P(Versions, Delivery, ::testing::ValuesIn(kBothVersions),
                         [](const ::testing::TestParamInfo<MqttVersion>& info) {
                           return info.param == MqttVersion::kV5 ? "V5" : "V311";
                         });

// ---------------------------------------------------------------------------
// Granted QoS

using GrantedQos = PublishTest;

TEST_F(GrantedQos, MessagesArriveAtTheLowerOfPublishedAndGrantedQos) {
  // [MQTT-3.8.4-6] (3.1.1), [MQTT-3.8.4-8] (5.0).
  RawClient subs[2];
  for (int i = 0; i < 2; ++i) {
    Open(subs[i], kBothVersions[i], std::string("granted-") + VersionName(kBothVersions[i]));
    Subscribe(subs[i], kBothVersions[i], {{"g/0/+", 0}, {"g/1/+", 1}, {"g/2/+", 2}});
  }
  RawClient pub;
  Open(pub, MqttVersion::kV5, "granted-pub");
  uint16_t id = 1;
  for (int granted = 0; granted <= 2; ++granted) {
    for (int published = 0; published <= 2; ++published) {
      const std::string topic = "g/" + std::to_string(granted) + "/" + std::to_string(published);
      ASSERT_TRUE(
          PublishAndComplete(pub, MqttVersion::kV5, PublishOf(topic, topic, published, id++)));
    }
  }
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(VersionName(kBothVersions[i]));
    std::vector<wire::ReceivedPublish> got;
    ASSERT_TRUE(CollectPublishes(subs[i], kBothVersions[i], 9, &got));
    for (const wire::ReceivedPublish& p : got) {
      const int granted = p.topic[2] - '0';
      const int published = p.topic[4] - '0';
      EXPECT_EQ(p.qos, std::min(granted, published)) << p.topic;
      EXPECT_EQ(p.payload, p.topic);
    }
  }
}

// ---------------------------------------------------------------------------
// QoS 2 exactly once

using Qos2 = PublishTest;

TEST_F(Qos2, APublishRepeatedBeforePubrelIsDeliveredOnce) {
  RawClient sub;
  Open(sub, MqttVersion::kV5, "once-sub");
  Subscribe(sub, MqttVersion::kV5, {{"once/#", 2}});
  for (MqttVersion v : kBothVersions) {
    SCOPED_TRACE(VersionName(v));
    RawClient pub;
    Open(pub, v, std::string("once-pub-") + VersionName(v));
    const std::string topic = std::string("once/") + VersionName(v);
    auto expect_ack = [&](uint8_t type) {
      const std::optional<Bytes> raw = pub.ReadPacket();
      ASSERT_TRUE(raw.has_value()) << pub.error();
      const std::optional<AckFields> ack = ParseAck(v, *raw);
      ASSERT_TRUE(ack.has_value()) << wire::Hex(*raw);
      EXPECT_EQ(ack->type, type) << wire::Hex(*raw);
      EXPECT_EQ(ack->packet_id, 7);
      EXPECT_EQ(ack->reason, 0x00);
    };
    ASSERT_TRUE(pub.Send(wire::Publish(v, PublishOf(topic, "exactly once", 2, 7))));
    expect_ack(wire::kPubrec);
    // The same packet again, DUP set, before PUBREL: PUBREC again, no second
    // delivery [MQTT-4.3.3-10].
    ASSERT_TRUE(pub.Send(wire::Publish(v, PublishOf(topic, "exactly once", 2, 7, true))));
    expect_ack(wire::kPubrec);
    ASSERT_TRUE(pub.Send(wire::PublishAck(wire::kPubrel, v, 7)));
    expect_ack(wire::kPubcomp);  // [MQTT-4.3.3-11]
    // After PUBCOMP the identifier starts a new message [MQTT-4.3.3-12].
    ASSERT_TRUE(PublishAndComplete(pub, v, PublishOf(topic, "a new message", 2, 7)));

    std::vector<wire::ReceivedPublish> got;
    ASSERT_TRUE(CollectPublishes(sub, MqttVersion::kV5, 2, &got));
    EXPECT_EQ(got[0].payload, "exactly once");
    EXPECT_EQ(got[1].payload, "a new message");
    EXPECT_TRUE(NothingArrives(sub, milliseconds(200)));
  }
}

TEST_F(Qos2, PubrelForAnUnknownIdentifierStillGetsPubcomp) {
  // [MQTT-4.3.3-11]; a v5 PUBCOMP says 0x92 Packet Identifier not found.
  for (MqttVersion v : kBothVersions) {
    SCOPED_TRACE(VersionName(v));
    RawClient c;
    Open(c, v, std::string("unknown-pubrel-") + VersionName(v));
    ASSERT_TRUE(c.Send(wire::PublishAck(wire::kPubrel, v, 99)));
    const std::optional<Bytes> raw = c.ReadPacket();
    ASSERT_TRUE(raw.has_value()) << c.error();
    const std::optional<AckFields> ack = ParseAck(v, *raw);
    ASSERT_TRUE(ack.has_value() && ack->type == wire::kPubcomp) << wire::Hex(*raw);
    EXPECT_EQ(ack->packet_id, 99);
    EXPECT_EQ(ack->reason, v == MqttVersion::kV5 ? 0x92 : 0x00);
  }
}

// ---------------------------------------------------------------------------
// Ordering

using Ordering = PublishTest;

TEST_F(Ordering, AThousandQos1MessagesArriveInTheOrderPublished) {
  // [MQTT-4.6.0-6]: a topic is an ordered topic by default.
  constexpr int kCount = 1000;
  MosqClient mosq(port(), "order-mosq", MqttVersion::kV311);
  PahoClient paho(port(), "order-paho", MqttVersion::kV5);
  ASSERT_TRUE(mosq.Connect());
  ASSERT_TRUE(paho.Connect());
  ASSERT_TRUE(mosq.Subscribe("order/t", 1));
  ASSERT_TRUE(paho.Subscribe("order/t", 1));

  // All of them written before the first PUBACK is read.
  RawClient pub;
  Open(pub, MqttVersion::kV311, "order-pub");
  Bytes burst;
  for (int i = 0; i < kCount; ++i) {
    const Bytes p = wire::Publish(MqttVersion::kV311, PublishOf("order/t", std::to_string(i), 1,
                                                                static_cast<uint16_t>(i + 1)));
    burst.insert(burst.end(), p.begin(), p.end());
  }
  ASSERT_TRUE(pub.Send(burst));
  std::set<uint16_t> acked;
  for (int i = 0; i < kCount; ++i) {
    const std::optional<Bytes> raw = pub.ReadPacket();
    ASSERT_TRUE(raw.has_value()) << "after " << i << " PUBACKs: " << pub.error();
    const std::optional<AckFields> ack = ParseAck(MqttVersion::kV311, *raw);
    ASSERT_TRUE(ack.has_value() && ack->type == wire::kPuback) << wire::Hex(*raw);
    acked.insert(ack->packet_id);
  }
  EXPECT_EQ(acked.size(), static_cast<size_t>(kCount));

  auto check = [&](auto& client, const char* name) {
    for (int i = 0; i < kCount; ++i) {
      const std::optional<ReceivedMessage> m = client.Receive();
      ASSERT_TRUE(m.has_value()) << name << " got only " << i << " messages";
      ASSERT_EQ(m->payload, std::to_string(i)) << name << ": out of order";
    }
  };
  check(mosq, "libmosquitto (3.1.1)");
  check(paho, "Paho (5.0)");
}

// ---------------------------------------------------------------------------
// Flow control

class ReceiveMaximum : public PublishTest {
 protected:
  void Configure(IniConfig& config) override { config.Set("mqtt", "receive_maximum", "2"); }

  // Three QoS 2 PUBLISHes in one write, none released: the third exceeds the
  // window of 2 the CONNACK announced (MQTT 5.0 section 3.3.4, Receive Maximum).
  static ::testing::AssertionResult SendOneOverTheWindow(RawClient& c) {
    Bytes burst;
    for (uint16_t id = 1; id <= 3; ++id) {
      const Bytes p = wire::Publish(MqttVersion::kV5, PublishOf("rm/t", "m", 2, id));
      burst.insert(burst.end(), p.begin(), p.end());
    }
    return c.Send(burst);
  }

  // Reads the PUBRECs of the first two, answering each with a PUBREL if
  // `release`, up to the DISCONNECT; returns its reason code.
  static std::optional<uint8_t> ReadUpToDisconnect(RawClient& c, bool release) {
    const MqttVersion v = MqttVersion::kV5;
    for (;;) {
      const std::optional<Bytes> raw = c.ReadPacket();
      if (!raw) {
        ADD_FAILURE() << "no DISCONNECT: " << c.error();
        return std::nullopt;
      }
      const std::optional<AckFields> ack = ParseAck(v, *raw);
      if (ack && ack->type == wire::kPubrec && ack->packet_id <= 2) {
        if (release && !c.Send(wire::PublishAck(wire::kPubrel, v, ack->packet_id))) {
          ADD_FAILURE() << "PUBREL not sent: " << c.error();
          return std::nullopt;
        }
        continue;
      }
      const std::optional<uint8_t> reason = wire::ParseDisconnect(*raw);
      if (!reason) ADD_FAILURE() << "not a DISCONNECT: " << wire::Hex(*raw);
      return reason;
    }
  }
};

TEST_F(ReceiveMaximum, V5ClientSendingMoreThanTheNodesReceiveMaximumIsDisconnectedWith0x93) {
  const MqttVersion v = MqttVersion::kV5;
  wire::ConnectFields f;
  f.version = v;
  f.client_id = "too-many";
  RawClient c;
  const std::optional<ConnackFields> connack = ConnectAndReadConnack(c, port(), f);
  ASSERT_TRUE(connack.has_value());
  EXPECT_EQ(connack->props.Number(prop::kReceiveMaximum), 2u);
  ASSERT_TRUE(SendOneOverTheWindow(c));
  EXPECT_EQ(ReadUpToDisconnect(c, /*release=*/false), std::optional<uint8_t>(0x93));
  EXPECT_TRUE(c.IsClosed());
  EXPECT_TRUE(NodeServesNewClients(port()));
}

// The state of a TCP socket and how many bytes it sent that are not yet
// acknowledged; reading them does not clear a pending socket error.
tcp_info TcpInfo(int fd) {
  tcp_info info{};
  socklen_t len = sizeof(info);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) info.tcpi_state = TCP_CLOSE;
  return info;
}

// The client goes on releasing what it published, as a client that has not
// yet read the DISCONNECT does (the Paho interoperability test
// test_flow_control2). The node must not answer those PUBRELs with a reset:
// the client's writes would fail, and the DISCONNECT with its reason code
// could be lost. It reads and drops them and closes once the client has.
TEST_F(ReceiveMaximum, DisconnectReachesAClientThatGoesOnSendingAndTheCloseIsOrderly) {
  const MqttVersion v = MqttVersion::kV5;
  RawClient c;
  Open(c, v, "still-sending");
  ASSERT_TRUE(SendOneOverTheWindow(c));
  ASSERT_EQ(ReadUpToDisconnect(c, /*release=*/true), std::optional<uint8_t>(0x93));
  // The node's FIN, then more input from the client, taken in by the node.
  ASSERT_TRUE(WaitFor([&] { return TcpInfo(c.fd()).tcpi_state != TCP_ESTABLISHED; },
                      milliseconds(5000), "the node's FIN"));
  ASSERT_TRUE(c.Send(wire::PingReq()));
  ASSERT_TRUE(WaitFor(
      [&] {
        const tcp_info info = TcpInfo(c.fd());
        return info.tcpi_unacked == 0 || info.tcpi_state == TCP_CLOSE;
      },
      milliseconds(5000), "the PINGREQ to be acknowledged or reset"));
  // Close our side: the node closes too, and the socket reaches CLOSED with
  // no error; a reset at any point would have left one.
  c.ShutdownWrite();
  EXPECT_TRUE(WaitFor([&] { return TcpInfo(c.fd()).tcpi_state == TCP_CLOSE; },
                      milliseconds(5000), "the connection to close"));
  int error = 0;
  socklen_t len = sizeof(error);
  ASSERT_EQ(getsockopt(c.fd(), SOL_SOCKET, SO_ERROR, &error, &len), 0);
  EXPECT_EQ(error, 0) << "the node reset the connection: " << std::strerror(error);
  EXPECT_TRUE(NodeServesNewClients(port()));
}

TEST_F(ReceiveMaximum, AReleasedMessageReopensTheWindow) {
  const MqttVersion v = MqttVersion::kV5;
  RawClient c;
  Open(c, v, "window");
  auto expect_ack = [&](uint8_t type, uint16_t id) {
    const std::optional<Bytes> raw = c.ReadPacket();
    ASSERT_TRUE(raw.has_value()) << c.error();
    const std::optional<AckFields> ack = ParseAck(v, *raw);
    ASSERT_TRUE(ack && ack->type == type && ack->packet_id == id && ack->reason == 0)
        << wire::Hex(*raw);
  };
  ASSERT_TRUE(c.Send(wire::Publish(v, PublishOf("rm/t", "1", 2, 1))));
  expect_ack(wire::kPubrec, 1);
  ASSERT_TRUE(c.Send(wire::Publish(v, PublishOf("rm/t", "2", 2, 2))));
  expect_ack(wire::kPubrec, 2);
  ASSERT_TRUE(c.Send(wire::PublishAck(wire::kPubrel, v, 1)));
  expect_ack(wire::kPubcomp, 1);
  ASSERT_TRUE(c.Send(wire::Publish(v, PublishOf("rm/t", "3", 2, 3))));  // two unreleased again
  expect_ack(wire::kPubrec, 3);
  EXPECT_TRUE(PingPong(c));
}

class InflightWindow : public PublishTest {
 protected:
  void Configure(IniConfig& config) override { config.Set("mqtt", "max_inflight", "5"); }

  // Reads the window's worth of PUBLISHes without acknowledging, checks that
  // no more come, then acknowledges one at a time and drains the rest.
  static void CheckWindow(RawClient& c, MqttVersion v, size_t window, size_t total) {
    std::vector<wire::ReceivedPublish> got;
    for (size_t i = 0; i < window; ++i) {
      std::optional<wire::ReceivedPublish> p = NextPublish(c, v);
      ASSERT_TRUE(p.has_value()) << "only " << i << " of the window of " << window;
      got.push_back(std::move(*p));
    }
    // [MQTT-3.3.4-9]: no more unacknowledged QoS 1 than the window.
    EXPECT_TRUE(NothingArrives(c, milliseconds(300)));
    // Each PUBACK frees exactly one slot.
    for (size_t k = 0; k < 2; ++k) {
      ASSERT_TRUE(c.Send(wire::PublishAck(wire::kPuback, v, got[k].packet_id)));
      std::optional<wire::ReceivedPublish> p = NextPublish(c, v);
      ASSERT_TRUE(p.has_value());
      got.push_back(std::move(*p));
      EXPECT_TRUE(NothingArrives(c, milliseconds(150)));
    }
    for (size_t k = 2; k < got.size(); ++k) {
      ASSERT_TRUE(c.Send(wire::PublishAck(wire::kPuback, v, got[k].packet_id)));
    }
    ASSERT_TRUE(CollectPublishes(c, v, total - got.size(), &got));
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].payload, std::to_string(i));
  }
};

TEST_F(InflightWindow, NodeKeepsAtMostTheClientsWindowOfQos1MessagesUnacknowledged) {
  constexpr int kTotal = 20;
  RawClient v311, v5;
  Open(v311, MqttVersion::kV311, "window-v311");  // window: [mqtt] max_inflight = 5
  Bytes receive_max;
  v5::AddU16(&receive_max, prop::kReceiveMaximum, 3);
  Open(v5, MqttVersion::kV5, "window-v5", receive_max);  // window: its Receive Maximum, 3
  Subscribe(v311, MqttVersion::kV311, {{"win/t", 1}});
  Subscribe(v5, MqttVersion::kV5, {{"win/t", 1}});

  RawClient pub;
  Open(pub, MqttVersion::kV311, "window-pub");
  for (int i = 0; i < kTotal; ++i) {
    ASSERT_TRUE(
        PublishAndComplete(pub, MqttVersion::kV311,
                           PublishOf("win/t", std::to_string(i), 1, static_cast<uint16_t>(i + 1))));
  }
  {
    SCOPED_TRACE("v3.1.1, max_inflight 5");
    CheckWindow(v311, MqttVersion::kV311, 5, kTotal);
  }
  {
    SCOPED_TRACE("v5, Receive Maximum 3");
    CheckWindow(v5, MqttVersion::kV5, 3, kTotal);
  }
}

// ---------------------------------------------------------------------------
// Cross-worker delivery

using CrossWorker = PublishTest;  // the base config runs workers = 2

TEST_F(CrossWorker, FiftyClientsEachReceiveEveryClientsMessage) {
  constexpr int kClients = 50;
  std::vector<std::unique_ptr<MosqClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<MosqClient>(
        port(), "fan-" + std::to_string(i), i % 2 == 0 ? MqttVersion::kV5 : MqttVersion::kV311));
    ASSERT_TRUE(clients.back()->Connect()) << "client " << i;
    ASSERT_TRUE(clients.back()->Subscribe("fan/#", 1)) << "client " << i;
  }
  for (int i = 0; i < kClients; ++i) {
    ASSERT_TRUE(clients[i]->Publish("fan/" + std::to_string(i), std::to_string(i), 1));
  }
  std::set<std::string> all;
  for (int i = 0; i < kClients; ++i) all.insert(std::to_string(i));
  for (int i = 0; i < kClients; ++i) {
    std::set<std::string> got;
    for (int k = 0; k < kClients; ++k) {
      const std::optional<ReceivedMessage> m = clients[i]->Receive();
      ASSERT_TRUE(m.has_value()) << "client " << i << " got only " << k << " messages";
      got.insert(m->payload);
    }
    EXPECT_EQ(got, all) << "client " << i;
  }
}

// ---------------------------------------------------------------------------
// A subscriber that stops reading

class SlowSubscriber : public PublishTest {
 protected:
  void Configure(IniConfig& config) override {
    config.Set("mqtt", "max_output_buffer", "1MB");
    config.Set("sys", "interval", "1s");
  }

  // Waits until $SYS/brokers/<node>/messages/dropped reports more than 0.
  ::testing::AssertionResult DroppedCounterRises(milliseconds timeout) {
    RawClient sys;
    Open(sys, MqttVersion::kV311, "sys-reader");
    const std::string topic = "$SYS/brokers/" + node_.name() + "/messages/dropped";
    Subscribe(sys, MqttVersion::kV311, {{topic, 0}});
    const auto deadline = Clock::now() + timeout;
    std::string last = "(none)";
    while (Clock::now() < deadline) {
      const std::optional<Bytes> raw = sys.ReadPacket(milliseconds(500));
      if (!raw) continue;
      const std::optional<wire::ReceivedPublish> p = wire::ParsePublish(MqttVersion::kV311, *raw);
      if (!p || p->topic != topic) continue;
      last = p->payload;
      if (last != "0") return ::testing::AssertionSuccess() << last << " dropped";
    }
    return ::testing::AssertionFailure() << topic << " still " << last;
  }
};

TEST_F(SlowSubscriber, AStalledReaderDoesNotHoldUpOthers) {
  constexpr size_t kMessage = 64 * 1024;
  constexpr int kMessages = 320;  // 20 MB
  RawClient stalled;
  Open(stalled, MqttVersion::kV311, "stalled");
  Subscribe(stalled, MqttVersion::kV311, {{"bulk/#", 0}});
  MosqClient fast(port(), "fast", MqttVersion::kV5);
  ASSERT_TRUE(fast.Connect());
  ASSERT_TRUE(fast.Subscribe("bulk/#", 1));

  RawClient pub;
  Open(pub, MqttVersion::kV311, "bulk-pub");
  const Bytes publish =
      wire::Publish(MqttVersion::kV311, PublishOf("bulk/data", std::string(kMessage, 'x'), 0));
  for (int i = 0; i < kMessages; ++i) ASSERT_TRUE(pub.Send(publish)) << "message " << i;
  const Clock::time_point sent = Clock::now();
  ASSERT_TRUE(PublishAndComplete(pub, MqttVersion::kV311, PublishOf("bulk/end", "end", 1, 1)));

  // The other subscriber gets the stream and the final message promptly.
  int bulk = 0;
  for (;;) {
    const std::optional<ReceivedMessage> m = fast.Receive(milliseconds(10000));
    ASSERT_TRUE(m.has_value()) << "the fast subscriber stalled after " << bulk << " messages";
    if (m->topic == "bulk/end") break;
    ++bulk;
  }
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - sent);
  EXPECT_LT(took.count(), 5000) << "the fast subscriber waited for the stalled one";
  EXPECT_GT(bulk, 0);
  RecordProperty("fast_subscriber_bulk_messages", bulk);

  // The stalled one's QoS 0 backlog is capped: the excess is dropped and counted.
  EXPECT_TRUE(DroppedCounterRises(milliseconds(5000)));
  EXPECT_TRUE(NodeServesNewClients(port()));

  // Once it reads again it gets what was kept, and is served normally.
  size_t kept = 0;
  while (std::optional<Bytes> raw = stalled.ReadPacket(milliseconds(500))) kept += raw->size();
  EXPECT_LT(kept, kMessage * kMessages);
  EXPECT_TRUE(PingPong(stalled));
}

// ---------------------------------------------------------------------------
// Input that arrives in pieces

using SplitInput = PublishTest;

// Packets are put together however their bytes arrive: one byte per write,
// and a packet bigger than one read (ferryd reads into a 64 KB buffer per
// worker) between small ones, in 1000-byte writes.
TEST_F(SplitInput, PacketsArrivingAByteAtATimeOrLargerThanOneReadAreReassembled) {
  for (MqttVersion v : kBothVersions) {
    SCOPED_TRACE(VersionName(v));
    RawClient sub;
    Open(sub, v, std::string("split-sub-") + VersionName(v));
    Subscribe(sub, v, {{"split/#", 0}});

    RawClient pub;
    ASSERT_TRUE(pub.Connect(port()));
    int one = 1;
    ASSERT_EQ(setsockopt(pub.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
    wire::ConnectFields f;
    f.version = v;
    f.client_id = std::string("split-pub-") + VersionName(v);
    const std::string big(200 * 1024, 'b');
    Bytes head = wire::Connect(f);
    const Bytes first = wire::Publish(v, PublishOf("split/a", "small 1", 1, 1));
    head.insert(head.end(), first.begin(), first.end());
    Bytes rest = wire::Publish(v, PublishOf("split/b", big, 1, 2));
    const Bytes last = wire::Publish(v, PublishOf("split/c", "small 2", 1, 3));
    rest.insert(rest.end(), last.begin(), last.end());
    for (uint8_t b : head) ASSERT_TRUE(pub.Send(Bytes{b}));
    for (size_t at = 0; at < rest.size(); at += 1000) {
      const size_t n = std::min<size_t>(1000, rest.size() - at);
      ASSERT_TRUE(pub.Send(Bytes(rest.begin() + at, rest.begin() + at + n)));
    }

    const std::optional<Bytes> connack = pub.ReadPacket();
    ASSERT_TRUE(connack.has_value()) << pub.error();
    ASSERT_EQ((*connack)[0], wire::kConnack << 4) << wire::Hex(*connack);
    for (uint16_t id = 1; id <= 3; ++id) {
      const std::optional<Bytes> raw = pub.ReadPacket();
      ASSERT_TRUE(raw.has_value()) << pub.error();
      const std::optional<AckFields> ack = ParseAck(v, *raw);
      ASSERT_TRUE(ack.has_value() && ack->type == wire::kPuback) << wire::Hex(*raw);
      EXPECT_EQ(ack->packet_id, id);
    }
    const std::vector<std::pair<std::string, std::string>> want = {
        {"split/a", "small 1"}, {"split/b", big}, {"split/c", "small 2"}};
    for (const auto& [topic, payload] : want) {
      const std::optional<wire::ReceivedPublish> m = NextPublish(sub, v);
      ASSERT_TRUE(m.has_value()) << "no " << topic;
      EXPECT_EQ(m->topic, topic);
      EXPECT_EQ(m->payload.size(), payload.size()) << topic;
      EXPECT_TRUE(m->payload == payload) << topic;
    }
  }
}

}  // namespace
}  // namespace ferry::testing
