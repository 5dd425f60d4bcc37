// One client must not hurt the others: real ferryd processes and raw
// sockets. A subscriber that stops reading must not hold its publishers, and
// with them every other subscriber; a packet's buffer grows with what
// arrives, and the bytes of incomplete packets a worker holds are bounded;
// one client's subscriptions are bounded, and a v5 CONNECT over the limit is
// answered with CONNACK 0x95.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "support/ctl.h"
#include "support/mqtt_wire.h"
#include "support/node_process.h"
#include "support/raw_client.h"
#include "support/session_helpers.h"
#include "support/wait.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

NodeOptions WithMqtt(const std::string& mqtt_keys) {
  NodeOptions o;
  o.extra_config = "[mqtt]\n" + mqtt_keys + "[log]\nlevel = info\n";
  return o;
}

// The value of `series` in the node's /metrics, 0 (and a failure) if absent.
uint64_t Metric(const NodeProcess& node, std::string_view series) {
  const HttpReply r = Http("GET", node.admin_http_port(), "/metrics");
  EXPECT_EQ(r.status, 200) << r.error;
  const std::optional<uint64_t> v = MetricValue(r.body, series);
  EXPECT_TRUE(v.has_value()) << "no " << series << " in /metrics";
  return v.value_or(0);
}

// `ferryctl broker stats --json`.
Json BrokerStats(const NodeProcess& node) {
  const CommandResult r = Ferryctl(node, {"broker", "stats", "--json"});
  EXPECT_TRUE(r.Succeeded()) << r.ToString();
  return ParseJson(r.out).value_or(Json());
}

std::string Payload(int i) { return "m" + std::to_string(i); }

// A client that subscribes and never reads again; with no keep alive, so
// that only max_queue_wait can stop it from holding its publishers.
::testing::AssertionResult StalledSubscriber(RawClient& raw, uint16_t port, MqttVersion v,
                                             const std::string& topic) {
  wire::ConnectFields f = Clean(v, "stalled");
  f.keepalive_s = 0;
  if (auto c = ConnectRaw(raw, port, f); !c) return c;
  return SubscribeRaw(raw, v, topic, 1);
}

// Publishes `batches` batches of `batch` QoS 1 messages to `topic`; each
// batch's PUBACKs must all arrive, and then `healthy` must receive the batch
// in order, within `wait` each. 3.1.1.
void PublishAndReceive(RawClient& publisher, RawClient& healthy, const std::string& topic,
                       int batches, int batch, milliseconds wait) {
  const MqttVersion v = MqttVersion::kV311;
  for (int b = 0; b < batches; ++b) {
    const int first = b * batch;
    ASSERT_TRUE(PublishManyRaw(
        publisher, v, topic, 1, batch, [first](int i) { return Payload(first + i); }, wait))
        << "PUBACKs of batch " << b;
    std::vector<wire::ReceivedPublish> got;
    ASSERT_TRUE(ReceiveAndAck(healthy, v, batch, &got, wait)) << "batch " << b;
    for (int i = 0; i < batch; ++i) ASSERT_EQ(got[i].payload, Payload(first + i));
  }
}

// Slow subscribers. Before the fix the publisher stopped after 1,032 PUBACKs (the
// stalled subscriber's 32 in flight and 1,000 queued) and the healthy
// subscriber received nothing more until the stalled one's keep alive ran
// out, which here is never.
TEST(SlowSubscriber, AStalledQos1SubscriberDoesNotHoldThePublisher) {
  NodeProcess node(WithMqtt("max_queue_wait = 500ms\nqueue_wait_action = drop\n"));
  ASSERT_TRUE(node.Start());
  const MqttVersion v = MqttVersion::kV311;
  RawClient stalled, healthy, publisher;
  ASSERT_TRUE(StalledSubscriber(stalled, node.port(), v, "fair/t"));
  ASSERT_TRUE(ConnectRaw(healthy, node.port(), Clean(v, "healthy")));
  ASSERT_TRUE(SubscribeRaw(healthy, v, "fair/t", 1));
  ASSERT_TRUE(ConnectRaw(publisher, node.port(), Clean(v, "publisher")));

  // 3,000 messages, three times what the stalled subscriber can hold; each
  // batch waits at most 5 s (max_queue_wait is 0.5 s).
  PublishAndReceive(publisher, healthy, "fair/t", 30, 100, seconds(5));
  EXPECT_TRUE(ExpectNothingBeforePingresp(healthy));

  // The stalled subscriber's messages beyond its queue were dropped and
  // counted: 3,000 less its 32 in flight, 1,000 queued and those queued
  // while it held the publisher (at most a batch).
  const uint64_t dropped = Metric(node, "ferry_messages_dropped_total{reason=\"queue_wait\"}");
  EXPECT_GE(dropped, 3000u - 32 - 1000 - 100);
  EXPECT_LE(dropped, 3000u - 32 - 1000);
  const Json stats = BrokerStats(node);
  EXPECT_EQ(stats.value("slow_subscribers", Json()).value("messages_dropped", uint64_t{0}), dropped)
      << stats.dump();
  EXPECT_TRUE(node.Stop());
}

