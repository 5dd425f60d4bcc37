// A blocking TCP client for byte-level tests: send exactly the bytes a test
// built (see mqtt_wire.h), read exactly what the broker sent back, and tell
// when the broker closed the connection. Model:
// eclipse/mosquitto test/mosq_test.py (do_client_connect, expect_packet).
//
// Every read takes a deadline; nothing blocks forever.
//
// Thread: one thread at a time.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "mqtt_wire.h"
#include "types.h"

namespace ferry::testing {

class RawClient {
 public:
  RawClient() = default;
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  // Takes over a connected socket (e.g. one a test server accepted).
  void Adopt(int fd);

  // Opens a TCP connection to 127.0.0.1:`port`.
  ::testing::AssertionResult Connect(uint16_t port,
                                     std::chrono::milliseconds timeout = kDefaultTimeout);

  // Writes all of `bytes`. Fails if the connection is closed or broken.
  ::testing::AssertionResult Send(const Bytes& bytes);

  // Reads exactly `n` bytes. nullopt on timeout, EOF or error; error() says
  // which (and how many bytes had arrived).
  std::optional<Bytes> Recv(size_t n, std::chrono::milliseconds timeout = kDefaultTimeout);

  // Reads one whole MQTT packet: fixed header, remaining length and body, as
  // raw bytes. nullopt as for Recv, or on a remaining length over 4 bytes.
  std::optional<Bytes> ReadPacket(std::chrono::milliseconds timeout = kDefaultTimeout);

  // True once the peer has closed the connection (read returns 0, or
  // ECONNRESET). Bytes that arrive before the close are read and dropped.
  // False if the connection is still open at the deadline.
  bool IsClosed(std::chrono::milliseconds timeout = kDefaultTimeout);

  // Sends CONNECT and reads the CONNACK; succeeds if its code is 0.
  ::testing::AssertionResult MqttConnect(const wire::ConnectFields& fields,
                                         std::chrono::milliseconds timeout = kDefaultTimeout);

  // Half-closes the connection (no more sends); reads still work.
  void ShutdownWrite();
  void Close();

  bool connected() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // Why the last failed read or write failed.
  const std::string& error() const { return error_; }

 private:
  // Reads up to `n` bytes into `out` before `deadline`.
  bool ReadInto(Bytes* out, size_t n, std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::string error_;
};

}  // namespace ferry::testing
