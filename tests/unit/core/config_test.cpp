#include "core/config.h"

#include <gtest/gtest.h>

#include <cctype>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace ferry::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kListener[] = "[listener.tcp.default]\nbind = 127.0.0.1:1883\n";

// A fake environment: never the process's own.
class Env {
 public:
  Env(std::initializer_list<std::string> vars) : vars_(vars) {
    for (auto& v : vars_) ptrs_.push_back(v.data());
    ptrs_.push_back(nullptr);
  }
  char** envp() { return ptrs_.data(); }

 private:
  std::vector<std::string> vars_;
  std::vector<char*> ptrs_;
};

Result<Config> Load(const std::string& text, char** envp = nullptr,
                    std::span<const std::string_view> extra = {}) {
  return LoadConfigString(text, "t.conf", envp, extra);
}

// The error message of a load expected to fail.
std::string Errors(const std::string& text, char** envp = nullptr) {
  Result<Config> r = Load(text, envp);
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.status().message();
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// ------------------------------------------------------------ shipped file

// Sections the shipped file has for other modules (ctl/admin_config.h reads
// [admin]; tests/unit/ctl checks it).
constexpr std::string_view kModuleSections[] = {"admin", "bridge.", "cluster", "cluster."};

TEST(ShippedConfig, LoadsAsIs) {
  Result<Config> r = LoadConfig(FERRY_SOURCE_DIR "/etc/ferry.conf", nullptr, kModuleSections);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->listeners.size(), 1u);
  EXPECT_EQ(r->listeners[0].name, "default");
  EXPECT_EQ(r->listeners[0].host, "0.0.0.0");
  EXPECT_EQ(r->listeners[0].port, 1883);
  EXPECT_EQ(r->node.data_dir, "data");
  EXPECT_TRUE(r->mqtt.allow_anonymous);
}

TEST(ShippedConfig, ActiveValuesEqualTheDefaults) {
  Result<Config> r = LoadConfig(FERRY_SOURCE_DIR "/etc/ferry.conf", nullptr, kModuleSections);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->node, NodeConfig{});
  EXPECT_EQ(r->log, LogConfig{});
  EXPECT_EQ(r->mqtt, MqttConfig{});
  EXPECT_EQ(r->sys, SysConfig{});
  EXPECT_EQ(r->listeners[0].max_connections, ListenerConfig{}.max_connections);
  EXPECT_EQ(r->listeners[0].proxy_protocol, ListenerConfig{}.proxy_protocol);
  EXPECT_EQ(r->listeners[0].max_connection_rate, ListenerConfig{}.max_connection_rate);
}

// The commented-out example listeners of the shipped file ("#[listener.ssl.default]",
// "#certfile = ...") with their '#' removed: a config of its own.
std::string UncommentedExamples(const std::string& text) {
  std::istringstream in(text);
  std::string out;
  for (std::string l; std::getline(in, l);) {
    if (l.size() > 1 && l[0] == '#' && (l[1] == '[' || std::islower(static_cast<unsigned char>(l[1])))) {
      out += l.substr(1) + "\n";
    }
  }
  return out;
}

TEST(ShippedConfig, DocumentsEveryKeyWithACommentAbove) {
  const std::string path = FERRY_SOURCE_DIR "/etc/ferry.conf";
  const std::string text = ReadAll(path);
  Result<RawConfig> raw = ParseConfigFile(path, nullptr);
  ASSERT_TRUE(raw.ok()) << raw.status().ToString();
  Result<RawConfig> examples = ParseConfigString(UncommentedExamples(text), "examples", nullptr);
  ASSERT_TRUE(examples.ok()) << examples.status().ToString();
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  // The line of `key = ` or `#key = ` that a "# " comment line precedes.
  auto described = [&](const std::string& key) {
    for (size_t i = 1; i < lines.size(); ++i) {
      const std::string& l = lines[i];
      if ((l.rfind(key + " =", 0) == 0 || l.rfind("#" + key + " =", 0) == 0) &&
          lines[i - 1].rfind("# ", 0) == 0) {
        return true;
      }
    }
    return false;
  };
  auto keys = CoreConfigKeys();
  EXPECT_GT(keys.size(), 40u);
  for (const auto& [section, key] : keys) {
    std::string s = section;
    if (s.ends_with(".NAME")) s.replace(s.size() - 4, 4, "default");
    const ConfigValue* v = s.starts_with("listener.tcp.") || !s.starts_with("listener.")
                               ? raw->Find(s, key)
                               : examples->Find(s, key);
    EXPECT_NE(v, nullptr) << "[" << s << "] " << key << " is not in etc/ferry.conf";
    EXPECT_TRUE(described(key)) << key << " has no comment above it in etc/ferry.conf";
  }
}

