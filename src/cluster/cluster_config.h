// The cluster's configuration: [cluster] and the cookie of [node].
//
//   [node]
//   cookie = ...           # or cookie_file = /etc/ferry/cookie (mode 0600)
//   [cluster]
//   name = ferry           # nodes of different clusters never join
//   discovery = manual     # manual | static | dns | etcd | k8s | mcast (discovery.h)
//   listen = 0.0.0.0:4370  # default: port 4370, or 4370 + N for a node name
//                          # ending in N (peer_address.h)
//   peer_down_after = 10s  # a peer silent that long is down; forwards held
//                          # for a peer whose link is lost go after that
//   autoheal = on          # parts of a split cluster merge again by themselves
//   autoheal_delay = 15s   #   this long after they meet (cluster_heal.cpp)
//   autoheal_mode = soft   # restart: the joining side closes its clients'
//                          #   connections (sessions stay)
//   autoclean = 5m         # a member unreachable that long is removed (0 = never)
//   session_locking = quorum  # the lock a CONNECT takes on its client id:
//                          # local | leader | quorum | all (locks.h)
//   bridge_locking = quorum   # the lock of a bridge with scope = cluster:
//                          # leader | quorum | all
//   ssl = off              # on: mutual TLS on peer links (peer_tls.h) with
//   certfile = ...         #   this node's certificate and key, and the CA
//   keyfile = ...          #   that signed every member's
//   cafile = ...
//   [cluster.static]
//   seeds = ferry1@10.0.0.1, ferry2@10.0.0.2
//   [cluster.dns]   name, app, record_type, server
//   [cluster.etcd]  server, prefix, node_ttl, cafile, certfile, keyfile
//   [cluster.k8s]   apiserver, service_name, address_type, app_name,
//                   namespace, suffix, token_file, cafile
//   [cluster.mcast] addr, ports, iface, ttl, loop
//
// Without a cookie the node opens no cluster port; `why_disabled` says so,
// for `ferryctl cluster join` to print. The cookie is read here, once, and
// never appears in an error message.
//
// Pure functions of their arguments (and the cookie file); any thread.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cluster/discovery.h"
#include "cluster/locks.h"
#include "cluster/peer_tls.h"
#include "core/config.h"

namespace ferry::cluster {

struct ClusterConfig {
  bool enabled = false;  // a cookie is set
  std::string why_disabled;
  std::string name = "ferry";
  std::string cookie;
  std::string listen_host = "0.0.0.0";
  uint16_t listen_port = 0;
  uint64_t peer_down_after_ms = 10000;
  bool autoheal = true;
  bool autoheal_restart = false;  // autoheal_mode = restart
  uint64_t autoheal_delay_ms = 15000;
  uint64_t autoclean_ms = 300000;  // 0 = never
  LockType session_locking = LockType::kQuorum;
  LockType bridge_locking = LockType::kQuorum;  // never kLocal
  DiscoveryConfig discovery;  // [cluster] discovery, [cluster.<strategy>]
  bool ssl = false;
  PeerTlsFiles tls;
  PeerTlsContexts tls_contexts;  // loaded when enabled with ssl = on
};

// Reads [cluster] from `config.raw` and the cookie from config.node, adding
// every problem to `errors` as "origin: [section] key: what is wrong".
ClusterConfig ReadClusterConfig(const core::Config& config, core::ConfigErrors& errors);

// The keys of [cluster], for documentation checks.
std::vector<std::pair<std::string, std::string>> ClusterConfigKeys();

}  // namespace ferry::cluster
