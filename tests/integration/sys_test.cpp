// The node's statistics under $SYS/brokers/<node name>/ (published every
// [sys] interval, retained; see etc/ferry.conf and Broker::PublishSys), and
// the rule that wildcard filters do not reach them [MQTT-4.7.2-1].
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "support/mqtt_wire.h"
#include "support/node_process.h"
#include "support/raw_client.h"
#include "support/session_helpers.h"

namespace ferry::testing {
namespace {

using std::chrono::seconds;

constexpr MqttVersion kV311 = MqttVersion::kV311;
// Two intervals and some slack: long enough for any value to be republished.
constexpr seconds kRefresh{4};

const std::vector<std::string> kStatistics = {
    "version",        "uptime",     "clients/connected",   "messages/received", "messages/sent",
    "bytes/received", "bytes/sent", "subscriptions/count", "retained/count",    "messages/dropped",
};

class SysTest : public ::testing::Test {
 protected:
  SysTest() : node_(Options()) {}

  static NodeOptions Options() {
    NodeOptions o;
    o.extra_config = "[sys]\ninterval = 1s\n";
    return o;
  }

  // The watcher is a connected client with one subscription, which the
  // statistics include.
  void SetUp() override {
    ASSERT_TRUE(node_.Start());
    sys_ = std::make_unique<SysWatcher>(port(), node_.name());
    ASSERT_TRUE(sys_->Start());
  }

  void TearDown() override {
    sys_.reset();
    if (node_.Running()) {
      EXPECT_TRUE(node_.Stop());
    }
  }

  uint16_t port() const { return node_.port(); }
  std::string Topic(const std::string& name) const {
    return "$SYS/brokers/" + node_.name() + "/" + name;
  }

  // Waits until statistic `name` is a number satisfying `ok`.
  ::testing::AssertionResult WaitForNumber(const std::string& name,
                                           const std::function<bool(uint64_t)>& ok) {
    return sys_->WaitForValue(
        name,
        [&](const std::string& s) {
          const std::optional<uint64_t> n = ParseNumber(s);
          return n.has_value() && ok(*n);
        },
        kRefresh);
  }

  // The latest value of a numeric statistic (waiting for its first one).
  uint64_t Current(const std::string& name) {
    const std::optional<uint64_t> n = sys_->Number(name, kRefresh);
    EXPECT_TRUE(n.has_value()) << name << " = '" << sys_->Latest(name).value_or("") << "'";
    return n.value_or(0);
  }

  NodeProcess node_;
  std::unique_ptr<SysWatcher> sys_;
};

TEST_F(SysTest, EveryStatisticIsPublishedUnderTheNodeName) {
  for (const std::string& name : kStatistics) {
    EXPECT_TRUE(sys_->WaitForCount(name, 1, kRefresh)) << name;
  }
  const std::string version = sys_->Latest("version").value_or("");
  EXPECT_TRUE(version.starts_with("ferry ")) << version;
  for (const std::string& name : kStatistics) {
    if (name == "version" || name == "uptime") continue;
    EXPECT_TRUE(ParseNumber(sys_->Latest(name).value_or("")).has_value())
        << name << " = '" << sys_->Latest(name).value_or("") << "'";
  }

  // "<n> seconds", and n grows.
  auto seconds_up = [](const std::string& s) {
    return s.ends_with(" seconds") ? ParseNumber(s.substr(0, s.size() - 8)) : std::nullopt;
  };
  const std::optional<uint64_t> up = seconds_up(sys_->Latest("uptime").value_or(""));
  ASSERT_TRUE(up.has_value()) << "uptime = '" << sys_->Latest("uptime").value_or("") << "'";
  EXPECT_TRUE(sys_->WaitForValue(
      "uptime", [&](const std::string& s) { return seconds_up(s).value_or(0) > *up; }, kRefresh));

  // Retained, so a later subscriber has the current value at once, with
  // RETAIN set [MQTT-3.3.1-8].
  RawClient late;
  ASSERT_TRUE(ConnectRaw(late, port(), Clean(kV311, "late")));
  ASSERT_TRUE(SubscribeRaw(late, kV311, Topic("version"), 0));
  wire::ReceivedPublish p;
  ASSERT_TRUE(ReadPublish(late, kV311, &p, seconds(1)));
  EXPECT_EQ(p.topic, Topic("version"));
  EXPECT_TRUE(p.retain);
  EXPECT_EQ(p.payload, version);
}

TEST_F(SysTest, ConnectedCountFollowsTheConnectedClients) {
  EXPECT_TRUE(WaitForNumber("clients/connected", [](uint64_t n) { return n == 1; }));
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<RawClient>());
    ASSERT_TRUE(ConnectRaw(*clients.back(), port(), Clean(kV311, "counted-" + std::to_string(i))));
  }
  EXPECT_TRUE(WaitForNumber("clients/connected", [](uint64_t n) { return n == 4; }));
  ASSERT_TRUE(clients[0]->Send(wire::Disconnect(kV311)));
  clients[1]->Close();  // without DISCONNECT
  EXPECT_TRUE(WaitForNumber("clients/connected", [](uint64_t n) { return n == 2; }));
}

