// Bridges between real ferryd nodes: forwarding and pulling down by rule,
// topic remapping, state notifications, chains, cycles and the hop limit,
// and how a node treats a mosquitto-style bridge connecting to it.
#include <gtest/gtest.h>

#include <csignal>
#include <map>
#include <string>

#include "support/bridge_helpers.h"
#include "support/mqtt_wire.h"
#include "support/node_process.h"
#include "support/raw_client.h"
#include "support/session_helpers.h"
#include "support/subprocess.h"
#include "support/wait.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class BridgeVersions : public ::testing::TestWithParam<int> {};

// A local publish matching a forward rule reaches a subscriber upstream;
// one that matches no rule does not.
TEST_P(BridgeVersions, ForwardsMatchingMessagesUpstreamOnly) {
  NodeProcess up(BridgeTestNode("up"));
  ASSERT_TRUE(up.Start());
  NodeProcess edge(BridgeTestNode("edge", BridgeSection("up", AddressOf(up),
                                              {"forward = sensor/#",
                                               "proto_ver = " + std::to_string(GetParam())})));
  ASSERT_TRUE(edge.Start());
  RawClient sub;
  ASSERT_TRUE(ConnectRaw(sub, up.port(), Clean(MqttVersion::kV311, "up-sub")));
  ASSERT_TRUE(SubscribeRaw(sub, MqttVersion::kV311, "#", 1));
  ASSERT_TRUE(WaitBridgeState(edge, "up", "connected"));

  ASSERT_TRUE(PublishQos1(edge.port(), MqttVersion::kV5, "other/x", "not bridged"));
  ASSERT_TRUE(PublishQos1(edge.port(), MqttVersion::kV5, "sensor/t1", "21.5"));
  wire::ReceivedPublish got;
  ASSERT_TRUE(ReadPublish(sub, MqttVersion::kV311, &got));
  EXPECT_EQ(got.topic, "sensor/t1");
  EXPECT_EQ(got.payload, "21.5");
  EXPECT_EQ(got.qos, 1);
  ASSERT_TRUE(sub.Send(wire::PublishAck(wire::kPuback, MqttVersion::kV311, got.packet_id)));
  EXPECT_TRUE(ExpectNothingBeforePingresp(sub));
  EXPECT_TRUE(WaitBridge(edge, "up", [](const Json& j) { return j["sent"] == 1 && j["queued"] == 0; },
                         "sent 1, queued 0"));
  EXPECT_TRUE(edge.Stop());
  EXPECT_TRUE(up.Stop());
}

INSTANTIATE_TEST_SUITE_P(ProtoVer, BridgeVersions, ::testing::Values(4, 5),
                         [](const auto& info) { return "v" + std::to_string(info.param); });

// forward: local_prefix off, remote_prefix (with ${node}) on; subscribe:
// the other way round; each rule's QoS caps what it forwards.
TEST(Bridge, RemapsTopicsBothWaysAndCapsQos) {
  NodeProcess up(BridgeTestNode("up"));
  ASSERT_TRUE(up.Start());
  NodeProcess edge(BridgeTestNode("edge", BridgeSection("up", AddressOf(up),
                                              {"remote_prefix = site/${node}/",
                                               "forward = sensor/# 0 local_prefix=out/",
                                               "subscribe = cmd/# 1 local_prefix=in/"})));
  ASSERT_TRUE(edge.Start());
  RawClient up_sub, edge_sub;
  ASSERT_TRUE(ConnectRaw(up_sub, up.port(), Clean(MqttVersion::kV5, "up-sub")));
  ASSERT_TRUE(SubscribeRaw(up_sub, MqttVersion::kV5, "site/#", 2));
  ASSERT_TRUE(ConnectRaw(edge_sub, edge.port(), Clean(MqttVersion::kV5, "edge-sub")));
  ASSERT_TRUE(SubscribeRaw(edge_sub, MqttVersion::kV5, "in/#", 2));
  ASSERT_TRUE(WaitBridgeState(edge, "up", "connected"));

  ASSERT_TRUE(PublishQos1(edge.port(), MqttVersion::kV5, "out/sensor/t1", "up"));
  wire::ReceivedPublish got;
  ASSERT_TRUE(ReadPublish(up_sub, MqttVersion::kV5, &got));
  EXPECT_EQ(got.topic, "site/edge@127.0.0.1/sensor/t1");
  EXPECT_EQ(got.qos, 0);  // the rule caps QoS 1 to 0

  ASSERT_TRUE(PublishQos1(up.port(), MqttVersion::kV5, "site/edge@127.0.0.1/cmd/reboot", "down"));
  ASSERT_TRUE(ReadPublish(edge_sub, MqttVersion::kV5, &got));
  EXPECT_EQ(got.topic, "in/cmd/reboot");
  EXPECT_EQ(got.payload, "down");
  EXPECT_EQ(got.qos, 1);
  EXPECT_TRUE(WaitBridge(edge, "up", [](const Json& j) { return j["received"] == 1; },
                         "received 1"));
}

