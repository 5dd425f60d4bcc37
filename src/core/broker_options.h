// Everything a Broker needs to know from the configuration, already
// validated (core/config.h builds it from ferry.conf and the environment).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/log.h"

namespace ferry::core {

// TLS settings of an "ssl" or "wss" listener (see etc/ferry.conf).
struct TlsOptions {
  std::string certfile;  // PEM: server certificate, then intermediates
  std::string keyfile;   // PEM: its private key
  std::string cafile;    // PEM: CAs that client certificates must chain to
  bool verify_peer = false;            // ask for and verify a client certificate
  bool fail_if_no_peer_cert = false;   // refuse clients without one
  std::string ciphers;                 // TLS 1.2 cipher list; empty = OpenSSL's
  std::string ciphersuites;            // TLS 1.3 suites; empty = OpenSSL's
  std::string min_version = "1.2";     // oldest TLS version accepted: "1.2" or "1.3"
  bool use_cn_as_username = false;     // the client certificate's CN is the username
  bool operator==(const TlsOptions&) const = default;
};

struct ListenerOptions {
  std::string type = "tcp";  // "tcp", "ssl", "ws" or "wss"
  std::string name = "default";
  std::string host = "0.0.0.0";
  uint16_t port = 1883;  // 0 = any free port (the ready line names the one bound)
  uint32_t max_connections = 0;  // 0 = unlimited
  uint32_t max_connection_rate = 0;  // new connections per second; 0 = unlimited
  bool proxy_protocol = false;  // a PROXY v1/v2 header comes first
  std::string ws_path = "/mqtt";  // "ws" and "wss": the HTTP path to upgrade
  TlsOptions tls;               // "ssl" and "wss"
  std::string origin;           // where its section starts: "etc/ferry.conf:12"

  bool IsTls() const { return type == "ssl" || type == "wss"; }
  bool IsWebSocket() const { return type == "ws" || type == "wss"; }
};

// What happens to a connected subscriber whose full queue held a publisher
// for max_queue_wait_ms ([mqtt] queue_wait_action).
enum class QueueWaitAction : uint8_t {
  kDrop,        // its messages are dropped (and counted) while the queue is full
  kDisconnect,  // the client is disconnected (v5: DISCONNECT 0x97)
};

struct BrokerOptions {
  std::string node_name = "ferry@127.0.0.1";
  std::string data_dir = "data";
  unsigned workers = 0;  // 0 = one per core
  // Descriptors kept free of MQTT connections for everything else the node
  // opens: the admin API, the store, bridges, log files (see fd_budget.h).
  uint32_t reserved_fds = 128;
  std::vector<ListenerOptions> listeners;

  bool allow_anonymous = true;
  std::string password_file;
  std::string acl_file;

  uint32_t max_packet_size = 1024 * 1024;
  uint32_t max_connect_packet_size = 64 * 1024;
  uint16_t max_keepalive_s = 65535;
  uint32_t connect_timeout_ms = 10000;
  uint16_t receive_maximum = 1024;
  uint16_t max_inflight = 32;
  uint32_t max_queued_messages = 1000;  // 0 = unlimited
  bool queue_qos0 = true;
  uint32_t max_session_expiry_s = 0;  // 0 = no cap
  uint16_t topic_alias_maximum = 65535;
  bool retain_available = true;
  bool wildcard_subscription_available = true;
  bool shared_subscription_available = true;
  bool subscription_identifier_available = true;
  uint8_t max_qos = 2;
  uint64_t max_output_buffer = 1024 * 1024;
  uint32_t max_queue_wait_ms = 500;
  QueueWaitAction queue_wait_action = QueueWaitAction::kDrop;
  // Bytes of incomplete packets one worker holds for all its connections.
  uint64_t max_partial_packet_memory = 64 * 1024 * 1024;
  uint32_t max_subscriptions_per_client = 10000;  // 0 = unlimited
  uint32_t max_client_id_length = 65535;
  bool allow_zero_length_clientid = true;
  bool persistence = true;
  // Disk space the durable store keeps back for deletions on a full disk
  // (DurableStore::Options::reserve_bytes); 0 = none.
  uint64_t store_reserve = uint64_t{8} << 20;
  uint32_t sys_interval_ms = 10000;  // 0 = no $SYS topics
};

}  // namespace ferry::core

namespace ferry::core {
struct Config;
// The broker's view of a loaded configuration.
BrokerOptions BrokerOptionsFromConfig(const Config& config);
}  // namespace ferry::core