TEST(ShippedConfig, ExampleListenersLoadWithTheDefaults) {
  const std::string text = ReadAll(FERRY_SOURCE_DIR "/etc/ferry.conf");
  // The example bridge section belongs to the bridge module's own test.
  Result<Config> r = Load(UncommentedExamples(text), nullptr, kModuleSections);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->listeners.size(), 3u);
  for (const ListenerConfig& l : r->listeners) {
    SCOPED_TRACE(l.type);
    ListenerConfig defaults;
    EXPECT_EQ(l.max_connections, defaults.max_connections);
    EXPECT_EQ(l.max_connection_rate, defaults.max_connection_rate);
    EXPECT_EQ(l.proxy_protocol, defaults.proxy_protocol);
    EXPECT_EQ(l.path, defaults.path);
    TlsOptions tls = l.tls;
    tls.certfile.clear();
    tls.keyfile.clear();
    EXPECT_EQ(tls, TlsOptions{});
  }
}

TEST(ShippedConfig, CentralNodeExampleLoads) {
  Result<Config> r =
      LoadConfig(FERRY_SOURCE_DIR "/etc/examples/central.conf", nullptr, kModuleSections);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->listeners.size(), 4u);
  EXPECT_EQ(r->listeners[1].type, "tcp");
  EXPECT_TRUE(r->listeners[1].proxy_protocol);
  EXPECT_TRUE(r->listeners[2].tls.use_cn_as_username);
  EXPECT_FALSE(r->mqtt.allow_anonymous);
}

// ------------------------------------------------------------ good configs

TEST(LoadConfig, MinimalConfigTakesEveryDefault) {
  Result<Config> r = Load(kListener);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->node.name, "ferry@127.0.0.1");
  EXPECT_EQ(r->log.level, LogLevel::kInfo);
  EXPECT_EQ(r->mqtt, MqttConfig{});
  EXPECT_EQ(r->sys.interval, seconds(10));
  EXPECT_EQ(r->path, "t.conf");
  EXPECT_EQ(r->listeners[0].origin, "t.conf:1");
}

TEST(LoadConfig, GoodSampleSetsEveryKey) {
  static constexpr std::string_view kExtra[] = {"bridge."};
  const std::string path = FERRY_TEST_DATA_DIR "/config/good.conf";
  Result<Config> r = LoadConfig(path, nullptr, kExtra);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->node, (NodeConfig{"edge1@10.0.0.5", "/var/lib/ferry", 4, 128, "", ""}));
  EXPECT_EQ(r->log, (LogConfig{LogLevel::kDebug, "/var/log/ferry.log"}));
  ASSERT_EQ(r->listeners.size(), 2u);
  EXPECT_EQ(r->listeners[0].max_connections, 10000u);
  EXPECT_EQ(r->listeners[1].host, "::1");
  EXPECT_EQ(r->listeners[1].port, 1884);
  EXPECT_EQ(r->listeners[1].bind, "[::1]:1884");
  EXPECT_TRUE(r->listeners[1].proxy_protocol);
  const MqttConfig& m = r->mqtt;
  EXPECT_FALSE(m.allow_anonymous);
  EXPECT_EQ(m.password_file, "/etc/ferry/passwd");
  EXPECT_EQ(m.acl_file, "/etc/ferry/acl");
  EXPECT_EQ(m.max_packet_size, 256u * 1024);
  EXPECT_EQ(m.max_connect_packet_size, 8u * 1024);
  EXPECT_EQ(m.max_keepalive, seconds(600));
  EXPECT_EQ(m.connect_timeout, milliseconds(500));
  EXPECT_EQ(m.receive_maximum, 100);
  EXPECT_EQ(m.max_inflight, 10);
  EXPECT_EQ(m.max_queued_messages, 0u);
  EXPECT_FALSE(m.queue_qos0);
  EXPECT_EQ(m.max_session_expiry_interval, seconds(86400));
  EXPECT_EQ(m.topic_alias_maximum, 0);
  EXPECT_FALSE(m.retain_available || m.wildcard_subscription_available ||
               m.shared_subscription_available || m.subscription_identifier_available);
  EXPECT_EQ(m.max_qos, 1);
  EXPECT_EQ(m.max_output_buffer, 4u << 20);
  EXPECT_EQ(m.max_queue_wait, seconds(2));
  EXPECT_EQ(m.queue_wait_action, QueueWaitAction::kDisconnect);
  EXPECT_EQ(m.max_partial_packet_memory, 16u << 20);
  EXPECT_EQ(m.max_subscriptions_per_client, 50u);
  EXPECT_EQ(m.max_client_id_length, 128);
  EXPECT_FALSE(m.allow_zero_length_clientid);
  EXPECT_FALSE(m.persistence);
  EXPECT_EQ(m.store_reserve, 1u << 20);
  EXPECT_EQ(r->sys.interval, milliseconds(0));
  // The claimed section is left, with origins, for the bridge module.
  auto bridges = r->raw.SectionsWithPrefix("bridge.");
  ASSERT_EQ(bridges.size(), 1u);
  EXPECT_EQ(bridges[0]->Find("topic")->value, "sensors/# out 1");
  EXPECT_EQ(bridges[0]->Find("address")->origin, path + ":53");
}

