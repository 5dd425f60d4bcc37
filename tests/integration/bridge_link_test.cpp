// The bridge's link to its upstream, byte by byte: the test plays the
// upstream broker on a socket of its own, checks the CONNECT, SUBSCRIBE and
// PUBLISH packets it gets, drops the link and checks what is sent again
// (after eclipse/mosquitto test/broker/06-bridge-br2b-disconnect-qos1.py).
// And failover between addresses, away from a dead one and back.
#include <gtest/gtest.h>

#include <string>

#include "support/bridge_helpers.h"
#include "support/mqtt_wire.h"
#include "support/node_process.h"
#include "support/raw_client.h"
#include "support/session_helpers.h"
#include "support/wait.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr MqttVersion kV311 = MqttVersion::kV311;

uint16_t U16(const Bytes& b, size_t at) { return static_cast<uint16_t>(b[at] << 8 | b[at + 1]); }

std::string Str(const Bytes& b, size_t* at) {
  const uint16_t n = U16(b, *at);
  std::string s(b.begin() + static_cast<std::ptrdiff_t>(*at + 2),
                b.begin() + static_cast<std::ptrdiff_t>(*at + 2 + n));
  *at += 2 + n;
  return s;
}

// What a 3.1.1 CONNECT says, from its body.
struct ConnectSeen {
  uint8_t level = 0;
  uint8_t flags = 0;
  uint16_t keepalive = 0;
  std::string client_id, will_topic, will_payload;
};

ConnectSeen ParseConnect(const Bytes& body) {
  ConnectSeen c;
  size_t at = 0;
  EXPECT_EQ(Str(body, &at), "MQTT");
  c.level = body[at++];
  c.flags = body[at++];
  c.keepalive = U16(body, at);
  at += 2;
  c.client_id = Str(body, &at);
  if (c.flags & 0x04) {
    c.will_topic = Str(body, &at);
    c.will_payload = Str(body, &at);
  }
  return c;
}

Bytes Connack(bool session_present) {
  return wire::Frame(0x20, {static_cast<uint8_t>(session_present ? 1 : 0), 0x00});
}

// Reads packets until one of `type` arrives (others are collected in *other).
::testing::AssertionResult ReadUntil(RawClient& c, uint8_t type, wire::RawPacket* out,
                                     std::vector<wire::RawPacket>* other = nullptr) {
  for (int i = 0; i < 20; ++i) {
    auto raw = c.ReadPacket();
    if (!raw) return ::testing::AssertionFailure() << "no packet of type " << int(type) << ": " << c.error();
    auto p = wire::Parse(*raw);
    if (!p) return ::testing::AssertionFailure() << "unparsable packet " << wire::Hex(*raw);
    if (p->type == type) {
      *out = *p;
      return ::testing::AssertionSuccess();
    }
    if (other) other->push_back(*p);
  }
  return ::testing::AssertionFailure() << "no packet of type " << int(type) << " in 20";
}

// The bridge's side of a (3.1.1) session as the fake upstream sees it: the
// CONNECT, the SUBSCRIBE for its subscribe rule and its state "1".
class FakeUpstreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = std::make_unique<NodeProcess>(BridgeTestNode(
        "edge", BridgeSection("up", upstream_.address(),
                              {"proto_ver = 4", "clientid = bridge-test", "forward = bridge/# 1",
                               "subscribe = cmd/# 1", "keepalive = 60"})));
    ASSERT_TRUE(node_->Start());
  }

  // Accepts the bridge, checks its CONNECT and answers CONNACK.
  void AcceptBridge(RawClient& link, bool session_present) {
    ASSERT_TRUE(upstream_.Accept(&link));
    wire::RawPacket connect;
    ASSERT_TRUE(ReadUntil(link, wire::kConnect, &connect));
    ConnectSeen c = ParseConnect(connect.body);
    EXPECT_EQ(c.level, 0x84);  // 3.1.1 with the bridge bit
    EXPECT_EQ(c.flags & 0x02, 0);  // clean session 0
    EXPECT_EQ(c.flags & 0x04, 0x04);  // a will...
    EXPECT_EQ(c.flags & 0x20, 0x20);  // ...retained...
    EXPECT_EQ((c.flags >> 3) & 3, 1);  // ...at QoS 1
    EXPECT_EQ(c.will_topic, "$SYS/brokers/edge@127.0.0.1/bridges/up/state");
    EXPECT_EQ(c.will_payload, "0");
    EXPECT_EQ(c.client_id, "bridge-test");
    EXPECT_EQ(c.keepalive, 60);
    ASSERT_TRUE(link.Send(Connack(session_present)));
  }

  FakeUpstream upstream_;
  std::unique_ptr<NodeProcess> node_;
};

