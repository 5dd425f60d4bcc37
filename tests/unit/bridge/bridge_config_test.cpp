// The [bridge.NAME] schema: defaults, every key, errors as file:line, the
// documentation in etc/ferry.conf, and the round trip through the runtime
// store's rendering (bridge/bridge_config.h).
#include "bridge/bridge_config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace ferry::bridge {
namespace {

constexpr const char* kNode = "edge1@10.0.0.5";

ferry::Result<std::vector<BridgeConfig>> Load(std::string_view text) {
  auto raw = core::ParseConfigString(text, "test.conf", nullptr);
  if (!raw.ok()) return raw.status();
  return ReadBridgeConfigs(raw.value(), kNode);
}

BridgeConfig LoadOne(std::string_view text) {
  auto r = Load(text);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok() || r->empty()) return {};
  return r->front();
}

std::string Errors(std::string_view text) {
  auto r = Load(text);
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.status().message();
}

TEST(BridgeConfig, MinimalSectionTakesTheDefaults) {
  BridgeConfig c = LoadOne("[bridge.cloud]\naddress = 10.0.0.1:1883\nforward = sensor/#\n");
  EXPECT_EQ(c.name, "cloud");
  ASSERT_EQ(c.addresses.size(), 1u);
  EXPECT_EQ(c.addresses[0], (UpstreamAddress{"10.0.0.1", 1883, false, ""}));
  EXPECT_EQ(c.clientid, "cloud.edge1@10.0.0.5");
  EXPECT_EQ(c.notification_topic, "$SYS/brokers/edge1@10.0.0.5/bridges/cloud/state");
  EXPECT_EQ(c.proto_ver, 5);
  EXPECT_EQ(c.start, StartMode::kAuto);
  EXPECT_EQ(c.queue_sync, QueueSync::kWrite);
  EXPECT_EQ(c.queue_max_bytes, uint64_t{256} << 20);
  ASSERT_EQ(c.forward.size(), 1u);
  EXPECT_EQ(c.forward[0].qos, 1);
  EXPECT_EQ(c.origin, "test.conf:1");
}

TEST(BridgeConfig, AddressesInOrderWithUrlsAndTls) {
  BridgeConfig c = LoadOne(
      "[bridge.b]\naddress = mqtts://hub.example.com, mqtt://10.0.0.2, [::1]:1884, "
      "mqtts://h:9000\nforward = a\n");
  ASSERT_EQ(c.addresses.size(), 4u);
  EXPECT_EQ(c.addresses[0], (UpstreamAddress{"hub.example.com", 8883, true, ""}));
  EXPECT_EQ(c.addresses[1], (UpstreamAddress{"10.0.0.2", 1883, false, ""}));
  EXPECT_EQ(c.addresses[2], (UpstreamAddress{"::1", 1884, false, ""}));
  EXPECT_EQ(c.addresses[3], (UpstreamAddress{"h", 9000, true, ""}));
  EXPECT_EQ(c.addresses[2].ToString(), "[::1]:1884");
  auto named = ParseUpstreamAddress("ferry2@127.0.0.1:2883");
  ASSERT_TRUE(named.ok()) << named.status().ToString();
  EXPECT_EQ(*named, (UpstreamAddress{"127.0.0.1", 2883, false, "ferry2@127.0.0.1"}));
  EXPECT_EQ(named->ToString(), "ferry2@127.0.0.1:2883");
  EXPECT_FALSE(ParseUpstreamAddress("bad name@h:1").ok());
  EXPECT_EQ(c.addresses[0].ToString(), "mqtts://hub.example.com:8883");
}

TEST(BridgeConfig, PrefixesDefaultEveryRule) {
  BridgeConfig c = LoadOne(
      "[bridge.b]\naddress = h:1\nremote_prefix = site/${node}/\nforward = a/#, b 0 "
      "remote_prefix=\nsubscribe = cmd/# 2\n");
  ASSERT_EQ(c.forward.size(), 2u);
  EXPECT_EQ(c.forward[0].remote_prefix, "site/edge1@10.0.0.5/");
  EXPECT_EQ(c.forward[1].remote_prefix, "");
  ASSERT_EQ(c.subscribe.size(), 1u);
  EXPECT_EQ(c.subscribe[0].RemoteFilter(), "site/edge1@10.0.0.5/cmd/#");
  EXPECT_EQ(c.subscribe[0].qos, 2);
}

