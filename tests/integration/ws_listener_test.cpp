// MQTT over WebSocket: [listener.ws.NAME] and [listener.wss.NAME]. Paho
// (ws://, wss://) publishes and subscribes; a hand-written client checks
// frames byte by byte: MQTT packets split across frames, fragmentation,
// ping/pong, close, and refused upgrades.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "support/connect_helpers.h"
#include "support/mqtt_wire.h"
#include "support/node_process.h"
#include "support/paho_client.h"
#include "support/raw_client.h"
#include "support/round_trip.h"
#include "support/temp_dir.h"
#include "support/test_certs.h"
#include "support/ws_client.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;

class WsListenerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(MakeTestCerts(certs_dir_.path(), &certs_)); }

  ::testing::AssertionResult StartNode(const std::string& extra = "") {
    NodeOptions o;
    o.extra_config = "[listener.ws.web]\nbind = 127.0.0.1:0\n"
                     "[listener.wss.secure]\nbind = 127.0.0.1:0\ncertfile = " +
                     certs_.server_cert + "\nkeyfile = " + certs_.server_key + "\n" + extra;
    node_ = std::make_unique<NodeProcess>(o);
    return node_->Start();
  }
  uint16_t ws_port() const { return node_->port("ws.web"); }
  std::string ws_uri() const { return "ws://127.0.0.1:" + std::to_string(ws_port()) + "/mqtt"; }

  // Connects over WebSocket with CONNECT split into frames of `chunk` bytes.
  ::testing::AssertionResult WsConnect(WsClient& ws, const std::string& id, size_t chunk = 1000) {
    if (auto ok = ws.Connect(ws_port()); !ok) return ok;
    wire::ConnectFields f;
    f.client_id = id;
    if (auto ok = ws.SendMqtt(wire::Connect(f), chunk); !ok) return ok;
    std::optional<Bytes> ack = ws.ReadPacket();
    if (!ack) return ::testing::AssertionFailure() << "no CONNACK: " << ws.raw().error();
    std::optional<wire::Connack> c = wire::ParseConnack(*ack);
    if (!c || c->code != 0) return ::testing::AssertionFailure() << "bad CONNACK " << wire::Hex(*ack);
    return ::testing::AssertionSuccess();
  }

  void TearDown() override {
    if (!node_ || !node_->Running()) return;
    WsClient ws;
    EXPECT_TRUE(WsConnect(ws, "still-serves"));
    EXPECT_TRUE(NodeServesNewClients(node_->port()));
    EXPECT_TRUE(node_->Stop());
  }

  TempDir certs_dir_;
  TestCerts certs_;
  std::unique_ptr<NodeProcess> node_;
};

TEST_F(WsListenerTest, PahoPublishesAndSubscribesOverWebSocket) {
  ASSERT_TRUE(StartNode());
  PahoClient sub(ws_uri(), "ws-sub", MqttVersion::kV5);
  ASSERT_TRUE(sub.Connect());
  ASSERT_TRUE(sub.Subscribe("ws/#", 1));
  PahoClient pub(ws_uri(), "ws-pub", MqttVersion::kV311);
  ASSERT_TRUE(pub.Connect());
  ASSERT_TRUE(pub.Publish("ws/small", "hello", 1));
  // 16-bit frame lengths: Paho C 1.3.12 drops its connection after reading a
  // frame over 64 KB on a busy machine (its next WebSocket_receiveFrame
  // fails); LargePublishesInOneFrameOrManyAreAcknowledged covers those.
  ASSERT_TRUE(pub.Publish("ws/large", std::string(60000, 'w'), 1));
  std::optional<ReceivedMessage> a = sub.Receive(), b = sub.Receive();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->payload, "hello");
  EXPECT_EQ(b->payload.size(), 60000u);
  EXPECT_TRUE(pub.Disconnect());
  EXPECT_TRUE(sub.Disconnect());
}

TEST_F(WsListenerTest, PahoOverSecureWebSocket) {
  ASSERT_TRUE(StartNode());
  const std::string uri =
      "wss://127.0.0.1:" + std::to_string(node_->port("wss.secure")) + "/mqtt";
  PahoClient c(uri, "wss-client", MqttVersion::kV5);
  PahoConnectOptions o;
  o.tls = certs_.Trusting();
  ASSERT_TRUE(c.Connect(o));
  EXPECT_TRUE(RoundTrip(c, "wss/t", "through TLS and frames", 2));
  EXPECT_TRUE(c.Disconnect());
}