TEST(LoadConfig, BadSampleReportsEveryErrorInFileOrder) {
  const std::string path = FERRY_TEST_DATA_DIR "/config/bad.conf";
  Result<Config> r = LoadConfig(path, nullptr);
  ASSERT_FALSE(r.ok());
  std::vector<std::string> got;
  std::istringstream in(r.status().message());
  for (std::string l; std::getline(in, l);) got.push_back(l.substr(path.size()));
  std::vector<std::string> want = {
      ":2: [node] name: expected name@host with name made of A-Z a-z 0-9 _ -, got 'no-at-sign'",
      ":3: [node] workers: expected an integer in 0..64, got 'many'",
      ":6: [listener.tcp.default] bind: expected host:port (e.g. 0.0.0.0:1883, [::1]:1883), "
      "got '0.0.0.0': missing ':port'",
      ":8: [listener.ssl.secure] missing required key 'certfile'",
      ":8: [listener.ssl.secure] missing required key 'keyfile'",
      ":12: [mqtt] unknown key 'max_inflite'",
      ":13: [mqtt] max_packet_size: expected a size in 16..268435455 bytes (e.g. 1048576, 64KB, "
      "1MB), got '1TB'",
      ":14: [mqtt] connect_timeout: expected a duration in 1ms..1h (e.g. 500ms, 10s, 2m, 1h), "
      "got 'soon'",
      ":15: [mqtt] max_qos: expected an integer in 0..2, got '3'",
      ":16: [mqtt] queue_qos0: expected a boolean (true/false, on/off, yes/no, 1/0), got 'maybe'",
      ":17: expected '[section]', 'key = value' or a comment",
      ":19: unknown section [cluster]",
  };
  EXPECT_EQ(got, want);
}

TEST(LoadConfig, ExtraSectionsClaimPrefixesAndExactNames) {
  static constexpr std::string_view kExtra[] = {"bridge.", "cluster"};
  std::string text = std::string(kListener) + "[bridge.a]\nx = 1\n[cluster]\ny = 2\n";
  EXPECT_TRUE(Load(text, nullptr, kExtra).ok());
  EXPECT_EQ(Errors(text + "[clusters]\n"), "t.conf:3: unknown section [bridge.a]\n"
                                           "t.conf:5: unknown section [cluster]\n"
                                           "t.conf:7: unknown section [clusters]");
  Result<Config> r = Load(text + "[clusters]\n", nullptr, kExtra);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "t.conf:7: unknown section [clusters]");
}

