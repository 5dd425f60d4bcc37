// ferryctl bridges ...: the seed's ad-hoc start/list/stop, configured
// bridges started and stopped by name, rules changed at runtime and kept
// across a restart, the errors, and the same data over HTTP and /metrics.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "support/bridge_helpers.h"
#include "support/ctl.h"
#include "support/mqtt_wire.h"
#include "support/node_process.h"
#include "support/raw_client.h"
#include "support/session_helpers.h"
#include "support/temp_dir.h"
#include "support/wait.h"

namespace ferry::testing {
namespace {

using std::chrono::seconds;

constexpr MqttVersion kV311 = MqttVersion::kV311;

::testing::AssertionResult Forwarded(NodeProcess& from, NodeProcess& to, const std::string& topic) {
  RawClient sub;
  if (auto r = ConnectRaw(sub, to.port(), Clean(kV311, "check-sub")); !r) return r;
  if (auto r = SubscribeRaw(sub, kV311, topic, 1); !r) return r;
  RawClient pub;
  if (auto r = ConnectRaw(pub, from.port(), Clean(kV311, "check-pub")); !r) return r;
  if (auto r = PublishManyRaw(pub, kV311, topic, 1, 1, [](int) { return "hello"; }); !r) return r;
  wire::ReceivedPublish p;
  if (auto r = ReadPublish(sub, kV311, &p); !r) return r;
  if (p.topic != topic) return ::testing::AssertionFailure() << "got " << p.topic;
  return ::testing::AssertionSuccess();
}

class BridgeCtl : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(up_.Start());
    ASSERT_TRUE(edge_.Start());
    target_ = "ferry2@127.0.0.1:" + std::to_string(up_.port());
  }
  CommandResult Ctl(const std::vector<std::string>& args) { return Ferryctl(edge_, args); }

  NodeProcess up_{BridgeTestNode("ferry2")};
  NodeProcess edge_{BridgeTestNode("ferry1")};
  std::string target_;
};

