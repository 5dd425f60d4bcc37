// A synchronous test client over libmosquitto, run by its own network thread
// (mosquitto_loop_start). Its callbacks record CONNACK, SUBACK and publish
// completion and copy each PUBLISH into a queue; the test waits on those with
// deadlines.
//
// Thread: the test's thread; one thread at a time.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "types.h"

struct mosquitto;
struct mosquitto_message;

namespace ferry::testing {

struct MosqConnectOptions {
  bool clean_start = true;  // clean session in 3.1.1
  int keepalive_s = 60;
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::optional<ReceivedMessage> will;  // topic, payload, qos, retained
  std::optional<TlsClientFiles> tls;    // TLS to the listener, checking its certificate
  std::string host = "127.0.0.1";       // what to connect to (and check the certificate for)
  std::string bind_address;             // local address to connect from; empty = any
  std::chrono::milliseconds timeout = kDefaultTimeout;
};

class MosqClient {
 public:
  // Nothing is sent until Connect().
  MosqClient(uint16_t port, std::string client_id, MqttVersion version = MqttVersion::kV311);
  ~MosqClient();  // disconnects and stops the network thread
  MosqClient(const MosqClient&) = delete;
  MosqClient& operator=(const MosqClient&) = delete;

  // Connects to 127.0.0.1:port and waits for a successful CONNACK.
  ::testing::AssertionResult Connect(const MosqConnectOptions& options = {});
  // Fails unless the SUBACK grants the subscription.
  ::testing::AssertionResult Subscribe(const std::string& filter, int qos,
                                       std::chrono::milliseconds timeout = kDefaultTimeout);
  // Returns once libmosquitto reports the publish complete: written for QoS
  // 0, PUBACK for QoS 1, PUBCOMP for QoS 2.
  ::testing::AssertionResult Publish(const std::string& topic, const std::string& payload, int qos,
                                     bool retain = false,
                                     std::chrono::milliseconds timeout = kDefaultTimeout);
  // Sends DISCONNECT and stops the network thread.
  ::testing::AssertionResult Disconnect();

  std::optional<ReceivedMessage> Receive(std::chrono::milliseconds timeout = kDefaultTimeout);
  size_t Pending() const { return messages_.Size(); }
  bool IsConnected() const;
  // Waits until the broker has closed the connection.
  ::testing::AssertionResult WaitDisconnected(std::chrono::milliseconds timeout = kDefaultTimeout);

 private:
  static void OnConnect(struct mosquitto*, void* self, int rc);
  static void OnDisconnect(struct mosquitto*, void* self, int rc);
  static void OnPublish(struct mosquitto*, void* self, int mid);
  static void OnSubscribe(struct mosquitto*, void* self, int mid, int count, const int* granted);
  static void OnMessage(struct mosquitto*, void* self, const struct mosquitto_message* msg);

  // Waits until `done` holds (called with mu_ held).
  template <typename Pred>
  bool WaitLocked(std::chrono::milliseconds timeout, Pred done);
  void StopLoop();

  const uint16_t port_;
  const std::string client_id_;
  const MqttVersion version_;
  struct mosquitto* mosq_ = nullptr;
  bool loop_running_ = false;

  BlockingQueue<ReceivedMessage> messages_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<int> connack_rc_;            // guarded by mu_
  bool connected_ = false;                   // guarded by mu_
  std::set<int> completed_publishes_;        // guarded by mu_
  std::map<int, std::vector<int>> subacks_;  // guarded by mu_
};

}  // namespace ferry::testing
