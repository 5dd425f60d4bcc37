// Bridges on the nodes of a cluster of real ferryd nodes, to a real ferryd
// upstream: a bridge configured on every node (scope node) sends each
// message upstream once and gives each subscriber in the cluster each
// pulled-down message once; a bridge of scope cluster runs on one node at a
// time, moves when that node is killed, and what was queued on the killed
// node goes upstream when it is back.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "support/bridge_helpers.h"
#include "support/cluster_fixture.h"
#include "support/ctl.h"
#include "support/mosq_client.h"
#include "support/paho_client.h"
#include "support/session_helpers.h"
#include "support/wait.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;


// Takes messages from `client` until `count` distinct payloads came or
// `timeout` passed; counts how often each payload came.
template <typename Client>
std::map<std::string, int> Collect(Client& client, size_t count, milliseconds timeout) {
  std::map<std::string, int> seen;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (seen.size() < count && std::chrono::steady_clock::now() < deadline) {
    if (auto m = client.Receive(milliseconds(500))) ++seen[m->payload];
  }
  // Anything more would be a duplicate.
  while (auto m = client.Receive(milliseconds(500))) ++seen[m->payload];
  return seen;
}

::testing::AssertionResult EachOnce(const std::map<std::string, int>& seen, size_t count,
                                    const std::string& who) {
  if (seen.size() != count) {
    return ::testing::AssertionFailure() << who << ": " << seen.size() << " of " << count
                                         << " distinct messages";
  }
  for (const auto& [payload, n] : seen) {
    if (n != 1) return ::testing::AssertionFailure() << who << ": '" << payload << "' came " << n << " times";
  }
  return ::testing::AssertionSuccess();
}

std::string Field(const NodeProcess& n, const std::string& bridge, const std::string& key) {
  auto j = BridgeShow(n, bridge);
  if (!j || !j->contains(key)) return "";
  return (*j)[key].is_string() ? (*j)[key].get<std::string>() : (*j)[key].dump();
}

class ClusterBridgesBase : public ClusterFixture {
 protected:
  // The node the bridge `name` of scope cluster runs on, as every running
  // node says; nullptr if they do not agree (yet).
  NodeProcess* Runner(const std::string& name) {
    NodeProcess* runner = nullptr;
    std::string said;
    for (auto& n : nodes_) {
      if (!n->Running()) continue;
      const std::string on = Field(*n, name, "runs_on");
      if (on.empty() || (!said.empty() && on != said)) return nullptr;
      said = on;
      if (n->name() == on) runner = n.get();
    }
    return runner;
  }
  // Waits until every running node says the bridge runs on the same one
  // (and, with `connected`, that it is connected there).
  ::testing::AssertionResult WaitRunner(const std::string& name, NodeProcess** out,
                                        seconds timeout, bool connected = true) {
    return WaitFor(
        [&] {
          *out = Runner(name);
          return *out != nullptr && (!connected || Field(**out, name, "state") == "connected");
        },
        timeout, "bridge " + name + " running on one node");
  }
};

using ClusterBridges = ClusterBridgesBase;

class ClusterBridgesUp : public ClusterBridgesBase {
 protected:
  void SetUp() override {
    up_ = std::make_unique<NodeProcess>(BridgeTestNode("up"));
    ASSERT_TRUE(up_->Start());
  }
  // Three nodes joined, each with `bridge` (a [bridge.NAME] section) and
  // quick failure detection.
  void ThreeWith(const std::string& bridge) {
    Joined(3, "peer_down_after = 2s\n" + bridge);
  }
  NodeProcess& up() { return *up_; }
  // A subscriber to `filter` on each node ("sub<i>"), connected.
  ::testing::AssertionResult SubscribeOnEach(const std::string& filter,
                                             std::vector<std::unique_ptr<MosqClient>>* subs) {
    for (int i = 1; i <= 3; ++i) {
      subs->push_back(std::make_unique<MosqClient>(N(i).port(), "sub" + std::to_string(i)));
      if (auto ok = subs->back()->Connect(); !ok) return ok;
      if (auto ok = subs->back()->Subscribe(filter, 1); !ok) return ok;
    }
    return ::testing::AssertionSuccess();
  }
  // Each node's one route is known everywhere and its bridge `name` is up.
  void AllReady(const std::string& name) {
    for (int i = 1; i <= 3; ++i) {
      ASSERT_TRUE(RoutesKnown(i, 1));
      ASSERT_TRUE(WaitBridgeState(N(i), name, "connected"));
    }
  }

  std::unique_ptr<NodeProcess> up_;
};