// The retained state "1"/"0" is on the state topic locally and upstream;
// when the edge dies, the upstream publishes "0" through the will.
TEST(Bridge, PublishesItsStateLocallyAndUpstreamThroughTheWill) {
  NodeProcess up(BridgeTestNode("up"));
  ASSERT_TRUE(up.Start());
  NodeProcess edge(BridgeTestNode("edge", BridgeSection("up", AddressOf(up), {"forward = a/#"})));
  ASSERT_TRUE(edge.Start());
  ASSERT_TRUE(WaitBridgeState(edge, "up", "connected"));
  const std::string topic = "$SYS/brokers/edge@127.0.0.1/bridges/up/state";
  auto retained = [&](const NodeProcess& node, const std::string& want) {
    return WaitFor(
        [&] {
          RawClient c;
          if (!ConnectRaw(c, node.port(), Clean(MqttVersion::kV311, "state-reader"))) return false;
          if (!SubscribeRaw(c, MqttVersion::kV311, topic, 0)) return false;
          wire::ReceivedPublish p;
          return ReadPublish(c, MqttVersion::kV311, &p, milliseconds(500)) && p.retain &&
                 p.payload == want;
        },
        kDefaultTimeout, "retained " + want + " on " + topic);
  };
  EXPECT_TRUE(retained(edge, "1"));
  EXPECT_TRUE(retained(up, "1"));
  edge.Kill();  // no DISCONNECT: the upstream sends the will
  EXPECT_TRUE(retained(up, "0"));
}

// Node1 -> Node2 -> Node3: mosquitto_pub on Node1, mosquitto_sub on Node3.
TEST(Bridge, ChainOfThreeNodesCarriesMessagesEndToEnd) {
  NodeProcess n3(BridgeTestNode("node3"));
  ASSERT_TRUE(n3.Start());
  NodeProcess n2(BridgeTestNode("node2", BridgeSection("to3", AddressOf(n3), {"forward = sensor/#"})));
  ASSERT_TRUE(n2.Start());
  NodeProcess n1(BridgeTestNode("node1", BridgeSection("to2", AddressOf(n2), {"forward = sensor/#"})));
  ASSERT_TRUE(n1.Start());
  ASSERT_TRUE(WaitBridgeState(n2, "to3", "connected"));
  ASSERT_TRUE(WaitBridgeState(n1, "to2", "connected"));

  const std::string p3 = std::to_string(n3.port());
  auto sub = StartCommand({"stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", p3, "-V",
                           "mqttv5", "-t", "sensor/#", "-q", "1", "-C", "1", "-v", "-F",
                           "%t %p %P", "-d"});
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(sub->WaitForOutput("Subscribed (mid:"));
  CommandResult pub = RunCommand({"mosquitto_pub", "-h", "127.0.0.1", "-p",
                                  std::to_string(n1.port()), "-t", "sensor/line1", "-q", "1",
                                  "-m", "from node1"});
  ASSERT_TRUE(pub.Succeeded()) << pub.ToString();
  CommandResult got = sub->Wait();
  ASSERT_TRUE(got.Succeeded()) << got.ToString();
  EXPECT_NE(got.out.find("sensor/line1 from node1"), std::string::npos) << got.out;
  // The path it took travels with it (user property ferry-path).
  EXPECT_NE(got.out.find("ferry-path:node1@127.0.0.1,node2@127.0.0.1"), std::string::npos)
      << got.out;
}