TEST(LoadConfig, ConnectPacketLimitIsCappedByPacketLimit) {
  Result<Config> r = Load(std::string(kListener) + "[mqtt]\nmax_packet_size = 1KB\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->mqtt.max_connect_packet_size, 1024u);
}

// A partial packet limit below max_packet_size would refuse every
// packet of the largest size the node allows.
TEST(LoadConfig, PartialPacketMemoryIsAtLeastMaxPacketSize) {
  EXPECT_EQ(Errors(std::string(kListener) +
                   "[mqtt]\nmax_packet_size = 2MB\nmax_partial_packet_memory = 1MB\n"),
            "t.conf:5: [mqtt] max_partial_packet_memory: must be at least max_packet_size "
            "(2097152 bytes)");
  // Unset, it is twice a max_packet_size that large packets need.
  Result<Config> r = Load(std::string(kListener) + "[mqtt]\nmax_packet_size = 100MB\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->mqtt.max_partial_packet_memory, uint64_t{200} << 20);
  r = Load(std::string(kListener) + "[mqtt]\nmax_packet_size = 40MB\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->mqtt.max_partial_packet_memory, uint64_t{80} << 20);
}

TEST(LoadConfig, TenThousandSubscriptionsPerClientByDefault) {
  Result<Config> r = Load(std::string(kListener));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->mqtt.max_subscriptions_per_client, 10000u);
  EXPECT_EQ(r->mqtt.max_partial_packet_memory, uint64_t{64} << 20);
}

TEST(LoadConfig, QueueWaitActionIsDropOrDisconnect) {
  const std::string text = std::string(kListener) + "[mqtt]\nqueue_wait_action = block\n";
  EXPECT_NE(Errors(text).find("t.conf:4: [mqtt] queue_wait_action: expected one of"),
            std::string::npos)
      << Errors(text);
  Env env{"FERRY_MQTT__QUEUE_WAIT_ACTION=disconnect", "FERRY_MQTT__MAX_QUEUE_WAIT=0",
          "FERRY_MQTT__MAX_SUBSCRIPTIONS_PER_CLIENT=0"};
  Result<Config> r = Load(std::string(kListener), env.envp());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->mqtt.queue_wait_action, QueueWaitAction::kDisconnect);
  EXPECT_EQ(r->mqtt.max_queue_wait, milliseconds(0));
  EXPECT_EQ(r->mqtt.max_subscriptions_per_client, 0u);
}

TEST(LoadConfig, UnknownKeyNamesSectionAndKey) {
  EXPECT_EQ(Errors(std::string(kListener) + "[mqtt]\nmax_inflite = 3\n"),
            "t.conf:4: [mqtt] unknown key 'max_inflite'");
}

TEST(LoadConfig, WholeSecondsKeysRefuseMilliseconds) {
  EXPECT_EQ(Errors(std::string(kListener) + "[mqtt]\nmax_keepalive = 1500ms\n"),
            "t.conf:4: [mqtt] max_keepalive: expected whole seconds, got '1500ms'");
}

TEST(LoadConfig, LogLevelMustBeKnown) {
  EXPECT_EQ(Errors(std::string(kListener) + "[log]\nlevel = loud\n"),
            "t.conf:4: [log] level: expected one of error, warn, info, debug, trace, got 'loud'");
}

// ------------------------------------------------------------ listeners

TEST(Listeners, AtLeastOneIsRequired) {
  EXPECT_EQ(Errors("[node]\nworkers = 1\n"),
            "t.conf: no listener: add a [listener.tcp.NAME] (or ssl, ws, wss) section with bind = host:port");
}

TEST(Listeners, BindIsRequired) {
  EXPECT_EQ(Errors("[listener.tcp.a]\nmax_connections = 5\n"),
            "t.conf:1: [listener.tcp.a] missing required key 'bind'");
}

TEST(Listeners, UnknownTypeAndBadNamesAreErrors) {
  EXPECT_EQ(Errors("[listener.quic.a]\nbind = a:1\n"),
            "t.conf:1: [listener.quic.a] unknown listener type 'quic' (expected tcp, ssl, ws or wss)");
  EXPECT_EQ(Errors("[listener.tcp]\nbind = a:1\n"),
            "t.conf:1: [listener.tcp] expected [listener.tcp.NAME] with NAME made of A-Z a-z 0-9 _ -");
  EXPECT_EQ(Errors("[listener.tcp.a.b]\nbind = a:1\n"),
            "t.conf:1: [listener.tcp.a.b] expected [listener.tcp.NAME] with NAME made of A-Z a-z 0-9 _ -");
}

TEST(Listeners, BadBindsAreExplained) {
  auto err = [](const std::string& bind) {
    return Errors("[listener.tcp.a]\nbind = " + bind + "\n");
  };
  const std::string p = "t.conf:2: [listener.tcp.a] bind: expected host:port (e.g. 0.0.0.0:1883, [::1]:1883), got ";
  EXPECT_EQ(err("1883"), p + "'1883': missing ':port'");
  EXPECT_EQ(err(":1883"), p + "':1883': empty host");
  EXPECT_EQ(err("0.0.0.0:65536"), p + "'0.0.0.0:65536': port must be a number in 0..65535");
  EXPECT_EQ(err("0.0.0.0:x"), p + "'0.0.0.0:x': port must be a number in 0..65535");
  EXPECT_EQ(err("300.1.1.1:1"), p + "'300.1.1.1:1': bad IPv4 address");
  EXPECT_EQ(err("::1:1883"), p + "'::1:1883': an IPv6 address must be written in brackets");
  EXPECT_EQ(err("[::g]:1883"), p + "'[::g]:1883': bad IPv6 address");
  EXPECT_EQ(err("[::1]1883"), p + "'[::1]1883': missing ':port'");
  EXPECT_EQ(err("my host:1"), p + "'my host:1': bad character in host");
}

TEST(Listeners, SameAddressTwiceIsAnErrorExceptPortZero) {
  std::string two = "[listener.tcp.a]\nbind = 127.0.0.1:1883\n[listener.tcp.b]\nbind = 127.0.0.1:1883\n";
  EXPECT_EQ(Errors(two), "t.conf:4: [listener.tcp.b] bind: 127.0.0.1:1883 is already used by "
                         "[listener.tcp.a]");
  Result<Config> r = Load("[listener.tcp.a]\nbind = 127.0.0.1:0\n[listener.tcp.b]\nbind = 127.0.0.1:0\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->listeners.size(), 2u);
}

TEST(Listeners, HostnamesAndIpv6AreAccepted) {
  Result<Config> r = Load("[listener.tcp.a]\nbind = localhost:1\n[listener.tcp.b]\nbind = [::]:0\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->listeners[0].host, "localhost");
  EXPECT_EQ(r->listeners[1].host, "::");
}

TEST(Listeners, TlsAndWebSocketKeysAreRead) {
  Result<Config> r = Load(
      "[listener.wss.secure]\nbind = 127.0.0.1:0\npath = /ws/mqtt\ncertfile = s.pem\n"
      "keyfile = s.key\ncafile = ca.pem\nverify_peer = yes\nfail_if_no_peer_cert = on\n"
      "ciphers = ECDHE+AESGCM\nciphersuites = TLS_AES_128_GCM_SHA256\ntls_min_version = 1.3\n"
      "use_cn_as_username = true\nmax_connection_rate = 50\nproxy_protocol = true\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const ListenerConfig& l = r->listeners[0];
  EXPECT_EQ(l.type, "wss");
  EXPECT_EQ(l.path, "/ws/mqtt");
  EXPECT_EQ(l.max_connection_rate, 50u);
  EXPECT_TRUE(l.proxy_protocol);
  TlsOptions want{"s.pem", "s.key", "ca.pem", true, true, "ECDHE+AESGCM",
                  "TLS_AES_128_GCM_SHA256", "1.3", true};
  EXPECT_EQ(l.tls, want);
  BrokerOptions o = BrokerOptionsFromConfig(*r);
  EXPECT_EQ(o.listeners[0].tls, want);
  EXPECT_EQ(o.listeners[0].ws_path, "/ws/mqtt");
  EXPECT_TRUE(o.listeners[0].IsTls());
  EXPECT_TRUE(o.listeners[0].IsWebSocket());
}

TEST(Listeners, TlsNeedsItsFilesAndConsistentVerification) {
  EXPECT_EQ(Errors("[listener.ssl.a]\nbind = a:1\n"),
            "t.conf:1: [listener.ssl.a] missing required key 'certfile'\n"
            "t.conf:1: [listener.ssl.a] missing required key 'keyfile'");
  const std::string base = "[listener.ssl.a]\nbind = a:1\ncertfile = c\nkeyfile = k\n";
  EXPECT_EQ(Errors(base + "verify_peer = true\n"),
            "t.conf:5: [listener.ssl.a] verify_peer: needs cafile, the CAs client certificates "
            "must chain to");
  EXPECT_EQ(Errors(base + "fail_if_no_peer_cert = true\n"),
            "t.conf:5: [listener.ssl.a] fail_if_no_peer_cert: needs verify_peer = true");
  EXPECT_EQ(Errors(base + "use_cn_as_username = true\n"),
            "t.conf:5: [listener.ssl.a] use_cn_as_username: needs verify_peer = true");
  EXPECT_EQ(Errors(base + "tls_min_version = 1.1\n").substr(0, 46),
            "t.conf:5: [listener.ssl.a] tls_min_version: ex");
}

TEST(Listeners, KeysOfOtherTypesAreUnknown) {
  EXPECT_EQ(Errors("[listener.tcp.a]\nbind = a:1\ncertfile = c\n"),
            "t.conf:3: [listener.tcp.a] unknown key 'certfile'");
  EXPECT_EQ(Errors("[listener.ssl.a]\nbind = a:1\ncertfile = c\nkeyfile = k\npath = /mqtt\n"),
            "t.conf:5: [listener.ssl.a] unknown key 'path'");
  EXPECT_EQ(Errors("[listener.ws.a]\nbind = a:1\npath = mqtt\n"),
            "t.conf:3: [listener.ws.a] path: expected an HTTP path starting with '/', got 'mqtt'");
}

// ------------------------------------------------------------ environment

TEST(Environment, OverridesReplaceFileValuesAndNameTheVariable) {
  Env env{"PATH=/bin", "FERRY_NODE__NAME=edge2@10.0.0.6", "FERRY_MQTT__MAX_INFLIGHT=64",
          "FERRY_CONFIG=/etc/ferry.conf"};
  Result<Config> r = Load(std::string(kListener) + "[node]\nname = edge1@h\n", env.envp());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->node.name, "edge2@10.0.0.6");
  EXPECT_EQ(r->mqtt.max_inflight, 64);
  EXPECT_EQ(r->raw.Find("node", "name")->origin, "FERRY_NODE__NAME");
}

TEST(Environment, LastDoubleUnderscoreSplitsSectionFromKey) {
  Env env{"FERRY_LISTENER__TCP__DEFAULT__BIND=0.0.0.0:1884",
          "FERRY_LISTENER__TCP__MY_LOCAL__BIND=127.0.0.1:0",
          "FERRY_LISTENER__TCP__MY_LOCAL__MAX_CONNECTIONS=7"};
  Result<Config> r = Load(kListener, env.envp());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->listeners.size(), 2u);
  EXPECT_EQ(r->listeners[0].port, 1884);
  EXPECT_EQ(r->listeners[1].name, "my_local");
  EXPECT_EQ(r->listeners[1].max_connections, 7u);
  EXPECT_EQ(r->listeners[1].origin, "FERRY_LISTENER__TCP__MY_LOCAL__BIND");
}

TEST(Environment, OverridesReachMixedCaseSections) {
  Env env{"FERRY_LISTENER__TCP__EDGE__BIND=127.0.0.1:2"};
  Result<Config> r = Load("[listener.tcp.Edge]\nbind = 127.0.0.1:1\n", env.envp());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->listeners.size(), 1u);
  EXPECT_EQ(r->listeners[0].port, 2);
}

TEST(Environment, CanProvideTheOnlyListener) {
  Env env{"FERRY_LISTENER__TCP__DEFAULT__BIND=127.0.0.1:0"};
  EXPECT_TRUE(Load("", env.envp()).ok());
}

TEST(Environment, BadVariablesAreErrorsNamingThem) {
  Env env{"FERRY_MQTT__MAX_INFLIGHT=x", "FERRY_MQTT__MAX_INFLITE=1", "FERRY_NODE_NAME=a@b",
          "FERRY_BOGUS__KEY=1", "FERRY___X=1"};
  EXPECT_EQ(Errors(kListener, env.envp()),
            "FERRY_NODE_NAME: not a config override: expected FERRY_<SECTION>__<KEY>\n"
            "FERRY___X: not a config override: expected FERRY_<SECTION>__<KEY>\n"
            "FERRY_BOGUS__KEY: unknown section [bogus]\n"
            "FERRY_MQTT__MAX_INFLIGHT: [mqtt] max_inflight: expected an integer in 1..65535, got 'x'\n"
            "FERRY_MQTT__MAX_INFLITE: [mqtt] unknown key 'max_inflite'");
}

// ------------------------------------------------------------ syntax

TEST(Syntax, EveryBadLineIsReportedWithItsNumber) {
  EXPECT_EQ(Errors("orphan = 1\n"
                   "[node\n"
                   "[node] trailing\n"
                   "[]\n"
                   "[node]\n"
                   "just words\n"
                   "= 5\n"
                   "workers = 1\n"
                   "workers = 2\n"
                   "data_dir = " + std::string(200, 'x') + "\n" + kListener),
            "t.conf:1: key outside any section\n"
            "t.conf:2: expected ']' to close the section name\n"
            "t.conf:3: unexpected text after ']'\n"
            "t.conf:4: empty section name\n"
            "t.conf:6: expected '[section]', 'key = value' or a comment\n"
            "t.conf:7: missing key before '='\n"
            "t.conf:9: [node] duplicate key 'workers' (first set at line 8)\n"
            "t.conf:10: line longer than 198 characters");
}

// Issue 9: a second [section] of the same name used to merge into the
// first, so a key meant for one listener could change another.
TEST(Syntax, DuplicateSectionIsAnErrorWithBothLines) {
  EXPECT_EQ(Errors(std::string(kListener) +
                   "[node]\n"
                   "workers = 1\n"
                   "\n"
                   "[node]\n"
                   "workers = 2\n"
                   "data_dir = elsewhere\n"),
            "t.conf:6: duplicate section [node] (first at line 3)");
}

TEST(Syntax, DuplicateListenerSectionIsAnError) {
  EXPECT_EQ(Errors("[listener.tcp.a]\nbind = 127.0.0.1:1883\n"
                   "[listener.tcp.b]\nbind = 127.0.0.1:1884\n"
                   "[listener.tcp.a]\nmax_connections = 5\n"),
            "t.conf:5: duplicate section [listener.tcp.a] (first at line 1)");
}

TEST(Syntax, EnvironmentOverrideOfAnExistingSectionIsNoDuplicate) {
  std::string var = "FERRY_NODE__WORKERS=3";
  char* envp[] = {var.data(), nullptr};
  Result<RawConfig> r = ParseConfigString("[node]\nname = a@b\n", "t.conf", envp);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->Find("node", "workers")->value, "3");
  EXPECT_EQ(r->Find("node", "name")->value, "a@b");
}

