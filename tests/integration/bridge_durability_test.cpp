// Store-and-forward across crashes: the upstream SIGKILLed in the middle of
// a stream, the edge SIGKILLed with a full queue, and a queue that
// overflows. What the edge acknowledged to its publishers must arrive
// upstream, in order; what overflowed is dropped oldest first and counted.
#include <gtest/gtest.h>

#include <csignal>
#include <map>
#include <set>
#include <string>
#include <thread>

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

constexpr MqttVersion kV5 = MqttVersion::kV5;

// The upstream keeps every message for an offline subscriber.
NodeOptions Node(const std::string& name, const std::string& extra = "") {
  return BridgeTestNode(name, "[mqtt]\nmax_queued_messages = 0\n" + extra);
}

std::string Payload(int i) { return "m" + std::to_string(i); }

// Reads QoS 1 messages, acknowledging each, until every payload
// Payload(0..count-1) arrived at least once. Duplicates (sent again after a
// crash) are allowed; the first arrival of each must be in publish order.
::testing::AssertionResult ReceiveAll(RawClient& sub, int count, milliseconds timeout) {
  std::set<int> seen;
  int next_new = 0;  // the next payload index a first arrival must have
  int duplicates = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (static_cast<int>(seen.size()) < count) {
    wire::ReceivedPublish p;
    if (!ReadPublish(sub, kV5, &p, Remaining(deadline))) {
      return ::testing::AssertionFailure() << "only " << seen.size() << " of " << count
                                           << " messages arrived (" << duplicates
                                           << " duplicates); next expected " << Payload(next_new);
    }
    if (p.qos > 0) sub.Send(wire::PublishAck(wire::kPuback, kV5, p.packet_id));
    const int i = std::stoi(p.payload.substr(1));
    if (seen.contains(i)) {
      ++duplicates;
      continue;
    }
    if (i != next_new) {
      return ::testing::AssertionFailure() << "out of order: " << p.payload << " arrived first when "
                                           << Payload(next_new) << " was next";
    }
    seen.insert(i);
    ++next_new;
  }
  return ::testing::AssertionSuccess();
}

// The uplink is SIGKILLed while the bridge streams 10,000 QoS 1 messages to
// it and comes back on the same port: every message arrives, in order.
TEST(BridgeDurability, UplinkKilledInTheMiddleOfTenThousandMessagesLosesNothing) {
  constexpr int kCount = 10000;
  NodeProcess up(Node("up"));
  ASSERT_TRUE(up.Start());
  ASSERT_TRUE(OfflineSubscriber(up, "collector", "d/#"));
  // A replay rate makes the stream last long enough to kill it midway.
  NodeProcess edge(Node("edge", BridgeSection("up", AddressOf(up),
                                              {"forward = d/#", "queue_replay_rate = 5000"})));
  ASSERT_TRUE(edge.Start());
  ASSERT_TRUE(WaitBridgeState(edge, "up", "connected"));

  // A 3.1.1 producer may pipeline all 10,000 (v5 would be held to the
  // receive maximum). Every PUBACK means: in the edge's queue on disk.
  RawClient pub;
  ASSERT_TRUE(ConnectRaw(pub, edge.port(), Clean(MqttVersion::kV311, "producer")));
  ASSERT_TRUE(PublishManyRaw(pub, MqttVersion::kV311, "d/stream", 1, kCount, Payload, seconds(30)));
  ASSERT_TRUE(WaitBridge(edge, "up", [](const Json& j) { return j["sent"] >= 2000; },
                         "2000 messages sent"));
  up.Kill();
  ASSERT_TRUE(up.Restart(NodeProcess::Ports::kSame));
  ASSERT_TRUE(WaitBridge(edge, "up", [](const Json& j) { return j["queued"] == 0; },
                         "an empty queue", seconds(30)));
  EXPECT_GE(BridgeShow(edge, "up").value_or(Json())["connects"], 2);

  RawClient sub;
  bool present = false;
  ASSERT_TRUE(ConnectRaw(sub, up.port(), Persistent(kV5, "collector"), &present));
  EXPECT_TRUE(present);
  EXPECT_TRUE(ReceiveAll(sub, kCount, seconds(30)));
}

