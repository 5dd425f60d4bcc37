// A bridge queue that fills the disk (issue 9, point 2), with real ferryd
// processes: the edge's data_dir is on an 8 MB tmpfs this test mounts, its
// upstream (a second ferryd) is down. The full disk bounds the queue as
// queue_max_bytes would: the oldest messages are dropped and counted, the
// publishers acknowledged. When the upstream returns everything queued
// arrives, the space is reclaimed, new publishes are acknowledged again, and
// a restart sends nothing the upstream already acknowledged.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <set>
#include <string>

#include "support/bridge_helpers.h"
#include "support/mqtt_wire.h"
#include "support/node_process.h"
#include "support/raw_client.h"
#include "support/session_helpers.h"
#include "support/tmpfs.h"
#include "support/wait.h"

namespace ferry::testing {
namespace {

using std::chrono::seconds;

constexpr MqttVersion kV5 = MqttVersion::kV5;
constexpr MqttVersion kV311 = MqttVersion::kV311;
constexpr int kBatch = 100;

// "m<i> " padded to 10 KB.
std::string Payload(int i) {
  std::string p = "m" + std::to_string(i) + " ";
  p.resize(10 * 1024, 'x');
  return p;
}

int IndexOf(const std::string& payload) { return std::stoi(payload.substr(1)); }

// The upstream keeps every message for an offline subscriber.
NodeOptions Node(const std::string& name, const std::string& extra = "") {
  return BridgeTestNode(name, "[mqtt]\nmax_queued_messages = 0\n" + extra);
}

// Reads messages Payload(first) .. Payload(end - 1) on `sub`, in that order,
// acknowledging each.
::testing::AssertionResult ReceiveInOrder(RawClient& sub, int first, int end) {
  for (int i = first; i < end; ++i) {
    wire::ReceivedPublish p;
    if (auto r = ReadPublish(sub, kV5, &p, seconds(20)); !r) return r << " (message " << i << ")";
    if (IndexOf(p.payload) != i) {
      return ::testing::AssertionFailure()
             << "message " << IndexOf(p.payload) << " arrived when " << i << " was next";
    }
    if (auto r = sub.Send(wire::PublishAck(wire::kPuback, kV5, p.packet_id)); !r) return r;
  }
  return ::testing::AssertionSuccess();
}

// Restarts `edge` (then runs `after_restart`, if set): the collector `sub`
// then gets nothing the upstream had acknowledged, only the message
// published after the restart.
void ExpectNothingSentAgainAfterRestart(NodeProcess& edge, RawClient& sub,
                                        const std::function<void()>& after_restart = {}) {
  ASSERT_TRUE(edge.Restart());
  ASSERT_TRUE(WaitBridgeState(edge, "up", "connected"));
  if (after_restart) after_restart();
  ASSERT_TRUE(PublishQos1(edge.port(), kV311, "d/t", "m999999 end"));
  wire::ReceivedPublish p;
  ASSERT_TRUE(ReadPublish(sub, kV5, &p, seconds(20)));
  EXPECT_EQ(p.payload, "m999999 end")
      << "sent again after the restart: " << p.payload.substr(0, p.payload.find(' '));
}

TEST(BridgeFullDisk, TheDiskBoundsTheQueueAndAcknowledgedSpaceIsReclaimed) {
  Tmpfs disk(8 << 20);
  if (!disk.mounted()) GTEST_SKIP() << disk.error();
  RefusingPort upstream_port;  // the upstream is down at first
  const std::string address = "127.0.0.1:" + std::to_string(upstream_port.port());
  // queue_max_bytes stays at its default (256 MB): the disk is the bound.
  NodeProcess edge(Node("edge", BridgeSection("up", address, {"forward = d/#"})));
  edge.config().Set("node", "data_dir", disk.File("data"));
  ASSERT_TRUE(edge.Start());

  // 1. 1,500 messages of 10 KB while the upstream is down: far more than
  //    the 8 MB disk holds. Every publisher is acknowledged (in its queue
  //    on disk); the oldest are dropped to make room, and counted.
  constexpr int kQueued = 1500;
  RawClient pub;
  ASSERT_TRUE(ConnectRaw(pub, edge.port(), Clean(kV311, "producer")));
  for (int first = 0; first < kQueued; first += kBatch) {
    ASSERT_TRUE(PublishManyRaw(
        pub, kV311, "d/t", 1, kBatch, [first](int i) { return Payload(first + i); }, seconds(30)))
        << "publishing from message " << first;
  }
  Json stats;
  ASSERT_TRUE(WaitBridge(
      edge, "up",
      [&](const Json& j) {
        stats = j;
        return j["queued"].get<uint64_t>() + j["dropped_by"]["overflow"].get<uint64_t>() == kQueued;
      },
      "every message queued or dropped"));
  const uint64_t dropped = stats["dropped_by"]["overflow"];
  RecordProperty("dropped_for_space", static_cast<int>(dropped));
  RecordProperty("free_bytes_when_full", static_cast<int>(disk.FreeBytes()));
  EXPECT_GT(dropped, 0u) << stats.dump();
  EXPECT_LT(dropped, uint64_t{kQueued}) << stats.dump();
  EXPECT_LT(disk.FreeBytes(), 2u << 20) << "the queue did not fill the disk";
  EXPECT_TRUE(edge.WaitForLog("oldest queued messages to make room"));

  // 2. The upstream returns, with a persistent subscriber that was there
  //    before it took the address: everything queued arrives, in order.
  NodeProcess up(Node("up"));
  ASSERT_TRUE(StartOnPort(up, upstream_port, "collector", "d/#"));
  RawClient sub;
  ASSERT_TRUE(ConnectRaw(sub, up.port(), Persistent(kV5, "collector")));
  ASSERT_TRUE(ReceiveInOrder(sub, static_cast<int>(dropped), kQueued));
  ASSERT_TRUE(WaitBridge(
      edge, "up", [](const Json& j) { return j["queued"] == 0; }, "an empty queue", seconds(30)));

  // 3. The space of what the upstream acknowledged is reclaimed.
  ASSERT_TRUE(WaitFor([&] { return disk.FreeBytes() > (5u << 20); }, seconds(20),
                      "the queue's space to be handed back"))
      << disk.FreeBytes() << " bytes free";
  RecordProperty("free_bytes_after_delivery", static_cast<int>(disk.FreeBytes()));
  EXPECT_LT(BridgeShow(edge, "up").value_or(Json())["queued_bytes"].get<uint64_t>(), 1u << 20);

  // 4. New forwarded publishes are acknowledged again and go up.
  ASSERT_TRUE(PublishManyRaw(
      pub, kV311, "d/t", 1, 50, [](int i) { return Payload(kQueued + i); }, seconds(20)));
  ASSERT_TRUE(ReceiveInOrder(sub, kQueued, kQueued + 50));
  ASSERT_TRUE(WaitBridge(
      edge, "up", [](const Json& j) { return j["queued"] == 0; }, "an empty queue"));

  // 5. A restart of the edge sends nothing the upstream acknowledged: the
  //    next message the collector gets is a new one.
  ExpectNothingSentAgainAfterRestart(edge, sub);
}

// The disk is full of something else and the queue holds little: nothing
// can be dropped to make room, so publishers wait (never an acknowledgement
// for what was not written). Once the upstream takes what is queued, its
// space comes back and the held publishers are acknowledged, without a
// restart (messages the upstream acknowledged before they could be written
// need no writing); a restart then sends nothing again.
TEST(BridgeFullDisk, AcknowledgedMessagesFreeTheRoomHeldPublishersWaitFor) {
  Tmpfs disk(8 << 20);
  if (!disk.mounted()) GTEST_SKIP() << disk.error();
  RefusingPort upstream_port;
  const std::string address = "127.0.0.1:" + std::to_string(upstream_port.port());
  NodeProcess edge(Node("edge", BridgeSection("up", address, {"forward = d/#"})));
  edge.config().Set("node", "data_dir", disk.File("data"));
  ASSERT_TRUE(edge.Start());
  RawClient pub;
  ASSERT_TRUE(ConnectRaw(pub, edge.port(), Clean(kV311, "producer")));
  ASSERT_TRUE(PublishManyRaw(pub, kV311, "d/t", 1, 20, Payload, seconds(20)));
  ASSERT_TRUE(WaitBridge(
      edge, "up", [](const Json& j) { return j["queued"] == 20; }, "20 queued"));
  // Something else takes the rest of the disk.
  disk.WriteFiller("filler", 8 << 20);
  ASSERT_LT(disk.FreeBytes(), 64u * 1024);

  // Held: no PUBACK while the message cannot be written.
  for (int i = 0; i < 5; ++i) {
    wire::PublishFields f{"d/t", Payload(20 + i), 1, false, false, static_cast<uint16_t>(100 + i),
                          {}};
    ASSERT_TRUE(pub.Send(wire::Publish(kV311, f)));
  }
  EXPECT_FALSE(pub.ReadPacket(std::chrono::milliseconds(1500)).has_value())
      << "a publisher was acknowledged with the disk full";

  // The upstream returns and takes the queue: its space frees the room the
  // held publishers need.
  NodeProcess up(Node("up"));
  ASSERT_TRUE(StartOnPort(up, upstream_port, "collector", "d/#"));
  std::set<uint16_t> acks;
  while (acks.size() < 5) {
    wire::RawPacket p;
    ASSERT_TRUE(ExpectPacket(pub, wire::kPuback, &p, seconds(20)))
        << acks.size() << " acknowledged";
    acks.insert(static_cast<uint16_t>(p.body[0] << 8 | p.body[1]));
  }
  RawClient sub;
  ASSERT_TRUE(ConnectRaw(sub, up.port(), Persistent(kV5, "collector")));
  ASSERT_TRUE(ReceiveInOrder(sub, 0, 25));
  ASSERT_TRUE(WaitBridge(
      edge, "up", [](const Json& j) { return j["queued"] == 0; }, "an empty queue"));
  // A restart with the disk still full sends nothing again (then room is
  // made for the message published after it).
  ExpectNothingSentAgainAfterRestart(edge, sub,
                                     [&] { std::filesystem::remove(disk.File("filler")); });
}

}  // namespace
}  // namespace ferry::testing
