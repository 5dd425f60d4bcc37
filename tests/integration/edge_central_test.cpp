// Edge to central, end to end (etc/examples/edge-central/): an edge ferry
// node whose bridge forwards its sensor topics to a central cluster of three
// ferry nodes behind a real HAProxy (round robin, PROXY v2, health checks),
// or behind a real NGINX (TLS ended there, hash $remote_addr, PROXY v1).
// What the edge acknowledged reaches the subscribers on the central nodes,
// when the central node the bridge is connected to is SIGKILLed in the
// middle of a stream, and when the link is cut (HAProxy stopped) for 30 s.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "support/bridge_helpers.h"
#include "support/cluster_fixture.h"
#include "support/ctl.h"
#include "support/haproxy.h"
#include "support/mosq_client.h"
#include "support/nginx.h"
#include "support/paho_client.h"
#include "support/temp_dir.h"
#include "support/test_certs.h"
#include "support/wait.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// What a subscriber got of one stream numbered 0..count-1 (Paho's
// PublishBurst): whether each came, in order of first arrival, and how
// many came again (QoS 1 allows it after a reconnect).
struct Stream {
  int distinct = 0;
  int duplicates = 0;
  bool in_order = true;
};

template <typename Client>
Stream Take(Client& client, const std::string& topic, int count, seconds timeout) {
  Stream s;
  std::vector<bool> seen(count, false);
  int next = 0;  // the lowest number not seen yet
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (s.distinct < count && std::chrono::steady_clock::now() < deadline) {
    auto m = client.Receive(milliseconds(500));
    if (!m || m->topic != topic) continue;
    const int i = std::stoi(m->payload);
    if (i < 0 || i >= count) continue;
    if (seen[i]) {
      ++s.duplicates;
      continue;
    }
    // A first arrival skipping one not seen yet is out of order.
    if (i != next) s.in_order = false;
    seen[i] = true;
    ++s.distinct;
    while (next < count && seen[next]) ++next;
  }
  while (auto m = client.Receive(milliseconds(500))) s.duplicates += m->topic == topic;
  return s;
}

class EdgeCentralBase : public ClusterFixture {
 protected:
  // The central cluster: three nodes, each with a PROXY protocol listener
  // for the balancer.
  void Central() {
    Joined(3, "peer_down_after = 2s\n[listener.tcp.lb]\nbind = 127.0.0.1:0\nproxy_protocol = true\n");
  }
  // The edge: its bridge goes to the balancer's `address`, with its
  // durable queue (queue_sync = write, the default).
  void Edge(const std::string& address, std::vector<std::string> lines = {}) {
    lines.push_back("forward = sensor/# 1");
    edge_ = std::make_unique<NodeProcess>(
        BridgeTestNode("edge", BridgeSection("central", address, lines)));
    ASSERT_TRUE(edge_->Start());
    ASSERT_TRUE(WaitBridgeState(*edge_, "central", "connected"));
  }

  // A subscriber to sensor/# on each central node.
  void SubscribeOnEach(std::vector<std::unique_ptr<MosqClient>>* subs) {
    for (int i = 1; i <= 3; ++i) {
      subs->push_back(std::make_unique<MosqClient>(N(i).port(), "sub" + std::to_string(i)));
      ASSERT_TRUE(subs->back()->Connect());
      ASSERT_TRUE(subs->back()->Subscribe("sensor/#", 1));
    }
    for (int i = 1; i <= 3; ++i) ASSERT_TRUE(RoutesKnown(i, 1));
  }
  // The central node the edge's bridge is connected to.
  NodeProcess* Upstream() {
    auto j = BridgeShow(*edge_, "central");
    if (!j) return nullptr;
    for (auto& n : nodes_) {
      if ((*j)["upstream_node"] == n->name()) return n.get();
    }
    return nullptr;
  }

  // `count` QoS 1 messages, each acknowledged by the edge: every subscriber
  // gets each once, in order. Then again, and the central node the bridge
  // is connected to is SIGKILLed in the middle: the bridge reconnects
  // through the balancer to another node, and the subscribers on the
  // others still get every message, in order of first arrival; what the
  // bridge sent again is counted.
  void StreamThroughTheLossOfItsNode(int count);

  TempDir dir_;
  std::unique_ptr<NodeProcess> edge_;
};