TEST(BridgeConfig, ErrorsNameFileLineSectionAndKey) {
  std::string e = Errors(
      "[bridge.cloud]\n"
      "adress = h:1\n"          // 2
      "forward = a/#/b\n"       // 3
      "proto_ver = 3\n"         // 4
      "start = sometimes\n"     // 5
      "queue_sync = maybe\n");  // 6
  EXPECT_NE(e.find("test.conf:1: [bridge.cloud] missing required key 'address'"),
            std::string::npos) << e;
  EXPECT_NE(e.find("test.conf:2: [bridge.cloud] unknown key 'adress'"), std::string::npos) << e;
  EXPECT_NE(e.find("test.conf:3: [bridge.cloud] forward: rule 'a/#/b'"), std::string::npos) << e;
  EXPECT_NE(e.find("test.conf:4: [bridge.cloud] proto_ver: expected an integer in 4..5"),
            std::string::npos) << e;
  EXPECT_NE(e.find("test.conf:5: [bridge.cloud] start: expected one of auto, manual, lazy"),
            std::string::npos) << e;
  EXPECT_NE(e.find("test.conf:6: [bridge.cloud] queue_sync"), std::string::npos) << e;
}

TEST(BridgeConfig, RejectsBadNamesAddressesAndMissingRules) {
  EXPECT_NE(Errors("[bridge.a b]\naddress = h:1\nforward = a\n").find("expected [bridge.NAME]"),
            std::string::npos);
  EXPECT_NE(Errors("[bridge.x]\naddress = h\nforward = a\n").find("expected host:port"),
            std::string::npos);
  EXPECT_NE(Errors("[bridge.x]\naddress = ftp://h:1\nforward = a\n").find("unknown scheme"),
            std::string::npos);
  EXPECT_NE(Errors("[bridge.x]\naddress = h:1\n").find("at least one forward or subscribe rule"),
            std::string::npos);
  EXPECT_NE(Errors("[bridge.x]\naddress = h:1\nforward = a\nreconnect_min = 10s\n"
                   "reconnect_max = 1s\n")
                .find("reconnect_max: must not be below reconnect_min"),
            std::string::npos);
  EXPECT_NE(Errors("[bridge.x]\naddress = h:1\nforward = a\ntls_cert_file = /etc/hostname\n")
                .find("tls_cert_file and tls_key_file go together"),
            std::string::npos);
  EXPECT_NE(Errors("[bridge.x]\naddress = h:1\nforward = a\ntls_ca_file = /nonexistent/ca\n")
                .find("tls_ca_file: cannot read '/nonexistent/ca'"),
            std::string::npos);
  EXPECT_NE(Errors("[bridge.x]\naddress = h:1\nforward = a\nproto_ver = 4\npassword = p\n")
                .find("a password needs a username"),
            std::string::npos);
}

TEST(BridgeConfig, EnvironmentOverridesApply) {
  char env0[] = "FERRY_BRIDGE__CLOUD__ADDRESS=10.9.9.9:1999";
  char* envp[] = {env0, nullptr};
  auto raw = core::ParseConfigString("[bridge.cloud]\naddress = h:1\nforward = a\n", "t.conf", envp);
  ASSERT_TRUE(raw.ok());
  auto r = ReadBridgeConfigs(raw.value(), kNode);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->at(0).addresses[0], (UpstreamAddress{"10.9.9.9", 1999, false, ""}));
}