// The edge is SIGKILLed while its queue holds messages its publisher was
// told were safe. After the restart the queue goes upstream at once, without
// waiting for new traffic.
TEST(BridgeDurability, EdgeKilledWithAQueueDeliversItAfterTheRestart) {
  constexpr int kCount = 500;
  RefusingPort upstream_port;  // the upstream is down at first
  const std::string address = "127.0.0.1:" + std::to_string(upstream_port.port());
  NodeProcess edge(Node("edge", BridgeSection("up", address, {"forward = q/#"})));
  ASSERT_TRUE(edge.Start());
  RawClient pub;
  ASSERT_TRUE(ConnectRaw(pub, edge.port(), Clean(kV5, "producer")));
  ASSERT_TRUE(PublishManyRaw(pub, kV5, "q/t", 1, kCount, Payload, seconds(20)));
  EXPECT_TRUE(WaitBridge(edge, "up", [](const Json& j) { return j["queued"] == 500; },
                         "500 queued"));
  edge.Kill();

  upstream_port.Release();
  NodeProcess up(Node("up"));
  up.config().Set("listener.tcp.default", "bind", address);
  ASSERT_TRUE(up.Start());
  RawClient sub;
  ASSERT_TRUE(ConnectRaw(sub, up.port(), Clean(kV5, "collector")));
  ASSERT_TRUE(SubscribeRaw(sub, kV5, "q/#", 1));

  ASSERT_TRUE(edge.Start());
  EXPECT_TRUE(edge.WaitForLog("500 queued"));
  EXPECT_TRUE(ReceiveAll(sub, kCount, seconds(20)));
  EXPECT_TRUE(WaitBridge(edge, "up", [](const Json& j) { return j["queued"] == 0; },
                         "an empty queue"));
}

// QoS 2 exactly once across a SIGKILL of the edge [MQTT-4.3.3]. The
// upstream is frozen (SIGSTOP) in the middle of a stream, so that the edge
// dies with messages in every state: PUBLISH sent, PUBREC received and
// PUBREL sent, not yet sent. After the restart each goes again under its
// old packet identifier (queue_log.h), so the upstream delivers every
// message once: none lost, none twice.
TEST(BridgeDurability, EdgeKilledWithQos2InFlightDeliversEveryMessageExactlyOnce) {
  constexpr int kCount = 500;
  NodeProcess up(Node("up"));
  ASSERT_TRUE(up.Start());
  ASSERT_TRUE(OfflineSubscriber(up, "collector", "d/#", 2));
  // The replay rate stretches the stream so that the freeze lands inside it.
  NodeProcess edge(Node("edge", BridgeSection("up", AddressOf(up),
                                              {"forward = d/# 2", "queue_replay_rate = 200"})));
  ASSERT_TRUE(edge.Start());
  ASSERT_TRUE(WaitBridgeState(edge, "up", "connected"));

  RawClient pub;
  ASSERT_TRUE(ConnectRaw(pub, edge.port(), Clean(MqttVersion::kV311, "producer")));
  // The producer runs beside the freeze, so that its speed does not matter.
  ::testing::AssertionResult published = ::testing::AssertionFailure();
  std::thread producer([&] {
    published = PublishManyRaw(pub, MqttVersion::kV311, "d/stream", 2, kCount, Payload, seconds(30));
  });
  ::testing::AssertionResult started =
      WaitBridge(edge, "up", [](const Json& j) { return j["sent"] >= 100; }, "100 messages sent");
  ASSERT_TRUE(up.Signal(SIGSTOP));
  // Frozen, the upstream acknowledges nothing: the window fills up.
  ::testing::AssertionResult inflight =
      WaitBridge(edge, "up", [](const Json& j) { return j["inflight"] >= 50; }, "50 in flight");
  producer.join();
  edge.Kill();
  ASSERT_TRUE(up.Signal(SIGCONT));
  ASSERT_TRUE(published);
  ASSERT_TRUE(started);
  ASSERT_TRUE(inflight);

  ASSERT_TRUE(edge.Start());
  ASSERT_TRUE(WaitBridge(edge, "up",
                         [](const Json& j) { return j["queued"] == 0 && j["inflight"] == 0; },
                         "an empty queue", seconds(30)));
  // Anything sent twice would reach the collector before this one.
  ASSERT_TRUE(PublishQos1(edge.port(), kV5, "d/end", "end"));

  RawClient sub;
  bool present = false;
  ASSERT_TRUE(ConnectRaw(sub, up.port(), Persistent(kV5, "collector"), &present));
  EXPECT_TRUE(present);
  std::vector<wire::ReceivedPublish> got;
  ASSERT_TRUE(ReceiveAndAck(sub, kV5, kCount + 1, &got, seconds(30)));
  EXPECT_EQ(got.back().payload, "end") << "more than " << kCount << " messages before the last";
  std::map<std::string, int> times;
  for (const wire::ReceivedPublish& p : got) ++times[p.payload];
  for (int i = 0; i < kCount; ++i) {
    EXPECT_EQ(times[Payload(i)], 1) << Payload(i);
  }
}