TEST_F(FakeUpstreamTest, ConnectSubscribePublishAndRedeliveryAfterTheLinkDrops) {
  RawClient link;
  ASSERT_NO_FATAL_FAILURE(AcceptBridge(link, false));
  // SUBSCRIBE to the subscribe rule, QoS 1.
  wire::RawPacket sub;
  std::vector<wire::RawPacket> other;
  ASSERT_TRUE(ReadUntil(link, wire::kSubscribe, &sub, &other));
  size_t at = 2;
  EXPECT_EQ(Str(sub.body, &at), "cmd/#");
  EXPECT_EQ(sub.body[at], 1);
  ASSERT_TRUE(link.Send(wire::Frame(0x90, {sub.body[0], sub.body[1], 0x01})));
  // The retained state "1", QoS 1.
  wire::RawPacket state;
  ASSERT_TRUE(ReadUntil(link, wire::kPublish, &state));
  auto st = wire::ParsePublish(kV311, wire::Frame(0x30 | state.flags, state.body));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->topic, "$SYS/brokers/edge@127.0.0.1/bridges/up/state");
  EXPECT_EQ(st->payload, "1");
  EXPECT_TRUE(st->retain);
  ASSERT_TRUE(link.Send(wire::PublishAck(wire::kPuback, kV311, st->packet_id)));

  // A local QoS 1 publish goes up; the link drops before the PUBACK.
  RawClient pub;
  ASSERT_TRUE(ConnectRaw(pub, node_->port(), Clean(kV311, "local-pub")));
  ASSERT_TRUE(pub.Send(wire::Publish(kV311, {"bridge/disconnect/test", "message", 1, false, false, 1, {}})));
  ASSERT_TRUE(ExpectPacket(pub, wire::kPuback));  // safe in the edge's queue
  wire::ReceivedPublish first;
  ASSERT_TRUE(ReadPublish(link, kV311, &first));
  EXPECT_EQ(first.topic, "bridge/disconnect/test");
  EXPECT_EQ(first.qos, 1);
  EXPECT_FALSE(first.dup);
  link.Close();

  // The upstream kept the session: the same PUBLISH again, DUP set, same
  // packet identifier [MQTT-4.4.0-1].
  RawClient again;
  ASSERT_NO_FATAL_FAILURE(AcceptBridge(again, true));
  wire::ReceivedPublish resent;
  ASSERT_TRUE(ReadPublish(again, kV311, &resent));
  EXPECT_EQ(resent.topic, "bridge/disconnect/test");
  EXPECT_EQ(resent.payload, "message");
  EXPECT_TRUE(resent.dup);
  EXPECT_EQ(resent.packet_id, first.packet_id);
  ASSERT_TRUE(again.Send(wire::PublishAck(wire::kPuback, kV311, resent.packet_id)));
  again.Close();

  // A new session (session present 0): nothing left to send again.
  RawClient third;
  ASSERT_NO_FATAL_FAILURE(AcceptBridge(third, false));
  wire::RawPacket next;
  ASSERT_TRUE(ReadUntil(third, wire::kSubscribe, &next));
  ASSERT_TRUE(third.Send(wire::Frame(0x90, {next.body[0], next.body[1], 0x01})));
  ASSERT_TRUE(ReadUntil(third, wire::kPublish, &next));  // the state "1"
  auto p = wire::ParsePublish(kV311, wire::Frame(0x30 | next.flags, next.body));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->payload, "1");
  ASSERT_TRUE(third.Send(wire::PublishAck(wire::kPuback, kV311, p->packet_id)));
  // The next PUBLISH is a new message, not the acknowledged one again.
  ASSERT_TRUE(pub.Send(wire::Publish(kV311, {"bridge/next", "later", 1, false, false, 2, {}})));
  ASSERT_TRUE(ExpectPacket(pub, wire::kPuback));
  wire::ReceivedPublish later;
  ASSERT_TRUE(ReadPublish(third, kV311, &later));
  EXPECT_EQ(later.topic, "bridge/next");
  EXPECT_FALSE(later.dup);
}

