// ferry behind a real HAProxy, as deployed in production (see
// etc/examples/haproxy.cfg): HAProxy on loopback in front of two ferry nodes,
// TCP mode, `balance source`, `send-proxy-v2`, and HTTP health checks of each
// node's GET /api/v1/health on its admin HTTP listener. One frontend
// terminates TLS at HAProxy and forwards plain MQTT to the nodes' PROXY
// listeners; another passes TLS through to the nodes' own TLS listeners.
// Clients connect from distinct loopback addresses (127.0.0.5, ...), HAProxy
// from 127.0.0.1, so a node whose `ferryctl clients` shows the client's own
// address proves it read the PROXY header. HAProxy's stats socket says which
// servers its health checks have taken out, and why.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "support/ctl.h"
#include "support/haproxy.h"
#include "support/mosq_client.h"
#include "support/node_process.h"
#include "support/round_trip.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"
#include "support/test_certs.h"
#include "support/wait.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;

// Where a client is connected, as `ferryctl clients show ID --json` says.
struct ClientOnNode {
  int node = -1;  // index into nodes_; -1 if no node has it connected
  Json row;
};

class HaproxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeTestCerts(dir_.path(), &certs_));
    for (int i = 0; i < 2; ++i) {
      NodeOptions o;
      o.name = "node" + std::to_string(i + 1) + "@127.0.0.1";
      o.extra_config = "[listener.tcp.lb]\nbind = 127.0.0.1:0\nproxy_protocol = true\n"
                       "[listener.ssl.lbtls]\nbind = 127.0.0.1:0\nproxy_protocol = true\n"
                       "certfile = " + certs_.server_cert + "\nkeyfile = " + certs_.server_key +
                       "\n";
      nodes_.push_back(std::make_unique<NodeProcess>(o));
      ASSERT_TRUE(nodes_.back()->Start());
    }
    ASSERT_TRUE(StartHaproxy());
    // Every server is in because its health endpoint answered 200, not
    // merely because HAProxy starts servers up.
    ASSERT_TRUE(WaitFor([&] { return AllServersPassTheirChecks(); }, milliseconds(10000),
                        "every server's HTTP check to pass"));
  }

  void TearDown() override {
    haproxy_.Stop();
    for (auto& n : nodes_) {
      if (n->Running()) {
        EXPECT_TRUE(n->Stop());
      }
    }
  }

  ::testing::AssertionResult StartHaproxy() {
    return haproxy_.Start(2, [&](const std::vector<uint16_t>& ports) {
      tls_port_ = ports[0];
      passthrough_port_ = ports[1];
      return haproxy_.GlobalSection() +
             "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 1m\n"
             "  timeout server 1m\n  option redispatch\n  retries 2\n"
             "frontend mqtt_tls\n  bind 127.0.0.1:" + std::to_string(tls_port_) + " ssl crt " +
             certs_.server_pem + "\n  default_backend ferry_mqtt\n"
             "frontend mqtt_passthrough\n  bind 127.0.0.1:" + std::to_string(passthrough_port_) +
             "\n  default_backend ferry_mqtts\n" +
             Backend("ferry_mqtt", "tcp.lb") + Backend("ferry_mqtts", "ssl.lbtls");
    });
  }

  // A backend of both nodes' `listener`, checked as etc/examples/haproxy.cfg
  // does: GET /api/v1/health on the node's admin HTTP port, 200 expected.
  std::string Backend(const std::string& name, const std::string& listener) {
    std::string b = "backend " + name +
                    "\n  balance source\n  option httpchk GET /api/v1/health\n"
                    "  http-check expect status 200\n";
    for (size_t i = 0; i < nodes_.size(); ++i) {
      b += "  server n" + std::to_string(i + 1) + " 127.0.0.1:" +
           std::to_string(nodes_[i]->port(listener)) + " send-proxy-v2 check port " +
           std::to_string(nodes_[i]->admin_http_port()) + " inter 300ms fall 1 rise 1\n";
    }
    return b;
  }

  std::map<std::pair<std::string, std::string>, HaproxyServer> Servers() {
    return haproxy_.Servers();
  }
  bool AllServersPassTheirChecks() { return haproxy_.AllServersUp(2 * nodes_.size()); }

  // The node that has client `id` connected, with its `clients show` row.
  ClientOnNode FindClient(const std::string& id) {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (!nodes_[i]->Running()) continue;
      CommandResult r = Ferryctl(*nodes_[i], {"clients", "show", id, "--json"});
      if (!r.Succeeded()) continue;
      std::optional<Json> row = ParseJson(r.out);
      if (row && (*row)["connected"] == true) return {static_cast<int>(i), *row};
    }
    return {};
  }

  // Waits until a node lists client `id` as connected.
  ClientOnNode WaitForClient(const std::string& id) {
    ClientOnNode found;
    EXPECT_TRUE(WaitFor(
        [&] {
          found = FindClient(id);
          return found.node >= 0;
        },
        milliseconds(5000), "a node to list client " + id));
    return found;
  }

  // `ferryctl clients list --json` of node `i`, by client id.
  std::map<std::string, Json> ClientsOf(size_t i) {
    CommandResult r = Ferryctl(*nodes_[i], {"clients", "list", "--json"});
    EXPECT_TRUE(r.Succeeded()) << r.ToString();
    std::map<std::string, Json> rows;
    for (const Json& row : ParseJson(r.out).value_or(Json::array())) {
      rows[row["client_id"].get<std::string>()] = row;
    }
    return rows;
  }

  MosqConnectOptions From(const std::string& address) {
    MosqConnectOptions o;
    o.tls = certs_.Trusting();
    o.bind_address = address;
    return o;
  }

  TempDir dir_;
  TestCerts certs_;
  std::vector<std::unique_ptr<NodeProcess>> nodes_;
  Haproxy haproxy_{dir_.path()};
  uint16_t tls_port_ = 0;
  uint16_t passthrough_port_ = 0;
};

