// Every listener type through the admin interface: `ferryctl listeners`
// (human, --json and the HTTP API) with each listener's type, address, PROXY
// protocol, connections and limits; `listeners stop|start|restart` on TLS and
// WebSocket listeners (a restarted TLS listener still serves TLS with its
// certificate, which the clients verify); and the per-listener Prometheus
// series, refusals by reason included, checked by the real promtool.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <regex>
#include <string>

#include "support/connect_helpers.h"
#include "support/mosq_client.h"
#include "support/ctl.h"
#include "support/mqtt_wire.h"
#include "support/node_process.h"
#include "support/paho_client.h"
#include "support/raw_client.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"
#include "support/test_certs.h"
#include "support/wait.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;
using namespace std::string_literals;

Bytes Text(std::string_view s) { return Bytes(s.begin(), s.end()); }

Bytes Concat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

class ListenerAdmin : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeTestCerts(certs_dir_.path(), &certs_));
    const std::string tls = "certfile = " + certs_.server_cert + "\nkeyfile = " +
                            certs_.server_key + "\n";
    NodeOptions o;
    o.extra_config = "[listener.ssl.tls]\nbind = 127.0.0.1:0\nmax_connections = 50\n" + tls +
                     "[listener.ws.web]\nbind = 127.0.0.1:0\nmax_connection_rate = 100\n"
                     "[listener.wss.webtls]\nbind = 127.0.0.1:0\n" + tls +
                     "[listener.tcp.lb]\nbind = 127.0.0.1:0\nproxy_protocol = true\n"
                     "max_connections = 1\n";
    node_ = std::make_unique<NodeProcess>(o);
    ASSERT_TRUE(node_->Start());
  }

  void TearDown() override {
    if (!node_ || !node_->Running()) return;
    EXPECT_TRUE(NodeServesNewClients(node_->port()));
    EXPECT_TRUE(node_->Stop());
  }

  // A Paho URI for listener `id`: ssl://, ws:// or wss://.
  std::string Uri(const std::string& id) const {
    const std::string scheme = id.substr(0, id.find('.'));
    const std::string host = "127.0.0.1:" + std::to_string(node_->port(id));
    return (scheme == "ssl" ? "ssl://" : scheme + "://") + host +
           (scheme == "ssl" ? "" : "/mqtt");
  }

  // Connects Paho client `c` of listener `id`, verifying the node's
  // certificate against the test CA on TLS listeners.
  ::testing::AssertionResult Connect(PahoClient& c, const std::string& id) {
    PahoConnectOptions o;
    if (id.starts_with("ssl.") || id.starts_with("wss.")) o.tls = certs_.Trusting();
    return c.Connect(o);
  }

  // PROXY v1 header naming 203.0.113.9 plus a CONNECT, on tcp.lb.
  ::testing::AssertionResult ConnectBehindProxy(RawClient& c, const std::string& id) {
    if (auto ok = c.Connect(node_->port("tcp.lb")); !ok) return ok;
    wire::ConnectFields f;
    f.client_id = id;
    if (auto ok = c.Send(Concat(Text("PROXY TCP4 203.0.113.9 10.0.0.1 40000 1884\r\n"),
                                wire::Connect(f)));
        !ok) {
      return ok;
    }
    if (!c.ReadPacket()) return ::testing::AssertionFailure() << "no CONNACK: " << c.error();
    return ::testing::AssertionSuccess();
  }

  // `c` publishes and receives: a QoS 1 PUBLISH from a client on
  // tcp.default reaches it, and its own QoS 1 PUBLISH is acknowledged. (Not
  // one client publishing to itself: the node may then put PUBLISH and
  // PUBACK in one WebSocket frame [MQTT-6.0.0-2], which Paho C 1.3.12 over
  // ws:// does not read.)
  ::testing::AssertionResult Serves(PahoClient& c) {
    const std::string topic = "serves/" + c.client_id();
    if (auto ok = c.Subscribe(topic, 1); !ok) return ok;
    MosqClient pub(node_->port(), "pub-" + c.client_id());
    if (auto ok = pub.Connect(); !ok) return ok;
    if (auto ok = pub.Publish(topic, "to " + c.client_id(), 1); !ok) return ok;
    std::optional<ReceivedMessage> m = c.Receive();
    if (!m || m->payload != "to " + c.client_id()) {
      return ::testing::AssertionFailure() << c.client_id() << " received nothing";
    }
    return c.Publish("from/" + c.client_id(), "x", 1);
  }

  Json RunJson(std::vector<std::string> args) {
    args.push_back("--json");
    CommandResult r = Ferryctl(*node_, args);
    EXPECT_TRUE(r.Succeeded()) << r.ToString();
    return ParseJson(r.out).value_or(Json());
  }

  // `ferryctl listeners --json` by listener id.
  std::map<std::string, Json> Listeners() {
    std::map<std::string, Json> by_id;
    for (const Json& row : RunJson({"listeners"})) by_id[row["id"].get<std::string>()] = row;
    return by_id;
  }

  TempDir certs_dir_;
  TestCerts certs_;
  std::unique_ptr<NodeProcess> node_;
};