TEST_F(ClusterBridgesUp, ABridgeOnEveryNodeSendsEachMessageUpstreamOnce) {
  ThreeWith(BridgeSection("up", AddressOf(up()), {"forward = sensor/# 1"}));
  MosqClient upsub(up().port(), "upsub");
  ASSERT_TRUE(upsub.Connect());
  ASSERT_TRUE(upsub.Subscribe("sensor/#", 1));
  // A subscriber on every node: each node forwards what is published
  // elsewhere to it, and its bridge must not send that upstream again.
  std::vector<std::unique_ptr<MosqClient>> subs;
  ASSERT_TRUE(SubscribeOnEach("sensor/#", &subs));
  AllReady("up");
  // 3,000 messages, a third published on each node.
  constexpr int kEach = 1000;
  for (int i = 1; i <= 3; ++i) {
    PahoClient pub(N(i).port(), "pub" + std::to_string(i), MqttVersion::kV5);
    ASSERT_TRUE(pub.Connect());
    ASSERT_TRUE(pub.PublishBurst("sensor/n" + std::to_string(i), kEach, 1, seconds(60)));
  }
  // Paho numbers each burst 0..kEach-1: topic and payload tell them apart.
  std::map<std::string, int> upstream;
  const auto deadline = std::chrono::steady_clock::now() + seconds(60);
  while (upstream.size() < 3 * kEach && std::chrono::steady_clock::now() < deadline) {
    if (auto m = upsub.Receive(milliseconds(500))) ++upstream[m->topic + "/" + m->payload];
  }
  while (auto m = upsub.Receive(milliseconds(1000))) ++upstream[m->topic + "/" + m->payload];
  EXPECT_TRUE(EachOnce(upstream, 3 * kEach, "the upstream subscriber"));
  for (int i = 1; i <= 3; ++i) {
    EXPECT_TRUE(WaitBridge(N(i), "up", [](const Json& j) { return j["sent"] == kEach; },
                           "ferry" + std::to_string(i) + " sent its own " + std::to_string(kEach)));
  }
}

TEST_F(ClusterBridgesUp, ABridgeOnEveryNodeGivesEachSubscriberEachPulledMessageOnce) {
  ThreeWith(BridgeSection("up", AddressOf(up()), {"subscribe = cmd/# 1"}));
  std::vector<std::unique_ptr<MosqClient>> subs;
  ASSERT_TRUE(SubscribeOnEach("cmd/#", &subs));
  AllReady("up");
  constexpr int kCount = 300;
  PahoClient pub(up().port(), "cmdpub", MqttVersion::kV5);
  ASSERT_TRUE(pub.Connect());
  ASSERT_TRUE(pub.PublishBurst("cmd/all", kCount, 1, seconds(60)));
  for (int i = 1; i <= 3; ++i) {
    EXPECT_TRUE(EachOnce(Collect(*subs[i - 1], kCount, seconds(30)), kCount,
                         "the subscriber on ferry" + std::to_string(i)));
  }
}

