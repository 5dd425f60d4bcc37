// MQTT over WebSocket, server side (RFC 6455; MQTT 5.0 chapter 6): the HTTP
// upgrade handshake, then a stream of frames whose binary payloads carry the
// MQTT bytes. A client's frame may hold several MQTT packets or part of one;
// the frame reader hands on payload bytes as they arrive, so it never buffers
// a frame. The server sends each MQTT packet as one frame of its own (see
// WebSocketWriter).
//
//   client: GET /mqtt HTTP/1.1            server: HTTP/1.1 101 Switching Protocols
//           Upgrade: websocket                    Upgrade: websocket
//           Connection: Upgrade                   Connection: Upgrade
//           Sec-WebSocket-Key: dGhl...==          Sec-WebSocket-Accept: s3pP...=
//           Sec-WebSocket-Version: 13             Sec-WebSocket-Protocol: mqtt
//           Sec-WebSocket-Protocol: mqtt
//
//   frame:  FIN|RSV|opcode, MASK|len7, [len16|len64], [mask key 4], payload
//
// Sans-I/O: bytes in, bytes out; nothing here touches a socket.
// Thread: a WebSocketReader or WebSocketWriter belongs to one connection; the
// functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace ferry::core {

// ------------------------------------------------------------ handshake

// Largest upgrade request accepted (request line and headers).
inline constexpr size_t kMaxUpgradeRequest = 8192;

struct UpgradeResult {
  enum class Kind { kIncomplete, kAccept, kReject };
  Kind kind = Kind::kIncomplete;
  size_t consumed = 0;   // bytes of the request (kAccept, kReject)
  std::string response;  // the HTTP response to send: 101, or 4xx on kReject
  std::string error;     // why the request was refused (kReject)
  std::string protocol;  // the subprotocol chosen ("mqtt"), or empty (kAccept)
};

// Reads an HTTP/1.1 upgrade request for `path` at the start of `in`.
// kIncomplete until the blank line that ends the headers has arrived;
// kReject with a 400 (malformed or not a WebSocket upgrade, or longer than
// kMaxUpgradeRequest), 404 (another path), 405 (not GET), 426 (a version
// other than 13) or 400 (only subprotocols other than MQTT's offered).
// Subprotocols accepted: "mqtt" (MQTT 3.1.1 and 5.0) and "mqttv3.1"; a
// request offering none is accepted without one.
UpgradeResult ParseUpgradeRequest(std::string_view in, std::string_view path);

// Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)).
std::string WebSocketAcceptKey(std::string_view key);

// --------------------------------------------------------------- frames

enum WebSocketOpcode : uint8_t {
  kWsContinuation = 0x0,
  kWsText = 0x1,
  kWsBinary = 0x2,
  kWsClose = 0x8,
  kWsPing = 0x9,
  kWsPong = 0xA,
};

// Close status codes (RFC 6455 section 7.4.1).
inline constexpr uint16_t kWsCloseNormal = 1000;
inline constexpr uint16_t kWsCloseProtocolError = 1002;
inline constexpr uint16_t kWsCloseUnsupportedData = 1003;

// Appends one unmasked, unfragmented server frame.
void AppendWebSocketFrame(uint8_t opcode, std::string_view payload, std::string* out);
// A close frame with `code` (no reason text).
void AppendWebSocketClose(uint16_t code, std::string* out);

// Wraps the MQTT bytes the server sends into binary frames, exactly one frame
// per MQTT control packet. Clients may expect that: Paho MQTT C 1.3.12 loses
// packets of a frame that holds several, and then its connection. Bytes may
// come in any pieces; those of a packet not yet whole wait for the rest.
class WebSocketWriter {
 public:
  // Appends to *out a frame for each packet that `in` completes.
  void Write(std::string_view in, std::string* out);
  // Bytes held of a packet not yet whole.
  size_t pending() const { return pending_.size(); }

 private:
  // Frames the whole packets at the front of `in`; returns the bytes used.
  static size_t FramePackets(std::string_view in, std::string* out);

  std::string pending_;
};

// Reads the frames a client sends after the handshake.
class WebSocketReader {
 public:
  // Appends the payload of binary frames (and their continuations) to
  // *data, and the frames that answer control frames (pong for ping, close
  // for close) to *reply. Returns an error (Status::Protocol) on a frame the
  // client must not send — unmasked [RFC 6455 5.1], a reserved bit or
  // opcode, a text frame [MQTT-6.0.0-1], a control frame that is fragmented
  // or longer than 125 bytes, a continuation with nothing to continue, a
  // 64-bit length with the top bit set — after appending to *reply the close
  // frame (close_code()) that tells the client. After a close frame from the
  // client, or an error, every further byte is ignored.
  Status Feed(std::string_view in, std::string* data, std::string* reply);

  // The client sent a close frame (and *reply has the answer).
  bool closed() const { return closed_; }
  uint16_t close_code() const { return close_code_; }

 private:
  Status Fail(uint16_t code, std::string_view why, std::string* reply);
  Status EndControlFrame(std::string* reply);
  // Checks the first two header bytes; sets header_need_.
  Status CheckHeader(std::string* reply);

  enum class State { kHeader, kPayload, kDone };
  State state_ = State::kHeader;
  uint8_t header_[14] = {};
  size_t header_len_ = 0;
  size_t header_need_ = 2;
  uint8_t opcode_ = 0;
  bool fin_ = false;
  uint64_t remaining_ = 0;
  uint8_t mask_[4] = {};
  uint64_t mask_pos_ = 0;
  bool in_message_ = false;  // a fragmented binary message is open
  std::string control_;      // payload of the control frame being read
  bool closed_ = false;
  uint16_t close_code_ = 0;
};

}  // namespace ferry::core
