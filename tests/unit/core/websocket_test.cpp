// WebSocket upgrade and frames (RFC 6455), byte-exact.
#include "core/websocket.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

namespace ferry::core {
namespace {

using namespace std::string_literals;

const std::string kMask = "\x37\xfa\x21\x3d"s;  // RFC 6455 section 5.7's example key

// A client frame: FIN + opcode, masked with kMask.
std::string ClientFrame(uint8_t first, std::string_view payload) {
  std::string f(1, static_cast<char>(first));
  const size_t n = payload.size();
  if (n < 126) {
    f += static_cast<char>(0x80 | n);
  } else if (n < 65536) {
    f += static_cast<char>(0x80 | 126);
    f += static_cast<char>(n >> 8);
    f += static_cast<char>(n & 0xFF);
  } else {
    f += static_cast<char>(0x80 | 127);
    for (int shift = 56; shift >= 0; shift -= 8) f += static_cast<char>((n >> shift) & 0xFF);
  }
  f += kMask;
  for (size_t i = 0; i < n; ++i) f += static_cast<char>(payload[i] ^ kMask[i % 4]);
  return f;
}

std::string Request(std::string_view extra = "Sec-WebSocket-Protocol: mqtt\r\n") {
  return "GET /mqtt HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
         "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
         "Sec-WebSocket-Version: 13\r\n" + std::string(extra) + "\r\n";
}

TEST(WebSocketHandshake, AcceptKeyOfTheRfcExample) {
  // RFC 6455 section 1.3.
  EXPECT_EQ(WebSocketAcceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WebSocketHandshake, AcceptsAnMqttUpgrade) {
  std::string req = Request();
  UpgradeResult r = ParseUpgradeRequest(req + "\x10", "/mqtt");
  ASSERT_EQ(r.kind, UpgradeResult::Kind::kAccept) << r.error;
  EXPECT_EQ(r.consumed, req.size());
  EXPECT_EQ(r.protocol, "mqtt");
  EXPECT_EQ(r.response,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            "Sec-WebSocket-Protocol: mqtt\r\n\r\n");
}

TEST(WebSocketHandshake, IncompleteUntilTheBlankLine) {
  std::string req = Request();
  for (size_t n = 0; n < req.size(); ++n) {
    UpgradeResult r = ParseUpgradeRequest(req.substr(0, n), "/mqtt");
    EXPECT_EQ(r.kind, UpgradeResult::Kind::kIncomplete) << n << ": " << r.error;
  }
}

TEST(WebSocketHandshake, HeadersAreCaseInsensitiveListsAndMayRepeat) {
  std::string req =
      "GET /mqtt?token=x HTTP/1.1\r\nhost: h\r\nUPGRADE: WebSocket\r\n"
      "connection: keep-alive, Upgrade\r\nsec-websocket-key:   dGhlIHNhbXBsZSBub25jZQ==  \r\n"
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n"
      "Sec-WebSocket-Protocol: mqttv3.1, mqtt\r\n\r\n";
  UpgradeResult r = ParseUpgradeRequest(req, "/mqtt");
  ASSERT_EQ(r.kind, UpgradeResult::Kind::kAccept) << r.error;
  EXPECT_EQ(r.protocol, "mqttv3.1");  // the client's first choice that is MQTT
}

TEST(WebSocketHandshake, NoSubprotocolOfferedIsAcceptedWithout) {
  UpgradeResult r = ParseUpgradeRequest(Request(""), "/mqtt");
  ASSERT_EQ(r.kind, UpgradeResult::Kind::kAccept) << r.error;
  EXPECT_EQ(r.protocol, "");
  EXPECT_EQ(r.response.find("Sec-WebSocket-Protocol"), std::string::npos);
}

struct Refusal {
  std::string request;
  std::string status_line;
  std::string error;
};

TEST(WebSocketHandshake, RefusalsCarryAnHttpStatus) {
  const std::string ok = Request();
  auto replace = [&](std::string from, std::string to) {
    std::string s = ok;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  const Refusal cases[] = {
      {replace("GET /mqtt", "POST /mqtt"), "HTTP/1.1 405 Method Not Allowed", "method is not GET"},
      {replace("/mqtt", "/other"), "HTTP/1.1 404 Not Found", "path is not /mqtt"},
      {replace("HTTP/1.1\r\nHost", "HTTP/1.0\r\nHost"), "HTTP/1.1 400 Bad Request", "not HTTP/1.1"},
      {replace("Upgrade: websocket", "Upgrade: h2c"), "HTTP/1.1 400 Bad Request",
       "not a WebSocket upgrade"},
      {replace("Connection: Upgrade", "Connection: close"), "HTTP/1.1 400 Bad Request",
       "not a WebSocket upgrade"},
      {replace("Version: 13", "Version: 8"), "HTTP/1.1 426 Upgrade Required",
       "WebSocket version is not 13"},
      {replace("dGhlIHNhbXBsZSBub25jZQ==", "short"), "HTTP/1.1 400 Bad Request",
       "bad Sec-WebSocket-Key"},
      {replace("Protocol: mqtt", "Protocol: chat"), "HTTP/1.1 400 Bad Request",
       "no MQTT subprotocol offered"},
      {replace("Host: localhost", "Host localhost"), "HTTP/1.1 400 Bad Request",
       "malformed HTTP request"},
      {"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"s, "HTTP/1.1 400 Bad Request",
       "not an HTTP request (binary data)"},
      {"\x16\x03\x01\x02\x00"s, "HTTP/1.1 400 Bad Request", "not an HTTP request (binary data)"},
      {"hello world", "HTTP/1.1 400 Bad Request", "not an HTTP request"},
      {"GET /mqtt HTTP/1.1\r\nX: " + std::string(kMaxUpgradeRequest, 'a'),
       "HTTP/1.1 400 Bad Request", "request head too long"},
  };
  for (const Refusal& c : cases) {
    UpgradeResult r = ParseUpgradeRequest(c.request, "/mqtt");
    ASSERT_EQ(r.kind, UpgradeResult::Kind::kReject) << c.error;
    EXPECT_EQ(r.error, c.error);
    EXPECT_EQ(r.response.substr(0, r.response.find("\r\n")), c.status_line) << c.error;
    EXPECT_NE(r.response.find("Connection: close\r\n"), std::string::npos);
  }
  UpgradeResult v = ParseUpgradeRequest(replace("Version: 13", "Version: 8"), "/mqtt");
  EXPECT_NE(v.response.find("Sec-WebSocket-Version: 13\r\n"), std::string::npos);
}

TEST(WebSocketFrames, ServerFramesAreUnmaskedWithTheShortestLength) {
  std::string out;
  AppendWebSocketFrame(kWsBinary, "\xc0\x00"s, &out);
  EXPECT_EQ(out, "\x82\x02\xc0\x00"s);
  out.clear();
  AppendWebSocketFrame(kWsBinary, std::string(126, 'x'), &out);
  EXPECT_EQ(out.substr(0, 4), "\x82\x7e\x00\x7e"s);
  EXPECT_EQ(out.size(), 4u + 126u);
  out.clear();
  AppendWebSocketFrame(kWsBinary, std::string(65536, 'x'), &out);
  EXPECT_EQ(out.substr(0, 10), "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"s);
  out.clear();
  AppendWebSocketClose(kWsCloseNormal, &out);
  EXPECT_EQ(out, "\x88\x02\x03\xe8"s);
}

// Server frames of `packets`, one each.
std::string FramesOf(std::initializer_list<std::string> packets) {
  std::string out;
  for (const std::string& p : packets) AppendWebSocketFrame(kWsBinary, p, &out);
  return out;
}

// A PUBLISH (QoS 0) to "t" whose remaining length takes `payload` + 3 bytes.
std::string PublishPacket(size_t payload) {
  std::string p = "\x30"s;
  size_t n = payload + 3;
  do {
    char b = static_cast<char>(n & 0x7F);
    n >>= 7;
    if (n > 0) b = static_cast<char>(b | 0x80);
    p += b;
  } while (n > 0);
  return p + "\x00\x01t"s + std::string(payload, 'p');
}

TEST(WebSocketWriter, PacketsWrittenTogetherBecomeOneFrameEach) {
  const std::string puback1 = "\x40\x02\x00\x01"s, puback2 = "\x40\x02\x00\x02"s;
  const std::string pingresp = "\xd0\x00"s, publish = PublishPacket(300);
  WebSocketWriter w;
  std::string out;
  w.Write(puback1 + puback2 + pingresp + publish, &out);
  EXPECT_EQ(out, FramesOf({puback1, puback2, pingresp, publish}));
  EXPECT_EQ(w.pending(), 0u);
}

TEST(WebSocketWriter, APacketSplitAcrossWritesIsOneFrame) {
  // Remaining lengths of one, two and three bytes, so that writes split the
  // fixed header itself too; the last frame needs a 64-bit length.
  const std::string a = "\xd0\x00"s, b = PublishPacket(200), c = PublishPacket(70000);
  const std::string all = a + b + c;
  const std::string want = FramesOf({a, b, c});
  for (size_t piece : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{199}, size_t{4096}}) {
    WebSocketWriter w;
    std::string out;
    for (size_t i = 0; i < all.size(); i += piece) {
      w.Write(std::string_view(all).substr(i, piece), &out);
    }
    EXPECT_EQ(out, want) << piece;
    EXPECT_EQ(w.pending(), 0u) << piece;
  }
}

TEST(WebSocketWriter, NothingIsFramedUntilThePacketIsWhole) {
  const std::string publish = PublishPacket(500);
  WebSocketWriter w;
  std::string out;
  w.Write(std::string_view(publish).substr(0, 1), &out);  // half a fixed header
  w.Write(std::string_view(publish).substr(1, 100), &out);
  EXPECT_EQ(out, "");
  EXPECT_EQ(w.pending(), 101u);
  w.Write(std::string_view(publish).substr(101), &out);
  EXPECT_EQ(out, FramesOf({publish}));
  EXPECT_EQ(w.pending(), 0u);
}

class WebSocketReaderTest : public ::testing::Test {
 protected:
  Status Feed(std::string_view bytes) { return reader_.Feed(bytes, &data_, &reply_); }

  WebSocketReader reader_;
  std::string data_, reply_;
};

TEST_F(WebSocketReaderTest, UnmasksABinaryFrame) {
  // RFC 6455 section 5.7: a masked "Hello", here as a binary frame.
  ASSERT_TRUE(Feed("\x82\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"s).ok());
  EXPECT_EQ(data_, "Hello");
  EXPECT_EQ(reply_, "");
}

TEST_F(WebSocketReaderTest, EverySplitOfTheInputGivesTheSameBytes) {
  // A PINGREQ and half a PUBLISH in one frame, the rest fragmented over a
  // continuation with a ping in between, then a 200-byte frame (16-bit length).
  const std::string mqtt = "\xc0\x00\x30\x0b\x00\x03"s + "a/b" + "payload" + std::string(200, 'z');
  const std::string stream = ClientFrame(0x02, mqtt.substr(0, 6)) +      // binary, not FIN
                             ClientFrame(0x89, "hi") +                   // ping
                             ClientFrame(0x80, mqtt.substr(6, 10)) +     // continuation, FIN
                             ClientFrame(0x82, mqtt.substr(16));         // binary, FIN
  for (size_t split = 0; split <= stream.size(); ++split) {
    WebSocketReader reader;
    std::string data, reply;
    ASSERT_TRUE(reader.Feed(stream.substr(0, split), &data, &reply).ok()) << split;
    ASSERT_TRUE(reader.Feed(stream.substr(split), &data, &reply).ok()) << split;
    EXPECT_EQ(data, mqtt) << split;
    EXPECT_EQ(reply, "\x8a\x02hi"s) << split;
  }
  // And one byte at a time.
  for (char c : stream) ASSERT_TRUE(Feed(std::string(1, c)).ok());
  EXPECT_EQ(data_, mqtt);
}

TEST_F(WebSocketReaderTest, SixtyFourBitLengths) {
  const std::string payload(70000, '\x42');
  ASSERT_TRUE(Feed(ClientFrame(0x82, payload)).ok());
  EXPECT_EQ(data_, payload);
}

TEST_F(WebSocketReaderTest, PingWithoutPayloadIsAnsweredAtOnce) {
  ASSERT_TRUE(Feed(ClientFrame(0x89, "")).ok());
  EXPECT_EQ(reply_, "\x8a\x00"s);
}

TEST_F(WebSocketReaderTest, PongIsIgnored) {
  ASSERT_TRUE(Feed(ClientFrame(0x8a, "x")).ok());
  EXPECT_EQ(reply_, "");
  EXPECT_EQ(data_, "");
}

TEST_F(WebSocketReaderTest, CloseIsEchoedAndEndsTheStream) {
  ASSERT_TRUE(Feed(ClientFrame(0x88, "\x03\xe9" "bye"s) + ClientFrame(0x82, "late")).ok());
  EXPECT_TRUE(reader_.closed());
  EXPECT_EQ(reader_.close_code(), 1001);
  EXPECT_EQ(reply_, "\x88\x02\x03\xe9"s);
  EXPECT_EQ(data_, "");  // nothing after the close
}

TEST_F(WebSocketReaderTest, EmptyCloseGetsAnEmptyClose) {
  ASSERT_TRUE(Feed(ClientFrame(0x88, "")).ok());
  EXPECT_TRUE(reader_.closed());
  EXPECT_EQ(reply_, "\x88\x00"s);
}

struct BadFrame {
  std::string bytes;
  uint16_t code;
  std::string error;
};

TEST(WebSocketReader, ProtocolViolationsCloseWithACode) {
  std::string unmasked = "\x82\x01\x10"s;
  std::string huge = "\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00"s + kMask;
  const BadFrame cases[] = {
      {unmasked, 1002, "WebSocket: client frame not masked"},
      {ClientFrame(0x81, "text"), 1003, "WebSocket: text frame (MQTT needs binary frames)"},
      {ClientFrame(0xc2, "x"), 1002, "WebSocket: reserved bit set"},
      {ClientFrame(0x83, "x"), 1002, "WebSocket: reserved opcode"},
      {ClientFrame(0x8b, "x"), 1002, "WebSocket: reserved opcode"},
      {ClientFrame(0x80, "x"), 1002, "WebSocket: continuation without a message"},
      {ClientFrame(0x02, "x") + ClientFrame(0x82, "y"), 1002,
       "WebSocket: new message inside a fragmented one"},
      {ClientFrame(0x09, "x"), 1002, "WebSocket: control frame fragmented or longer than 125 bytes"},
      {ClientFrame(0x89, std::string(126, 'x')), 1002,
       "WebSocket: control frame fragmented or longer than 125 bytes"},
      {ClientFrame(0x88, "\x03"), 1002, "WebSocket: close frame of 1 byte"},
      {ClientFrame(0x88, "\x03\xee"s), 1002, "WebSocket: invalid close code"},  // 1006
      {ClientFrame(0x88, "\x00\x00"s), 1002, "WebSocket: invalid close code"},
      {huge, 1002, "WebSocket: 64-bit length with the top bit set"},
  };
  for (const BadFrame& c : cases) {
    WebSocketReader reader;
    std::string data, reply;
    Status st = reader.Feed(c.bytes, &data, &reply);
    ASSERT_FALSE(st.ok()) << c.error;
    EXPECT_EQ(st.message(), c.error);
    EXPECT_EQ(reader.close_code(), c.code) << c.error;
    std::string close;
    AppendWebSocketClose(c.code, &close);
    EXPECT_EQ(reply, close) << c.error;
    // Nothing more is read after the error.
    EXPECT_TRUE(reader.Feed(ClientFrame(0x82, "x"), &data, &reply).ok());
    EXPECT_EQ(reply, close);
  }
}

}  // namespace
}  // namespace ferry::core
