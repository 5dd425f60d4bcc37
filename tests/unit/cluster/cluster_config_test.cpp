// [cluster] and the cookie of [node], read from config text.
#include "cluster/cluster_config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string_view>

namespace ferry::cluster {
namespace {

constexpr std::string_view kSections[] = {"cluster", "cluster."};
constexpr std::string_view kAllSections[] = {"cluster", "cluster.", "admin", "bridge."};

struct Read {
  ClusterConfig config;
  std::string errors;
};

Read ReadText(const std::string& text) {
  auto loaded = core::LoadConfigString("[listener.tcp.default]\nbind = 127.0.0.1:0\n" + text,
                                       "test.conf", nullptr, kSections);
  if (!loaded.ok()) return Read{{}, loaded.status().message()};
  core::ConfigErrors errors;
  Read r{ReadClusterConfig(*loaded, errors), ""};
  if (!errors.empty()) r.errors = errors.ToStatus().message();
  return r;
}

class CookieFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-cookie-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/cookie";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& text, mode_t mode) {
    std::ofstream(path_) << text;
    ASSERT_EQ(::chmod(path_.c_str(), mode), 0);
  }
  std::string dir_, path_;
};

TEST(ClusterConfig, WithoutACookieThereIsNoClusterAndTheReasonSaysWhy) {
  Read r = ReadText("[node]\nname = ferry1@10.0.0.1\n");
  ASSERT_EQ(r.errors, "");
  EXPECT_FALSE(r.config.enabled);
  EXPECT_NE(r.config.why_disabled.find("[node] cookie"), std::string::npos);
}

TEST(ClusterConfig, TheDefaultPortFollowsTheNodeName) {
  Read r = ReadText("[node]\nname = ferry2@10.0.0.2\ncookie = s3cret\n");
  ASSERT_EQ(r.errors, "");
  EXPECT_TRUE(r.config.enabled);
  EXPECT_EQ(r.config.cookie, "s3cret");
  EXPECT_EQ(r.config.name, "ferry");
  EXPECT_EQ(r.config.listen_host, "0.0.0.0");
  EXPECT_EQ(r.config.listen_port, 4372);
}

TEST(ClusterConfig, ListenAndNameAreTaken) {
  Read r = ReadText(
      "[node]\ncookie = x\n[cluster]\nname = site-a\ndiscovery = manual\nlisten = 127.0.0.1:0\n");
  ASSERT_EQ(r.errors, "");
  EXPECT_EQ(r.config.name, "site-a");
  EXPECT_EQ(r.config.listen_host, "127.0.0.1");
  EXPECT_EQ(r.config.listen_port, 0);
}

TEST(ClusterConfig, EveryProblemIsReportedWithItsLine) {
  Read r = ReadText(
      "[node]\ncookie = x\n[cluster]\nname = a b\ndiscovery = pigeons\nlisten = nowhere\ncolour = "
      "blue\n[cluster.static]\nseeds = a@h, not-a-node\n");
  EXPECT_NE(r.errors.find("test.conf:6: [cluster] name:"), std::string::npos) << r.errors;
  EXPECT_NE(r.errors.find("test.conf:7: [cluster] discovery:"), std::string::npos) << r.errors;
  EXPECT_NE(r.errors.find("test.conf:8: [cluster] listen:"), std::string::npos) << r.errors;
  EXPECT_NE(r.errors.find("unknown key 'colour'"), std::string::npos) << r.errors;
  EXPECT_NE(r.errors.find("test.conf:11: [cluster.static] seeds: 'not-a-node'"), std::string::npos)
      << r.errors;
}

