// A full disk under a node's persistent sessions (issue 9, point 1), with a
// real ferryd whose data_dir is on an 8 MB tmpfs this test mounts: once the
// disk is full, no QoS 1 PUBLISH whose message could not be stored gets
// PUBACK 0x00 (v5: 0x97 or 0x80; 3.1.1: no PUBACK, the connection is
// closed), /metrics and /api/v1/health say the store cannot write, the node
// stores again by itself once space is freed, and after a SIGKILL every
// message that did get PUBACK 0x00 reaches the persistent session.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "support/ctl.h"
#include "support/mqtt_wire.h"
#include "support/node_process.h"
#include "support/raw_client.h"
#include "support/session_helpers.h"
#include "support/tmpfs.h"
#include "support/wait.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

constexpr MqttVersion kV5 = MqttVersion::kV5;
constexpr MqttVersion kV311 = MqttVersion::kV311;
constexpr size_t kPayloadBytes = 10 * 1024;
// A failed commit is retried with backoff of at most 5 s; a publisher waits
// for the next attempt to hear how it went.
constexpr milliseconds kAckTimeout{20000};

// "m<i> " padded to 10 KB.
std::string Payload(int i) {
  std::string p = "m" + std::to_string(i) + " ";
  p.resize(kPayloadBytes, 'x');
  return p;
}

int IndexOf(const std::string& payload) { return std::stoi(payload.substr(1)); }

// What the publishers were told, by payload index.
struct Answers {
  std::set<int> acked;             // PUBACK 0x00
  std::map<int, uint8_t> refused;  // PUBACK >= 0x80, with its reason
};

// Publishes QoS 1 messages Payload(*next), Payload(*next + 1), ... from a v5
// client, `window` in flight at once, until `refusals` have been refused or
// `max` sent; records every answer.
::testing::AssertionResult PublishUntilRefused(RawClient& raw, int* next, int window,
                                               size_t refusals, int max, Answers* answers) {
  std::map<uint16_t, int> inflight;  // packet id -> payload index
  uint16_t id = 0;
  int sent = 0;
  const auto deadline = Clock::now() + seconds(60);
  while (answers->refused.size() < refusals || !inflight.empty()) {
    if (Clock::now() > deadline) {
      return ::testing::AssertionFailure()
             << "after 60 s, " << answers->acked.size() << " of " << sent
             << " messages acknowledged and " << answers->refused.size() << " refused";
    }
    while (answers->refused.size() < refusals && static_cast<int>(inflight.size()) < window &&
           sent < max) {
      do {
        id = static_cast<uint16_t>(id % 1000 + 1);
      } while (inflight.contains(id));
      wire::PublishFields f;
      f.topic = "full/t";
      f.payload = Payload(*next);
      f.qos = 1;
      f.packet_id = id;
      if (auto r = raw.Send(wire::Publish(kV5, f)); !r) return r;
      inflight[id] = (*next)++;
      ++sent;
    }
    if (inflight.empty()) {
      return ::testing::AssertionFailure()
             << "the disk never filled up: " << sent << " messages of 10 KB all acknowledged";
    }
    const std::optional<Bytes> packet = raw.ReadPacket(kAckTimeout);
    if (!packet) return ::testing::AssertionFailure() << "no PUBACK: " << raw.error();
    const std::optional<wire::RawPacket> p = wire::Parse(*packet);
    if (!p || p->type != wire::kPuback || p->body.size() < 2) {
      return ::testing::AssertionFailure() << "expected PUBACK, got " << wire::Hex(*packet);
    }
    const uint16_t got = static_cast<uint16_t>(p->body[0] << 8 | p->body[1]);
    const uint8_t reason = p->body.size() > 2 ? p->body[2] : 0;
    auto it = inflight.find(got);
    if (it == inflight.end()) {
      return ::testing::AssertionFailure() << "PUBACK for unknown packet id " << got;
    }
    if (reason == 0) {
      answers->acked.insert(it->second);
    } else {
      answers->refused[it->second] = reason;
    }
    inflight.erase(it);
  }
  return ::testing::AssertionSuccess();
}