// queue_max_bytes: while the upstream is down, the oldest messages are
// dropped to make room, and counted; what is left goes up in order.
TEST(BridgeDurability, OverflowDropsTheOldestAndCountsThem) {
  constexpr int kCount = 1000;
  RefusingPort upstream_port;
  const std::string address = "127.0.0.1:" + std::to_string(upstream_port.port());
  NodeProcess edge(Node("edge", BridgeSection("up", address,
                                              {"forward = o/#", "queue_max_bytes = 64KB"})));
  ASSERT_TRUE(edge.Start());
  RawClient pub;
  ASSERT_TRUE(ConnectRaw(pub, edge.port(), Clean(MqttVersion::kV311, "producer")));
  const std::string filler(400, 'x');
  ASSERT_TRUE(PublishManyRaw(
      pub, MqttVersion::kV311, "o/t", 1, kCount, [&](int i) { return Payload(i) + " " + filler; }, seconds(20)));
  ASSERT_TRUE(WaitBridge(edge, "up", [](const Json& j) { return j["dropped_by"]["overflow"] > 0; },
                         "overflow drops"));
  Json stats = BridgeShow(edge, "up").value_or(Json());
  const uint64_t dropped = stats["dropped_by"]["overflow"];
  const uint64_t queued = stats["queued"];
  EXPECT_EQ(dropped + queued, uint64_t{kCount}) << stats.dump();
  EXPECT_LE(stats["queued_bytes"].get<uint64_t>(), 64u * 1024) << stats.dump();
  // `bridges list` says so too.
  CommandResult list = Ferryctl(edge, {"bridges", "list"});
  ASSERT_TRUE(list.Succeeded()) << list.ToString();
  EXPECT_NE(list.out.find("bridge: edge@127.0.0.1/o/#-->" + address), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("dropped " + std::to_string(dropped)), std::string::npos) << list.out;

  // The upstream gets a persistent subscriber before it takes the address,
  // so that none of the replay can arrive before it.
  NodeProcess up(Node("up"));
  ASSERT_TRUE(StartOnPort(up, upstream_port, "collector", "o/#"));
  RawClient sub;
  ASSERT_TRUE(ConnectRaw(sub, up.port(), Persistent(kV5, "collector")));
  // The newest `queued` messages, in order, and nothing older.
  for (uint64_t i = dropped; i < kCount; ++i) {
    wire::ReceivedPublish p;
    ASSERT_TRUE(ReadPublish(sub, kV5, &p, seconds(10))) << "message " << i;
    ASSERT_EQ(p.payload.substr(0, p.payload.find(' ')), Payload(static_cast<int>(i)));
    sub.Send(wire::PublishAck(wire::kPuback, kV5, p.packet_id));
  }
}

}  // namespace
}  // namespace ferry::testing