TEST(ClusterConfig, StaticDiscoveryNeedsSeedsAndTlsNeedsItsFiles) {
  Read r = ReadText("[node]\ncookie = x\n[cluster]\ndiscovery = static\nssl = on\n");
  EXPECT_NE(r.errors.find("seeds: required with [cluster] discovery = static"), std::string::npos)
      << r.errors;
  EXPECT_NE(r.errors.find("certfile: required with ssl = on"), std::string::npos) << r.errors;
  r = ReadText(
      "[node]\ncookie = x\n[cluster]\ndiscovery = static\n[cluster.static]\nseeds = a@h, "
      "b@h:4400\n");
  ASSERT_EQ(r.errors, "");
  EXPECT_EQ(r.config.discovery.strategy, "static");
  EXPECT_EQ(r.config.discovery.static_seeds, (std::vector<std::string>{"a@h", "b@h:4400"}));
}

TEST(ClusterConfig, PartitionKeys) {
  Read r = ReadText("[node]\ncookie = x\n[cluster]\nautoheal = off\nautoheal_delay = 2s\n"
                    "autoclean = 0\n");
  ASSERT_EQ(r.errors, "");
  EXPECT_FALSE(r.config.autoheal);
  EXPECT_EQ(r.config.autoheal_delay_ms, 2000u);
  EXPECT_EQ(r.config.autoclean_ms, 0u);
  r = ReadText("[node]\ncookie = x\n[cluster]\n");
  EXPECT_TRUE(r.config.autoheal);
  EXPECT_EQ(r.config.autoheal_delay_ms, 15000u);
  EXPECT_EQ(r.config.autoclean_ms, 300000u);
  r = ReadText("[node]\ncookie = x\n[cluster]\npeer_down_after = 30s\nautoclean = 10s\n");
  EXPECT_NE(r.errors.find("autoclean: must be 0 (never) or at least peer_down_after"),
            std::string::npos)
      << r.errors;
}

TEST(ClusterConfig, EachStrategyTakesItsSection) {
  Read r = ReadText(
      "[node]\ncookie = x\n[cluster]\ndiscovery = dns\n[cluster.dns]\nname = f.example\n"
      "record_type = srv\napp = edge\nserver = 127.0.0.1:5353, [::1]:53\n"
      "[cluster.etcd]\nserver = http://a:2379/, https://b:2379\nprefix = p\nnode_ttl = 30s\n"
      "cafile = ca.pem\n[cluster.k8s]\napiserver = https://k:6443\naddress_type = hostname\n"
      "namespace = edge\n[cluster.mcast]\naddr = 239.1.2.3\nports = 5000, 5001\nttl = 1\n"
      "loop = off\n");
  ASSERT_EQ(r.errors, "");
  const DiscoveryConfig& d = r.config.discovery;
  EXPECT_EQ(d.strategy, "dns");
  EXPECT_EQ(d.dns.name, "f.example");
  EXPECT_EQ(d.dns.record_type, "srv");
  EXPECT_EQ(d.dns.app, "edge");
  EXPECT_EQ(d.dns.servers, "127.0.0.1:5353,[::1]:53");
  EXPECT_EQ(d.etcd.servers, (std::vector<std::string>{"http://a:2379", "https://b:2379"}));
  EXPECT_EQ(d.etcd.prefix, "p");
  EXPECT_EQ(d.etcd.node_ttl_ms, 30000u);
  EXPECT_EQ(d.etcd.tls.cafile, "ca.pem");
  EXPECT_EQ(d.k8s.apiserver, "https://k:6443");
  EXPECT_EQ(d.k8s.address_type, "hostname");
  EXPECT_EQ(d.k8s.name_space, "edge");
  EXPECT_EQ(d.mcast.addr, "239.1.2.3");
  EXPECT_EQ(d.mcast.ports, (std::vector<uint16_t>{5000, 5001}));
  EXPECT_EQ(d.mcast.ttl, 1);
  EXPECT_FALSE(d.mcast.loop);
}

