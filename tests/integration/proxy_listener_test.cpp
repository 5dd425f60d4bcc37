// PROXY protocol (proxy_protocol = true) and the per-listener admission
// limits (max_connections, max_connection_rate), with raw clients that play
// the load balancer: the node must report the address the header gives,
// and refuse, one connection at a time, whatever does not fit.
#include <gtest/gtest.h>

#include <array>
#include <iterator>
#include <map>
#include <regex>
#include <memory>
#include <string>
#include <vector>

#include "support/connect_helpers.h"
#include "support/ctl.h"
#include "support/mosq_client.h"
#include "support/mqtt_wire.h"
#include "support/node_process.h"
#include "support/raw_client.h"
#include "support/wait.h"
#include "support/ws_client.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;

Bytes Text(std::string_view s) { return Bytes(s.begin(), s.end()); }

// A v2 PROXY header for TCP over IPv4 from a.b.c.d:port to 10.0.0.1:1883.
Bytes ProxyV2(std::array<uint8_t, 4> src, uint16_t port, uint8_t command = 0x21) {
  const uint8_t header[] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54,
                            0x0A, command, 0x11, 0x00, 0x0C,  // v2, TCP over IPv4, 12 bytes
                            src[0], src[1], src[2], src[3],  // source address
                            10, 0, 0, 1,                     // destination address
                            static_cast<uint8_t>(port >> 8), static_cast<uint8_t>(port),
                            0x07, 0x5B};                     // ports
  return Bytes(std::begin(header), std::end(header));
}

Bytes Concat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

wire::ConnectFields FieldsOf(const std::string& id) {
  wire::ConnectFields f;
  f.client_id = id;
  return f;
}

Bytes ConnectOf(const std::string& id) { return wire::Connect(FieldsOf(id)); }

class ProxyListenerTest : public ::testing::Test {
 protected:
  ::testing::AssertionResult StartNode(const std::string& extra = "") {
    NodeOptions o;
    o.extra_config = "[listener.tcp.lb]\nbind = 127.0.0.1:0\nproxy_protocol = true\n"
                     "[listener.ws.lbws]\nbind = 127.0.0.1:0\nproxy_protocol = true\n" + extra;
    node_ = std::make_unique<NodeProcess>(o);
    return node_->Start();
  }
  uint16_t lb_port() const { return node_->port("tcp.lb"); }

  // Sends `preamble` + CONNECT for `id` and expects a CONNACK.
  ::testing::AssertionResult ConnectThrough(RawClient& c, const Bytes& preamble,
                                            const std::string& id) {
    if (auto ok = c.Connect(lb_port()); !ok) return ok;
    if (auto ok = c.Send(Concat(preamble, ConnectOf(id))); !ok) return ok;
    std::optional<Bytes> ack = c.ReadPacket();
    if (!ack) return ::testing::AssertionFailure() << "no CONNACK: " << c.error();
    return ::testing::AssertionSuccess();
  }

  void TearDown() override {
    if (!node_ || !node_->Running()) return;
    RawClient c;
    EXPECT_TRUE(ConnectThrough(c, Text("PROXY TCP4 192.0.2.99 10.0.0.1 4242 1883\r\n"), "after"));
    EXPECT_TRUE(NodeServesNewClients(node_->port()));
    EXPECT_TRUE(node_->Stop());
  }

  std::unique_ptr<NodeProcess> node_;
};

TEST_F(ProxyListenerTest, V1HeaderNamesTheClient) {
  ASSERT_TRUE(StartNode());
  RawClient c;
  ASSERT_TRUE(ConnectThrough(c, Text("PROXY TCP4 203.0.113.7 10.0.0.1 51234 1883\r\n"), "v1"));
  EXPECT_TRUE(node_->WaitForLog("client 'v1' (203.0.113.7:51234) connected"));
  RawClient c6;
  ASSERT_TRUE(ConnectThrough(c6, Text("PROXY TCP6 2001:db8::7 2001:db8::1 40000 1883\r\n"), "v1-6"));
  EXPECT_TRUE(node_->WaitForLog("client 'v1-6' ([2001:db8::7]:40000) connected"));
}

