// A synchronous test client over Eclipse Paho MQTT C++ (async_client): the
// independent, widely used implementation that checks ferry's own.
//
// Paho throws and calls back on its own threads. This adapter catches every
// exception and turns it into a failed AssertionResult, and its message
// callback only copies each PUBLISH into a queue that the test drains with
// Receive(timeout); no test code runs on a Paho thread.
//
// Typical use:
//   PahoClient sub(node.port(), "sub", MqttVersion::kV5);
//   ASSERT_TRUE(sub.Connect());
//   ASSERT_TRUE(sub.Subscribe("a/b", 1));
//   ...
//   std::optional<ReceivedMessage> m = sub.Receive();
//
// Cost: Paho C 1.3.12 (Debian 12) polls its sockets with a 1 s timeout, so a
// client that connects while another Paho client in the same process is
// connected waits about 2 s for its CONNACK (eclipse-paho/paho.mqtt.c#1430).
// Where a test opens many connections, prefer MosqClient or RawClient.
//
// Thread: the test's thread; one thread at a time.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "types.h"

namespace mqtt {
class async_client;
}  // namespace mqtt

namespace ferry::testing {

struct PahoConnectOptions {
  bool clean_start = true;  // clean session in 3.1.1
  std::chrono::seconds keepalive{60};
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::optional<ReceivedMessage> will;       // topic, payload, qos, retained
  std::optional<uint32_t> session_expiry_s;  // v5 only
  std::optional<TlsClientFiles> tls;         // for ssl:// and wss:// URIs
  std::chrono::milliseconds timeout = kDefaultTimeout;
};

class PahoClient {
 public:
  // Nothing is sent until Connect().
  PahoClient(uint16_t port, std::string client_id, MqttVersion version = MqttVersion::kV311);
  // Any URI Paho takes: "ssl://127.0.0.1:8883", "ws://127.0.0.1:8083/mqtt",
  // "wss://localhost:8084/mqtt".
  PahoClient(std::string uri, std::string client_id, MqttVersion version);
  ~PahoClient();  // disconnects if connected
  PahoClient(const PahoClient&) = delete;
  PahoClient& operator=(const PahoClient&) = delete;

  // Connects to tcp://127.0.0.1:port (or the URI); fails on a refused
  // CONNACK, a failed TLS handshake or timeout.
  ::testing::AssertionResult Connect(const PahoConnectOptions& options = {});

  // Fails unless the SUBACK grants the subscription (reason code < 0x80).
  ::testing::AssertionResult Subscribe(const std::string& filter, int qos,
                                       std::chrono::milliseconds timeout = kDefaultTimeout);
  ::testing::AssertionResult Unsubscribe(const std::string& filter,
                                         std::chrono::milliseconds timeout = kDefaultTimeout);

  // Returns once the publish is complete: written for QoS 0, PUBACK for QoS 1,
  // PUBCOMP for QoS 2.
  ::testing::AssertionResult Publish(const std::string& topic, const std::string& payload, int qos,
                                     bool retain = false,
                                     std::chrono::milliseconds timeout = kDefaultTimeout);

  // Publishes `count` (at most 65535) messages to `topic` (payloads "0", "1", ...) without
  // waiting between them, then waits for every delivery to complete (as
  // Publish). Paho's async client lets 65535 QoS > 0 publishes be in flight
  // at once (MQTTAsync_connectOptions.maxInflight), so most of them are.
  ::testing::AssertionResult PublishBurst(const std::string& topic, int count, int qos,
                                          std::chrono::milliseconds timeout = kDefaultTimeout);

  // Sends DISCONNECT and closes.
  ::testing::AssertionResult Disconnect(std::chrono::milliseconds timeout = kDefaultTimeout);

  // The oldest message received and not yet taken, waiting up to `timeout`.
  std::optional<ReceivedMessage> Receive(std::chrono::milliseconds timeout = kDefaultTimeout);
  size_t Pending() const { return messages_.Size(); }

  bool IsConnected() const;
  // Session Present from the last CONNACK.
  bool session_present() const { return session_present_; }
  // Waits until the broker has closed the connection (or sent a v5
  // DISCONNECT); the cause is in the failure message otherwise.
  ::testing::AssertionResult WaitConnectionLost(
      std::chrono::milliseconds timeout = kDefaultTimeout);

  const std::string& client_id() const { return client_id_; }

 private:
  ::testing::AssertionResult EnsureClient();
  void OnConnectionLost(const std::string& cause);

  const std::string uri_;
  const std::string client_id_;
  const MqttVersion version_;
  bool session_present_ = false;

  BlockingQueue<ReceivedMessage> messages_;
  mutable std::mutex mu_;
  std::condition_variable lost_cv_;
  bool lost_ = false;       // guarded by mu_
  std::string lost_cause_;  // guarded by mu_

  // Last: destroyed first, so that no Paho callback outlives the members above.
  std::unique_ptr<mqtt::async_client> client_;
};

}  // namespace ferry::testing