TEST(Syntax, NulByteIsAnError) {
  std::string text = std::string(kListener) + "[node]\nname = a";
  text += '\0';
  text += "@b\n";
  EXPECT_EQ(Errors(text), "t.conf:4: line contains a NUL byte");
}

TEST(Syntax, CommentsQuotesIndentationCrlfAndBom) {
  Result<RawConfig> r = ParseConfigString(
      "\xEF\xBB\xBF# comment\r\n; comment\r\n[a] # comment\r\n  k1 = v ; comment\r\n"
      "    k2 = \"\"\r\nk3 = \" spaced \"\r\nk4 = sensors/#\r\nk5: colon\r\n",
      "t.conf", nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->Find("a", "k1")->value, "v");
  EXPECT_EQ(r->Find("a", "k1")->origin, "t.conf:4");
  EXPECT_EQ(r->Find("a", "k2")->value, "");
  EXPECT_EQ(r->Find("a", "k3")->value, " spaced ");
  EXPECT_EQ(r->Find("a", "k4")->value, "sensors/#");
  EXPECT_EQ(r->Find("a", "k5")->value, "colon");
}

TEST(Syntax, LongSectionNamesAreKept) {
  std::string name = "bridge." + std::string(80, 'n');
  Result<RawConfig> r = ParseConfigString("[" + name + "]\nk = v\n", "t.conf", nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->Find(name, "k"), nullptr);
}