// A -> B -> C -> A, all forwarding "loop/#": a message published on any node
// reaches each subscriber exactly once, and goes round no further.
TEST(Bridge, CycleOfThreeDeliversEachMessageOncePerSubscriber) {
  NodeProcess a(BridgeTestNode("a")), b(BridgeTestNode("b")), c(BridgeTestNode("c"));
  ASSERT_TRUE(a.Start());
  ASSERT_TRUE(b.Start());
  ASSERT_TRUE(c.Start());
  // Bridges need their upstream's port, so each node gets its bridge and
  // restarts on the same port.
  a.config().Merge(BridgeSection("ab", AddressOf(b), {"forward = loop/#"}));
  b.config().Merge(BridgeSection("bc", AddressOf(c), {"forward = loop/#"}));
  c.config().Merge(BridgeSection("ca", AddressOf(a), {"forward = loop/#"}));
  ASSERT_TRUE(a.Restart(NodeProcess::Ports::kSame));
  ASSERT_TRUE(b.Restart(NodeProcess::Ports::kSame));
  ASSERT_TRUE(c.Restart(NodeProcess::Ports::kSame));
  ASSERT_TRUE(WaitBridgeState(a, "ab", "connected"));
  ASSERT_TRUE(WaitBridgeState(b, "bc", "connected"));
  ASSERT_TRUE(WaitBridgeState(c, "ca", "connected"));

  std::map<std::string, std::unique_ptr<RawClient>> subs;
  for (NodeProcess* n : {&a, &b, &c}) {
    auto s = std::make_unique<RawClient>();
    ASSERT_TRUE(ConnectRaw(*s, n->port(), Clean(MqttVersion::kV5, "sub-" + n->name())));
    ASSERT_TRUE(SubscribeRaw(*s, MqttVersion::kV5, "loop/#", 1));
    subs[n->name()] = std::move(s);
  }
  ASSERT_TRUE(PublishQos1(b.port(), MqttVersion::kV5, "loop/x", "round"));
  for (auto& [name, s] : subs) {
    std::vector<wire::ReceivedPublish> got;
    ASSERT_TRUE(ReceiveAndAck(*s, MqttVersion::kV5, 1, &got)) << name;
    EXPECT_EQ(got[0].payload, "round") << name;
  }
  // Back at b the message names b in its path: dropped, not delivered twice.
  for (auto& [name, s] : subs) EXPECT_TRUE(ExpectNothingBeforePingresp(*s)) << name;
  EXPECT_TRUE(WaitBridge(c, "ca", [](const Json& j) { return j["sent"] == 1; }, "sent 1"));
  EXPECT_TRUE(WaitBridge(b, "bc", [](const Json& j) { return j["sent"] == 1; }, "sent 1"));
  EXPECT_TRUE(WaitBridge(a, "ab", [](const Json& j) { return j["sent"] == 1; }, "sent 1"));
  CommandResult metrics = Ferryctl(b, {"broker", "metrics", "--json"});
  auto m = ParseJson(metrics.out);
  ASSERT_TRUE(m.has_value()) << metrics.ToString();
  EXPECT_EQ((*m)["dropped"]["loop"], 1) << metrics.out;
}

// A bridge does not forward a message that already made max_hops hops.
TEST(Bridge, MaxHopsStopsAMessageAndCountsIt) {
  NodeProcess n3(BridgeTestNode("n3"));
  ASSERT_TRUE(n3.Start());
  NodeProcess n2(BridgeTestNode("n2", BridgeSection("to3", AddressOf(n3), {"forward = h/#", "max_hops = 1"})));
  ASSERT_TRUE(n2.Start());
  NodeProcess n1(BridgeTestNode("n1", BridgeSection("to2", AddressOf(n2), {"forward = h/#"})));
  ASSERT_TRUE(n1.Start());
  ASSERT_TRUE(WaitBridgeState(n1, "to2", "connected"));
  ASSERT_TRUE(WaitBridgeState(n2, "to3", "connected"));
  RawClient sub2, sub3;
  ASSERT_TRUE(ConnectRaw(sub2, n2.port(), Clean(MqttVersion::kV5, "sub2")));
  ASSERT_TRUE(SubscribeRaw(sub2, MqttVersion::kV5, "h/#", 1));
  ASSERT_TRUE(ConnectRaw(sub3, n3.port(), Clean(MqttVersion::kV5, "sub3")));
  ASSERT_TRUE(SubscribeRaw(sub3, MqttVersion::kV5, "h/#", 1));
  ASSERT_TRUE(PublishQos1(n1.port(), MqttVersion::kV5, "h/1", "one hop only"));
  std::vector<wire::ReceivedPublish> got;
  ASSERT_TRUE(ReceiveAndAck(sub2, MqttVersion::kV5, 1, &got));
  EXPECT_TRUE(WaitBridge(n2, "to3", [](const Json& j) { return j["dropped_by"]["loop"] == 1; },
                         "one message dropped for its hops"));
  EXPECT_TRUE(ExpectNothingBeforePingresp(sub3));
  // Published on n2 itself (no hop yet), it goes on.
  ASSERT_TRUE(PublishQos1(n2.port(), MqttVersion::kV5, "h/2", "local"));
  ASSERT_TRUE(ReceiveAndAck(sub3, MqttVersion::kV5, 1, &got));
  EXPECT_EQ(got.back().payload, "local");
}