// The seed's commands, word for word.
TEST_F(BridgeCtl, SeedStartListStop) {
  CommandResult r = Ctl({"bridges", "start", target_, "sensor/#"});
  ASSERT_TRUE(r.Succeeded()) << r.ToString();
  EXPECT_EQ(r.out, "bridge is started.\n");
  const std::string name = "ferry2_127_0_0_1_" + std::to_string(up_.port());
  ASSERT_TRUE(WaitBridgeState(edge_, name, "connected"));
  r = Ctl({"bridges", "list"});
  ASSERT_TRUE(r.Succeeded()) << r.ToString();
  EXPECT_EQ(r.out.rfind("bridge: ferry1@127.0.0.1/sensor/#-->" + target_ + "  (", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("connected to " + target_), std::string::npos) << r.out;
  EXPECT_TRUE(Forwarded(edge_, up_, "sensor/x"));

  r = Ctl({"bridges", "stop", target_, "sensor/#"});
  ASSERT_TRUE(r.Succeeded()) << r.ToString();
  EXPECT_EQ(r.out, "bridge is stopped.\n");
  r = Ctl({"bridges", "list"});
  EXPECT_EQ(r.out, "no bridges\n");
}

TEST_F(BridgeCtl, RuntimeBridgesAndTheirRulesSurviveARestart) {
  ASSERT_TRUE(Ctl({"bridges", "start", target_, "a/#", "--name", "cloud", "--qos", "2",
                   "--remote-prefix", "site/${node}/"})
                  .Succeeded());
  ASSERT_TRUE(Ctl({"bridges", "add-forward", "cloud", "b/#", "--qos", "0"}).Succeeded());
  ASSERT_TRUE(Ctl({"bridges", "add-subscription", "cloud", "cmd/#"}).Succeeded());
  ASSERT_TRUE(Ctl({"bridges", "del-forward", "cloud", "a/#"}).Succeeded());
  ASSERT_TRUE(edge_.Restart(NodeProcess::Ports::kSame));
  ASSERT_TRUE(WaitBridgeState(edge_, "cloud", "connected"));
  CommandResult r = Ctl({"bridges", "forwards", "cloud", "--json"});
  ASSERT_TRUE(r.Succeeded()) << r.ToString();
  auto rows = ParseJson(r.out);
  ASSERT_TRUE(rows.has_value()) << r.out;
  ASSERT_EQ(rows->size(), 1u) << r.out;
  EXPECT_EQ((*rows)[0]["filter"], "b/#");
  EXPECT_EQ((*rows)[0]["qos"], 0);
  r = Ctl({"bridges", "subscriptions", "cloud"});
  ASSERT_TRUE(r.Succeeded()) << r.ToString();
  EXPECT_NE(r.out.find("cmd/#"), std::string::npos) << r.out;
  // The forward rule kept the runtime default of no prefix.
  EXPECT_TRUE(Forwarded(edge_, up_, "b/1"));
  EXPECT_NE(ReadFileOrEmpty(edge_.data_dir() + "/bridges.conf").find("[bridge.cloud]"),
            std::string::npos);
}

TEST_F(BridgeCtl, ConfiguredBridgesStartAndStopByName) {
  edge_.config().Merge(BridgeSection("manual", AddressOf(up_), {"forward = m/#", "start = manual"}));
  ASSERT_TRUE(edge_.Restart(NodeProcess::Ports::kSame));
  auto show = BridgeShow(edge_, "manual");
  ASSERT_TRUE(show.has_value());
  EXPECT_EQ((*show)["state"], "stopped");
  CommandResult r = Ctl({"bridges", "start", "manual"});
  ASSERT_TRUE(r.Succeeded()) << r.ToString();
  EXPECT_EQ(r.out, "bridge is started.\n");
  ASSERT_TRUE(WaitBridgeState(edge_, "manual", "connected"));
  EXPECT_TRUE(Forwarded(edge_, up_, "m/1"));
  r = Ctl({"bridges", "show", "manual"});
  EXPECT_NE(r.out.find("state             : connected"), std::string::npos) << r.out;
  ASSERT_TRUE(Ctl({"bridges", "stop", "manual"}).Succeeded());
  ASSERT_TRUE(WaitBridgeState(edge_, "manual", "stopped"));
}

// A stop (or start) by name of a bridge from the config file is kept in
// data_dir/bridges.state: a restart does not undo it.
TEST_F(BridgeCtl, StopAndStartOfAConfiguredBridgeSurviveARestart) {
  edge_.config().Merge(BridgeSection("hub", AddressOf(up_), {"forward = k/#"}));
  ASSERT_TRUE(edge_.Restart(NodeProcess::Ports::kSame));
  ASSERT_TRUE(WaitBridgeState(edge_, "hub", "connected"));

  ASSERT_TRUE(Ctl({"bridges", "stop", "hub"}).Succeeded());
  ASSERT_TRUE(WaitBridgeState(edge_, "hub", "stopped"));
  ASSERT_TRUE(edge_.Restart(NodeProcess::Ports::kSame));
  auto show = BridgeShow(edge_, "hub");
  ASSERT_TRUE(show.has_value());
  EXPECT_EQ((*show)["state"], "stopped");
  EXPECT_EQ((*show)["held"], "stopped");
  CommandResult r = Ctl({"bridges", "list"});
  ASSERT_TRUE(r.Succeeded()) << r.ToString();
  EXPECT_NE(r.out.find("name hub, stopped (stopped by ferryctl)"), std::string::npos) << r.out;
  EXPECT_TRUE(edge_.WaitForLog("ready"));
  EXPECT_EQ(edge_.LogSinceStart().find("bridge hub: starting"), std::string::npos);

  ASSERT_TRUE(Ctl({"bridges", "start", "hub"}).Succeeded());
  ASSERT_TRUE(WaitBridgeState(edge_, "hub", "connected"));
  ASSERT_TRUE(edge_.Restart(NodeProcess::Ports::kSame));
  ASSERT_TRUE(WaitBridgeState(edge_, "hub", "connected"));
  EXPECT_TRUE(Forwarded(edge_, up_, "k/1"));
  EXPECT_NE(ReadFileOrEmpty(edge_.data_dir() + "/bridges.state").find("started hub"),
            std::string::npos);
}

// A damaged state file is named with its line, and the node does not start.
TEST(BridgeStateFile, ABadLineIsReportedWithItsLineAndTheNodeDoesNotStart) {
  NodeOptions o = BridgeTestNode("ferry1");
  o.ready_timeout = std::chrono::milliseconds(5000);
  NodeProcess node(o);
  ASSERT_EQ(mkdir(node.data_dir().c_str(), 0700), 0);
  ASSERT_TRUE(WriteFile(node.data_dir() + "/bridges.state", "# comment\nhalted hub\n"));
  ::testing::AssertionResult started = node.Start();
  ASSERT_FALSE(started);
  EXPECT_NE(std::string(started.message())
                .find("bridges.state:2: expected 'stopped NAME' or 'started NAME'"),
            std::string::npos)
      << started.message();
  EXPECT_EQ(node.exit_status()->code, 1);
}

TEST_F(BridgeCtl, BadArgumentsAndUnknownNamesAreOneLineErrors) {
  CommandResult r = Ctl({"bridges", "start", "nosuch"});
  EXPECT_NE(r.status.code, 0);
  EXPECT_NE(r.err.find("no bridge 'nosuch'"), std::string::npos) << r.err;
  r = Ctl({"bridges", "start", target_, "a/#/b"});
  EXPECT_NE(r.status.code, 0);
  EXPECT_NE(r.err.find("not a valid topic filter"), std::string::npos) << r.err;
  r = Ctl({"bridges", "start", "nohost", "a/#"});
  EXPECT_NE(r.status.code, 0);
  EXPECT_NE(r.err.find("TARGET"), std::string::npos) << r.err;
  r = Ctl({"bridges", "start", target_, "a/#", "--qos", "3"});
  EXPECT_NE(r.status.code, 0);
  EXPECT_NE(r.err.find("--qos"), std::string::npos) << r.err;
  r = Ctl({"bridges", "del-forward", "nosuch", "a"});
  EXPECT_NE(r.err.find("no bridge 'nosuch'"), std::string::npos) << r.err;
  r = Ctl({"bridges", "stop", target_, "never/started"});
  EXPECT_NE(r.err.find("no bridge forwards 'never/started'"), std::string::npos) << r.err;
  EXPECT_TRUE(NodeServes(edge_.port(), "after-bad-ctl"));
}

TEST_F(BridgeCtl, HttpApiAndMetricsShowTheBridges) {
  ASSERT_TRUE(Ctl({"bridges", "start", target_, "h/#", "--name", "web"}).Succeeded());
  ASSERT_TRUE(WaitBridgeState(edge_, "web", "connected"));
  const uint16_t http = edge_.endpoints().at("admin.http").port;
  HttpReply r = Http("GET", http, "/api/v1/bridges/list");
  ASSERT_EQ(r.status, 200) << r.head << r.body;
  auto j = ParseJson(r.body);
  ASSERT_TRUE(j.has_value()) << r.body;
  EXPECT_NE(r.body.find("\"web\""), std::string::npos) << r.body;
  r = Http("GET", http, "/api/v1/bridges/show/web");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"connected\""), std::string::npos) << r.body;
  r = Http("POST", http, "/api/v1/bridges/stop/web");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(WaitBridgeState(edge_, "web", "stopped"));
  r = Http("GET", http, "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("ferry_bridge_up{bridge=\"web\"} 0"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("ferry_bridge_messages_dropped_total{bridge=\"web\",reason=\"overflow\"} 0"),
            std::string::npos);
  EXPECT_NE(r.body.find("ferry_bridge_queued_messages{bridge=\"web\"}"), std::string::npos);
}

}  // namespace
}  // namespace ferry::testing