TEST_F(ClusterBridgesUp, AClusterWideBridgeRunsOnOneNodeAndMovesWhenItsNodeIsKilled) {
  ThreeWith(BridgeSection("hub", AddressOf(up()),
                          {"scope = cluster", "forward = sensor/# 1", "subscribe = cmd/# 1"}));
  NodeProcess* runner = nullptr;
  ASSERT_TRUE(WaitRunner("hub", &runner, seconds(20)));
  for (auto& n : nodes_) {
    if (n.get() != runner) {
      EXPECT_EQ(Field(*n, "hub", "state"), "standby") << n->name();
    }
  }
  // ferryctl on a node where it does not run says where it does.
  NodeProcess& other = runner == &N(1) ? N(2) : N(1);
  EXPECT_NE(Ctl(other, {"bridges", "list"}).out.find("scope cluster, runs on " + runner->name()),
            std::string::npos)
      << Ctl(other, {"bridges", "list"}).out;

  // Published on any node, sent upstream once (by the one bridge).
  MosqClient upsub(up().port(), "upsub");
  ASSERT_TRUE(upsub.Connect());
  ASSERT_TRUE(upsub.Subscribe("sensor/#", 1));
  ASSERT_TRUE(RoutesKnown(runner->name(), 1));  // its forward rule is a route
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(PublishQos1(N(i).port(), MqttVersion::kV5, "sensor/x", "from" + std::to_string(i)));
  }
  EXPECT_TRUE(EachOnce(Collect(upsub, 3, seconds(20)), 3, "the upstream subscriber"));
  // Pulled down once, to subscribers on every node.
  std::vector<std::unique_ptr<MosqClient>> subs;
  ASSERT_TRUE(SubscribeOnEach("cmd/#", &subs));
  // One route each; the node the bridge runs on has its forward rule too.
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(RoutesKnown(i, &N(i) == runner ? 2 : 1));
  ASSERT_TRUE(PublishQos1(up().port(), MqttVersion::kV5, "cmd/go", "go"));
  for (int i = 1; i <= 3; ++i) {
    EXPECT_TRUE(EachOnce(Collect(*subs[i - 1], 1, seconds(20)), 1,
                         "the subscriber on ferry" + std::to_string(i)));
  }

  // Its node dies: another takes it over once the others declare it down
  // (peer_down_after, 2 s here).
  const std::string was = runner->name();
  const auto killed = std::chrono::steady_clock::now();
  runner->Kill();
  NodeProcess* next = nullptr;
  ASSERT_TRUE(WaitRunner("hub", &next, seconds(30)));
  const auto took = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - killed);
  EXPECT_NE(next->name(), was);
  RecordProperty("takeover_ms", static_cast<int>(took.count()));
  for (auto& n : nodes_) {
    if (!n->Running() || n.get() == next) continue;
    ASSERT_TRUE(PublishQos1(n->port(), MqttVersion::kV5, "sensor/y", "after " + n->name()));
    ASSERT_TRUE(PublishQos1(next->port(), MqttVersion::kV5, "sensor/y", "on " + next->name()));
  }
  EXPECT_TRUE(EachOnce(Collect(upsub, 2, seconds(20)), 2, "the upstream subscriber after the move"));

  // Stopped from a node where it does not run: it stops on every node.
  NodeProcess& standby = [&]() -> NodeProcess& {
    for (auto& n : nodes_) {
      if (n->Running() && n.get() != next) return *n;
    }
    return *next;
  }();
  CommandResult stop = Ctl(standby, {"bridges", "stop", "hub"});
  ASSERT_TRUE(stop.Succeeded()) << stop.ToString();
  EXPECT_EQ(stop.out, "bridge is stopped on every node of the cluster.\n");
  EXPECT_TRUE(WaitBridgeState(*next, "hub", "stopped"));
  EXPECT_EQ(Field(standby, "hub", "state"), "stopped");
  CommandResult start = Ctl(standby, {"bridges", "start", "hub"});
  ASSERT_TRUE(start.Succeeded()) << start.ToString();
  NodeProcess* again = nullptr;
  EXPECT_TRUE(WaitRunner("hub", &again, seconds(20)));
}

TEST_F(ClusterBridges, WhatAKilledNodeHadQueuedGoesUpstreamWhenItIsBack) {
  // The upstream is not there yet: the bridge queues.
  RefusingPort port;
  const std::string address = "127.0.0.1:" + std::to_string(port.port());
  Joined(3, "peer_down_after = 2s\n" +
                BridgeSection("hub", address, {"scope = cluster", "forward = sensor/# 1"}));
  NodeProcess* runner = nullptr;
  ASSERT_TRUE(WaitRunner("hub", &runner, seconds(20), /*connected=*/false));
  constexpr int kCount = 50;
  {
    PahoClient pub(runner->port(), "pub", MqttVersion::kV5);
    ASSERT_TRUE(pub.Connect());
    ASSERT_TRUE(pub.PublishBurst("sensor/q", kCount, 1, seconds(30)));
  }
  ASSERT_TRUE(WaitBridge(*runner, "hub", [](const Json& j) { return j["queued"] == kCount; },
                         "50 queued"));
  runner->Kill();
  // Another node takes the bridge over; the killed one comes back and,
  // finding it running elsewhere, sends what its own queue holds.
  NodeProcess* next = nullptr;
  ASSERT_TRUE(WaitFor(
      [&] {
        next = Runner("hub");
        return next != nullptr && next != runner;
      },
      seconds(30), "bridge hub taken over"));
  ASSERT_TRUE(runner->Start());
  ASSERT_TRUE(WaitFor([&] { return Field(*runner, "hub", "runs_on") == next->name(); },
                      seconds(30), "the node back seeing the bridge run elsewhere"));
  NodeProcess up(BridgeTestNode("up"));
  ASSERT_TRUE(StartOnPort(up, port, "upsub", "sensor/#"));
  ASSERT_TRUE(WaitBridge(*runner, "hub", [](const Json& j) { return j["queued"] == 0; },
                         "its queue sent", seconds(30)));
  EXPECT_TRUE(WaitBridgeState(*runner, "hub", "standby"));
  EXPECT_NE(runner->Log().find("sending the 50 message(s) left in this node's queue"),
            std::string::npos);
  MosqClient upsub(up.port(), "upsub");
  MosqConnectOptions resume;
  resume.clean_start = false;
  ASSERT_TRUE(upsub.Connect(resume));
  EXPECT_TRUE(EachOnce(Collect(upsub, kCount, seconds(20)), kCount, "the upstream subscriber"));
}

}  // namespace
}  // namespace ferry::testing