// A repeated section used to be merged into the first; it is an error now
// (issue 9), see Syntax.DuplicateSectionIsAnErrorWithBothLines.
TEST(RawConfig, KeepsFileOrderAndRefusesRepeatedSections) {
  Result<RawConfig> r =
      ParseConfigString("[b.2]\nx = 1\nw = 4\n[a]\ny = 2\n[b.1]\nz = 3\n", "t.conf", nullptr);
  ASSERT_TRUE(r.ok());
  auto b = r->SectionsWithPrefix("b.");
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0]->name, "b.2");
  EXPECT_EQ(b[0]->entries.size(), 2u);
  EXPECT_EQ(b[1]->name, "b.1");
  EXPECT_EQ(r->FindSection("c"), nullptr);
  EXPECT_EQ(r->Find("a", "nope"), nullptr);
  r = ParseConfigString("[b.2]\nx = 1\n[a]\ny = 2\n[b.1]\nz = 3\n[b.2]\nw = 4\n", "t.conf", nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "t.conf:7: duplicate section [b.2] (first at line 1)");
}

TEST(RawConfig, MissingFileIsAnIoError) {
  Result<RawConfig> r = ParseConfigFile("/nonexistent/ferry.conf", nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIoError);
  EXPECT_EQ(r.status().message(), "/nonexistent/ferry.conf: cannot open: No such file or directory");
}