TEST_F(FakeUpstreamTest, AMessageNeverAcknowledgedIsSentAgainAsNewOnAFreshSession) {
  RawClient link;
  ASSERT_NO_FATAL_FAILURE(AcceptBridge(link, false));
  RawClient pub;
  ASSERT_TRUE(ConnectRaw(pub, node_->port(), Clean(kV311, "local-pub")));
  ASSERT_TRUE(pub.Send(wire::Publish(kV311, {"bridge/a", "one", 1, false, false, 1, {}})));
  ASSERT_TRUE(ExpectPacket(pub, wire::kPuback));
  wire::RawPacket p;
  bool got_message = false;
  for (int i = 0; i < 5 && !got_message; ++i) {
    ASSERT_TRUE(ReadUntil(link, wire::kPublish, &p));
    auto m = wire::ParsePublish(kV311, wire::Frame(0x30 | p.flags, p.body));
    got_message = m && m->topic == "bridge/a";
  }
  ASSERT_TRUE(got_message);
  link.Close();
  RawClient again;
  ASSERT_NO_FATAL_FAILURE(AcceptBridge(again, false));
  bool resent = false;
  for (int i = 0; i < 5 && !resent; ++i) {
    std::vector<wire::RawPacket> other;
    ASSERT_TRUE(ReadUntil(again, wire::kPublish, &p, &other));
    for (const auto& o : other) {
      if (o.type == wire::kSubscribe) {
        ASSERT_TRUE(again.Send(wire::Frame(0x90, {o.body[0], o.body[1], 0x01})));
      }
    }
    auto m = wire::ParsePublish(kV311, wire::Frame(0x30 | p.flags, p.body));
    ASSERT_TRUE(m.has_value());
    if (m->qos > 0) {
      ASSERT_TRUE(again.Send(wire::PublishAck(wire::kPuback, kV311, m->packet_id)));
    }
    resent = m->topic == "bridge/a" && m->payload == "one";
    if (resent) {
      EXPECT_FALSE(m->dup);  // a new session: sent as new
    }
  }
  EXPECT_TRUE(resent);
}