// A 3.1.1 client connecting with the bridge bit (protocol level 0x84), as a
// mosquitto bridge does, gets neither its own messages back nor loses the
// RETAIN flag of what it receives.
TEST(Bridge, AMosquittoStyleBridgeGetsNoLocalAndRetainAsPublished) {
  NodeProcess node(BridgeTestNode("n"));
  ASSERT_TRUE(node.Start());
  RawClient bridge;
  ASSERT_TRUE(bridge.Connect(node.port()));
  Bytes connect = wire::Connect(Clean(MqttVersion::kV311, "mosq-bridge"));
  connect[8] = 0x84;  // protocol level 4 | bridge bit
  ASSERT_TRUE(bridge.Send(connect));
  ASSERT_TRUE(ExpectPacket(bridge, wire::kConnack));
  ASSERT_TRUE(SubscribeRaw(bridge, MqttVersion::kV311, "b/#", 1));
  wire::PublishFields own{"b/own", "mine", 1, false, false, 7, {}};
  ASSERT_TRUE(bridge.Send(wire::Publish(MqttVersion::kV311, own)));
  ASSERT_TRUE(ExpectPacket(bridge, wire::kPuback));
  ASSERT_TRUE(PublishQos1(node.port(), MqttVersion::kV311, "b/other", "theirs", /*retain=*/true));
  wire::ReceivedPublish got;
  ASSERT_TRUE(ReadPublish(bridge, MqttVersion::kV311, &got));
  EXPECT_EQ(got.topic, "b/other");  // not b/own
  EXPECT_TRUE(got.retain);          // kept as published [MQTT-3.3.1-12 for bridges]
}

// start = lazy: no link until a message waits, and none again once idle.
TEST(Bridge, LazyConnectsForQueuedMessagesAndDisconnectsWhenIdle) {
  NodeProcess up(BridgeTestNode("up"));
  ASSERT_TRUE(up.Start());
  NodeProcess edge(BridgeTestNode("edge", BridgeSection("up", AddressOf(up),
                                              {"forward = l/#", "start = lazy",
                                               "idle_timeout = 300ms"})));
  ASSERT_TRUE(edge.Start());
  ASSERT_TRUE(WaitBridgeState(edge, "up", "idle"));
  EXPECT_EQ(BridgeShow(edge, "up").value_or(Json())["connects"], 0);
  RawClient sub;
  ASSERT_TRUE(ConnectRaw(sub, up.port(), Clean(MqttVersion::kV5, "up-sub")));
  ASSERT_TRUE(SubscribeRaw(sub, MqttVersion::kV5, "l/#", 1));
  ASSERT_TRUE(PublishQos1(edge.port(), MqttVersion::kV5, "l/1", "wake up"));
  std::vector<wire::ReceivedPublish> got;
  ASSERT_TRUE(ReceiveAndAck(sub, MqttVersion::kV5, 1, &got));
  EXPECT_EQ(got[0].payload, "wake up");
  EXPECT_TRUE(WaitBridge(edge, "up", [](const Json& j) {
    return j["state"] == "idle" && j["connects"] == 1;
  }, "idle again after one connection"));
}

// SIGHUP adds, changes and removes bridges of the config file.
TEST(Bridge, ReloadAddsChangesAndRemovesBridges) {
  NodeProcess up(BridgeTestNode("up"));
  ASSERT_TRUE(up.Start());
  NodeProcess edge(BridgeTestNode("edge"));
  ASSERT_TRUE(edge.Start());
  edge.config().Merge(BridgeSection("hot", AddressOf(up), {"forward = x/#"}));
  ASSERT_TRUE(WriteFile(edge.config_path(), edge.config().Render()));
  ASSERT_TRUE(edge.Signal(SIGHUP));
  ASSERT_TRUE(WaitBridgeState(edge, "hot", "connected"));
  edge.config().Set("bridge.hot", "forward", "y/#");
  ASSERT_TRUE(WriteFile(edge.config_path(), edge.config().Render()));
  ASSERT_TRUE(edge.Signal(SIGHUP));
  ASSERT_TRUE(WaitBridge(edge, "hot", [](const Json& j) {
    return j["forward"].size() == 1 && j["forward"][0] == "y/# 1" && j["state"] == "connected";
  }, "the new rule"));
  edge.config().Erase("bridge.hot", "address");
  ASSERT_TRUE(WriteFile(edge.config_path(), edge.config().Render()));
  ASSERT_TRUE(edge.Signal(SIGHUP));  // a bad config: the running one stays
  EXPECT_TRUE(edge.WaitForLog("missing required key 'address'"));
  EXPECT_TRUE(BridgeShow(edge, "hot").has_value());
}

}  // namespace
}  // namespace ferry::testing
