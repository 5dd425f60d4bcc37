// A bad [bridge.NAME] section stops the node before it starts, with every
// problem named as file:line: [section] key: message; ferryd --check-config
// says the same.
#include <gtest/gtest.h>

#include <string>

#include "support/node_process.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"

namespace ferry::testing {
namespace {

constexpr const char* kBadBridges =
    "[listener.tcp.default]\n"       // 1
    "bind = 127.0.0.1:0\n"           // 2
    "[bridge.cloud]\n"               // 3
    "adress = 10.0.0.1:1883\n"       // 4
    "forward = sensor/#/x\n"         // 5
    "queue_max_bytes = 1KB\n"        // 6
    "[bridge.bad name]\n"            // 7
    "address = h:1\n";               // 8

TEST(BridgeConfigCheck, CheckConfigNamesEveryProblemWithFileAndLine) {
  TempDir dir;
  const std::string conf = dir.File("ferry.conf");
  ASSERT_TRUE(WriteFile(conf, kBadBridges));
  CommandResult r = RunCommand({FerryBinary(), "--check-config", "-c", conf});
  EXPECT_EQ(r.status.code, 1) << r.ToString();
  EXPECT_NE(r.err.find(conf + ":3: [bridge.cloud] missing required key 'address'"),
            std::string::npos) << r.err;
  EXPECT_NE(r.err.find(conf + ":4: [bridge.cloud] unknown key 'adress'"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(conf + ":5: [bridge.cloud] forward: rule 'sensor/#/x'"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(conf + ":6: [bridge.cloud] queue_max_bytes: expected a size"),
            std::string::npos) << r.err;
  EXPECT_NE(r.err.find(conf + ":7: [bridge.bad name] expected [bridge.NAME]"), std::string::npos)
      << r.err;
}

TEST(BridgeConfigCheck, TheNodeRefusesToStartOnABadBridge) {
  NodeOptions o;
  o.extra_config = "[bridge.cloud]\naddress = 127.0.0.1:1\nforward = a/#\nproto_ver = 6\n";
  o.ready_timeout = std::chrono::milliseconds(5000);
  NodeProcess node(o);
  ::testing::AssertionResult started = node.Start();
  ASSERT_FALSE(started);
  EXPECT_NE(std::string(started.message()).find("[bridge.cloud] proto_ver: expected an integer in 4..5"),
            std::string::npos) << started.message();
  EXPECT_EQ(node.exit_status()->code, 1);
}

TEST(BridgeConfigCheck, AGoodBridgeSectionChecksOk) {
  TempDir dir;
  const std::string conf = dir.File("ferry.conf");
  ASSERT_TRUE(WriteFile(conf, "[listener.tcp.default]\nbind = 127.0.0.1:0\n[node]\ndata_dir = " +
                                  dir.File("data") +
                                  "\n[bridge.cloud]\naddress = mqtt://hub.example.com\n"
                                  "forward = sensor/# 1, alarm/# 2\nsubscribe = cmd/${node}/#\n"));
  CommandResult r = RunCommand({FerryBinary(), "--check-config", "-c", conf});
  EXPECT_TRUE(r.Succeeded()) << r.ToString();
}

}  // namespace
}  // namespace ferry::testing