// A QoS 2 message the upstream received (PUBREC) and the edge released
// (PUBREL) when the edge is killed. The upstream it reaches after the
// restart has no session for it (a failover, or the session was lost): the
// message goes again as a new PUBLISH, not as a PUBREL that upstream would
// answer "not found", and it is done only after that PUBLISH's exchange.
TEST(FakeUpstreamFailover, ReleasedQos2GoesAgainAsPublishToANewSession) {
  FakeUpstream upstream;
  NodeProcess edge(BridgeTestNode(
      "edge", BridgeSection("up", upstream.address(),
                            {"proto_ver = 4", "clientid = bridge-test", "forward = q/# 2",
                             "notifications = false", "keepalive = 60"})));
  ASSERT_TRUE(edge.Start());
  RawClient link;
  ASSERT_TRUE(upstream.Accept(&link));
  wire::RawPacket p;
  ASSERT_TRUE(ReadUntil(link, wire::kConnect, &p));
  ASSERT_TRUE(link.Send(Connack(false)));
  RawClient pub;
  ASSERT_TRUE(ConnectRaw(pub, edge.port(), Clean(kV311, "local-pub")));
  ASSERT_TRUE(pub.Send(wire::Publish(kV311, {"q/a", "one", 2, false, false, 1, {}})));
  ASSERT_TRUE(ReadUntil(link, wire::kPublish, &p));
  auto m = wire::ParsePublish(kV311, wire::Frame(0x30 | p.flags, p.body));
  ASSERT_TRUE(m && m->topic == "q/a" && m->qos == 2);
  ASSERT_TRUE(link.Send(wire::PublishAck(wire::kPubrec, kV311, m->packet_id)));
  ASSERT_TRUE(ReadUntil(link, wire::kPubrel, &p));  // the released record is written
  edge.Kill();
  link.Close();

  ASSERT_TRUE(edge.Restart(NodeProcess::Ports::kSame));
  RawClient backup;
  ASSERT_TRUE(upstream.Accept(&backup));
  ASSERT_TRUE(ReadUntil(backup, wire::kConnect, &p));
  ASSERT_TRUE(backup.Send(Connack(false)));
  std::vector<wire::RawPacket> other;
  ASSERT_TRUE(ReadUntil(backup, wire::kPublish, &p, &other));
  for (const auto& o : other) EXPECT_NE(o.type, wire::kPubrel) << "a PUBREL into a new session";
  auto again = wire::ParsePublish(kV311, wire::Frame(0x30 | p.flags, p.body));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->topic, "q/a");
  EXPECT_EQ(again->payload, "one");
  EXPECT_EQ(again->qos, 2);
  EXPECT_FALSE(again->dup);  // the first attempt in this session
  EXPECT_EQ(again->packet_id, m->packet_id);
  // "Not found" before its PUBREC is no delivery: the message stays queued.
  ASSERT_TRUE(backup.Send(wire::PublishAck(wire::kPubcomp, kV311, again->packet_id)));
  ASSERT_TRUE(backup.Send(wire::PublishAck(wire::kPubrec, kV311, again->packet_id)));
  ASSERT_TRUE(ReadUntil(backup, wire::kPubrel, &p));
  ASSERT_TRUE(WaitBridge(edge, "up", [](const Json& j) { return j["queued"] == 1; },
                         "the message still queued before its PUBCOMP"));
  ASSERT_TRUE(backup.Send(wire::PublishAck(wire::kPubcomp, kV311, again->packet_id)));
  ASSERT_TRUE(WaitBridge(edge, "up", [](const Json& j) { return j["queued"] == 0; },
                         "the queue empty after the PUBCOMP"));
}

// What the upstream sends down is published locally, and acknowledged
// upstream only after that.
TEST_F(FakeUpstreamTest, PulledDownMessagesArePublishedLocallyThenAcknowledged) {
  RawClient local;
  ASSERT_TRUE(ConnectRaw(local, node_->port(), Clean(kV311, "local-sub")));
  ASSERT_TRUE(SubscribeRaw(local, kV311, "cmd/#", 1));
  RawClient link;
  ASSERT_NO_FATAL_FAILURE(AcceptBridge(link, false));
  wire::RawPacket sub;
  ASSERT_TRUE(ReadUntil(link, wire::kSubscribe, &sub));
  ASSERT_TRUE(link.Send(wire::Frame(0x90, {sub.body[0], sub.body[1], 0x01})));
  ASSERT_TRUE(link.Send(wire::Publish(kV311, {"cmd/reboot", "now", 1, false, false, 42, {}})));
  wire::ReceivedPublish got;
  ASSERT_TRUE(ReadPublish(local, kV311, &got));
  EXPECT_EQ(got.topic, "cmd/reboot");
  EXPECT_EQ(got.payload, "now");
  wire::RawPacket ack;
  ASSERT_TRUE(ReadUntil(link, wire::kPuback, &ack));
  EXPECT_EQ(U16(ack.body, 0), 42);
}

// An upstream that takes the connection but never answers CONNECT is given
// up on after connect_timeout, and tried again.
TEST(FakeUpstreamSilent, NoConnackWithinTheConnectTimeoutMeansTryAgain) {
  FakeUpstream upstream;
  NodeProcess edge(BridgeTestNode("edge", BridgeSection("up", upstream.address(),
                                                        {"forward = a/#", "connect_timeout = 300ms"})));
  ASSERT_TRUE(edge.Start());
  RawClient first;
  ASSERT_TRUE(upstream.Accept(&first));
  wire::RawPacket connect;
  ASSERT_TRUE(ReadUntil(first, wire::kConnect, &connect));
  // No CONNACK: the bridge closes this connection and connects again.
  EXPECT_TRUE(first.IsClosed(seconds(5)));
  RawClient second;
  ASSERT_TRUE(upstream.Accept(&second, seconds(5)));
  ASSERT_TRUE(ReadUntil(second, wire::kConnect, &connect));
  EXPECT_TRUE(WaitBridge(edge, "up", [](const Json& j) {
    return j["last_error"].get<std::string>().find("no CONNACK") != std::string::npos;
  }, "the CONNACK timeout as last error"));
}