// With queue_wait_action = disconnect: the stalled v5 subscriber
// is disconnected with DISCONNECT 0x97 after the PUBLISHes it was sent.
TEST(SlowSubscriber, AStalledSubscriberCanBeDisconnectedInstead) {
  NodeProcess node(WithMqtt("max_queue_wait = 300ms\nqueue_wait_action = disconnect\n"));
  ASSERT_TRUE(node.Start());
  RawClient stalled, healthy, publisher;
  ASSERT_TRUE(StalledSubscriber(stalled, node.port(), MqttVersion::kV5, "fair/t"));
  const MqttVersion v = MqttVersion::kV311;
  ASSERT_TRUE(ConnectRaw(healthy, node.port(), Clean(v, "healthy")));
  ASSERT_TRUE(SubscribeRaw(healthy, v, "fair/t", 1));
  ASSERT_TRUE(ConnectRaw(publisher, node.port(), Clean(v, "publisher")));

  PublishAndReceive(publisher, healthy, "fair/t", 20, 100, seconds(5));
  EXPECT_EQ(Metric(node, "ferry_slow_subscribers_disconnected_total"), 1u);

  // What the stalled subscriber finds once it reads: the PUBLISHes sent
  // before its in-flight window filled, then DISCONNECT 0x97, then the end.
  int publishes = 0;
  std::optional<uint8_t> reason;
  while (!reason) {
    const std::optional<Bytes> raw = stalled.ReadPacket();
    ASSERT_TRUE(raw.has_value()) << "after " << publishes << " PUBLISHes: " << stalled.error();
    const std::optional<wire::RawPacket> p = wire::Parse(*raw);
    ASSERT_TRUE(p.has_value());
    if (p->type == wire::kPublish) {
      ++publishes;
      continue;
    }
    ASSERT_EQ(p->type, wire::kDisconnect) << wire::Hex(*raw);
    reason = wire::ParseDisconnect(*raw);
    ASSERT_TRUE(reason.has_value()) << wire::Hex(*raw);
  }
  EXPECT_EQ(*reason, 0x97) << "quota exceeded";
  EXPECT_EQ(publishes, 32) << "the node's max_inflight";
  EXPECT_TRUE(stalled.IsClosed());
  EXPECT_TRUE(node.Stop());
}