TEST_F(ProxyListenerTest, V2HeaderNamesTheClient) {
  ASSERT_TRUE(StartNode());
  RawClient c;
  ASSERT_TRUE(ConnectThrough(c, ProxyV2({198, 51, 100, 20}, 6000), "v2"));
  EXPECT_TRUE(node_->WaitForLog("client 'v2' (198.51.100.20:6000) connected"));
}

// ferryctl and the HTTP API show the address from the header, and the
// listener the client came through.
TEST_F(ProxyListenerTest, FerryctlShowsTheAddressFromTheHeader) {
  ASSERT_TRUE(StartNode());
  RawClient c;
  ASSERT_TRUE(ConnectThrough(c, Text("PROXY TCP4 203.0.113.7 10.0.0.1 51234 1883\r\n"), "v1"));
  WsClient ws;
  ASSERT_TRUE(ws.Connect(node_->port("ws.lbws"), "/mqtt", "mqtt", ProxyV2({198, 51, 100, 30}, 7001)));
  ASSERT_TRUE(ws.SendMqtt(ConnectOf("ws-v2")));
  ASSERT_TRUE(ws.ReadPacket());

  CommandResult list = Ferryctl(*node_, {"clients", "list", "--json"});
  ASSERT_TRUE(list.Succeeded()) << list.ToString();
  std::map<std::string, Json> rows;
  for (const Json& row : ParseJson(list.out).value_or(Json::array())) {
    rows[row["client_id"].get<std::string>()] = row;
  }
  EXPECT_EQ(rows["v1"]["peer"], "203.0.113.7:51234") << list.out;
  EXPECT_EQ(rows["v1"]["listener"], "tcp.lb");
  EXPECT_EQ(rows["ws-v2"]["peer"], "198.51.100.30:7001") << list.out;
  EXPECT_EQ(rows["ws-v2"]["listener"], "ws.lbws");

  CommandResult human = Ferryctl(*node_, {"clients", "list"});
  EXPECT_TRUE(std::regex_search(human.out, std::regex("^CLIENT ID +USERNAME +CONNECTED +PEER +LISTENER ")))
      << human.out;
  EXPECT_TRUE(std::regex_search(human.out, std::regex("\nv1 +- +yes +203\\.0\\.113\\.7:51234 +tcp\\.lb ")))
      << human.out;
  CommandResult show = Ferryctl(*node_, {"clients", "show", "ws-v2"});
  ASSERT_TRUE(show.Succeeded()) << show.ToString();
  EXPECT_TRUE(std::regex_search(show.out, std::regex("\npeer +: 198\\.51\\.100\\.30:7001\n")))
      << show.out;
  EXPECT_TRUE(std::regex_search(show.out, std::regex("\nlistener +: ws\\.lbws\n"))) << show.out;
  HttpReply r = Http("GET", node_->admin_http_port(), "/api/v1/clients/show/v1");
  EXPECT_EQ(ParseJson(r.body).value_or(Json())["result"]["peer"], "203.0.113.7:51234") << r.body;
}

TEST_F(ProxyListenerTest, HeaderArrivingByteByByteStillWorks) {
  ASSERT_TRUE(StartNode());
  RawClient c;
  ASSERT_TRUE(c.Connect(lb_port()));
  for (uint8_t b : ProxyV2({198, 51, 100, 21}, 6001)) ASSERT_TRUE(c.Send({b}));
  ASSERT_TRUE(c.Send(ConnectOf("slow-lb")));
  ASSERT_TRUE(c.ReadPacket());
  EXPECT_TRUE(node_->WaitForLog("client 'slow-lb' (198.51.100.21:6001) connected"));
}

TEST_F(ProxyListenerTest, LocalHeaderKeepsTheRealAddress) {
  // HAProxy's own health checks send LOCAL.
  ASSERT_TRUE(StartNode());
  RawClient c;
  ASSERT_TRUE(ConnectThrough(c, ProxyV2({1, 2, 3, 4}, 5, /*command=*/0x20), "local"));
  EXPECT_TRUE(node_->WaitForLog("client 'local' (127.0.0.1:"));
}

