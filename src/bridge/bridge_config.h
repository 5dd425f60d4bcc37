// The [bridge.NAME] sections of ferry.conf, typed and validated; every key is
// documented in etc/ferry.conf (a commented-out example section).
//
// Errors are reported through core::SectionReader, so they read like the
// core's: "etc/ferry.conf:42: [bridge.cloud] unknown key 'adress'". The same
// schema reads the bridges ferryctl created at runtime (RenderBridgeSection
// writes them back in this format), so both go through one validation.
//
// Pure functions and value types; any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/rules.h"
#include "core/config.h"
#include "core/status.h"

namespace ferry::bridge {

enum class StartMode : uint8_t { kAuto, kManual, kLazy };
// Where a bridge of a clustered node runs: on this node, for the messages
// published here (node), or on one node of the cluster at a time, for the
// messages published on any (cluster).
enum class BridgeScope : uint8_t { kNode, kCluster };
enum class AddressPolicy : uint8_t { kFailover, kRoundRobin };
// When a forwarded QoS 1/2 message counts as safe in the queue, i.e. when
// its publisher gets its acknowledgement (see queue.h).
enum class QueueSync : uint8_t { kWrite, kFsync, kNone };

const char* StartModeName(StartMode m);
const char* BridgeScopeName(BridgeScope s);
const char* QueueSyncName(QueueSync s);

struct UpstreamAddress {
  std::string host;  // name or IP address (IPv6 without brackets)
  uint16_t port = 1883;
  bool tls = false;
  // The ferry node expected there ("hub@10.0.0.1"), when the address was
  // written as NODE:port (name@host:port); "" otherwise.
  std::string node;

  // "mqtts://host:port" for TLS, "name@host:port" when a node is named,
  // "host:port" otherwise ("[::1]:1883").
  std::string ToString() const;
  bool operator==(const UpstreamAddress&) const = default;
};

// Parses "host:port", "[v6]:port", "name@host:port" (a ferry node's name and
// its port, as ferryctl's TARGET), "mqtt://host[:port]" (port 1883) or
// "mqtts://host[:port]" (port 8883, TLS).
ferry::Result<UpstreamAddress> ParseUpstreamAddress(std::string_view text);

struct BridgeConfig {
  std::string name;    // NAME of [bridge.NAME]: A-Z a-z 0-9 _ -
  std::string origin;  // where the section starts ("ferry.conf:40")

  std::vector<UpstreamAddress> addresses;  // at least one
  AddressPolicy address_policy = AddressPolicy::kFailover;
  std::chrono::milliseconds primary_retry{30000};

  std::vector<TopicRule> forward;    // out: local -> upstream
  std::vector<TopicRule> subscribe;  // in: upstream -> local
  std::string local_prefix;          // defaults for the rules, ${node} expanded
  std::string remote_prefix;
  bool strip_retain = false;
  uint32_t max_hops = 8;

  BridgeScope scope = BridgeScope::kNode;
  std::string clientid;  // default "<name>.<node name>", or "<name>" with scope cluster
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::string password_file;  // read at each connect; first line, trimmed
  uint8_t proto_ver = 5;      // 4 (MQTT 3.1.1) or 5
  bool bridge_bit = true;     // 3.1.1: protocol level | 0x80 (try_private)
  std::chrono::seconds keepalive{60};
  bool clean_start = false;
  std::chrono::seconds session_expiry{3600};  // v5, with clean_start = false

  bool tls = false;  // TLS to every address (mqtts:// turns it on per address)
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  bool tls_verify = true;
  std::string tls_server_name;  // default: the address's host

  std::chrono::milliseconds reconnect_min{1000};
  std::chrono::milliseconds reconnect_max{60000};
  std::chrono::milliseconds connect_timeout{10000};
  uint16_t max_inflight = 256;

  StartMode start = StartMode::kAuto;
  std::chrono::milliseconds idle_timeout{60000};  // lazy only

  bool notifications = true;
  bool notifications_local_only = false;
  std::string notification_topic;  // default $SYS/brokers/<node>/bridges/<name>/state

  uint64_t queue_max_bytes = uint64_t{256} << 20;
  std::chrono::milliseconds queue_max_age{0};  // 0 = no limit
  QueueSync queue_sync = QueueSync::kWrite;
  uint32_t queue_replay_rate = 0;  // messages per second; 0 = as fast as the window allows
  bool queue_qos0 = true;

  // Whether the address given to TLS (addresses[i].tls || tls).
  bool UsesTls(const UpstreamAddress& a) const { return tls || a.tls; }
};

// True if `name` is a valid bridge name.
bool IsBridgeName(std::string_view name);

// Reads one section into `out` (holding the defaults), reporting problems to
// `errors`. `section` may be null: every key keeps its default (used to list
// the schema).
void ReadBridgeSection(const core::RawSection* section, std::string_view bridge_name,
                       std::string_view node_name, core::ConfigErrors& errors,
                       BridgeConfig* out);

// Every [bridge.NAME] section of `raw`, in file order. Errors: InvalidArgument
// listing every problem in every section, one per line.
ferry::Result<std::vector<BridgeConfig>> ReadBridgeConfigs(const core::RawConfig& raw,
                                                           std::string_view node_name);

// The keys of a [bridge.NAME] section, for the documentation check.
std::vector<std::string> BridgeConfigKeys();

// `config` as a [bridge.NAME] section that ReadBridgeSection reads back to
// an equal config (only keys that differ from the defaults are written).
std::string RenderBridgeSection(const BridgeConfig& config, std::string_view node_name);

}  // namespace ferry::bridge