// A peer address "127.0.0.5:41234" is from 127.0.0.5.
bool IsFrom(const Json& row, const std::string& address) {
  return row["peer"].is_string() && row["peer"].get<std::string>().starts_with(address + ":");
}

TEST_F(HaproxyTest, NodesSeeTheClientsRealAddressThroughTlsTermination) {
  MosqClient sub(tls_port_, "lb-sub", MqttVersion::kV5);
  ASSERT_TRUE(sub.Connect(From("127.0.0.5")));
  ASSERT_TRUE(sub.Subscribe("lb/#", 1));
  MosqClient pub(tls_port_, "lb-pub", MqttVersion::kV311);
  ASSERT_TRUE(pub.Connect(From("127.0.0.5")));  // same source: same node
  ASSERT_TRUE(pub.Publish("lb/x", "through haproxy", 1));
  std::optional<ReceivedMessage> m = sub.Receive();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payload, "through haproxy");
  ClientOnNode where = WaitForClient("lb-sub");
  ASSERT_GE(where.node, 0);
  EXPECT_TRUE(IsFrom(where.row, "127.0.0.5")) << where.row;
  EXPECT_EQ(where.row["listener"], "tcp.lb");
  std::map<std::string, Json> listed = ClientsOf(static_cast<size_t>(where.node));
  EXPECT_TRUE(IsFrom(listed["lb-pub"], "127.0.0.5")) << listed["lb-pub"];
  // The log names the client by the same address.
  NodeProcess& node = *nodes_[static_cast<size_t>(where.node)];
  EXPECT_TRUE(node.WaitForLog("client 'lb-sub' (127.0.0.5:"));
  EXPECT_EQ(node.LogSinceStart().find("client 'lb-sub' (127.0.0.1:"), std::string::npos);
  EXPECT_TRUE(sub.Disconnect());
  EXPECT_TRUE(pub.Disconnect());
}

TEST_F(HaproxyTest, TlsPassedThroughToTheNodesTlsListener) {
  MosqClient c(passthrough_port_, "lb-passthrough", MqttVersion::kV311);
  ASSERT_TRUE(c.Connect(From("127.0.0.6")));
  EXPECT_TRUE(RoundTrip(c, "p/t", "end to end TLS", 0));
  ClientOnNode where = WaitForClient("lb-passthrough");
  EXPECT_TRUE(IsFrom(where.row, "127.0.0.6")) << where.row;
  EXPECT_EQ(where.row["listener"], "ssl.lbtls");
  EXPECT_TRUE(c.Disconnect());
}

TEST_F(HaproxyTest, BalanceSourceSpreadsClientsOverBothNodes) {
  std::vector<std::unique_ptr<MosqClient>> clients;
  for (int i = 10; i < 26; ++i) {
    clients.push_back(std::make_unique<MosqClient>(tls_port_, "spread-" + std::to_string(i)));
    ASSERT_TRUE(clients.back()->Connect(From("127.0.0." + std::to_string(i))));
  }
  // Each client is listed by exactly one node, with its own address.
  std::map<std::string, Json> on[2] = {ClientsOf(0), ClientsOf(1)};
  for (int i = 10; i < 26; ++i) {
    const std::string id = "spread-" + std::to_string(i);
    SCOPED_TRACE(id);
    ASSERT_NE(on[0].count(id), on[1].count(id));
    const Json& row = on[0].count(id) ? on[0][id] : on[1][id];
    EXPECT_TRUE(IsFrom(row, "127.0.0." + std::to_string(i))) << row;
  }
  EXPECT_FALSE(on[0].empty());
  EXPECT_FALSE(on[1].empty());
  for (auto& c : clients) EXPECT_TRUE(c->Disconnect());
}