// Paho C 1.3.12 reads one MQTT packet from each WebSocket frame and drops the
// rest of the frame, so every packet ferryd sends must be a frame of its own,
// also when many are written together: here the PUBACKs of a burst of
// publishes (over wss://), and the PUBLISHes queued for a subscriber (ws://).
TEST_F(WsListenerTest, PahoGetsEveryPacketOfABurstOverWebSocket) {
  ASSERT_TRUE(StartNode());
  PahoClient sub(ws_uri(), "ws-burst-sub", MqttVersion::kV311);
  ASSERT_TRUE(sub.Connect());
  ASSERT_TRUE(sub.Subscribe("burst/#", 1));
  PahoClient pub("wss://127.0.0.1:" + std::to_string(node_->port("wss.secure")) + "/mqtt",
                 "wss-burst-pub", MqttVersion::kV5);
  PahoConnectOptions o;
  o.tls = certs_.Trusting();
  ASSERT_TRUE(pub.Connect(o));
  constexpr int kCount = 2000;
  ASSERT_TRUE(pub.PublishBurst("burst/t", kCount, 1, std::chrono::seconds(60)));
  std::vector<bool> seen(kCount, false);
  for (int i = 0; i < kCount; ++i) {
    std::optional<ReceivedMessage> m = sub.Receive();
    ASSERT_TRUE(m) << "received " << i << " of " << kCount;
    const int n = std::stoi(m->payload);
    ASSERT_TRUE(n >= 0 && n < kCount && !seen[static_cast<size_t>(n)]) << m->payload;
    seen[static_cast<size_t>(n)] = true;
  }
  EXPECT_TRUE(pub.Disconnect());
  EXPECT_TRUE(sub.Disconnect());
}

TEST_F(WsListenerTest, PacketsSplitAcrossFramesAndFramesHoldingSeveralPackets) {
  ASSERT_TRUE(StartNode());
  WsClient ws;
  ASSERT_TRUE(WsConnect(ws, "frames", /*chunk=*/1));  // CONNECT one byte per frame
  EXPECT_NE(ws.response().find("Sec-WebSocket-Protocol: mqtt\r\n"), std::string::npos);
  // SUBSCRIBE and a PUBLISH to it in one frame.
  Bytes both = wire::Subscribe(MqttVersion::kV311, 1, {{"f/#", 0}});
  Bytes pub = wire::Publish(MqttVersion::kV311, PublishOf("f/x", "payload", 0));
  both.insert(both.end(), pub.begin(), pub.end());
  ASSERT_TRUE(ws.SendMqtt(both));
  std::optional<Bytes> suback = ws.ReadPacket();
  ASSERT_TRUE(suback);
  EXPECT_TRUE(wire::ParseSuback(MqttVersion::kV311, *suback));
  std::optional<Bytes> got = ws.ReadPacket();
  ASSERT_TRUE(got);
  std::optional<wire::ReceivedPublish> p = wire::ParsePublish(MqttVersion::kV311, *got);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->payload, "payload");
  // A ping in the middle of a fragmented PINGREQ is answered at once.
  ASSERT_TRUE(ws.SendFrame(0x2, {0xC0}, /*fin=*/false));
  ASSERT_TRUE(ws.SendFrame(0x9, {'h', 'i'}));
  std::optional<WsClient::Frame> pong = ws.ReadFrame();
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->opcode, 0xA);
  EXPECT_EQ(pong->payload, (Bytes{'h', 'i'}));
  ASSERT_TRUE(ws.SendFrame(0x0, {0x00}, /*fin=*/true));
  std::optional<Bytes> pingresp = ws.ReadPacket();
  ASSERT_TRUE(pingresp);
  EXPECT_EQ(*pingresp, (Bytes{0xD0, 0x00}));
  // A close frame is echoed and ends the connection.
  ASSERT_TRUE(ws.SendFrame(0x8, {0x03, 0xE8}));
  std::optional<WsClient::Frame> close = ws.ReadFrame();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->opcode, 0x8);
  EXPECT_EQ(close->payload, (Bytes{0x03, 0xE8}));
  EXPECT_TRUE(ws.raw().IsClosed());
}

TEST_F(WsListenerTest, LargePublishesInOneFrameOrManyAreAcknowledged) {
  ASSERT_TRUE(StartNode());
  WsClient ws;
  ASSERT_TRUE(WsConnect(ws, "large"));
  const Bytes publish =
      wire::Publish(MqttVersion::kV311, PublishOf("big/x", std::string(300000, 'b'), 1, 7));
  ASSERT_TRUE(ws.SendMqtt(publish));          // one frame, 64-bit length
  ASSERT_TRUE(ws.SendMqtt(publish, 40000));   // 8 frames, 16-bit lengths
  for (int i = 0; i < 2; ++i) {
    std::optional<Bytes> ack = ws.ReadPacket();
    ASSERT_TRUE(ack) << i << ": " << ws.raw().error();
    EXPECT_EQ(*ack, (Bytes{0x40, 0x02, 0x00, 0x07}));
  }
}

TEST_F(WsListenerTest, ServerSendsACloseFrameWhenMqttEnds) {
  ASSERT_TRUE(StartNode());
  WsClient ws;
  ASSERT_TRUE(WsConnect(ws, "ending"));
  ASSERT_TRUE(ws.SendMqtt(wire::Disconnect(MqttVersion::kV311)));
  std::optional<WsClient::Frame> f = ws.ReadFrame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode, 0x8);
  EXPECT_EQ(f->payload, (Bytes{0x03, 0xE8}));  // 1000, normal closure
  EXPECT_TRUE(ws.raw().IsClosed());
}

