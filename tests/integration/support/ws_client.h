// A blocking WebSocket client for byte-level tests of ws listeners, written
// from RFC 6455 independently of ferry's own code: the HTTP upgrade, masked
// client frames (fragmented as the test says), and the server's frames read
// back and reassembled into MQTT packets.
//
// Typical use:
//   WsClient ws;
//   ASSERT_TRUE(ws.Connect(node.port("ws.web")));
//   ASSERT_TRUE(ws.SendMqtt(wire::Connect(fields), /*chunk=*/1));  // one byte per frame
//   std::optional<Bytes> connack = ws.ReadPacket();
//
// Thread: one thread at a time.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "raw_client.h"
#include "types.h"

namespace ferry::testing {

// Reads an HTTP response head (up to and including the blank line).
std::optional<std::string> ReadHttpHead(RawClient& raw,
                                        std::chrono::milliseconds timeout = kDefaultTimeout);

class WsClient {
 public:
  struct Frame {
    uint8_t opcode = 0;
    bool fin = true;
    Bytes payload;
  };

  // TCP connect, optional `preamble` (a PROXY header), then the upgrade for
  // `path` offering `protocol`; succeeds on 101 with a correct
  // Sec-WebSocket-Accept.
  ::testing::AssertionResult Connect(uint16_t port, const std::string& path = "/mqtt",
                                     const std::string& protocol = "mqtt",
                                     const Bytes& preamble = {});

  // One masked frame.
  ::testing::AssertionResult SendFrame(uint8_t opcode, const Bytes& payload, bool fin = true);
  // `bytes` as one binary message of frames of at most `chunk` bytes (the
  // first binary, the rest continuations).
  ::testing::AssertionResult SendMqtt(const Bytes& bytes,
                                      size_t chunk = std::numeric_limits<size_t>::max());

  std::optional<Frame> ReadFrame(std::chrono::milliseconds timeout = kDefaultTimeout);
  // The next MQTT packet carried by binary frames, however they split it.
  // nullopt on timeout, close, or a control frame (kept in last_control()).
  std::optional<Bytes> ReadPacket(std::chrono::milliseconds timeout = kDefaultTimeout);
  const std::optional<Frame>& last_control() const { return last_control_; }

  RawClient& raw() { return raw_; }
  const std::string& response() const { return response_; }

 private:
  RawClient raw_;
  std::string response_;
  Bytes pending_;  // binary payload bytes not yet returned as packets
  std::optional<Frame> last_control_;
};

}  // namespace ferry::testing