TEST_F(ProxyListenerTest, HeaderBeforeAWebSocketUpgrade) {
  ASSERT_TRUE(StartNode());
  WsClient ws;
  ASSERT_TRUE(ws.Connect(node_->port("ws.lbws"), "/mqtt", "mqtt",
                         Text("PROXY TCP4 203.0.113.50 10.0.0.1 7000 8083\r\n")));
  ASSERT_TRUE(ws.SendMqtt(ConnectOf("ws-behind-lb")));
  ASSERT_TRUE(ws.ReadPacket());
  EXPECT_TRUE(node_->WaitForLog("client 'ws-behind-lb' (203.0.113.50:7000) connected"));
}

TEST_F(ProxyListenerTest, MissingLyingOrGarbageHeadersCloseOnlyThatConnection) {
  ASSERT_TRUE(StartNode());
  RawClient bystander;  // connected before the abuse, still served after it
  ASSERT_TRUE(ConnectThrough(bystander, Text("PROXY TCP4 192.0.2.1 10.0.0.1 1 1883\r\n"), "bystander"));
  Bytes short_length = ProxyV2({1, 2, 3, 4}, 5);
  short_length[15] = 4;  // claims 4 bytes of addresses for IPv4
  const Bytes bad[] = {
      ConnectOf("no-header"),                                        // a direct client
      Text("PROXY TCP4 203.0.113.7 10.0.0.1 99999 1883\r\n"),       // port out of range
      Text("PROXY TCP4 203.0.113.777 10.0.0.1 1 1883\r\n"),         // not an address
      Text("PROXY TCP4 203.0.113.7 10.0.0.1 1 1883\n"),              // no CR
      Text("PROXY " + std::string(200, 'A')),                        // endless line
      short_length,                                                  // a lie about its length
      Bytes(64, 0x00),                                               // garbage
  };
  for (const Bytes& b : bad) {
    RawClient c;
    ASSERT_TRUE(c.Connect(lb_port()));
    ASSERT_TRUE(c.Send(b));
    EXPECT_TRUE(c.IsClosed()) << wire::Hex(b);
  }
  EXPECT_TRUE(node_->WaitForLog("PROXY header: missing"));
  EXPECT_TRUE(node_->WaitForLog("PROXY header: v2 length too short for its addresses"));
  EXPECT_TRUE(PingPong(bystander));
}

TEST_F(ProxyListenerTest, HeaderThatNeverCompletesIsTimedOut) {
  ASSERT_TRUE(StartNode("[mqtt]\nconnect_timeout = 500ms\n"));
  RawClient c;
  ASSERT_TRUE(c.Connect(lb_port()));
  ASSERT_TRUE(c.Send(Text("PROXY TCP4 1.2.3.4")));
  EXPECT_TRUE(c.IsClosed(milliseconds(5000)));
  EXPECT_TRUE(node_->WaitForLog("did not complete its PROXY header in time"));
}

TEST_F(ProxyListenerTest, ClientAddressTravelsWhenTheConnectionChangesWorker) {
  ASSERT_TRUE(StartNode());
  std::vector<std::unique_ptr<RawClient>> clients;
  for (uint8_t i = 1; i <= 16; ++i) {
    clients.push_back(std::make_unique<RawClient>());
    ASSERT_TRUE(ConnectThrough(*clients.back(), ProxyV2({203, 0, 113, i}, 1000 + i),
                               "moved-" + std::to_string(i)));
  }
  for (int i = 1; i <= 16; ++i) {
    const std::string line = "client 'moved-" + std::to_string(i) + "' (203.0.113." +
                             std::to_string(i) + ":" + std::to_string(1000 + i) + ") connected";
    EXPECT_TRUE(node_->WaitForLog(line));
  }
  // ferryctl asks each session's worker: the address moved with it.
  CommandResult list = Ferryctl(*node_, {"clients", "list", "--json"});
  ASSERT_TRUE(list.Succeeded()) << list.ToString();
  size_t seen = 0;
  for (const Json& row : ParseJson(list.out).value_or(Json::array())) {
    const std::string id = row["client_id"];
    if (!id.starts_with("moved-")) continue;
    const int i = std::stoi(id.substr(6));
    EXPECT_EQ(row["peer"], "203.0.113." + std::to_string(i) + ":" + std::to_string(1000 + i));
    ++seen;
  }
  EXPECT_EQ(seen, 16u) << list.out;
  EXPECT_NE(node_->Log().find("to worker 0, which owns its session"), std::string::npos);
  EXPECT_NE(node_->Log().find("to worker 1, which owns its session"), std::string::npos);
}

