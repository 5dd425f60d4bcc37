// Bridges: forward messages by rule between this node and other MQTT
// brokers, over links that may fail, without losing what was acknowledged.
//
// A bridge connects to an upstream broker as an MQTT client. Local messages
// matching its `forward` rules go into its durable queue (data_dir/bridges/
// NAME) and from there upstream, in order; what its `subscribe` rules match
// upstream is published locally. Nothing else is shared with the upstream:
// no routes, no sessions. The [bridge.NAME] sections of ferry.conf configure
// bridges (keys documented in etc/ferry.conf); ferryctl adds, changes,
// starts and stops them at runtime (kept in data_dir/bridges.conf; a start
// or stop by name is kept in data_dir/bridges.state).
//
// How it plugs into the core: each started bridge registers its forward
// rules as route hook filters (core/broker.h), so a local publish is matched
// against them in the router's trie together with client subscriptions and
// handed to the bridge on the publishing worker's thread; the publisher's
// PUBACK waits until the message is in the bridge's queue (see queue.h for
// the durability window). Messages pulled down are injected with
// Broker::Publish and acknowledged upstream once the local node took them.
//
// Threads. All bridges share one loop thread, the "bridge thread", which
// runs their links (libuv TCP/TLS, the MQTT client state, reconnects). It is
// a thread of its own rather than ferryd's main loop so that encoding and
// decoding bridge traffic never delays accepting connections or signals.
// Each bridge's queue has a storage thread that does its disk writes (group
// commit). The public functions below may be called from any thread unless
// noted; they hand work to the bridge thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace ferry::core {
class AdminRegistry;
class Broker;
class Loop;
struct Config;
class RawConfig;
}  // namespace ferry::core

namespace ferry::bridge {

// A bridge's state and counters, as `ferryctl bridges list` shows them.
struct BridgeStats {
  std::string name;
  // stopped, idle, connecting, connected, backoff; "standby" for a bridge
  // of scope cluster that runs on another node (or none: runs_on "").
  std::string state;
  std::string scope;          // node, cluster
  // scope cluster: the node it runs on as far as this node knows, "" if
  // none; scope node: this node while it runs.
  std::string runs_on;
  // scope cluster, on a node where it does not run: sending what was left
  // in this node's queue (under its own client id), then standby again.
  bool draining = false;
  std::string address;        // address in use, or tried last
  std::string upstream_node;  // the upstream ferry node's name, if it said
  std::string origin;         // "file.conf:12" or "runtime"
  // "stopped" or "started" if ferryctl last stopped or started it (kept in
  // data_dir/bridges.state across restarts); "" otherwise.
  std::string held;
  std::vector<std::string> forward;    // rule texts
  std::vector<std::string> subscribe;  // rule texts
  uint64_t queued = 0;        // not yet acknowledged upstream
  uint64_t queued_bytes = 0;  // queue size on disk
  uint64_t inflight = 0;      // sent, awaiting acknowledgement
  uint64_t sent = 0;          // PUBLISH packets sent upstream
  uint64_t received = 0;      // messages pulled down and published locally
  // Messages that will never be delivered, by cause, and their sum.
  uint64_t dropped_overflow = 0;   // queue_max_bytes
  uint64_t dropped_expired = 0;    // queue_max_age or MQTT message expiry
  uint64_t dropped_loop = 0;       // max_hops, or back at this node
  uint64_t dropped_rejected = 0;   // refused by the upstream (v5 reason code)
  uint64_t dropped_other = 0;      // too large, QoS 0 while disconnected, no rule
  uint64_t dropped = 0;
  uint64_t connects = 0;           // successful connections since start
  uint64_t connected_since_ms = 0; // Unix ms; 0 while not connected
  std::string last_error;
};

// Where bridges of scope = cluster run: on the one node of the cluster that
// holds the bridge's lock. ferryd gives the cluster's locks
// (cluster::ClusterNode::LockBridge); without a placement (a node alone)
// such a bridge runs here, as one of scope node does. Any thread; each
// `done` runs once, on any thread, and must not block.
class BridgePlacement {
 public:
  virtual ~BridgePlacement() = default;
  // Asks for bridge `name`'s lock for this node: done(true, this node) once
  // held, or done(false, the node that holds it, "" if unknown).
  virtual void Claim(const std::string& name,
                     std::function<void(bool held, std::string holder)> done) = 0;
  // Whether this node still holds it (and still sees enough of the cluster
  // for that lock).
  virtual void Held(const std::string& name, std::function<void(bool)> done) = 0;
  virtual void Release(const std::string& name) = 0;
  // Runs the admin command `words` on every other running node (a start or
  // stop of a bridge of scope cluster applies to all). `done` gets one
  // line per node that failed, empty if none did.
  virtual void OnPeers(std::vector<std::string> words,
                       std::function<void(std::vector<std::string> failed)> done) = 0;
};

class BridgeSet {
 public:
  // Checks every [bridge.NAME] section of `config` and of the runtime file
  // data_dir/bridges.conf, without starting anything (ferryd --check-config
  // and start-up). Errors: InvalidArgument listing every problem as
  // "file:line: [bridge.NAME] key: message".
  static ferry::Status Check(const core::Config& config);

  // Builds the bridges of `config` (and of data_dir/bridges.conf) for
  // `broker`, which must outlive the BridgeSet. Opens and recovers every
  // bridge's queue (blocking: call it at start-up, before the node is
  // ready). Errors: as Check, or a queue that cannot be opened (IoError,
  // Corruption naming the file).
  // REQUIRES: broker.Start() succeeded.
  static ferry::Result<std::unique_ptr<BridgeSet>> Create(const core::Config& config,
                                                          core::Broker& broker);
  ~BridgeSet();
  BridgeSet(const BridgeSet&) = delete;
  BridgeSet& operator=(const BridgeSet&) = delete;

  // Where bridges of scope cluster run (nullptr: here). Before Start.
  void SetPlacement(std::shared_ptr<BridgePlacement> placement);

  // Starts the bridge thread and every bridge whose start mode is auto or
  // lazy (one of scope cluster once this node holds its lock). `main_loop`
  // is where Shutdown's `done` runs.
  ferry::Status Start(core::Loop& main_loop);

  // Applies a changed config (SIGHUP): bridges of the file that were added,
  // removed or changed are started, stopped or restarted; bridges created at
  // runtime are left alone. Errors: as Check; nothing changes then.
  ferry::Status Reload(const core::Config& config);

  // Stops every bridge (state "0" locally and upstream, DISCONNECT), writes
  // what is queued and ends the bridge thread. `done` runs on the main loop.
  void Shutdown(std::function<void()> done);

  // A snapshot of every bridge, in name order.
  std::vector<BridgeStats> Stats() const;

  // Per-bridge metrics in the Prometheus text exposition format (state,
  // queue, traffic, drops by reason), to append to the node's /metrics.
  std::string PrometheusMetrics() const;

  // Registers the `bridges ...` commands of ferryctl and the HTTP admin API
  // (list, show, start, stop, forwards, subscriptions, add-forward,
  // del-forward, add-subscription, del-subscription). Main loop, after
  // Create. Errors: a command path already registered.
  ferry::Status RegisterAdminCommands(core::AdminRegistry& registry);

 private:
  class Impl;
  explicit BridgeSet(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::bridge