// messages/*, bytes/*, subscriptions/count and retained/count follow what
// clients do.
TEST_F(SysTest, CountersFollowTrafficSubscriptionsAndRetainedMessages) {
  // A whole round has gone out once retained/count has twice: by then every
  // $SYS value is itself a retained message and the baselines are stable.
  ASSERT_TRUE(sys_->WaitForCount("retained/count", 2, kRefresh));
  const uint64_t received = Current("messages/received");
  const uint64_t sent = Current("messages/sent");
  const uint64_t bytes_in = Current("bytes/received");
  const uint64_t bytes_out = Current("bytes/sent");
  const uint64_t subscriptions = Current("subscriptions/count");
  const uint64_t retained = Current("retained/count");
  EXPECT_GE(subscriptions, 1u);  // the watcher's own

  RawClient sub;
  ASSERT_TRUE(ConnectRaw(sub, port(), Clean(kV311, "counted-sub")));
  ASSERT_TRUE(SubscribeRaw(sub, kV311, "count/t", 1, 1));
  ASSERT_TRUE(SubscribeRaw(sub, kV311, "count/+/b", 1, 2));
  RawClient pub;
  ASSERT_TRUE(ConnectRaw(pub, port(), Clean(kV311, "counted-pub")));
  const std::string payload(1000, 'b');
  ASSERT_TRUE(PublishManyRaw(pub, kV311, "count/t", 1, 5, [&](int) { return payload; }));
  std::vector<wire::ReceivedPublish> got;
  ASSERT_TRUE(ReceiveAndAck(sub, kV311, 5, &got));
  auto retain = [&](const std::string& text) {
    wire::PublishFields f{"counted/retained", text, 1, true, false, 1, {}};
    ASSERT_TRUE(pub.Send(wire::Publish(kV311, f)));
    ASSERT_TRUE(ExpectPacket(pub, wire::kPuback));
  };
  retain("kept");

  EXPECT_TRUE(WaitForNumber("messages/received", [&](uint64_t n) { return n >= received + 6; }));
  EXPECT_TRUE(WaitForNumber("messages/sent", [&](uint64_t n) { return n >= sent + 5; }));
  EXPECT_TRUE(WaitForNumber("bytes/received", [&](uint64_t n) { return n >= bytes_in + 5000; }));
  EXPECT_TRUE(WaitForNumber("bytes/sent", [&](uint64_t n) { return n >= bytes_out + 5000; }));
  EXPECT_TRUE(WaitForNumber("subscriptions/count",
                            [&](uint64_t n) { return n == subscriptions + 2; }));
  EXPECT_TRUE(WaitForNumber("retained/count", [&](uint64_t n) { return n == retained + 1; }));

  ASSERT_TRUE(sub.Send(wire::Unsubscribe(kV311, 3, {"count/t"})));
  ASSERT_TRUE(ExpectPacket(sub, wire::kUnsuback));
  retain("");  // [MQTT-3.3.1-6]: an empty retained message removes it
  EXPECT_TRUE(WaitForNumber("subscriptions/count",
                            [&](uint64_t n) { return n == subscriptions + 1; }));
  EXPECT_TRUE(WaitForNumber("retained/count", [&](uint64_t n) { return n == retained; }));

  ASSERT_TRUE(sub.Send(wire::Disconnect(kV311)));  // a clean session takes its subscriptions along
  EXPECT_TRUE(WaitForNumber("subscriptions/count", [&](uint64_t n) { return n == subscriptions; }));
}

// [MQTT-4.7.2-1]: topic filters starting with a wildcard do not match topic
// names starting with '$', neither for live messages nor retained ones.
TEST_F(SysTest, WildcardFiltersDoNotReceiveSysTopics) {
  ASSERT_TRUE(sys_->WaitForCount("uptime", 1, kRefresh));  // retained $SYS values exist
  RawClient all;
  ASSERT_TRUE(ConnectRaw(all, port(), Clean(kV311, "everything")));
  ASSERT_TRUE(SubscribeRaw(all, kV311, "#", 0, 1));
  ASSERT_TRUE(SubscribeRaw(all, kV311, "+/brokers/#", 0, 2));
  ASSERT_TRUE(SubscribeRaw(all, kV311, "+/+/+/uptime", 0, 3));
  // Two more rounds of $SYS values go out while `all` is subscribed ...
  const int seen = sys_->Count("uptime");
  ASSERT_TRUE(sys_->WaitForCount("uptime", seen + 2, kRefresh));
  // ... and the first thing `all` receives is this ordinary message.
  RawClient pub;
  ASSERT_TRUE(ConnectRaw(pub, port(), Clean(kV311, "ordinary")));
  ASSERT_TRUE(PublishManyRaw(pub, kV311, "ordinary/t", 1, 1, [](int) { return "plain"; }));
  wire::ReceivedPublish p;
  ASSERT_TRUE(ReadPublish(all, kV311, &p));
  EXPECT_EQ(p.topic, "ordinary/t") << "a wildcard filter matched a $SYS topic";
}

}  // namespace
}  // namespace ferry::testing