// ------------------------------------------------------------ limits

TEST(ListenerLimits, MaxConnectionsRefusesTheRestAndFreesSlotsOnClose) {
  NodeOptions o;
  o.extra_config = "[listener.tcp.small]\nbind = 127.0.0.1:0\nmax_connections = 4\n";
  NodeProcess node(o);
  ASSERT_TRUE(node.Start());
  const uint16_t port = node.port("tcp.small");
  // Four clients, most of which move between workers after CONNECT: the
  // count must follow them, not double or vanish.
  std::vector<std::unique_ptr<RawClient>> in;
  for (int i = 0; i < 4; ++i) {
    in.push_back(std::make_unique<RawClient>());
    ASSERT_TRUE(RawConnect(*in.back(), port, FieldsOf("in-" + std::to_string(i))));
  }
  for (int i = 0; i < 3; ++i) {
    RawClient extra;
    ASSERT_TRUE(extra.Connect(port));
    EXPECT_TRUE(extra.IsClosed()) << "the fifth connection must be closed at once";
  }
  EXPECT_TRUE(node.WaitForLog("listener tcp.small: max_connections (4) reached, refused"));
  EXPECT_EQ(NodeMetric(node, "ferry_listener_connections_refused_total{listener=\"tcp.small\","
                             "reason=\"max_connections\"}"),
            3u);
  EXPECT_TRUE(PingPong(*in[0]));
  // One leaves: a slot frees up, and only one.
  in[1]->Close();
  ASSERT_TRUE(WaitFor(
      [&] {
        RawClient c;
        return static_cast<bool>(RawConnect(c, port, FieldsOf("again")));
      },
      milliseconds(5000), "a free slot after a client left"));
  EXPECT_TRUE(NodeServesNewClients(node.port()));  // other listeners are not limited
  EXPECT_TRUE(node.Stop());
}

TEST(ListenerLimits, ConnectionRateMakesClientsWaitInsteadOfRefusingThem) {
  NodeOptions o;
  o.extra_config = "[listener.tcp.slow]\nbind = 127.0.0.1:0\nmax_connection_rate = 20\n";
  NodeProcess node(o);
  ASSERT_TRUE(node.Start());
  // Twice the burst, opened at once: all get in, the later ones after a wait.
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 40; ++i) {
    clients.push_back(std::make_unique<RawClient>());
    ASSERT_TRUE(clients.back()->Connect(node.port("tcp.slow")));
    ASSERT_TRUE(clients.back()->Send(ConnectOf("rate-" + std::to_string(i))));
  }
  for (auto& c : clients) ASSERT_TRUE(c->ReadPacket(milliseconds(10000))) << c->error();
  // Counted as delayed, not refused.
  EXPECT_GT(NodeMetric(node, "ferry_listener_connections_rate_limited_total{listener=\"tcp.slow\"}")
                .value_or(0),
            0u);
  EXPECT_EQ(NodeMetric(node, "ferry_listener_connections_accepted_total{listener=\"tcp.slow\"}"),
            40u);
  EXPECT_EQ(NodeMetric(node, "ferry_listener_connections_refused_total{listener=\"tcp.slow\","
                             "reason=\"max_connections\"}"),
            0u);
  EXPECT_TRUE(node.Stop());
}

}  // namespace
}  // namespace ferry::testing