class StoreFullDiskTest : public ::testing::Test {
 protected:
  StoreFullDiskTest() : disk_(8 << 20) {}

  void SetUp() override {
    if (!disk_.mounted()) GTEST_SKIP() << disk_.error();
    NodeOptions o;
    // An offline session keeps everything (no queue limit); info level:
    // debug would log every 10 KB message.
    o.extra_config = "[log]\nlevel = info\n[mqtt]\nmax_queued_messages = 0\nstore_reserve = 1MB\n";
    node_ = std::make_unique<NodeProcess>(o);
    node_->config().Set("node", "data_dir", disk_.File("data"));
    ASSERT_TRUE(node_->Start());
  }

  Json Health() {
    HttpReply r = Http("GET", node_->admin_http_port(), "/api/v1/health");
    Json j = ParseJson(r.body).value_or(Json());
    j["http_status"] = r.status;
    return j;
  }

  Tmpfs disk_;  // outlives the node
  std::unique_ptr<NodeProcess> node_;
};

TEST_F(StoreFullDiskTest, NothingUnstoredIsAcknowledgedAndTheNodeRecoversWithoutARestart) {
  NodeProcess& node = *node_;
  // The persistent session that receives everything, offline.
  ASSERT_TRUE(OfflineSubscriber(node, "sink", "full/#"));
  // Room to free later: the test's own file on the same disk.
  ASSERT_EQ(disk_.WriteFiller("filler", 1536 * 1024), 1536u * 1024);

  // 1. Fill the disk with a v5 publisher: once it is full, refusals.
  RawClient pub;
  ASSERT_TRUE(ConnectRaw(pub, node.port(), Clean(kV5, "pub5")));
  Answers answers;
  int next = 0;
  ASSERT_TRUE(PublishUntilRefused(pub, &next, 8, 16, 2000, &answers));
  EXPECT_GT(answers.acked.size(), 200u) << "the disk filled up early";
  for (const auto& [i, reason] : answers.refused) {
    EXPECT_TRUE(reason == 0x97 || reason == 0x80) << "message " << i << ": reason " << int{reason};
  }
  EXPECT_EQ(answers.refused.begin()->second, 0x97) << "a full disk is quota exceeded";
  RecordProperty("acknowledged_before_full", static_cast<int>(answers.acked.size()));
  RecordProperty("refused_once_full", static_cast<int>(answers.refused.size()));

  // A 3.1.1 publisher cannot be told no: no PUBACK, its connection closes.
  {
    RawClient old;
    ASSERT_TRUE(ConnectRaw(old, node.port(), Clean(kV311, "pub311")));
    wire::PublishFields f;
    f.topic = "full/t";
    f.payload = Payload(next);
    f.qos = 1;
    f.packet_id = 1;
    ASSERT_TRUE(old.Send(wire::Publish(kV311, f)));
    std::optional<Bytes> packet = old.ReadPacket(kAckTimeout);
    EXPECT_FALSE(packet.has_value()) << "3.1.1 publisher got " << wire::Hex(*packet)
                                     << " for a message the disk had no room for";
    EXPECT_TRUE(old.IsClosed(seconds(1)));
    ++next;
  }

  // QoS 2 likewise: a v5 PUBREC says 0x97 (and ends the exchange); a 3.1.1
  // publisher with a persistent session gets no PUBREC and is closed, and
  // sends the message again once the node stores again (below).
  {
    RawClient q2;
    ASSERT_TRUE(ConnectRaw(q2, node.port(), Clean(kV5, "pub5q2")));
    wire::PublishFields f{"full/t", Payload(next++), 2, false, false, 1, {}};
    ASSERT_TRUE(q2.Send(wire::Publish(kV5, f)));
    wire::RawPacket p;
    ASSERT_TRUE(ExpectPacket(q2, wire::kPubrec, &p, kAckTimeout));
    ASSERT_GE(p.body.size(), 3u);
    EXPECT_EQ(p.body[2], 0x97);
  }
  const int qos2_index = next++;
  wire::PublishFields qos2{"full/t", Payload(qos2_index), 2, false, false, 7, {}};
  {
    RawClient old;
    ASSERT_TRUE(ConnectRaw(old, node.port(), Persistent(kV311, "pub311q2")));
    ASSERT_TRUE(old.Send(wire::Publish(kV311, qos2)));
    std::optional<Bytes> packet = old.ReadPacket(kAckTimeout);
    EXPECT_FALSE(packet.has_value()) << "got " << wire::Hex(*packet);
    EXPECT_TRUE(old.IsClosed(seconds(1)));
  }

  // The node says so.
  EXPECT_EQ(NodeMetric(node, "ferry_store_writable"), 0u);
  EXPECT_GE(NodeMetric(node, "ferry_store_refused_total").value_or(0), answers.refused.size() + 1);
  EXPECT_GT(NodeMetric(node, "ferry_store_commit_errors_total").value_or(0), 0u);
  Json health = Health();
  EXPECT_EQ(health["http_status"], 503) << health.dump();
  EXPECT_EQ(health["status"], "degraded") << health.dump();
  EXPECT_EQ(health["accepting_connections"], true) << health.dump();
  EXPECT_NE(health.value("reason", "").find("durable store cannot write"), std::string::npos)
      << health.dump();
  CommandResult status = Ferryctl(node, {"status", "--json"});
  ASSERT_TRUE(status.Succeeded()) << status.ToString();
  EXPECT_EQ(ParseJson(status.out).value_or(Json())["store_writable"], false) << status.out;

  // 2. Space comes back: the node stores again, without a restart.
  std::filesystem::remove(disk_.File("filler"));
  ASSERT_TRUE(WaitFor([&] { return NodeMetric(node, "ferry_store_writable") == 1u; }, seconds(30),
                      "the store writing again"));
  health = Health();
  EXPECT_EQ(health["http_status"], 200) << health.dump();
  EXPECT_EQ(health["status"], "ok") << health.dump();
  Answers after;
  const int first_after = next;
  for (int i = 0; i < 20; ++i) {
    wire::PublishFields f;
    f.topic = "full/t";
    f.payload = Payload(next);
    f.qos = 1;
    f.packet_id = static_cast<uint16_t>(2000 + i);
    ASSERT_TRUE(pub.Send(wire::Publish(kV5, f)));
    std::optional<Bytes> packet = pub.ReadPacket(kAckTimeout);
    ASSERT_TRUE(packet.has_value()) << pub.error();
    const std::optional<wire::RawPacket> p = wire::Parse(*packet);
    ASSERT_TRUE(p && p->type == wire::kPuback) << wire::Hex(*packet);
    ASSERT_EQ(p->body.size() > 2 ? p->body[2] : 0, 0) << "message " << next << " refused";
    answers.acked.insert(next++);
  }
  EXPECT_GT(next, first_after);
  // The 3.1.1 QoS 2 publisher sends its message again (DUP): it gets its
  // PUBREC now, and the message is delivered once.
  {
    RawClient old;
    bool present = false;
    ASSERT_TRUE(ConnectRaw(old, node.port(), Persistent(kV311, "pub311q2"), &present));
    EXPECT_TRUE(present);
    qos2.dup = true;
    ASSERT_TRUE(old.Send(wire::Publish(kV311, qos2)));
    ASSERT_TRUE(ExpectPacket(old, wire::kPubrec, nullptr, kAckTimeout));
    ASSERT_TRUE(old.Send(wire::PublishAck(wire::kPubrel, kV311, 7)));
    ASSERT_TRUE(ExpectPacket(old, wire::kPubcomp, nullptr, kAckTimeout));
    answers.acked.insert(qos2_index);
  }

  // 3. SIGKILL: every message that got PUBACK 0x00 is in the session.
  node.Kill();
  ASSERT_TRUE(node.Start());
  RawClient sub;
  bool present = false;
  ASSERT_TRUE(ConnectRaw(sub, node.port(), Persistent(kV5, "sink"), &present));
  EXPECT_TRUE(present);
  std::set<int> missing = answers.acked;
  std::map<int, int> times;
  const auto deadline = Clock::now() + seconds(60);
  while (!missing.empty()) {
    wire::ReceivedPublish p;
    if (!ReadPublish(sub, kV5, &p, Remaining(deadline))) break;
    ASSERT_TRUE(sub.Send(wire::PublishAck(wire::kPuback, kV5, p.packet_id)));
    missing.erase(IndexOf(p.payload));
    ++times[IndexOf(p.payload)];
  }
  // Drain the rest, to see that the QoS 2 message came once.
  for (;;) {
    wire::ReceivedPublish p;
    if (!ReadPublish(sub, kV5, &p, seconds(1))) break;
    ASSERT_TRUE(sub.Send(wire::PublishAck(wire::kPuback, kV5, p.packet_id)));
    ++times[IndexOf(p.payload)];
  }
  EXPECT_EQ(times[qos2_index], 1) << "the QoS 2 message sent again after the refusal";
  RecordProperty("acknowledged", static_cast<int>(answers.acked.size()));
  RecordProperty("acknowledged_and_lost", static_cast<int>(missing.size()));
  RecordProperty("delivered_after_sigkill", static_cast<int>(times.size()));
  EXPECT_TRUE(missing.empty()) << missing.size() << " of " << answers.acked.size()
                               << " acknowledged messages lost, the first "
                               << (missing.empty() ? -1 : *missing.begin());
}