TEST_F(WsListenerTest, RefusedUpgradesGetAnHttpStatus) {
  ASSERT_TRUE(StartNode());
  struct Case {
    std::string request;
    std::string status;
  };
  const Case cases[] = {
      {"GET /other HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Version: 13\r\n\r\n",
       "HTTP/1.1 404 "},
      {"GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 "},
      {"GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Version: 13\r\n"
       "Sec-WebSocket-Protocol: chat\r\n\r\n",
       "HTTP/1.1 400 "},
      {std::string("\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00", 14), "HTTP/1.1 400 "},
  };
  for (const Case& c : cases) {
    RawClient raw;
    ASSERT_TRUE(raw.Connect(ws_port()));
    ASSERT_TRUE(raw.Send(Bytes(c.request.begin(), c.request.end())));
    std::optional<std::string> head = ReadHttpHead(raw);
    ASSERT_TRUE(head) << c.request;
    EXPECT_EQ(head->rfind(c.status, 0), 0u) << *head;
    EXPECT_TRUE(raw.IsClosed());
  }
  EXPECT_TRUE(node_->WaitForLog("WebSocket upgrade refused: path is not /mqtt"));
}

TEST_F(WsListenerTest, FramesMqttForbidsCloseTheConnectionWithACode) {
  ASSERT_TRUE(StartNode());
  {
    WsClient ws;  // a text frame [MQTT-6.0.0-1]
    ASSERT_TRUE(WsConnect(ws, "texter"));
    ASSERT_TRUE(ws.SendFrame(0x1, {'h', 'i'}));
    std::optional<WsClient::Frame> f = ws.ReadFrame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->opcode, 0x8);
    EXPECT_EQ(f->payload, (Bytes{0x03, 0xEB}));  // 1003
    EXPECT_TRUE(ws.raw().IsClosed());
  }
  {
    WsClient ws;  // an unmasked frame [RFC 6455 5.1]
    ASSERT_TRUE(ws.Connect(ws_port()));
    ASSERT_TRUE(ws.raw().Send({0x82, 0x02, 0xC0, 0x00}));
    std::optional<WsClient::Frame> f = ws.ReadFrame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->payload, (Bytes{0x03, 0xEA}));  // 1002
    EXPECT_TRUE(ws.raw().IsClosed());
  }
  {
    WsClient ws;  // malformed MQTT inside good frames: MQTT closes it
    ASSERT_TRUE(ws.Connect(ws_port()));
    ASSERT_TRUE(ws.SendMqtt({0x10, 0x02, 0xFF, 0xFF}));
    EXPECT_TRUE(ws.raw().IsClosed());
  }
}

TEST_F(WsListenerTest, StalledUpgradeIsTimedOut) {
  ASSERT_TRUE(StartNode("[mqtt]\nconnect_timeout = 500ms\n"));
  RawClient raw;
  ASSERT_TRUE(raw.Connect(ws_port()));
  ASSERT_TRUE(raw.Send({'G', 'E', 'T', ' ', '/'}));
  EXPECT_TRUE(raw.IsClosed(milliseconds(5000)));
  EXPECT_TRUE(node_->WaitForLog("did not complete its WebSocket handshake in time"));
}

TEST_F(WsListenerTest, ManyClientsMoveToTheirSessionsWorkerWithTheirFrameState) {
  ASSERT_TRUE(StartNode());
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < 16; ++i) {
    clients.push_back(std::make_unique<WsClient>());
    WsClient& ws = *clients.back();
    ASSERT_TRUE(ws.Connect(ws_port()));
    // CONNECT and SUBSCRIBE in one write, the SUBSCRIBE in a frame cut in
    // half: the rest of the frame arrives only after the hand-over.
    wire::ConnectFields f;
    f.client_id = "ws-" + std::to_string(i);
    Bytes connect = wire::Connect(f);
    Bytes subscribe = wire::Subscribe(MqttVersion::kV311, 1, {{"all/ws", 1}});
    Bytes bytes = connect;
    bytes.insert(bytes.end(), subscribe.begin(), subscribe.end());
    ASSERT_TRUE(ws.SendMqtt(bytes, connect.size() + 3));
    std::optional<Bytes> connack = ws.ReadPacket();
    ASSERT_TRUE(connack) << i;
    std::optional<Bytes> suback = ws.ReadPacket();
    ASSERT_TRUE(suback) << i;
  }
  for (size_t i = 0; i < clients.size(); ++i) {
    ASSERT_TRUE(clients[i]->SendMqtt(wire::Publish(MqttVersion::kV311, PublishOf("all/ws", "m", 0))));
  }
  for (auto& ws : clients) {
    for (int i = 0; i < 16; ++i) {
      std::optional<Bytes> p = ws->ReadPacket();
      ASSERT_TRUE(p && wire::ParsePublish(MqttVersion::kV311, *p)) << "message " << i;
    }
  }
  EXPECT_NE(node_->Log().find("to worker 0, which owns its session"), std::string::npos);
  EXPECT_NE(node_->Log().find("to worker 1, which owns its session"), std::string::npos);
}

}  // namespace
}  // namespace ferry::testing