// `ferryctl listeners stop` on every MQTT listener of a node: its health
// endpoint answers 503, HAProxy's HTTP check takes it out of both backends,
// and new clients go to the other node; the clients it has stay. Started
// again, it passes its checks again.
TEST_F(HaproxyTest, NodeWithItsListenersStoppedIsReportedDownAndSkipped) {
  MosqClient probe(tls_port_, "probe-stop");
  ASSERT_TRUE(probe.Connect(From("127.0.0.8")));
  const ClientOnNode first = WaitForClient("probe-stop");
  ASSERT_GE(first.node, 0);
  NodeProcess& stopped = *nodes_[static_cast<size_t>(first.node)];
  NodeProcess& other = *nodes_[static_cast<size_t>(1 - first.node)];
  const std::string server = "n" + std::to_string(first.node + 1);

  for (const char* id : {"tcp.default", "tcp.lb", "ssl.lbtls"}) {
    CommandResult r = Ferryctl(stopped, {"listeners", "stop", id});
    ASSERT_TRUE(r.Succeeded()) << r.ToString();
  }
  HttpReply health = Http("GET", stopped.admin_http_port(), "/api/v1/health");
  EXPECT_EQ(health.status, 503) << health.head;
  EXPECT_EQ(ParseJson(health.body).value_or(Json())["reason"],
            "no MQTT listener is running (stopped: tcp.default, tcp.lb, ssl.lbtls)")
      << health.body;
  EXPECT_EQ(Http("GET", other.admin_http_port(), "/api/v1/health").status, 200);

  ASSERT_TRUE(WaitFor(
      [&] {
        auto servers = Servers();
        return servers[{"ferry_mqtt", server}].status == "DOWN" &&
               servers[{"ferry_mqtts", server}].status == "DOWN";
      },
      milliseconds(10000), "HAProxy to take " + server + " out"));
  for (const char* backend : {"ferry_mqtt", "ferry_mqtts"}) {
    HaproxyServer s = Servers()[{backend, server}];
    EXPECT_EQ(s.check_status, "L7STS") << backend;  // an HTTP answer, not the one expected
    EXPECT_EQ(s.check_code, "503") << backend;
  }

  // The same source now reaches the other node, by TLS termination and by
  // passthrough alike.
  MosqClient again(tls_port_, "probe-stop-again");
  ASSERT_TRUE(again.Connect(From("127.0.0.8")));
  ClientOnNode moved = WaitForClient("probe-stop-again");
  EXPECT_EQ(moved.node, 1 - first.node);
  EXPECT_TRUE(IsFrom(moved.row, "127.0.0.8")) << moved.row;
  MosqClient through(passthrough_port_, "probe-stop-tls");
  ASSERT_TRUE(through.Connect(From("127.0.0.8")));
  EXPECT_EQ(WaitForClient("probe-stop-tls").node, 1 - first.node);
  EXPECT_TRUE(probe.IsConnected());  // stopping listeners keeps connected clients
  EXPECT_TRUE(ClientsOf(static_cast<size_t>(first.node)).count("probe-stop"));

  for (const char* id : {"tcp.default", "tcp.lb", "ssl.lbtls"}) {
    ASSERT_TRUE(Ferryctl(stopped, {"listeners", "start", id}).Succeeded());
  }
  EXPECT_EQ(Http("GET", stopped.admin_http_port(), "/api/v1/health").status, 200);
  EXPECT_TRUE(WaitFor([&] { return AllServersPassTheirChecks(); }, milliseconds(10000),
                      server + " to pass its checks again"));
}

TEST_F(HaproxyTest, StoppedNodeIsTakenOutAndClientsReconnectToTheOther) {
  MosqClient probe(tls_port_, "probe");
  ASSERT_TRUE(probe.Connect(From("127.0.0.7")));
  const int first = WaitForClient("probe").node;
  ASSERT_GE(first, 0);
  ASSERT_TRUE(nodes_[static_cast<size_t>(first)]->Stop());
  EXPECT_TRUE(probe.WaitDisconnected());
  const std::string server = "n" + std::to_string(first + 1);
  EXPECT_TRUE(WaitFor([&] { return Servers()[{"ferry_mqtt", server}].status == "DOWN"; },
                      milliseconds(10000), "HAProxy to take " + server + " out"));
  // The same source now reaches the other node.
  ASSERT_TRUE(WaitFor(
      [&] {
        MosqClient again(tls_port_, "probe-again");
        MosqConnectOptions o = From("127.0.0.7");
        o.timeout = milliseconds(1000);
        return static_cast<bool>(again.Connect(o));
      },
      milliseconds(10000), "a connection through the remaining node"));
  EXPECT_NE(nodes_[static_cast<size_t>(1 - first)]->LogSinceStart().find(
                "client 'probe-again' (127.0.0.7:"),
            std::string::npos);
}

}  // namespace
}  // namespace ferry::testing