// A PUBLISH header declaring a packet of `total` bytes (QoS 0, topic "t"),
// followed by `extra` payload bytes.
Bytes PartialPublish(uint32_t total, size_t extra) {
  Bytes body = {0x00, 0x01, 't'};
  body.resize(body.size() + extra, 'x');
  Bytes out = {static_cast<uint8_t>(wire::kPublish << 4)};
  // Remaining length: `total` less the first byte and three length bytes.
  wire::AppendVarInt(&out, total - 4);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

constexpr uint32_t kMegabyte = 1024 * 1024;

// Partial packets. Before the fix each of these connections made the node allocate
// (and zero) the whole declared megabyte: about 1 GB of RSS for 1,000.
TEST(PartialPackets, DeclaredMegabytePacketsCostOnlyWhatArrives) {
  NodeProcess node;  // max_packet_size 1 MB, max_partial_packet_memory 64 MB
  ASSERT_TRUE(node.Start());
  const pid_t pid = NodePid(node);
  ASSERT_GT(pid, 0);
  const uint64_t before_kb = VmRssKb(pid).value_or(0);
  constexpr int kClients = 1000;
  const Bytes declared = PartialPublish(kMegabyte, 14);  // 21 bytes of a 1 MB packet
  ASSERT_EQ(declared.size(), 21u);
  // In two writes: the node reads the header first and, before the change,
  // sized the buffer to the declared megabyte at the next read.
  const Bytes first(declared.begin(), declared.begin() + 10);
  const Bytes rest(declared.begin() + 10, declared.end());
  std::vector<RawClient> clients(kClients);
  for (int i = 0; i < kClients; ++i) {
    ASSERT_TRUE(ConnectRaw(clients[i], node.port(),
                           Clean(MqttVersion::kV311, "partial-" + std::to_string(i))));
    ASSERT_TRUE(clients[i].Send(first));
  }
  for (RawClient& c : clients) ASSERT_TRUE(c.Send(rest));
  // Once the node has read them all, it holds their 21 bytes each.
  uint64_t held = 0;
  EXPECT_TRUE(WaitFor(
      [&] {
        held = Metric(node, "ferry_partial_packet_bytes");
        return held >= kClients * declared.size();
      },
      seconds(10), "the node to hold every partial packet"));
  EXPECT_LT(held, kClients * 64u) << "bytes held for " << kClients << " partial packets";
  const uint64_t after_kb = VmRssKb(pid).value_or(0);
  EXPECT_LT(after_kb, before_kb + 100 * 1024)
      << "ferryd's VmRSS grew from " << before_kb << " kB to " << after_kb << " kB";
  // And when they all close at once (the case: 961 MB).
  for (RawClient& c : clients) c.Close();
  EXPECT_TRUE(WaitFor([&] { return Metric(node, "ferry_partial_packet_bytes") == 0; }, seconds(10),
                      "the partial packets to be freed"));
  const uint64_t closed_kb = VmRssKb(pid).value_or(0);
  EXPECT_LT(closed_kb, before_kb + 100 * 1024)
      << "ferryd's VmRSS grew from " << before_kb << " kB to " << closed_kb << " kB";
  EXPECT_TRUE(NodeServes(node.port(), "after-partial"));
  EXPECT_TRUE(node.Stop());
}

// Past max_partial_packet_memory the connection whose packet
// would exceed it is closed (v5: DISCONNECT 0x89, server busy), and counted.
TEST(PartialPackets, AWorkerHoldsAtMostMaxPartialPacketMemory) {
  // Two workers (the base config), 2 MB each.
  NodeProcess node(WithMqtt("max_packet_size = 1MB\nmax_partial_packet_memory = 2MB\n"));
  ASSERT_TRUE(node.Start());
  const pid_t pid = NodePid(node);
  ASSERT_GT(pid, 0);
  const uint64_t before_kb = VmRssKb(pid).value_or(0);
  constexpr int kClients = 40;  // 300 KB each: 12 MB if nothing stopped them
  const Bytes part = PartialPublish(kMegabyte, 300 * 1024);
  std::vector<RawClient> clients(kClients);
  for (int i = 0; i < kClients; ++i) {
    ASSERT_TRUE(
        ConnectRaw(clients[i], node.port(), Clean(MqttVersion::kV5, "part-" + std::to_string(i))));
    (void)clients[i].Send(part);  // a refused client may see its send fail
  }
  EXPECT_TRUE(WaitFor([&] { return Metric(node, "ferry_partial_packet_refusals_total") > 0; },
                      seconds(10), "a refusal"));
  EXPECT_LE(Metric(node, "ferry_partial_packet_bytes"), 2u * 2 * kMegabyte);
  const uint64_t after_kb = VmRssKb(pid).value_or(0);
  EXPECT_LT(after_kb, before_kb + 50 * 1024)
      << "ferryd's VmRSS grew from " << before_kb << " kB to " << after_kb << " kB";
  // The last client found its worker full.
  wire::RawPacket d;
  ASSERT_TRUE(ExpectPacket(clients.back(), wire::kDisconnect, &d));
  ASSERT_FALSE(d.body.empty());
  EXPECT_EQ(d.body[0], 0x89) << "server busy";
  EXPECT_TRUE(clients.back().IsClosed());

  // Once they are gone, a packet of the largest size goes through.
  for (RawClient& c : clients) c.Close();
  EXPECT_TRUE(WaitFor([&] { return Metric(node, "ferry_partial_packet_bytes") == 0; }, seconds(10),
                      "the partial packets to be freed"));
  RawClient big;
  const MqttVersion v = MqttVersion::kV311;
  ASSERT_TRUE(ConnectRaw(big, node.port(), Clean(v, "big")));
  wire::PublishFields f{"big/t", "", 1, false, false, 1, {}};
  f.payload.assign(kMegabyte - 16, 'p');
  ASSERT_TRUE(big.Send(wire::Publish(v, f)));
  EXPECT_TRUE(ExpectPacket(big, wire::kPuback));
  EXPECT_TRUE(node.Stop());
}

// The SUBACK a client gets for `filters` (packet identifier `id`), raw.
std::optional<Bytes> SubackFor(RawClient& raw, MqttVersion v, uint16_t id,
                               const std::vector<wire::Subscription>& filters) {
  if (!raw.Send(wire::Subscribe(v, id, filters))) return std::nullopt;
  return raw.ReadPacket();
}

// A new topic filter past max_subscriptions_per_client is refused
// with 0x97 (v5) or 0x80 (3.1.1); replacing a subscription still works.
TEST(SubscriptionLimit, NewFiltersPastTheLimitAreRefused) {
  NodeProcess node(WithMqtt("max_subscriptions_per_client = 3\n"));
  ASSERT_TRUE(node.Start());
  const std::vector<wire::Subscription> three = {{"a", 1}, {"b", 1}, {"c", 0}};
  const std::vector<wire::Subscription> over = {{"d", 1}, {"a", 0}};

  RawClient v5;
  ASSERT_TRUE(ConnectRaw(v5, node.port(), Clean(MqttVersion::kV5, "subs-v5")));
  // SUBACK: type, remaining length, packet id, property length 0, codes.
  EXPECT_EQ(SubackFor(v5, MqttVersion::kV5, 1, three),
            (Bytes{0x90, 0x06, 0x00, 0x01, 0x00, 0x01, 0x01, 0x00}));
  EXPECT_EQ(SubackFor(v5, MqttVersion::kV5, 2, over),
            (Bytes{0x90, 0x05, 0x00, 0x02, 0x00, 0x97, 0x00}));

  RawClient v311;
  ASSERT_TRUE(ConnectRaw(v311, node.port(), Clean(MqttVersion::kV311, "subs-v311")));
  EXPECT_EQ(SubackFor(v311, MqttVersion::kV311, 1, three),
            (Bytes{0x90, 0x05, 0x00, 0x01, 0x01, 0x01, 0x00}));
  EXPECT_EQ(SubackFor(v311, MqttVersion::kV311, 2, over),
            (Bytes{0x90, 0x04, 0x00, 0x02, 0x80, 0x00}));

  EXPECT_EQ(Metric(node, "ferry_subscriptions_refused_total"), 2u);
  EXPECT_EQ(BrokerStats(node).value("subscriptions_refused", uint64_t{0}), 2u);
  EXPECT_TRUE(NodeServes(node.port(), "after-limit"));
  EXPECT_TRUE(node.Stop());
}

// A CONNECT larger than the limit (max_connect_packet_size before
// CONNECT) gets CONNACK 0x95 from a v5 client, then the close; 3.1.1 has no
// such code: just the close.
TEST(ConnectLimit, AnOversizedV5ConnectGetsConnack0x95) {
  NodeProcess node(WithMqtt("max_connect_packet_size = 1KB\n"));
  ASSERT_TRUE(node.Start());
  const Bytes kConnack95 = {0x20, 0x03, 0x00, 0x95, 0x00};  // flags, reason, no properties

  RawClient big_id;
  ASSERT_TRUE(big_id.Connect(node.port()));
  ASSERT_TRUE(big_id.Send(wire::Connect(Clean(MqttVersion::kV5, std::string(2000, 'c')))));
  EXPECT_EQ(big_id.ReadPacket(), kConnack95);
  EXPECT_TRUE(big_id.IsClosed());

  // A header declaring 100 MB, its bytes in two writes: the node waits for
  // the protocol level before it answers, and allocates nothing for the body.
  Bytes declared = wire::Connect(Clean(MqttVersion::kV5, "declared"));
  Bytes header = {declared[0]};
  wire::AppendVarInt(&header, 100 * kMegabyte);
  RawClient huge;
  ASSERT_TRUE(huge.Connect(node.port()));
  ASSERT_TRUE(huge.Send(header));
  EXPECT_FALSE(huge.Recv(1, milliseconds(200)).has_value()) << "answered before the level came";
  ASSERT_TRUE(huge.Send(Bytes(declared.begin() + 2, declared.begin() + 12)));
  EXPECT_EQ(huge.ReadPacket(), kConnack95);
  EXPECT_TRUE(huge.IsClosed());

  RawClient v311;
  ASSERT_TRUE(v311.Connect(node.port()));
  ASSERT_TRUE(v311.Send(wire::Connect(Clean(MqttVersion::kV311, std::string(2000, 'c')))));
  EXPECT_FALSE(v311.Recv(1).has_value()) << "3.1.1 has no CONNACK code for this";
  EXPECT_NE(v311.error().find("by peer"), std::string::npos) << v311.error();
  EXPECT_TRUE(NodeServes(node.port(), "after-connect"));
  EXPECT_TRUE(node.Stop());
}

}  // namespace
}  // namespace ferry::testing