// ------------------------------------------------------------ values

TEST(Values, Sizes) {
  EXPECT_EQ(ParseSize("1048576", 0, UINT64_MAX).value(), 1048576u);
  EXPECT_EQ(ParseSize("64KB", 0, UINT64_MAX).value(), 65536u);
  EXPECT_EQ(ParseSize("64 kb", 0, UINT64_MAX).value(), 65536u);
  EXPECT_EQ(ParseSize("1MB", 0, UINT64_MAX).value(), 1048576u);
  EXPECT_EQ(ParseSize("2G", 0, UINT64_MAX).value(), 2ull << 30);
  EXPECT_EQ(ParseSize("10B", 0, UINT64_MAX).value(), 10u);
  EXPECT_FALSE(ParseSize("", 0, UINT64_MAX).ok());
  EXPECT_FALSE(ParseSize("MB", 0, UINT64_MAX).ok());
  EXPECT_FALSE(ParseSize("-1", 0, UINT64_MAX).ok());
  EXPECT_FALSE(ParseSize("1.5MB", 0, UINT64_MAX).ok());
  EXPECT_FALSE(ParseSize("1TB", 0, UINT64_MAX).ok());
  EXPECT_FALSE(ParseSize("99999999999999999999", 0, UINT64_MAX).ok());
  EXPECT_FALSE(ParseSize("17179869184GB", 0, UINT64_MAX).ok());
  EXPECT_FALSE(ParseSize("15", 16, 100).ok());
}