TEST_F(ListenerAdmin, ListenersShowEveryTypeWithItsSettings) {
  MosqClient plain(node_->port(), "on-tcp", MqttVersion::kV5);
  ASSERT_TRUE(plain.Connect());
  MosqClient tls(node_->port("ssl.tls"), "on-ssl");
  MosqConnectOptions tls_options;
  tls_options.tls = certs_.Trusting();
  ASSERT_TRUE(tls.Connect(tls_options));
  PahoClient ws(Uri("ws.web"), "on-ws", MqttVersion::kV311);
  ASSERT_TRUE(Connect(ws, "ws.web"));
  PahoClient wss(Uri("wss.webtls"), "on-wss", MqttVersion::kV5);
  ASSERT_TRUE(Connect(wss, "wss.webtls"));
  RawClient proxied;
  ASSERT_TRUE(ConnectBehindProxy(proxied, "on-lb"));

  struct Expected {
    std::string type;
    bool proxy;
    uint32_t max, rate;
  };
  const std::map<std::string, Expected> expected = {{"tcp.default", {"tcp", false, 0, 0}},
                                                    {"ssl.tls", {"ssl", false, 50, 0}},
                                                    {"ws.web", {"ws", false, 0, 100}},
                                                    {"wss.webtls", {"wss", false, 0, 0}},
                                                    {"tcp.lb", {"tcp", true, 1, 0}}};
  std::map<std::string, Json> listeners = Listeners();
  ASSERT_EQ(listeners.size(), expected.size());
  for (const auto& [id, e] : expected) {
    SCOPED_TRACE(id);
    const Json& l = listeners[id];
    EXPECT_EQ(l["type"], e.type);
    EXPECT_EQ(l["bind"], "127.0.0.1:" + std::to_string(node_->port(id)));
    EXPECT_EQ(l["proxy_protocol"], e.proxy);
    EXPECT_EQ(l["connections"], 1);
    EXPECT_EQ(l["max_connections"], e.max);
    EXPECT_EQ(l["max_connection_rate"], e.rate);
    EXPECT_EQ(l["running"], true);
  }

  CommandResult human = Ferryctl(*node_, {"listeners"});
  ASSERT_TRUE(human.Succeeded()) << human.ToString();
  EXPECT_TRUE(std::regex_search(
      human.out, std::regex("^ID +TYPE +BIND +PROXY +CONNECTIONS +MAX +RATE +RUNNING\n")))
      << human.out;
  EXPECT_TRUE(std::regex_search(
      human.out, std::regex("\ntcp\\.lb +tcp +127\\.0\\.0\\.1:[0-9]+ +yes +1 +1 +0 +yes\n")))
      << human.out;
  EXPECT_TRUE(std::regex_search(
      human.out, std::regex("\nws\\.web +ws +127\\.0\\.0\\.1:[0-9]+ +no +1 +0 +100 +yes\n")))
      << human.out;

  // The HTTP API answers the same rows.
  HttpReply r = Http("GET", node_->admin_http_port(), "/api/v1/listeners");
  ASSERT_EQ(r.status, 200) << r.error << r.head;
  Json rows = ParseJson(r.body).value_or(Json())["rows"];
  ASSERT_EQ(rows.size(), expected.size()) << r.body;
  for (const Json& row : rows) EXPECT_EQ(row, listeners[row["id"].get<std::string>()]);
}

TEST_F(ListenerAdmin, TlsAndWebSocketListenersStopStartAndRestart) {
  for (const std::string id : {"ssl.tls", "ws.web", "wss.webtls"}) {
    SCOPED_TRACE(id);
    const uint16_t port = node_->port(id);
    // One Paho client at a time: a second one connects a second later.
    {
      PahoClient stays(Uri(id), "stays-" + id, MqttVersion::kV5);
      ASSERT_TRUE(Connect(stays, id));
      CommandResult stopped = Ferryctl(*node_, {"listeners", "stop", id});
      ASSERT_TRUE(stopped.Succeeded()) << stopped.ToString();
      EXPECT_EQ(stopped.out, "Listener " + id + " stopped\n");
      EXPECT_EQ(Listeners()[id]["running"], false);
      RawClient refused;
      EXPECT_FALSE(refused.Connect(port, milliseconds(500)));
      EXPECT_TRUE(Serves(stays));  // connected clients stay
    }
    ASSERT_TRUE(Ferryctl(*node_, {"listeners", "start", id}).Succeeded());
    EXPECT_EQ(Listeners()[id]["running"], true);
    {
      PahoClient started(Uri(id), "started-" + id, MqttVersion::kV311);  // same port, same cert
      EXPECT_TRUE(Connect(started, id));
      EXPECT_TRUE(Serves(started));
    }
    CommandResult restarted = Ferryctl(*node_, {"listeners", "restart", id});
    EXPECT_EQ(restarted.out, "Listener " + id + " restarted\n") << restarted.ToString();
    PahoClient again(Uri(id), "restarted-" + id, MqttVersion::kV5);
    EXPECT_TRUE(Connect(again, id));
    EXPECT_TRUE(Serves(again));
    EXPECT_EQ(Listeners()[id]["bind"], "127.0.0.1:" + std::to_string(port));
  }
}