TEST(BridgeConfig, RenderedSectionReadsBackEqual) {
  BridgeConfig c = LoadOne(
      "[bridge.full]\n"
      "address = mqtts://hub:8884, 10.0.0.2:1883\n"
      "address_policy = round_robin\n"
      "primary_retry = 5s\n"
      "local_prefix = l/\n"
      "remote_prefix = site/${node}/\n"
      "forward = sensor/# 2, alarm/+ 0 remote_prefix=x/\n"
      "subscribe = cmd/# 1 local_prefix=\n"
      "strip_retain = true\n"
      "max_hops = 3\n"
      "clientid = me-${node}\n"
      "username = u\n"
      "password = \" secret \"\n"
      "proto_ver = 4\n"
      "bridge_bit = false\n"
      "keepalive = 20\n"
      "clean_start = true\n"
      "session_expiry = 600\n"
      "tls_verify = false\n"
      "tls_server_name = hub.example.com\n"
      "reconnect_min = 250ms\n"
      "reconnect_max = 10s\n"
      "connect_timeout = 3s\n"
      "max_inflight = 7\n"
      "start = lazy\n"
      "idle_timeout = 30s\n"
      "notifications = false\n"
      "notifications_local_only = true\n"
      "notification_topic = state/${node}\n"
      "queue_max_bytes = 1MB\n"
      "queue_max_age = 1h\n"
      "queue_sync = fsync\n"
      "queue_replay_rate = 100\n"
      "queue_qos0 = false\n");
  std::string text = RenderBridgeSection(c, kNode);
  BridgeConfig again = LoadOne(text);
  again.origin = c.origin;
  EXPECT_EQ(again.addresses, c.addresses);
  EXPECT_EQ(again.forward, c.forward);
  EXPECT_EQ(again.subscribe, c.subscribe);
  EXPECT_EQ(again.password, c.password);
  EXPECT_EQ(again.clientid, "me-edge1@10.0.0.5");
  EXPECT_EQ(RenderBridgeSection(again, kNode), text);
}

// Every key of the schema appears in the commented-out example section of
// etc/ferry.conf as "# key = default", with a comment line above it.
TEST(ShippedConfig, DocumentsEveryBridgeKey) {
  std::ifstream in(FERRY_SOURCE_DIR "/etc/ferry.conf");
  ASSERT_TRUE(in.good());
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  size_t begin = 0;
  while (begin < lines.size() && lines[begin].rfind("#[bridge.", 0) != 0) ++begin;
  ASSERT_LT(begin, lines.size()) << "no commented-out [bridge.NAME] section";
  for (const std::string& key : BridgeConfigKeys()) {
    bool found = false;
    for (size_t i = begin; i < lines.size() && !found; ++i) {
      if (lines[i].rfind("#" + key + " =", 0) != 0) continue;
      found = true;
      EXPECT_EQ(lines[i - 1].rfind("#", 0), 0u);
    }
    EXPECT_TRUE(found) << "[bridge.NAME] " << key << " is not documented in etc/ferry.conf";
  }
}

// The example section, uncommented, is a valid bridge.
TEST(ShippedConfig, ExampleBridgeSectionLoads) {
  std::ifstream in(FERRY_SOURCE_DIR "/etc/ferry.conf");
  std::string text = "[listener.tcp.x]\nbind = 127.0.0.1:0\n";
  bool inside = false;
  for (std::string l; std::getline(in, l);) {
    if (l.rfind("#[bridge.", 0) == 0) inside = true;
    if (!inside) continue;
    if (l.rfind("#", 0) == 0 && l.size() > 1 && l[1] != ' ' && l[1] != '#') text += l.substr(1) + "\n";
  }
  auto raw = core::ParseConfigString(text, "example", nullptr);
  ASSERT_TRUE(raw.ok()) << raw.status().ToString();
  auto r = ReadBridgeConfigs(raw.value(), kNode);
  ASSERT_TRUE(r.ok()) << r.status().ToString() << "\n" << text;
  EXPECT_EQ(r->size(), 1u);
}

// The example configs load and their bridges are valid.
TEST(ExampleConfigs, LoadWithTheirBridges) {
  constexpr std::string_view kModules[] = {"admin", "bridge."};
  for (const char* name : {"edge.conf", "chain/node1.conf", "chain/node2.conf", "chain/node3.conf"}) {
    const std::string path = std::string(FERRY_SOURCE_DIR "/etc/examples/") + name;
    auto config = core::LoadConfig(path, nullptr, kModules);
    ASSERT_TRUE(config.ok()) << path << ": " << config.status().ToString();
    auto bridges = ReadBridgeConfigs(config->raw, config->node.name);
    ASSERT_TRUE(bridges.ok()) << path << ": " << bridges.status().ToString();
    EXPECT_EQ(bridges->size(), std::string_view(name) == "chain/node3.conf" ? 0u : 1u) << path;
  }
}

}  // namespace
}  // namespace ferry::bridge