// The disk fills up while a session that holds most of it is still there:
// ending that session (its expiry, a clean start) is a deletion, which
// commits even though nothing else can, and the node stores again.
TEST_F(StoreFullDiskTest, EndingASessionFreesTheDiskForTheOthers) {
  NodeProcess& node = *node_;
  ASSERT_TRUE(OfflineSubscriber(node, "hog", "full/#"));
  RawClient pub;
  ASSERT_TRUE(ConnectRaw(pub, node.port(), Clean(kV5, "pub5")));
  Answers answers;
  int next = 0;
  ASSERT_TRUE(PublishUntilRefused(pub, &next, 8, 4, 2000, &answers));
  ASSERT_EQ(NodeMetric(node, "ferry_store_writable"), 0u);

  // "hog" comes back with a clean start: its old session and every message
  // in it go.
  {
    RawClient hog;
    ASSERT_TRUE(ConnectRaw(hog, node.port(), Clean(kV5, "hog")));
    ASSERT_TRUE(hog.Send(wire::Disconnect(kV5)));
  }
  ASSERT_TRUE(WaitFor([&] { return NodeMetric(node, "ferry_store_writable") == 1u; }, seconds(30),
                      "the store writing again"));
  EXPECT_LT(NodeMetric(node, "ferry_store_bytes").value_or(UINT64_MAX), 2u << 20)
      << "the deleted session's space was not handed back";
  // It stores again: a new persistent session subscribes, and what is
  // published for it while it is away is acknowledged, and kept.
  ASSERT_TRUE(OfflineSubscriber(node, "other", "after/#"));
  ASSERT_TRUE(PublishManyRaw(pub, kV5, "after/t", 1, 20, Payload, seconds(20)));
  node.Kill();
  ASSERT_TRUE(node.Start());
  RawClient other;
  ASSERT_TRUE(ConnectRaw(other, node.port(), Persistent(kV5, "other")));
  std::vector<wire::ReceivedPublish> got;
  ASSERT_TRUE(ReceiveAndAck(other, kV5, 20, &got, seconds(20)));
  EXPECT_EQ(IndexOf(got.front().payload), 0);
  EXPECT_EQ(IndexOf(got.back().payload), 19);
}

}  // namespace
}  // namespace ferry::testing
