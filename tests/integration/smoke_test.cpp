// One end-to-end check per kind of client, plus the node's life cycle: a
// single ferryd started from a test config, real clients talking to it.
#include <gtest/gtest.h>

#include <string>

#include "support/mosq_client.h"
#include "support/mqtt_wire.h"
#include "support/node_process.h"
#include "support/paho_client.h"
#include "support/raw_client.h"
#include "support/subprocess.h"

namespace ferry::testing {
namespace {

class Smoke : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(node_.Start()); }

  // Also catches a ferryd that died during the test.
  void TearDown() override {
    if (!HasFatalFailure()) {
      EXPECT_TRUE(node_.Stop());
    }
  }

  // Subscribes `sub`, publishes from `pub` at every QoS, and checks that each
  // message arrives whole on the topic it was sent to.
  template <typename Client>
  void RoundTripEveryQos(Client& sub, Client& pub, const std::string& prefix) {
    for (int qos = 0; qos <= 2; ++qos) {
      const std::string topic = prefix + "/qos" + std::to_string(qos);
      const std::string payload = "payload at qos " + std::to_string(qos);
      ASSERT_TRUE(sub.Subscribe(topic, qos));
      ASSERT_TRUE(pub.Publish(topic, payload, qos));
      const std::optional<ReceivedMessage> m = sub.Receive();
      ASSERT_TRUE(m.has_value()) << "nothing delivered on " << topic;
      EXPECT_EQ(m->topic, topic);
      EXPECT_EQ(m->payload, payload);
      EXPECT_EQ(m->qos, qos);  // min(publish QoS, subscription QoS)
      EXPECT_FALSE(m->retained);
    }
  }

  NodeProcess node_;
};

TEST_F(Smoke, PahoV311RoundTripsEveryQos) {
  PahoClient sub(node_.port(), "smoke-sub-v311", MqttVersion::kV311);
  PahoClient pub(node_.port(), "smoke-pub-v311", MqttVersion::kV311);
  ASSERT_TRUE(sub.Connect());
  ASSERT_TRUE(pub.Connect());
  RoundTripEveryQos(sub, pub, "smoke/paho/v311");
  EXPECT_TRUE(pub.Disconnect());
  EXPECT_TRUE(sub.Disconnect());
}

TEST_F(Smoke, PahoV5RoundTripsEveryQos) {
  PahoClient sub(node_.port(), "smoke-sub-v5", MqttVersion::kV5);
  PahoClient pub(node_.port(), "smoke-pub-v5", MqttVersion::kV5);
  ASSERT_TRUE(sub.Connect());
  ASSERT_TRUE(pub.Connect());
  RoundTripEveryQos(sub, pub, "smoke/paho/v5");
  EXPECT_TRUE(pub.Disconnect());
  EXPECT_TRUE(sub.Disconnect());
}

TEST_F(Smoke, LibmosquittoRoundTripsEveryQos) {
  MosqClient sub(node_.port(), "smoke-sub-mosq", MqttVersion::kV311);
  MosqClient pub(node_.port(), "smoke-pub-mosq", MqttVersion::kV5);
  ASSERT_TRUE(sub.Connect());
  ASSERT_TRUE(pub.Connect());
  RoundTripEveryQos(sub, pub, "smoke/mosq");
  EXPECT_TRUE(pub.Disconnect());
  EXPECT_TRUE(sub.Disconnect());
}

TEST_F(Smoke, MosquittoPubReachesMosquittoSub) {
  const std::string port = std::to_string(node_.port());
  // -d prints the SUBACK, so the publish below cannot overtake the subscription;
  // stdbuf makes it print each line as it happens rather than at exit.
  auto sub =
      StartCommand({"stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-V", "mqttv5",
                    "-i", "smoke-cli-sub", "-t", "smoke/cli", "-q", "1", "-C", "1", "-d"});
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(sub->WaitForOutput("Subscribed (mid:"));
  const CommandResult pub =
      RunCommand({"mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-V", "mqttv311", "-i",
                  "smoke-cli-pub", "-t", "smoke/cli", "-q", "1", "-m", "hello from the cli"});
  ASSERT_TRUE(pub.Succeeded()) << pub.ToString();
  const CommandResult got = sub->Wait();
  ASSERT_TRUE(got.Succeeded()) << got.ToString();
  EXPECT_NE(got.out.find("\nhello from the cli\n"), std::string::npos) << got.ToString();
}

