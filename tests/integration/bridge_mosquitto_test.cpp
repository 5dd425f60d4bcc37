// ferry and Debian's mosquitto bridged both ways, in MQTT 3.1.1 and 5.0:
// a ferry bridge to a mosquitto upstream, a mosquitto `connection` bridge
// into ferry, and a ferry bridge over TLS to a mosquitto TLS listener with
// certificates made by the openssl command line tool.
#include <gtest/gtest.h>

#include <string>

#include "support/bridge_helpers.h"
#include "support/mosquitto_process.h"
#include "support/mqtt_wire.h"
#include "support/node_process.h"
#include "support/raw_client.h"
#include "support/session_helpers.h"
#include "support/wait.h"

namespace ferry::testing {
namespace {

using std::chrono::seconds;

::testing::AssertionResult ExpectMessage(RawClient& sub, const std::string& topic,
                                         const std::string& payload) {
  wire::ReceivedPublish p;
  if (auto r = ReadPublish(sub, MqttVersion::kV311, &p); !r) return r;
  if (p.qos > 0) sub.Send(wire::PublishAck(wire::kPuback, MqttVersion::kV311, p.packet_id));
  if (p.topic != topic || p.payload != payload) {
    return ::testing::AssertionFailure() << "got " << p.topic << " '" << p.payload << "', expected "
                                         << topic << " '" << payload << "'";
  }
  return ::testing::AssertionSuccess();
}

class WithMosquitto : public ::testing::TestWithParam<int> {};

// ferry's bridge to a mosquitto upstream: forward up, pull down.
TEST_P(WithMosquitto, FerryBridgesToAMosquittoUpstream) {
  MosquittoProcess mosq;
  ASSERT_TRUE(mosq.Start());
  NodeProcess edge(BridgeTestNode("edge", BridgeSection("mosq", mosq.address(),
                                              {"proto_ver = " + std::to_string(GetParam()),
                                               "forward = up/#", "subscribe = down/#"})));
  ASSERT_TRUE(edge.Start());
  ASSERT_TRUE(WaitBridgeState(edge, "mosq", "connected"));
  RawClient on_mosq, on_edge;
  ASSERT_TRUE(ConnectRaw(on_mosq, mosq.port(), Clean(MqttVersion::kV311, "mosq-sub")));
  ASSERT_TRUE(SubscribeRaw(on_mosq, MqttVersion::kV311, "up/#", 1));
  ASSERT_TRUE(ConnectRaw(on_edge, edge.port(), Clean(MqttVersion::kV311, "edge-sub")));
  ASSERT_TRUE(SubscribeRaw(on_edge, MqttVersion::kV311, "down/#", 1));
  // The bridge's subscription reaches mosquitto before we publish there.
  ASSERT_TRUE(WaitFor([&] { return mosq.Log().find("down/#") != std::string::npos; },
                      seconds(5), "the bridge's SUBSCRIBE in mosquitto's log"));

  ASSERT_TRUE(PublishQos1(edge.port(), MqttVersion::kV311, "up/a", "to mosquitto"));
  EXPECT_TRUE(ExpectMessage(on_mosq, "up/a", "to mosquitto"));
  ASSERT_TRUE(PublishQos1(mosq.port(), MqttVersion::kV311, "down/b", "from mosquitto"));
  EXPECT_TRUE(ExpectMessage(on_edge, "down/b", "from mosquitto"));
  // 3.1.1: mosquitto saw the bridge bit and treats the link as a bridge.
  if (GetParam() == 4) {
    EXPECT_NE(mosq.Log().find("New bridge connected"), std::string::npos) << mosq.Log();
  }
}

// A mosquitto `connection` bridge forwarding into ferry; with `both`, the
// bridge bit (3.1.1) or No Local (5.0) keeps ferry from echoing back.
TEST_P(WithMosquitto, AMosquittoBridgeForwardsIntoFerry) {
  NodeProcess ferry(BridgeTestNode("hub"));
  ASSERT_TRUE(ferry.Start());
  MosquittoProcess mosq;
  ASSERT_TRUE(mosq.Start({"connection to-ferry", "address " + AddressOf(ferry),
                          "topic m/# both 1",
                          std::string("bridge_protocol_version ") +
                              (GetParam() == 4 ? "mqttv311" : "mqttv50"),
                          "restart_timeout 1", "cleansession true"}));
  RawClient on_ferry, on_mosq;
  ASSERT_TRUE(ConnectRaw(on_ferry, ferry.port(), Clean(MqttVersion::kV311, "ferry-sub")));
  ASSERT_TRUE(SubscribeRaw(on_ferry, MqttVersion::kV311, "m/#", 1));
  ASSERT_TRUE(ConnectRaw(on_mosq, mosq.port(), Clean(MqttVersion::kV311, "mosq-sub")));
  ASSERT_TRUE(SubscribeRaw(on_mosq, MqttVersion::kV311, "m/#", 1));
  // The bridge is up once ferry has its subscription.
  ASSERT_TRUE(WaitFor(
      [&] {
        CommandResult r = Ferryctl(ferry, {"subscriptions", "list", "--json"});
        return r.Succeeded() && r.out.find("m/#") != std::string::npos &&
               r.out.find("to-ferry") != std::string::npos;
      },
      seconds(10), "mosquitto's bridge subscribed on ferry"));

  ASSERT_TRUE(PublishQos1(mosq.port(), MqttVersion::kV311, "m/1", "into ferry"));
  EXPECT_TRUE(ExpectMessage(on_ferry, "m/1", "into ferry"));
  EXPECT_TRUE(ExpectMessage(on_mosq, "m/1", "into ferry"));
  ASSERT_TRUE(PublishQos1(ferry.port(), MqttVersion::kV311, "m/2", "out of ferry"));
  EXPECT_TRUE(ExpectMessage(on_mosq, "m/2", "out of ferry"));
  EXPECT_TRUE(ExpectMessage(on_ferry, "m/2", "out of ferry"));
  // No echo: each subscriber got each message once.
  EXPECT_TRUE(ExpectNothingBeforePingresp(on_ferry));
  EXPECT_TRUE(ExpectNothingBeforePingresp(on_mosq));
}

INSTANTIATE_TEST_SUITE_P(ProtoVer, WithMosquitto, ::testing::Values(4, 5),
                         [](const auto& info) { return "v" + std::to_string(info.param); });

// TLS to a mosquitto TLS listener: with the right CA the link comes up; a
// certificate that does not name the host is refused, and the reason shows.
TEST(BridgeTls, ConnectsToATlsUpstreamAndRefusesAWrongName) {
  TempDir certs;
  ASSERT_TRUE(MakeTestCertificates(certs.path()));
  MosquittoProcess mosq;
  ASSERT_TRUE(mosq.Start({}, {"cafile " + certs.File("ca.crt"), "certfile " + certs.File("server.crt"),
                              "keyfile " + certs.File("server.key")}));
  NodeProcess edge(BridgeTestNode(
      "edge",
      BridgeSection("tls", "mqtts://127.0.0.1:" + std::to_string(mosq.port()),
                    {"forward = t/#", "tls_ca_file = " + certs.File("ca.crt")}) +
          BridgeSection("wrongname", "mqtts://127.0.0.1:" + std::to_string(mosq.port()),
                        {"forward = w/#", "tls_ca_file = " + certs.File("ca.crt"),
                         "tls_server_name = not-the-server.example"})));
  ASSERT_TRUE(edge.Start());
  ASSERT_TRUE(WaitBridgeState(edge, "tls", "connected"));
  // Subscribe over TLS with mosquitto_sub, publish on ferry.
  auto mosq_sub = StartCommand({"stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p",
                                std::to_string(mosq.port()), "--cafile", certs.File("ca.crt"),
                                "-t", "t/#", "-q", "1", "-C", "1", "-v", "-d"});
  ASSERT_NE(mosq_sub, nullptr);
  ASSERT_TRUE(mosq_sub->WaitForOutput("Subscribed (mid:"));
  ASSERT_TRUE(PublishQos1(edge.port(), MqttVersion::kV311, "t/secure", "over tls"));
  CommandResult got = mosq_sub->Wait();
  EXPECT_NE(got.out.find("t/secure over tls"), std::string::npos) << got.ToString();

  ASSERT_TRUE(WaitBridge(edge, "wrongname", [](const Json& j) {
    return j["last_error"].get<std::string>().find("certificate") != std::string::npos ||
           j["last_error"].get<std::string>().find("hostname mismatch") != std::string::npos;
  }, "a certificate error"));
  EXPECT_NE(BridgeShow(edge, "wrongname").value_or(Json())["state"], "connected");
}

}  // namespace
}  // namespace ferry::testing