TEST(ClusterConfig, StrategyKeysAreChecked) {
  Read r = ReadText(
      "[node]\ncookie = x\n[cluster]\ndiscovery = dns\n[cluster.dns]\nrecord_type = mx\n"
      "server = nohost\n[cluster.etcd]\nserver = 127.0.0.1:2379\ncertfile = c.pem\n"
      "[cluster.k8s]\naddress_type = fqdn\n[cluster.mcast]\naddr = 10.0.0.1\n"
      "ports = 0, x\niface = eth0\nbogus = 1\n");
  for (const char* want :
       {"name: required with [cluster] discovery = dns", "record_type", "server: 'nohost'",
        "server: '127.0.0.1:2379': expected http://host:port", "certfile and keyfile: both or neither",
        "address_type", "addr: expected an IPv4 multicast group", "ports: '0' is no port",
        "ports: 'x' is no port", "iface: expected the IPv4 address", "bogus"}) {
    EXPECT_NE(r.errors.find(want), std::string::npos) << want << " in: " << r.errors;
  }
  r = ReadText("[node]\ncookie = x\n[cluster]\ndiscovery = etcd\n[cluster.etcd]\nserver =\n");
  EXPECT_NE(r.errors.find("server: required with [cluster] discovery = etcd"), std::string::npos)
      << r.errors;
}

TEST(ClusterConfig, CookieAndCookieFileTogetherAreAnError) {
  Read r = ReadText("[node]\ncookie = x\ncookie_file = /nonexistent\n");
  EXPECT_NE(r.errors.find("not both"), std::string::npos) << r.errors;
}

TEST_F(CookieFile, AFileOnlyItsOwnerReadsGivesTheCookie) {
  Write("from-a-file\n", 0600);
  Read r = ReadText("[node]\ncookie_file = " + path_ + "\n");
  ASSERT_EQ(r.errors, "");
  EXPECT_TRUE(r.config.enabled);
  EXPECT_EQ(r.config.cookie, "from-a-file");
}

TEST_F(CookieFile, AFileOthersCanReadIsRefusedWithoutShowingTheCookie) {
  Write("do-not-print-me\n", 0644);
  Read r = ReadText("[node]\ncookie_file = " + path_ + "\n");
  EXPECT_NE(r.errors.find("[node] cookie_file: '" + path_ + "' must be readable by its owner only"),
            std::string::npos)
      << r.errors;
  EXPECT_NE(r.errors.find("0644"), std::string::npos) << r.errors;
  EXPECT_EQ(r.errors.find("do-not-print-me"), std::string::npos);
}

TEST_F(CookieFile, AnEmptyOrMissingFileIsAnError) {
  Write("\n", 0600);
  EXPECT_NE(ReadText("[node]\ncookie_file = " + path_ + "\n").errors.find("holds no cookie"),
            std::string::npos);
  EXPECT_NE(ReadText("[node]\ncookie_file = " + dir_ + "/none\n").errors.find("cannot read"),
            std::string::npos);
}

TEST(ClusterConfig, ShippedFileDocumentsEveryKeyWithItsDefault) {
  const std::string path = FERRY_SOURCE_DIR "/etc/ferry.conf";
  auto raw = core::ParseConfigFile(path, nullptr);
  ASSERT_TRUE(raw.ok()) << raw.status().ToString();
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  for (const auto& [section, key] : ClusterConfigKeys()) {
    const core::ConfigValue* v = raw->Find(section, key);
    ASSERT_NE(v, nullptr) << "[" << section << "] " << key << " is not in etc/ferry.conf";
    EXPECT_EQ(lines[v->line - 2].rfind("#", 0), 0u) << key << " has no comment above it";
  }
  auto config = core::LoadConfig(path, nullptr, kAllSections);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  core::ConfigErrors errors;
  ClusterConfig shipped = ReadClusterConfig(*config, errors);
  EXPECT_TRUE(errors.empty()) << errors.ToStatus().message();
  EXPECT_FALSE(shipped.enabled) << "no cookie is built in";
  EXPECT_EQ(shipped.name, "ferry");
  EXPECT_EQ(shipped.listen_port, 4370);
}

}  // namespace
}  // namespace ferry::cluster