TEST_F(Smoke, RawClientSpeaksBothVersions) {
  for (MqttVersion v : {MqttVersion::kV311, MqttVersion::kV5}) {
    SCOPED_TRACE(v == MqttVersion::kV5 ? "v5" : "v3.1.1");
    wire::ConnectFields connect;
    connect.version = v;
    connect.client_id = "smoke-raw";
    RawClient raw;
    ASSERT_TRUE(raw.Connect(node_.port()));
    ASSERT_TRUE(raw.MqttConnect(connect));
    ASSERT_TRUE(raw.Send(wire::Subscribe(v, 7, {{"smoke/raw", 1}})));
    const std::optional<Bytes> suback = raw.ReadPacket();
    ASSERT_TRUE(suback.has_value()) << raw.error();
    const std::optional<wire::Ack> ack = wire::ParseSuback(v, *suback);
    ASSERT_TRUE(ack.has_value()) << wire::Hex(*suback);
    EXPECT_EQ(ack->packet_id, 7);
    EXPECT_EQ(ack->codes, std::vector<uint8_t>{1});  // granted QoS 1

    PahoClient pub(node_.port(), "smoke-raw-pub", MqttVersion::kV311);
    ASSERT_TRUE(pub.Connect());
    ASSERT_TRUE(pub.Publish("smoke/raw", "raw bytes", 1));
    const std::optional<Bytes> publish = raw.ReadPacket();
    ASSERT_TRUE(publish.has_value()) << raw.error();
    const std::optional<wire::ReceivedPublish> p = wire::ParsePublish(v, *publish);
    ASSERT_TRUE(p.has_value()) << wire::Hex(*publish);
    EXPECT_EQ(p->topic, "smoke/raw");
    EXPECT_EQ(p->payload, "raw bytes");
    EXPECT_EQ(p->qos, 1);
    ASSERT_TRUE(raw.Send(wire::PublishAck(wire::kPuback, v, p->packet_id)));
    ASSERT_TRUE(raw.Send(wire::Disconnect(v)));
    EXPECT_TRUE(raw.IsClosed());  // the server closes after DISCONNECT [MQTT-3.14.4-1]
  }
}

TEST_F(Smoke, RestartOnTheSamePortKeepsServing) {
  const uint16_t port = node_.port();
  ASSERT_TRUE(node_.Restart(NodeProcess::Ports::kSame));
  EXPECT_EQ(node_.port(), port);
  PahoClient sub(node_.port(), "smoke-restart-sub", MqttVersion::kV5);
  PahoClient pub(node_.port(), "smoke-restart-pub", MqttVersion::kV311);
  ASSERT_TRUE(sub.Connect());
  ASSERT_TRUE(pub.Connect());
  RoundTripEveryQos(sub, pub, "smoke/restart");
}

TEST_F(Smoke, StartsAgainAfterSigkill) {
  node_.Kill();
  ASSERT_FALSE(node_.Running());
  ASSERT_TRUE(node_.Restart());
  PahoClient client(node_.port(), "smoke-after-kill", MqttVersion::kV311);
  ASSERT_TRUE(client.Connect());
  EXPECT_TRUE(client.Disconnect());
}

TEST_F(Smoke, SigtermWithAClientConnectedExitsCleanly) {
  PahoClient client(node_.port(), "smoke-sigterm", MqttVersion::kV5);
  ASSERT_TRUE(client.Connect());
  ASSERT_TRUE(node_.Stop());
  ASSERT_TRUE(node_.exit_status().has_value());
  EXPECT_TRUE(node_.exit_status()->Clean()) << node_.exit_status()->ToString();
  EXPECT_TRUE(client.WaitConnectionLost());
}

}  // namespace
}  // namespace ferry::testing
