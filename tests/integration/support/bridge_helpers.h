// Helpers for the bridge integration tests: config sections for bridges,
// a bridge's state as ferryctl reports it, a TCP port that refuses
// connections, and a listening socket with which a test plays the upstream
// broker (after eclipse/mosquitto test/broker/06-bridge-br2b-disconnect-qos1.py).
//
// Thread: the test's thread.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ctl.h"
#include "node_process.h"
#include "raw_client.h"
#include "types.h"

namespace ferry::testing {

// "[bridge.NAME]\naddress = ADDRESS\n" + `lines` (each "key = value"), with
// quick reconnects (reconnect_min 100ms, reconnect_max 500ms) unless the
// lines set them.
std::string BridgeSection(const std::string& name, const std::string& address,
                          const std::vector<std::string>& lines);

// Options for a node named NAME@127.0.0.1 that logs at info (the tests move
// thousands of messages; debug logs each one), with `extra` INI merged in.
NodeOptions BridgeTestNode(const std::string& name, const std::string& extra = "");

// "127.0.0.1:<port of node's tcp.default>".
std::string AddressOf(const NodeProcess& node);

// Publishes one QoS 1 message from a fresh client and waits for its PUBACK.
::testing::AssertionResult PublishQos1(uint16_t port, MqttVersion v, const std::string& topic,
                                       const std::string& payload, bool retain = false);

// `ferryctl bridges show NAME --json`, parsed; nullopt (with the reason in
// *why) if it failed.
std::optional<Json> BridgeShow(const NodeProcess& node, const std::string& name,
                               std::string* why = nullptr);

// Waits until bridge `name` of `node` is in `state` ("connected", "backoff", ...).
::testing::AssertionResult WaitBridgeState(const NodeProcess& node, const std::string& name,
                                           const std::string& state,
                                           std::chrono::milliseconds timeout = kDefaultTimeout * 2);

// Waits until `pred` holds for bridge `name`'s stats (BridgeShow's JSON).
::testing::AssertionResult WaitBridge(const NodeProcess& node, const std::string& name,
                                      const std::function<bool(const Json&)>& pred,
                                      const std::string& what,
                                      std::chrono::milliseconds timeout = kDefaultTimeout * 2);

// A loopback port nobody listens on while this object lives: a socket bound
// to it without listen(), so connecting is refused and no other process can
// take the port. Release() frees it for a node to bind.
class RefusingPort {
 public:
  RefusingPort();
  ~RefusingPort();
  uint16_t port() const { return port_; }
  void Release();

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// Brings up an upstream where a bridge waits for it: starts `up`, gives it
// the offline subscriber `id` to `filter` (OfflineSubscriber) so that
// nothing the bridge sends can arrive before it, stops it, releases `port`
// and starts `up` again bound to it.
::testing::AssertionResult StartOnPort(NodeProcess& up, RefusingPort& port, const std::string& id,
                                       const std::string& filter, int qos = 1);

// A listening socket on 127.0.0.1 that a test accepts bridge connections on.
class FakeUpstream {
 public:
  // Listens on `port` (0 = any free port).
  explicit FakeUpstream(uint16_t port = 0);
  ~FakeUpstream();
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // Accepts one connection into *client.
  ::testing::AssertionResult Accept(RawClient* client,
                                    std::chrono::milliseconds timeout = kDefaultTimeout);

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

}  // namespace ferry::testing