TEST(Values, Durations) {
  auto d = [](std::string_view t) { return ParseDuration(t, milliseconds(0), milliseconds::max()); };
  EXPECT_EQ(d("10").value(), seconds(10));
  EXPECT_EQ(d("10s").value(), seconds(10));
  EXPECT_EQ(d("500ms").value(), milliseconds(500));
  EXPECT_EQ(d("2m").value(), seconds(120));
  EXPECT_EQ(d("1h").value(), seconds(3600));
  EXPECT_EQ(d("1d").value(), seconds(86400));
  EXPECT_FALSE(d("").ok());
  EXPECT_FALSE(d("s").ok());
  EXPECT_FALSE(d("1.5s").ok());
  EXPECT_FALSE(d("10 minutes").ok());
  EXPECT_FALSE(d("-1s").ok());
  EXPECT_FALSE(d("9999999999999999999d").ok());
  EXPECT_EQ(ParseDuration("2h", milliseconds(0), std::chrono::hours(1)).status().message(),
            "expected a duration in 0s..1h (e.g. 500ms, 10s, 2m, 1h), got '2h'");
}

TEST(Values, BooleansAndIntegers) {
  for (auto t : {"true", "TRUE", "on", "yes", "1"}) EXPECT_TRUE(ParseBool(t).value()) << t;
  for (auto f : {"false", "Off", "no", "0"}) EXPECT_FALSE(ParseBool(f).value()) << f;
  EXPECT_FALSE(ParseBool("2").ok());
  EXPECT_FALSE(ParseBool("").ok());
  EXPECT_EQ(ParseInteger("-5", -10, 10).value(), -5);
  EXPECT_FALSE(ParseInteger("11", -10, 10).ok());
  EXPECT_FALSE(ParseInteger("1x", -10, 10).ok());
  EXPECT_FALSE(ParseInteger(" 1", -10, 10).ok());
  EXPECT_FALSE(ParseInteger("", -10, 10).ok());
}

TEST(Values, HostPort) {
  EXPECT_EQ(ParseHostPort("0.0.0.0:1883")->port, 1883);
  EXPECT_EQ(ParseHostPort("[::1]:0")->host, "::1");
  EXPECT_EQ(ParseHostPort("broker.example.com:8883")->host, "broker.example.com");
  EXPECT_FALSE(ParseHostPort("[::1]:").ok());
  EXPECT_FALSE(ParseHostPort("[::1:1").ok());
  EXPECT_FALSE(ParseHostPort("h:-1").ok());
}

// ------------------------------------------------------------ SectionReader

TEST(SectionReader, SchemaOfAnotherModule) {
  Result<RawConfig> raw = ParseConfigString(
      "[bridge.cloud]\naddress = cloud:8883\nretry = 5x\nextra = 1\n", "t.conf", nullptr);
  ASSERT_TRUE(raw.ok());
  ConfigErrors errors;
  SectionReader r(raw->FindSection("bridge.cloud"), "bridge.cloud", errors);
  HostPort address;
  milliseconds retry{1000};
  r.Require("address");
  r.Require("topic");
  EXPECT_TRUE(r.HostPortValue("address", &address));
  EXPECT_FALSE(r.Duration("retry", milliseconds(1), seconds(60), &retry));
  r.ReportUnknownKeys();
  EXPECT_EQ(address.port, 8883);
  EXPECT_EQ(retry, milliseconds(1000));
  EXPECT_EQ(r.known_keys(), (std::vector<std::string>{"address", "topic", "retry"}));
  EXPECT_EQ(errors.ToStatus().message(),
            "t.conf:1: [bridge.cloud] missing required key 'topic'\n"
            "t.conf:3: [bridge.cloud] retry: expected a duration in 1ms..1m (e.g. 500ms, 10s, "
            "2m, 1h), got '5x'\n"
            "t.conf:4: [bridge.cloud] unknown key 'extra'");
}

}  // namespace
}  // namespace ferry::core