// A dead first address fails over to the second; when the first comes
// back, the bridge moves back to it.
TEST(BridgeFailover, FromADeadFirstAddressToASecondAndBack) {
  RefusingPort first;
  const std::string first_address = "127.0.0.1:" + std::to_string(first.port());
  NodeProcess second(BridgeTestNode("second"));
  ASSERT_TRUE(second.Start());
  NodeProcess edge(BridgeTestNode("edge", BridgeSection("up", first_address + ", " + AddressOf(second),
                                              {"forward = f/#", "primary_retry = 300ms"})));
  ASSERT_TRUE(edge.Start());
  ASSERT_TRUE(WaitBridge(edge, "up", [&](const Json& j) {
    return j["state"] == "connected" && j["address"] == AddressOf(second);
  }, "connected to the second address"));
  RawClient sub2;
  ASSERT_TRUE(ConnectRaw(sub2, second.port(), Clean(kV311, "sub2")));
  ASSERT_TRUE(SubscribeRaw(sub2, kV311, "f/#", 1));
  RawClient pub;
  ASSERT_TRUE(ConnectRaw(pub, edge.port(), Clean(kV311, "pub")));
  ASSERT_TRUE(PublishManyRaw(pub, kV311, "f/x", 1, 1, [](int) { return "to second"; }));
  std::vector<wire::ReceivedPublish> got;
  ASSERT_TRUE(ReceiveAndAck(sub2, kV311, 1, &got));
  EXPECT_EQ(got[0].payload, "to second");

  // The first address comes up: within primary_retry the bridge is back.
  first.Release();
  NodeProcess primary(BridgeTestNode("primary"));
  primary.config().Set("listener.tcp.default", "bind", first_address);
  ASSERT_TRUE(primary.Start());
  RawClient sub1;
  ASSERT_TRUE(ConnectRaw(sub1, primary.port(), Clean(kV311, "sub1")));
  ASSERT_TRUE(SubscribeRaw(sub1, kV311, "f/#", 1));
  ASSERT_TRUE(WaitBridge(edge, "up", [&](const Json& j) {
    return j["state"] == "connected" && j["address"] == first_address;
  }, "connected to the first address again"));
  ASSERT_TRUE(PublishManyRaw(pub, kV311, "f/x", 1, 1, [](int) { return "to first"; }));
  got.clear();
  ASSERT_TRUE(ReceiveAndAck(sub1, kV311, 1, &got));
  EXPECT_EQ(got[0].payload, "to first");
  EXPECT_TRUE(edge.WaitForLog("answers again; moving back to it"));
}

// round_robin goes on to the next address when the one in use fails.
TEST(BridgeFailover, RoundRobinMovesOnWhenTheLinkDrops) {
  NodeProcess a(BridgeTestNode("a")), b(BridgeTestNode("b"));
  ASSERT_TRUE(a.Start());
  ASSERT_TRUE(b.Start());
  NodeProcess edge(BridgeTestNode("edge", BridgeSection("up", AddressOf(a) + ", " + AddressOf(b),
                                              {"forward = r/#", "address_policy = round_robin"})));
  ASSERT_TRUE(edge.Start());
  ASSERT_TRUE(WaitBridge(edge, "up", [&](const Json& j) {
    return j["state"] == "connected" && j["address"] == AddressOf(a);
  }, "connected to a"));
  a.Kill();
  ASSERT_TRUE(WaitBridge(edge, "up", [&](const Json& j) {
    return j["state"] == "connected" && j["address"] == AddressOf(b);
  }, "connected to b"));
}

}  // namespace
}  // namespace ferry::testing