TEST_F(ListenerAdmin, RefusalsAreCountedPerListenerAndReason) {
  const std::string garbage_tls = "\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"s;
  {
    RawClient c;  // a direct client on a PROXY listener: no header
    ASSERT_TRUE(c.Connect(node_->port("tcp.lb")));
    ASSERT_TRUE(c.Send(Text(garbage_tls)));
    EXPECT_TRUE(c.IsClosed());
  }
  {
    RawClient c;  // plain MQTT on a TLS listener
    ASSERT_TRUE(c.Connect(node_->port("ssl.tls")));
    ASSERT_TRUE(c.Send(Text(garbage_tls)));
    EXPECT_TRUE(c.IsClosed());
  }
  {
    RawClient c;  // an upgrade to the wrong path
    ASSERT_TRUE(c.Connect(node_->port("ws.web")));
    ASSERT_TRUE(c.Send(Text("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")));
    EXPECT_TRUE(c.IsClosed());
  }
  // tcp.lb takes one connection at a time: the refused one above must have
  // left before the next gets in, and the one after that is refused.
  const std::string lb_open = "ferry_listener_connections{listener=\"tcp.lb\"}";
  ASSERT_TRUE(WaitFor([&] { return NodeMetric(*node_, lb_open) == 0u; }, milliseconds(5000),
                      "tcp.lb to be free"));
  RawClient in;
  ASSERT_TRUE(ConnectBehindProxy(in, "lb-in"));
  RawClient over;
  ASSERT_TRUE(over.Connect(node_->port("tcp.lb")));
  EXPECT_TRUE(over.IsClosed());

  auto refused = [](const std::string& listener, const std::string& reason) {
    return "ferry_listener_connections_refused_total{listener=\"" + listener + "\",reason=\"" +
           reason + "\"}";
  };
  const std::pair<std::string, uint64_t> want[] = {
      {refused("tcp.lb", "proxy_header"), 1},
      {refused("tcp.lb", "max_connections"), 1},
      {refused("ssl.tls", "tls_handshake"), 1},
      {refused("ws.web", "websocket_upgrade"), 1},
      {refused("tcp.default", "max_connections"), 0},
      {refused("wss.webtls", "tls_handshake"), 0},
      {refused("wss.webtls", "websocket_upgrade"), 0},
      {"ferry_listener_connections_accepted_total{listener=\"tcp.lb\"}", 2},
      {"ferry_listener_connections_accepted_total{listener=\"ssl.tls\"}", 1},
      {lb_open, 1},
      {"ferry_listener_up{listener=\"wss.webtls\"}", 1},
      {"ferry_listener_connections_rate_limited_total{listener=\"ws.web\"}", 0},
  };
  HttpReply r;
  ASSERT_TRUE(WaitFor(
      [&] {
        r = Http("GET", node_->admin_http_port(), "/metrics");
        for (const auto& [series, value] : want) {
          if (MetricValue(r.body, series) != value) return false;
        }
        return true;
      },
      milliseconds(5000), "the listener series to count every refusal"))
      << r.body;
  // Only the reasons a listener can refuse for: no TLS handshake on ws.web.
  EXPECT_EQ(MetricValue(r.body, refused("ws.web", "tls_handshake")), std::nullopt);
  EXPECT_EQ(MetricValue(r.body, refused("tcp.default", "proxy_header")), std::nullopt);
  for (const char* type : {"# TYPE ferry_listener_connections_refused_total counter\n",
                           "# TYPE ferry_listener_connections_accepted_total counter\n",
                           "# TYPE ferry_listener_connections_rate_limited_total counter\n",
                           "# TYPE ferry_listener_connections gauge\n"}) {
    EXPECT_NE(r.body.find(type), std::string::npos) << type;
  }
  CommandResult check = RunCommand({"promtool", "check", "metrics"}, {}, {}, r.body);
  EXPECT_TRUE(check.Succeeded()) << check.ToString();
  EXPECT_TRUE(check.err.empty() && check.out.empty()) << check.ToString();  // no lint warnings
  EXPECT_TRUE(PingPong(in));
}

}  // namespace
}  // namespace ferry::testing