void EdgeCentralBase::StreamThroughTheLossOfItsNode(const int kCount) {
  std::vector<std::unique_ptr<MosqClient>> subs;
  SubscribeOnEach(&subs);
  PahoClient pub(edge_->port(), "sensors", MqttVersion::kV5);
  ASSERT_TRUE(pub.Connect());
  ASSERT_TRUE(pub.PublishBurst("sensor/a", kCount, 1, seconds(120)));
  for (int i = 1; i <= 3; ++i) {
    Stream s = Take(*subs[i - 1], "sensor/a", kCount, seconds(60));
    EXPECT_EQ(s.distinct, kCount) << "ferry" << i;
    EXPECT_EQ(s.duplicates, 0) << "ferry" << i;
    EXPECT_TRUE(s.in_order) << "ferry" << i;
  }

  NodeProcess* up = Upstream();
  ASSERT_NE(up, nullptr);
  std::atomic<bool> acked{false};
  std::thread publisher([&] { acked = static_cast<bool>(pub.PublishBurst("sensor/b", kCount, 1, seconds(180))); });
  size_t victim = 0;
  for (size_t i = 0; i < subs.size(); ++i) {
    if (&N(static_cast<int>(i) + 1) == up) victim = i;
  }
  const size_t watch = victim == 0 ? 1 : 0;
  EXPECT_TRUE(WaitFor([&] { return subs[watch]->Pending() > static_cast<size_t>(kCount / 5); },
                      seconds(60), "the stream under way"));
  up->Kill();
  publisher.join();
  EXPECT_TRUE(acked) << "the edge acknowledged every message";
  int duplicates = 0;
  for (size_t i = 0; i < subs.size(); ++i) {
    if (i == victim) continue;
    Stream s = Take(*subs[i], "sensor/b", kCount, seconds(90));
    EXPECT_EQ(s.distinct, kCount) << "ferry" << i + 1;
    EXPECT_TRUE(s.in_order) << "ferry" << i + 1;
    duplicates += s.duplicates;
  }
  RecordProperty("duplicates_after_the_kill", duplicates);
  EXPECT_NE(Upstream(), up);
}

class EdgeCentral : public EdgeCentralBase {
 protected:
  void SetUp() override {
    Central();
    std::vector<HaproxyBackendServer> servers;
    for (int i = 1; i <= 3; ++i) {
      servers.push_back({"ferry" + std::to_string(i), N(i).port("tcp.lb"), N(i).admin_http_port()});
    }
    ASSERT_TRUE(haproxy_.StartBalancer(servers));
    Edge("127.0.0.1:" + std::to_string(haproxy_.ports()[0]));
  }
  void TearDown() override { haproxy_.Stop(); }

  Haproxy haproxy_{dir_.path()};
};

TEST_F(EdgeCentral, EveryEdgeMessageReachesEveryCentralSubscriberThroughTheLossOfItsNode) {
  StreamThroughTheLossOfItsNode(10000);
}

class EdgeCentralNginx : public EdgeCentralBase {
 protected:
  void SetUp() override {
    Central();
    ASSERT_TRUE(MakeTestCerts(dir_.path(), &certs_));
    std::vector<uint16_t> servers;
    for (int i = 1; i <= 3; ++i) servers.push_back(N(i).port("tcp.lb"));
    ASSERT_TRUE(nginx_.Start(servers, certs_.server_cert, certs_.server_key));
    // TLS to NGINX, checked against the test CA (the certificate names
    // 127.0.0.1).
    Edge("mqtts://127.0.0.1:" + std::to_string(nginx_.port()), {"tls_ca_file = " + certs_.ca});
  }
  void TearDown() override { nginx_.Stop(); }

  TestCerts certs_;
  Nginx nginx_{dir_.path()};
};

TEST_F(EdgeCentralNginx, EveryEdgeMessageReachesEveryCentralSubscriberThroughTheLossOfItsNode) {
  StreamThroughTheLossOfItsNode(3000);
}

TEST_F(EdgeCentral, WhatTheEdgePublishesWhileTheLinkIsCutArrivesWhenItIsBack) {
  std::vector<std::unique_ptr<MosqClient>> subs;
  SubscribeOnEach(&subs);
  haproxy_.Stop();
  ASSERT_TRUE(WaitFor(
      [&] {
        auto j = BridgeShow(*edge_, "central");
        return j && (*j)["state"] != "connected";
      },
      seconds(10), "the edge's bridge to lose its link"));
  // 30 s without the central site; the edge goes on publishing.
  PahoClient pub(edge_->port(), "sensors", MqttVersion::kV5);
  ASSERT_TRUE(pub.Connect());
  constexpr int kBatches = 30;
  constexpr int kPerBatch = 100;
  for (int b = 0; b < kBatches; ++b) {
    for (int i = 0; i < kPerBatch; ++i) {
      ASSERT_TRUE(pub.Publish("sensor/cut", std::to_string(b * kPerBatch + i), 1));
    }
    std::this_thread::sleep_for(seconds(1));
  }
  EXPECT_TRUE(WaitBridge(*edge_, "central",
                         [](const Json& j) { return j["queued"] == kBatches * kPerBatch; },
                         "everything queued at the edge"));
  ASSERT_TRUE(haproxy_.Resume());
  for (int i = 1; i <= 3; ++i) {
    Stream s = Take(*subs[i - 1], "sensor/cut", kBatches * kPerBatch, seconds(60));
    EXPECT_EQ(s.distinct, kBatches * kPerBatch) << "ferry" << i;
    EXPECT_EQ(s.duplicates, 0) << "ferry" << i;
    EXPECT_TRUE(s.in_order) << "ferry" << i;
  }
}

}  // namespace
}  // namespace ferry::testing
