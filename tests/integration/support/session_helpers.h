// Helpers for tests about sessions, persistence, bad input and $SYS: MQTT
// sessions driven over a RawClient (connect and read the CONNACK, subscribe,
// publish many messages pipelined, read and acknowledge deliveries), a
// watcher of the node's $SYS topics, and the node's memory use.
//
// Every call that waits takes a deadline and returns an AssertionResult that
// says what arrived instead of what was expected.
//
// Typical use:
//   RawClient sub;
//   bool present = false;
//   ASSERT_TRUE(ConnectRaw(sub, node.port(), Persistent(MqttVersion::kV311, "s1"), &present));
//   ASSERT_TRUE(SubscribeRaw(sub, MqttVersion::kV311, "a/b", 1));
//
// Thread: the test's thread.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mqtt_wire.h"
#include "node_process.h"
#include "raw_client.h"
#include "types.h"

namespace ferry::testing {

// v5 Session Expiry Interval property (identifier 0x11, four-byte integer).
Bytes SessionExpiryProperty(uint32_t seconds);

// CONNECT fields for a session that outlives its connection: clean session 0
// in 3.1.1; Clean Start 0 with `expiry_s` as Session Expiry Interval in v5.
wire::ConnectFields Persistent(MqttVersion v, std::string client_id, uint32_t expiry_s = 3600);
// CONNECT fields with clean session / Clean Start 1 and no session expiry.
wire::ConnectFields Clean(MqttVersion v, std::string client_id);

// A v5 DISCONNECT with reason 0x00 and a Session Expiry Interval property.
Bytes DisconnectWithExpiry(uint32_t seconds);

// Opens a TCP connection to `port`, sends CONNECT and reads the CONNACK.
// Fails unless the CONNACK's code is 0; stores Session Present in
// *session_present when given.
::testing::AssertionResult ConnectRaw(RawClient& raw, uint16_t port, const wire::ConnectFields& f,
                                      bool* session_present = nullptr,
                                      std::chrono::milliseconds timeout = kDefaultTimeout);

// Subscribes to one filter and fails unless the SUBACK grants `qos`.
::testing::AssertionResult SubscribeRaw(RawClient& raw, MqttVersion v, const std::string& filter,
                                        int qos, uint16_t packet_id = 1,
                                        std::chrono::milliseconds timeout = kDefaultTimeout);

// A persistent v5 session `id` on `node`, subscribed to `filter` at `qos`,
// then disconnected: the node keeps what arrives for it.
::testing::AssertionResult OfflineSubscriber(const NodeProcess& node, const std::string& id,
                                             const std::string& filter, int qos = 1);

// Reads the next packet and fails unless it is a PUBLISH; stores it in *out.
::testing::AssertionResult ReadPublish(RawClient& raw, MqttVersion v, wire::ReceivedPublish* out,
                                       std::chrono::milliseconds timeout = kDefaultTimeout);

// Reads the next packet and fails unless its type (MQTT 5.0 section 2.1.2) is
// `type`; stores its parts in *out when given.
::testing::AssertionResult ExpectPacket(RawClient& raw, wire::PacketType type,
                                        wire::RawPacket* out = nullptr,
                                        std::chrono::milliseconds timeout = kDefaultTimeout);

// Sends PINGREQ and fails unless the next packet is PINGRESP: proof that
// nothing else was queued for the client before it.
::testing::AssertionResult ExpectNothingBeforePingresp(
    RawClient& raw, std::chrono::milliseconds timeout = kDefaultTimeout);

// Publishes `count` messages to `topic` at QoS 1 or 2 with packet
// identifiers 1..count, all sent before any acknowledgement is read, then
// completes every exchange: a PUBACK for each at QoS 1; at QoS 2 a PUBREC for
// each, then PUBREL, then a PUBCOMP for each. Payload i is payload(i).
// REQUIRES: 1 <= count <= 65535, qos is 1 or 2.
::testing::AssertionResult PublishManyRaw(RawClient& raw, MqttVersion v, const std::string& topic,
                                          int qos, int count,
                                          const std::function<std::string(int)>& payload,
                                          std::chrono::milliseconds timeout = kDefaultTimeout);

// Reads PUBLISHes until `count` have arrived, acknowledging each as a
// well-behaved client would (PUBACK; PUBREC, then PUBCOMP for the PUBREL),
// and appends them to *out in arrival order. Succeeds once `count` have
// arrived and every QoS 2 exchange is complete.
::testing::AssertionResult ReceiveAndAck(RawClient& raw, MqttVersion v, int count,
                                         std::vector<wire::ReceivedPublish>* out,
                                         std::chrono::milliseconds timeout = kDefaultTimeout);

// Checks that the node at `port` still serves a new client: a 3.1.1 client
// with a fresh id connects, subscribes to a topic of its own and receives
// its own QoS 1 message.
::testing::AssertionResult NodeServes(uint16_t port, const std::string& tag);

// Watches $SYS/brokers/<node>/... over a RawClient (v3.1.1, QoS 0) and
// remembers the last value of each statistic ("clients/connected", ...).
// The watcher is itself a connected client with one subscription.
class SysWatcher {
 public:
  SysWatcher(uint16_t port, std::string node_name);

  // Connects and subscribes to $SYS/brokers/<node>/<filter>.
  ::testing::AssertionResult Start(const std::string& filter = "#",
                                   const std::string& client_id = "sys-watcher");

  // Reads $SYS messages until `done(value)` holds for the last value of
  // `name`, or `timeout` passes; the failure names the last value seen.
  ::testing::AssertionResult WaitForValue(const std::string& name,
                                          const std::function<bool(const std::string&)>& done,
                                          std::chrono::milliseconds timeout);
  // Waits until `name` has been received at least `n` times in all.
  ::testing::AssertionResult WaitForCount(const std::string& name, int n,
                                          std::chrono::milliseconds timeout);

  std::optional<std::string> Latest(const std::string& name) const;
  // How many times `name` has been received so far.
  int Count(const std::string& name) const;
  // Waits for a value of `name` that is a decimal number and returns it.
  std::optional<uint64_t> Number(const std::string& name, std::chrono::milliseconds timeout);

 private:
  // Reads one packet (at most until `deadline`) and records it if it is a
  // $SYS PUBLISH. False on timeout or a closed connection.
  bool ReadOne(std::chrono::steady_clock::time_point deadline);

  uint16_t port_;
  std::string prefix_;  // "$SYS/brokers/<node>/"
  RawClient raw_;
  std::map<std::string, std::string> latest_;
  std::map<std::string, int> counts_;
};

// A value that parses as a whole decimal number.
std::optional<uint64_t> ParseNumber(const std::string& text);

// The pid of the ferryd started by `node` (found through /proc by its config
// path); -1 if it is not running.
pid_t NodePid(const NodeProcess& node);

// Resident set size of `pid` in KiB (VmRSS in /proc/<pid>/status).
std::optional<uint64_t> VmRssKb(pid_t pid);

}  // namespace ferry::testing
