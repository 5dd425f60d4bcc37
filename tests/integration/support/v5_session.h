// A raw MQTT client session (3.1.1 or 5.0) for tests that must see exact
// packets: flags, properties, reason codes, topic aliases. RawSession keeps
// what RawClient reads in order, answers the broker's QoS 1 and 2 PUBLISHes
// (PUBACK; PUBREC, then PUBCOMP on PUBREL) unless told not to, and sets
// PUBLISHes aside while a test waits for an acknowledgement, so a test reads
// "subscribe, publish, receive" without juggling packets.
//
// Also here: the fixture the subscription, retained, will and v5 feature
// tests share (one fresh node per test, checked to still serve a new client
// at the end), and "receive through a sentinel", the way these tests show
// that something did NOT arrive without waiting a fixed time: publish the
// thing that must not arrive, then a sentinel at the same QoS on a topic the
// client does get, from the same publisher. ferry handles one connection's
// packets in order and hands each worker its deliveries in order, so once the
// sentinel is in, anything published before it would be too.
//
// Typical use:
//   RawSession sub(node_.port(), MqttVersion::kV5);
//   ASSERT_TRUE(sub.Connect("sub"));
//   ASSERT_EQ(sub.Subscribe({{"a/#", 1}}), (Codes{1}));
//   ...
//   std::optional<wire::ReceivedPublish> m = sub.Receive();
//
// Thread: the test's thread.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "mqtt_wire.h"
#include "node_process.h"
#include "raw_client.h"
#include "types.h"
#include "v5_helpers.h"

namespace ferry::testing::v5 {

using Codes = std::vector<uint8_t>;

class RawSession {
 public:
  RawSession(uint16_t port, MqttVersion version);
  RawSession(const RawSession&) = delete;
  RawSession& operator=(const RawSession&) = delete;

  // Opens the TCP connection and sends `fields` (its version is set to this
  // session's); succeeds on a CONNACK with code 0. connack() has it.
  ::testing::AssertionResult Connect(wire::ConnectFields fields);
  ::testing::AssertionResult Connect(const std::string& client_id);
  const std::optional<ConnackPacket>& connack() const { return connack_; }

  // SUBSCRIBE and the SUBACK's codes; nullopt (and a test failure) if no
  // SUBACK with the same packet identifier arrives [MQTT-3.8.4-2].
  std::optional<Codes> Subscribe(const std::vector<wire::Subscription>& subs,
                                 const Bytes& properties = {});
  // One filter with a subscription identifier (v5).
  std::optional<Codes> SubscribeWithId(const wire::Subscription& sub, uint32_t id);
  std::optional<Codes> Unsubscribe(const std::vector<std::string>& filters);

  // Sends a PUBLISH (a packet identifier is chosen when qos > 0 and none was
  // given) and completes its flow: nothing for QoS 0, PUBACK for QoS 1,
  // PUBREC, PUBREL, PUBCOMP for QoS 2.
  ::testing::AssertionResult Publish(wire::PublishFields fields);
  ::testing::AssertionResult Publish(const std::string& topic, const std::string& payload,
                                     int qos = 0, bool retain = false);

  // The next PUBLISH, acknowledged unless set_auto_ack(false).
  std::optional<wire::ReceivedPublish> Receive(std::chrono::milliseconds timeout = kDefaultTimeout);
  // Every PUBLISH up to and including the first on `topic`. A failure if
  // none on `topic` arrives in time (what did arrive is returned).
  std::vector<wire::ReceivedPublish> ReceiveThrough(
      const std::string& topic, std::chrono::milliseconds timeout = kDefaultTimeout);
  // The next packet that is not a PUBLISH.
  std::optional<Bytes> ReadControl(std::chrono::milliseconds timeout = kDefaultTimeout);

  // Succeeds if the server sends DISCONNECT with `code` (v5; 3.1.1 has no
  // server DISCONNECT, so only the close is checked) and closes.
  ::testing::AssertionResult ExpectDisconnect(uint8_t code,
                                              std::chrono::milliseconds timeout = kDefaultTimeout);
  // The last DISCONNECT that ExpectDisconnect read.
  const std::optional<DisconnectPacket>& disconnect() const { return disconnect_; }

  // Sends DISCONNECT (v5 with `reason`) and waits for the close.
  ::testing::AssertionResult Disconnect(uint8_t reason = 0);
  // Closes the socket without DISCONNECT: an abnormal close.
  void Drop() { raw_.Close(); }
  ::testing::AssertionResult Send(const Bytes& bytes) { return raw_.Send(bytes); }

  void set_auto_ack(bool on) { auto_ack_ = on; }
  RawClient& raw() { return raw_; }
  MqttVersion version() const { return version_; }

 private:
  // Reads one packet; a PUBLISH is answered and queued, a PUBREL answered.
  // Returns false on timeout or close.
  bool Pump(std::chrono::steady_clock::time_point deadline);
  // The next packet that is not a PUBLISH, which must be `type` for `packet_id`.
  std::optional<Bytes> WaitControl(uint8_t type, uint16_t packet_id,
                                   std::chrono::steady_clock::time_point deadline);
  uint16_t NextId();

  const uint16_t port_;
  const MqttVersion version_;
  RawClient raw_;
  std::optional<ConnackPacket> connack_;
  std::optional<DisconnectPacket> disconnect_;
  std::deque<wire::ReceivedPublish> publishes_;
  std::deque<Bytes> control_;
  bool auto_ack_ = true;
  uint16_t next_id_ = 1;
};

// Options byte of a v5 subscription: maximum QoS, No Local, Retain As
// Published, Retain Handling (MQTT 5.0 section 3.8.3.1).
uint8_t SubOptions(int qos, bool no_local = false, bool retain_as_published = false,
                   int retain_handling = 0);

// Node options with single-key overrides {section, key, value}.
NodeOptions WithOverrides(std::vector<std::tuple<std::string, std::string, std::string>> overrides);

// A fresh client of each version can connect and ping: the check after any
// abuse.
::testing::AssertionResult NodeStillServes(uint16_t port);

// Topics of `messages`, in order, for comparisons.
std::vector<std::string> Topics(const std::vector<wire::ReceivedPublish>& messages);
std::vector<std::string> Topics(const std::vector<ReceivedMessage>& messages);

// Every message a client library delivers up to and including the first on
// `topic` (see ReceiveThrough).
template <typename Client>
std::vector<ReceivedMessage> ReceiveThrough(Client& client, const std::string& topic,
                                            std::chrono::milliseconds timeout = kDefaultTimeout) {
  std::vector<ReceivedMessage> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    std::optional<ReceivedMessage> m = client.Receive(std::max(left, std::chrono::milliseconds(0)));
    if (!m) {
      ADD_FAILURE() << "nothing on " << topic << " within " << timeout.count() << " ms";
      return out;
    }
    out.push_back(*m);
    if (m->topic == topic) return out;
  }
}

const char* VersionLabel(MqttVersion v);

// A test with its own ferryd, started before the test body and stopped after
// it, once a new client has shown that it still serves. Base is
// ::testing::Test or ::testing::TestWithParam<...>.
template <typename Base = ::testing::Test>
class NodeTest : public Base {
 protected:
  explicit NodeTest(NodeOptions options = {}) : node_(std::move(options)) {}

  void SetUp() override { ASSERT_TRUE(node_.Start()); }

  void TearDown() override {
    if (!node_.Running()) return;
    EXPECT_TRUE(NodeStillServes(node_.port()));
    EXPECT_TRUE(node_.Stop());
  }

  uint16_t port() const { return node_.port(); }

  NodeProcess node_;
};

}  // namespace ferry::testing::v5
