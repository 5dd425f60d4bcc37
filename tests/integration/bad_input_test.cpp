// Hostile and broken input from clients, in raw bytes, in the spirit of
// eclipse/mosquitto test/broker/01-bad-initial-packets.py: every case must
// end with the offending connection closed (v5 clients first get a DISCONNECT
// with the reason code), and after every case the node must still serve a new
// client. A node that took all of this still exits cleanly on SIGTERM
// (TearDown).
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "support/mqtt_wire.h"
#include "support/node_process.h"
#include "support/raw_client.h"
#include "support/session_helpers.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr uint32_t kMaxPacketSize = 65536;
constexpr MqttVersion kVersions[] = {MqttVersion::kV311, MqttVersion::kV5};

const char* Name(MqttVersion v) { return v == MqttVersion::kV5 ? "v5" : "v3.1.1"; }

// A PUBLISH whose topic name is the given bytes, valid or not.
Bytes PublishTo(MqttVersion v, const std::string& topic, int qos = 0, uint16_t packet_id = 1) {
  wire::PublishFields f;
  f.topic = topic;
  f.payload = "x";
  f.qos = qos;
  f.packet_id = packet_id;
  return wire::Publish(v, f);
}

// The node closes the connection without sending anything (more).
::testing::AssertionResult ClosedWithoutReply(RawClient& raw,
                                              milliseconds timeout = kDefaultTimeout) {
  if (const std::optional<Bytes> got = raw.Recv(1, timeout)) {
    return ::testing::AssertionFailure() << "the node answered (" << wire::Hex(*got) << "...)";
  }
  if (raw.error().find("by peer") == std::string::npos) {
    return ::testing::AssertionFailure() << "connection not closed: " << raw.error();
  }
  return ::testing::AssertionSuccess();
}

// Closes with an RST rather than a FIN, as a crashed client would.
void CloseAbruptly(RawClient& raw) {
  const linger reset{1, 0};
  setsockopt(raw.fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  raw.Close();
}

class BadInputTest : public ::testing::Test {
 protected:
  BadInputTest() : node_(Options()) {}

  static NodeOptions Options() {
    NodeOptions o;
    o.extra_config = "[mqtt]\nmax_packet_size = " + std::to_string(kMaxPacketSize) +
                     "\n[sys]\ninterval = 1s\n[log]\nlevel = info\n";
    return o;
  }

  void SetUp() override { ASSERT_TRUE(node_.Start()); }

  void TearDown() override {
    if (node_.Running()) {
      EXPECT_TRUE(node_.Stop());
    }
  }

  uint16_t port() const { return node_.port(); }
  std::string NextTag() { return std::to_string(++cases_); }

  // A connected client (CONNACK received) to send bad bytes from.
  ::testing::AssertionResult Connected(RawClient& raw, MqttVersion v) {
    return ConnectRaw(raw, port(), Clean(v, "bad-" + NextTag()));
  }

  // A client connected as `v` sends `bytes`; the node closes the connection,
  // telling a v5 client why with a DISCONNECT whose reason code is one of
  // `v5_reasons`. Then a new client is still served.
  void ExpectRejected(MqttVersion v, const Bytes& bytes, const std::vector<uint8_t>& v5_reasons,
                      const std::string& what) {
    SCOPED_TRACE(what + " from a " + Name(v) + " client: " + wire::Hex(bytes).substr(0, 90));
    RawClient raw;
    ASSERT_TRUE(Connected(raw, v));
    ASSERT_TRUE(raw.Send(bytes));
    if (v == MqttVersion::kV5) {
      wire::RawPacket d;
      ASSERT_TRUE(ExpectPacket(raw, wire::kDisconnect, &d));
      ASSERT_FALSE(d.body.empty()) << "DISCONNECT without a reason code";
      EXPECT_NE(std::find(v5_reasons.begin(), v5_reasons.end(), d.body[0]), v5_reasons.end())
          << "reason code 0x" << std::hex << int{d.body[0]};
    }
    EXPECT_TRUE(ClosedWithoutReply(raw));
    EXPECT_TRUE(NodeServes(port(), NextTag()));
  }

  // `bytes` as the first thing on a new connection: closed, unanswered.
  void ExpectRejectedBeforeConnect(const Bytes& bytes, const std::string& what) {
    SCOPED_TRACE(what + ": " + wire::Hex(bytes).substr(0, 90));
    RawClient raw;
    ASSERT_TRUE(raw.Connect(port()));
    ASSERT_TRUE(raw.Send(bytes));
    EXPECT_TRUE(ClosedWithoutReply(raw));
    EXPECT_TRUE(NodeServes(port(), NextTag()));
  }

  NodeProcess node_;
  int cases_ = 0;
};

TEST_F(BadInputTest, TruncatedConnectIsDroppedWhenTheSocketCloses) {
  for (MqttVersion v : kVersions) {
    wire::ConnectFields f = Clean(v, "truncated");
    f.username = "user";
    f.password = "secret";
    f.will = wire::Will{"will/t", "gone", 1, false, {}};
    if (v == MqttVersion::kV5) {
      f.properties = SessionExpiryProperty(10);
      f.properties.insert(f.properties.end(), {0x21, 0x00, 0x10});  // Receive Maximum 16
      f.will->properties = {0x18, 0x00, 0x00, 0x00, 0x05};          // Will Delay Interval 5
    }
    const Bytes full = wire::Connect(f);
    for (size_t cut = 1; cut < full.size(); ++cut) {
      SCOPED_TRACE(std::string(Name(v)) + " CONNECT cut after " + std::to_string(cut) + " of " +
                   std::to_string(full.size()) + " bytes");
      RawClient raw;
      ASSERT_TRUE(raw.Connect(port()));
      ASSERT_TRUE(raw.Send(Bytes(full.begin(), full.begin() + static_cast<long>(cut))));
      raw.ShutdownWrite();
      ASSERT_TRUE(ClosedWithoutReply(raw));  // no CONNACK for half a CONNECT
      ASSERT_TRUE(NodeServes(port(), NextTag()));
    }
  }
}

// A remaining length is at most four bytes (MQTT 5.0 section 1.5.5).
TEST_F(BadInputTest, RemainingLengthWithAFifthByteIsMalformed) {
  ExpectRejectedBeforeConnect({0x10, 0xff, 0xff, 0xff, 0xff, 0x01}, "first packet");
  for (MqttVersion v : kVersions) {
    ExpectRejected(v, {0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, {0x81}, "PUBLISH");
  }
}

// Limits are checked before anything is allocated for the body (STYLE.md,
// "check limits before allocating"): a first packet claiming 200 MB is
// refused on its fixed header.
TEST_F(BadInputTest, HugeFirstPacketIsRefusedWithoutAllocatingIt) {
  const pid_t pid = NodePid(node_);
  ASSERT_GT(pid, 0);
  Bytes header{wire::kConnect << 4};
  wire::AppendVarInt(&header, 200u * 1024 * 1024);
  Bytes start = wire::Connect(Clean(MqttVersion::kV311, "huge"));
  header.insert(header.end(), start.begin() + 2, start.end());
  header.resize(header.size() + 4096, 'x');
  RawClient raw;
  ASSERT_TRUE(raw.Connect(port()));
  ASSERT_TRUE(raw.Send(header));
  EXPECT_TRUE(ClosedWithoutReply(raw, seconds(2)));
  const std::optional<uint64_t> rss_kb = VmRssKb(pid);
  ASSERT_TRUE(rss_kb.has_value());
  EXPECT_LT(*rss_kb, 100u * 1024) << "ferryd's VmRSS is " << *rss_kb << " kB";
  EXPECT_TRUE(NodeServes(port(), NextTag()));
}

// [MQTT-3.2.2-15]: a client must not exceed the Maximum Packet Size the
// server announced; the server closes the connection, with DISCONNECT 0x95
// Packet too large for v5 (MQTT 5.0 section 3.2.2.3.6). The limit counts the
// whole packet: one of exactly max_packet_size bytes is accepted.
TEST_F(BadInputTest, PacketLargerThanMaxPacketSizeClosesTheConnection) {
  for (MqttVersion v : kVersions) {
    std::string payload(kMaxPacketSize - 16, 'p');
    Bytes packet;
    wire::PublishFields f{"big/t", payload, 1, false, false, 1, {}};
    while ((packet = wire::Publish(v, f)).size() < kMaxPacketSize) f.payload += 'p';
    ASSERT_EQ(packet.size(), kMaxPacketSize);
    RawClient raw;
    ASSERT_TRUE(Connected(raw, v));
    ASSERT_TRUE(raw.Send(packet));
    EXPECT_TRUE(ExpectPacket(raw, wire::kPuback)) << "a packet of exactly the maximum size";

    f.payload += 'p';
    ExpectRejected(v, wire::Publish(v, f), {0x95}, "PUBLISH one byte over max_packet_size");
  }
}

// [MQTT-1.5.4-1] (v5) / [MQTT-1.5.3-1] (3.1.1): ill-formed UTF-8, including
// encoded surrogates, in a string makes the packet malformed.
TEST_F(BadInputTest, InvalidUtf8InATopicClosesTheConnection) {
  const std::vector<std::string> bad = {
      std::string("a/\xc0\xaf", 4),      // overlong '/'
      std::string("a/\xff", 3),          // never valid in UTF-8
      std::string("a/\xed\xa0\x80", 5),  // U+D800, a surrogate
      std::string("a/\xe2\x82", 4),      // truncated sequence
  };
  for (MqttVersion v : kVersions) {
    for (const std::string& topic : bad) {
      ExpectRejected(v, PublishTo(v, topic), {0x81}, "PUBLISH topic name");
      ExpectRejected(v, wire::Subscribe(v, 1, {{topic, 0}}), {0x81}, "SUBSCRIBE topic filter");
    }
  }
}

// [MQTT-1.5.4-2] (v5) / [MQTT-1.5.3-2] (3.1.1): U+0000 must not appear in a
// UTF-8 string [MQTT-4.7.3-2].
TEST_F(BadInputTest, NullCharacterInATopicClosesTheConnection) {
  const std::string topic("a/\0/b", 5);
  for (MqttVersion v : kVersions) {
    ExpectRejected(v, PublishTo(v, topic), {0x81}, "PUBLISH topic name with U+0000");
    ExpectRejected(v, wire::Subscribe(v, 1, {{topic, 0}}), {0x81},
                   "SUBSCRIBE topic filter with U+0000");
  }
}

// [MQTT-3.3.2-2]: the topic name in a PUBLISH must not contain wildcards;
// v5 names the reason 0x90 Topic Name invalid.
TEST_F(BadInputTest, WildcardsInAPublishTopicCloseTheConnection) {
  for (MqttVersion v : kVersions) {
    for (const char* topic : {"a/+", "a/#", "#", "+", "a/b+"}) {
      ExpectRejected(v, PublishTo(v, topic, 1), {0x90}, std::string("PUBLISH to ") + topic);
    }
  }
}

// [MQTT-2.3.1-1] (3.1.1) / [MQTT-2.2.1-3] (v5): PUBLISH with QoS > 0,
// SUBSCRIBE and UNSUBSCRIBE carry a non-zero packet identifier.
TEST_F(BadInputTest, PacketIdentifierZeroClosesTheConnection) {
  for (MqttVersion v : kVersions) {
    ExpectRejected(v, PublishTo(v, "pid/t", 1, 0), {0x81, 0x82}, "QoS 1 PUBLISH with id 0");
    ExpectRejected(v, PublishTo(v, "pid/t", 2, 0), {0x81, 0x82}, "QoS 2 PUBLISH with id 0");
    ExpectRejected(v, wire::Subscribe(v, 0, {{"pid/t", 1}}), {0x81, 0x82}, "SUBSCRIBE with id 0");
    ExpectRejected(v, wire::Unsubscribe(v, 0, {"pid/t"}), {0x81, 0x82}, "UNSUBSCRIBE with id 0");
  }
}

// Packet type 0 is reserved in both versions, and 15 before v5 (MQTT 3.1.1
// table 2.1, MQTT 5.0 section 2.1.2).
TEST_F(BadInputTest, ReservedPacketTypesCloseTheConnection) {
  ExpectRejectedBeforeConnect({0x00, 0x00}, "packet type 0 first");
  ExpectRejectedBeforeConnect({0xf0, 0x00}, "packet type 15 first");
  for (MqttVersion v : kVersions) ExpectRejected(v, {0x00, 0x00}, {0x81}, "packet type 0");
  ExpectRejected(MqttVersion::kV311, {0xf0, 0x00}, {}, "packet type 15 (AUTH) in 3.1.1");
}

// [MQTT-2.2.2-2] (3.1.1) / [MQTT-2.1.3-1] (v5): reserved fixed header flags
// must have their listed values; [MQTT-3.8.1-1] SUBSCRIBE 0010,
// [MQTT-3.6.1-1] PUBREL 0010, [MQTT-3.10.1-1] UNSUBSCRIBE 0010; and
// [MQTT-3.3.1-4] no PUBLISH with QoS 3.
TEST_F(BadInputTest, ReservedFixedHeaderFlagsCloseTheConnection) {
  for (MqttVersion v : kVersions) {
    Bytes subscribe = wire::Subscribe(v, 1, {{"flags/t", 0}});
    for (uint8_t flags : {0x0, 0x3, 0xa}) {
      subscribe[0] = static_cast<uint8_t>(wire::kSubscribe << 4 | flags);
      ExpectRejected(v, subscribe, {0x81}, "SUBSCRIBE flags " + std::to_string(flags));
    }
    Bytes unsubscribe = wire::Unsubscribe(v, 1, {"flags/t"});
    unsubscribe[0] = wire::kUnsubscribe << 4;
    ExpectRejected(v, unsubscribe, {0x81}, "UNSUBSCRIBE flags 0");
    Bytes pubrel = wire::PublishAck(wire::kPubrel, v, 1);
    pubrel[0] = wire::kPubrel << 4;
    ExpectRejected(v, pubrel, {0x81}, "PUBREL flags 0");
    ExpectRejected(v, {static_cast<uint8_t>(wire::kPingreq << 4 | 0x1), 0x00}, {0x81},
                   "PINGREQ flags 1");
    Bytes qos3 = PublishTo(v, "flags/t", 2);
    qos3[0] |= 0x06;
    ExpectRejected(v, qos3, {0x81}, "PUBLISH QoS 3");
  }
}

// [MQTT-3.8.3-3] (3.1.1) / [MQTT-3.8.3-2] (v5): a SUBSCRIBE carries at least
// one topic filter; v5 calls its absence a Protocol Error. [MQTT-3.10.3-2]:
// the same for UNSUBSCRIBE.
TEST_F(BadInputTest, SubscribeWithoutTopicFiltersClosesTheConnection) {
  for (MqttVersion v : kVersions) {
    ExpectRejected(v, wire::Subscribe(v, 1, {}), {0x82}, "SUBSCRIBE without topic filters");
    ExpectRejected(v, wire::Unsubscribe(v, 1, {}), {0x82}, "UNSUBSCRIBE without topic filters");
  }
}

// [MQTT-3.1.0-1]: the first packet from a client must be CONNECT;
// [MQTT-3.1.0-2]: a second CONNECT is a protocol violation. Also broken
// CONNECTs: [MQTT-3.1.2-1] protocol name, [MQTT-3.1.2-3] reserved flag.
TEST_F(BadInputTest, PacketsOtherThanAValidConnectFirstCloseTheConnection) {
  ExpectRejectedBeforeConnect(PublishTo(MqttVersion::kV311, "early/t"), "PUBLISH");
  ExpectRejectedBeforeConnect(PublishTo(MqttVersion::kV311, "early/t", 1), "QoS 1 PUBLISH");
  ExpectRejectedBeforeConnect(wire::Subscribe(MqttVersion::kV311, 1, {{"early/t", 0}}),
                              "SUBSCRIBE");
  ExpectRejectedBeforeConnect(wire::PingReq(), "PINGREQ");
  ExpectRejectedBeforeConnect(wire::Disconnect(MqttVersion::kV311), "DISCONNECT");
  ExpectRejectedBeforeConnect({wire::kConnack << 4, 0x02, 0x00, 0x00}, "CONNACK");

  Bytes bad_name = wire::Connect(Clean(MqttVersion::kV311, "bad-name"));
  bad_name[7] = 'X';  // "MQTT" -> "MQTX"
  ExpectRejectedBeforeConnect(bad_name, "CONNECT with protocol name MQTX");
  Bytes reserved = wire::Connect(Clean(MqttVersion::kV311, "reserved-flag"));
  reserved[9] |= 0x01;  // connect flags, bit 0 reserved
  ExpectRejectedBeforeConnect(reserved, "CONNECT with the reserved flag set");

  for (MqttVersion v : kVersions) {
    ExpectRejected(v, wire::Connect(Clean(v, "second")), {0x82}, "second CONNECT");
  }
}

// A subscriber that stops reading must cost a bounded amount of memory: its
// QoS 0 messages are dropped beyond [mqtt] max_output_buffer (etc/ferry.conf)
// and counted in $SYS .../messages/dropped, and everyone else is served.
TEST_F(BadInputTest, AStalledReaderDoesNotHoldTheNodeHostage) {
  const pid_t pid = NodePid(node_);
  ASSERT_GT(pid, 0);
  const MqttVersion v = MqttVersion::kV311;
  RawClient stalled;
  ASSERT_TRUE(ConnectRaw(stalled, port(), Clean(v, "stalled-reader")));
  ASSERT_TRUE(SubscribeRaw(stalled, v, "busy/t", 0));
  // From here on `stalled` reads nothing.

  SysWatcher sys(port(), node_.name());
  ASSERT_TRUE(sys.Start("messages/dropped"));
  RawClient flood;
  ASSERT_TRUE(ConnectRaw(flood, port(), Clean(v, "flood")));
  wire::PublishFields f{"busy/t", std::string(60000, 'f'), 0, false, false, 0, {}};
  const Bytes big = wire::Publish(v, f);
  constexpr int kPackets = 875;  // about 50 MB
  uint64_t max_rss_kb = 0;
  for (int i = 0; i < kPackets; ++i) {
    ASSERT_TRUE(flood.Send(big)) << "after " << i << " packets";
    if (i % 100 == 0) max_rss_kb = std::max(max_rss_kb, VmRssKb(pid).value_or(0));
    if (i == kPackets / 2) {
      ASSERT_TRUE(NodeServes(port(), NextTag()));  // served while the flood goes on
    }
  }
  ASSERT_TRUE(ExpectNothingBeforePingresp(flood, seconds(10)));
  max_rss_kb = std::max(max_rss_kb, VmRssKb(pid).value_or(0));
  EXPECT_LT(max_rss_kb, 200u * 1024) << "ferryd's VmRSS reached " << max_rss_kb << " kB";
  EXPECT_TRUE(sys.WaitForValue(
      "messages/dropped", [](const std::string& s) { return ParseNumber(s).value_or(0) > 0; },
      seconds(5)));
  EXPECT_TRUE(NodeServes(port(), NextTag()));
}

TEST_F(BadInputTest, AThousandAbruptlyClosedConnectionsLeaveNothingBehind) {
  SysWatcher sys(port(), node_.name());
  ASSERT_TRUE(sys.Start("clients/connected"));
  const Bytes connect = wire::Connect(Clean(MqttVersion::kV5, ""));
  constexpr int kBatch = 50;
  for (int round = 0; round < 1000 / kBatch; ++round) {
    std::vector<RawClient> batch(kBatch);
    for (int i = 0; i < kBatch; ++i) {
      RawClient& raw = batch[i];
      ASSERT_TRUE(raw.Connect(port()));
      switch (i % 4) {
        case 0:  // nothing at all
          break;
        case 1:  // half a CONNECT
          ASSERT_TRUE(raw.Send(Bytes(connect.begin(), connect.begin() + 6)));
          break;
        case 2:  // a CONNECT, gone before the CONNACK is read
          ASSERT_TRUE(raw.Send(connect));
          break;
        case 3:  // connected, then gone
          ASSERT_TRUE(raw.MqttConnect(Clean(MqttVersion::kV5, "abrupt-" + std::to_string(i))));
          break;
      }
    }
    for (RawClient& raw : batch) CloseAbruptly(raw);
  }
  EXPECT_TRUE(NodeServes(port(), NextTag()));
  // Only the watcher is left connected.
  EXPECT_TRUE(sys.WaitForValue("clients/connected", [](const std::string& s) { return s == "1"; },
                               seconds(5)));
}

// Random bytes after a valid CONNECT, from a fixed seed so a failure can be
// replayed: whatever they are, the node survives them.
TEST_F(BadInputTest, RandomBytesAfterConnectDoNotHurtTheNode) {
  std::mt19937 rng(0xfe77);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> length(1, 96);
  for (int i = 0; i < 500; ++i) {
    const MqttVersion v = kVersions[i % 2];
    Bytes junk;
    const int n = length(rng);
    if (i % 3 == 0) {
      // A plausible frame: a packet type and flags, a matching remaining
      // length, then a random body.
      Bytes body(static_cast<size_t>(n));
      for (uint8_t& b : body) b = static_cast<uint8_t>(byte(rng));
      junk = wire::Frame(static_cast<uint8_t>(byte(rng)), body);
    } else {
      for (int k = 0; k < n; ++k) junk.push_back(static_cast<uint8_t>(byte(rng)));
    }
    RawClient raw;
    ASSERT_TRUE(ConnectRaw(raw, port(), Clean(v, "fuzz-" + std::to_string(i % 7))))
        << "iteration " << i;
    (void)raw.Send(junk);  // the node may close the connection before all of it is written
    if (i % 2 == 0) {
      CloseAbruptly(raw);
    } else {
      raw.Close();
    }
    if (i % 50 == 49) {
      ASSERT_TRUE(NodeServes(port(), NextTag())) << "after iteration " << i;
    }
  }
  ASSERT_TRUE(node_.Running());
  EXPECT_TRUE(NodeServes(port(), NextTag()));
  ASSERT_TRUE(node_.Stop());  // and it still exits cleanly on SIGTERM
  EXPECT_TRUE(node_.exit_status()->Clean());
}

}  // namespace
}  // namespace ferry::testing
