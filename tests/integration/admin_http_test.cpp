// The HTTP admin API of a real ferryd: the REST endpoints, /metrics (checked
// by the real `promtool check metrics`), /api/v1/health, ferryctl --url, the
// bearer token, and hostile HTTP clients.
#include <gtest/gtest.h>

#include <string>

#include "support/ctl.h"
#include "support/node_process.h"
#include "support/paho_client.h"
#include "support/subprocess.h"
#include "support/wait.h"

namespace ferry::testing {
namespace {

class AdminHttp : public ::testing::Test {
 protected:
  void SetUp() override {
    node_.config().Set("admin", "http_token", "s3cret-token");
    node_.config().Set("admin", "idle_timeout", "500ms");
    ASSERT_TRUE(node_.Start());
    port_ = node_.admin_http_port();
    url_ = "http://127.0.0.1:" + std::to_string(port_);
  }
  void TearDown() override {
    if (!HasFatalFailure() && node_.Running()) {
      EXPECT_TRUE(node_.Stop());
    }
  }

  NodeProcess node_;
  uint16_t port_ = 0;
  std::string url_;
};

TEST_F(AdminHttp, HealthFollowsTheListeners) {
  HttpReply r = Http("GET", port_, "/api/v1/health");
  EXPECT_EQ(r.status, 200) << r.error << r.head;
  EXPECT_EQ(ParseJson(r.body).value_or(Json())["status"], "ok") << r.body;
  ASSERT_TRUE(Ferryctl(node_, {"listeners", "stop", "tcp.default"}).Succeeded());
  r = Http("GET", port_, "/api/v1/health");
  EXPECT_EQ(r.status, 503) << r.head;
  EXPECT_EQ(ParseJson(r.body).value_or(Json())["accepting_connections"], false) << r.body;
  ASSERT_TRUE(Ferryctl(node_, {"listeners", "start", "tcp.default"}).Succeeded());
  EXPECT_EQ(Http("GET", port_, "/api/v1/health").status, 200);
}

TEST_F(AdminHttp, MetricsPassPromtool) {
  PahoClient sub(node_.port(), "prom-sub", MqttVersion::kV5);
  PahoClient pub(node_.port(), "prom-pub", MqttVersion::kV311);
  ASSERT_TRUE(sub.Connect());
  ASSERT_TRUE(pub.Connect());
  ASSERT_TRUE(sub.Subscribe("p/#", 1));
  ASSERT_TRUE(pub.Publish("p/1", "x", 1, true));
  ASSERT_TRUE(sub.Receive().has_value());
  HttpReply r = Http("GET", port_, "/metrics");
  ASSERT_EQ(r.status, 200) << r.error << r.head;
  EXPECT_NE(r.head.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << r.head;
  for (const char* line : {"# TYPE ferry_connections gauge\nferry_connections 2\n",
                           "ferry_connections_max 2\n", "ferry_retained_messages 1\n",
                           "# TYPE ferry_messages_received_total counter\n",
                           "ferry_messages_received_total{qos=\"1\"} 1\n",
                           "ferry_messages_dropped_total{reason=\"queue_full\"} 0\n",
                           "ferry_listener_up{listener=\"tcp.default\"} 1\n",
                           "ferry_info{node=\"test@127.0.0.1\",version=\""}) {
    EXPECT_NE(r.body.find(line), std::string::npos) << line << "\n" << r.body;
  }
  CommandResult check = RunCommand({"promtool", "check", "metrics"}, {}, {}, r.body);
  EXPECT_TRUE(check.Succeeded()) << check.ToString();
  EXPECT_TRUE(check.err.empty() && check.out.empty()) << check.ToString();  // no lint warnings
}

TEST_F(AdminHttp, RestEndpointsAnswerJson) {
  PahoClient c(node_.port(), "rest-c", MqttVersion::kV5);
  ASSERT_TRUE(c.Connect());
  HttpReply r = Http("GET", port_, "/api/v1/clients/list?connected&limit=10");
  ASSERT_EQ(r.status, 200) << r.error << r.head;
  EXPECT_NE(r.head.find("Transfer-Encoding: chunked"), std::string::npos);
  std::optional<Json> list = ParseJson(r.body);
  ASSERT_TRUE(list.has_value()) << r.body;
  EXPECT_EQ((*list)["ok"], true);
  EXPECT_EQ((*list)["count"], 1);
  EXPECT_EQ((*list)["rows"][0]["client_id"], "rest-c");
  EXPECT_EQ((*list)["columns"][0]["key"], "client_id");

  r = Http("GET", port_, "/api/v1/broker/stats");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(ParseJson(r.body).value_or(Json())["result"]["connections"]["count"], 1) << r.body;

  r = Http("GET", port_, "/api/v1/clients/show/nobody");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(ParseJson(r.body).value_or(Json())["error"]["kind"], "not_found") << r.body;

  r = Http("GET", port_, "/api/v1/clients/kick/rest-c");  // changes the node: POST only
  EXPECT_EQ(r.status, 405) << r.body;
  EXPECT_TRUE(c.IsConnected());
  r = Http("POST", port_, "/api/v1/subscriptions/add/rest-c/a%2F%23/1");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(ParseJson(r.body).value_or(Json())["result"]["filter"], "a/#") << r.body;
  r = Http("POST", port_, "/api/v1/clients/kick/rest-c");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(c.WaitConnectionLost());

  r = Http("POST", port_, "/api/v1/subscriptions/add/x/a%2Fb/7");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(ParseJson(r.body).value_or(Json())["error"]["usage"], "subscriptions add ID FILTER QOS");
  EXPECT_EQ(Http("GET", port_, "/nothing/here").status, 404);
  EXPECT_EQ(Http("DELETE", port_, "/api/v1/status").status, 405);
  EXPECT_EQ(Http("HEAD", port_, "/api/v1/status").status, 405);
}

TEST_F(AdminHttp, FerryctlOverHttp) {
  CommandResult r = FerryctlRaw({"--url", url_, "status"});
  ASSERT_TRUE(r.Succeeded()) << r.ToString();
  EXPECT_NE(r.out.find("Node 'test@127.0.0.1' is started\n"), std::string::npos);
  PahoClient c(node_.port(), "url-c", MqttVersion::kV311);
  ASSERT_TRUE(c.Connect());
  r = FerryctlRaw({"--url", url_ + "/", "clients", "list", "--json"});
  ASSERT_TRUE(r.Succeeded()) << r.ToString();
  EXPECT_EQ(ParseJson(r.out).value_or(Json()).size(), 1u) << r.out;
  r = FerryctlRaw({"--url", url_, "--token", "s3cret-token", "subscriptions", "add", "url-c",
                   "x/+", "0"});
  EXPECT_TRUE(r.Succeeded()) << r.ToString();
  r = FerryctlRaw({"--url", url_, "routes", "show", "x/1"});
  EXPECT_TRUE(r.Succeeded()) << r.ToString();

  r = FerryctlRaw({"--url", url_, "clients", "show", "nobody"});
  EXPECT_EQ(r.status.code, 4) << r.ToString();
  EXPECT_EQ(r.err, "ferryctl: no client 'nobody'\n");
  r = FerryctlRaw({"--url", url_, "clients", "show"});
  EXPECT_EQ(r.status.code, 2) << r.ToString();
  EXPECT_NE(r.err.find("usage: ferryctl clients show ID"), std::string::npos);
}

TEST_F(AdminHttp, BadTokenIsRefusedEvenFromLoopback) {
  CommandResult r = FerryctlRaw({"--url", url_, "--token", "wrong", "status"});
  EXPECT_EQ(r.status.code, 5) << r.ToString();
  EXPECT_EQ(r.err, "ferryctl: bad token\n");
  HttpReply h = Http("GET", port_, "/metrics", "Authorization: Bearer wrong\r\n");
  EXPECT_EQ(h.status, 401);
  EXPECT_NE(h.head.find("WWW-Authenticate: Bearer"), std::string::npos);
  h = Http("GET", port_, "/metrics", "Authorization: Basic abc\r\n");
  EXPECT_EQ(h.status, 401);
  h = Http("GET", port_, "/metrics", "Authorization: Bearer s3cret-token\r\n");
  EXPECT_EQ(h.status, 200);
}

TEST_F(AdminHttp, NodeDownOrNoApiAtTheUrl) {
  ASSERT_TRUE(node_.Stop());
  CommandResult r = FerryctlRaw({"--url", url_, "status"});
  EXPECT_EQ(r.status.code, 3) << r.ToString();
  EXPECT_EQ(r.err.rfind("ferryctl: cannot reach " + url_ + ": ", 0), 0u) << r.err;
  r = FerryctlRaw({"--url", "ftp://127.0.0.1:1", "status"});
  EXPECT_NE(r.status.code, 0) << r.ToString();
}

TEST_F(AdminHttp, HostileHttpClientsGetAClearErrorAndTheNodeStaysUp) {
  HttpReply r = HttpExchange("127.0.0.1", port_, "\x16\x03\x01 not http at all\r\n\r\n");
  EXPECT_EQ(r.status, 400) << r.error;
  r = HttpExchange("127.0.0.1", port_, "GET / HTTP/1.1\r\nX: " + std::string(80 * 1024, 'a'));
  EXPECT_EQ(r.status, 431) << r.error;
  r = HttpExchange("127.0.0.1", port_,
                   "POST /api/v1/status HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n");
  EXPECT_EQ(r.status, 413) << r.error;
  r = HttpExchange("127.0.0.1", port_, "GET /api/v1/status HTTP/1.1\r\n");  // then silence
  EXPECT_EQ(r.status, 408) << r.error;
  EXPECT_NE(r.body.find("\"kind\":\"timeout\""), std::string::npos) << r.body;
  r = HttpExchange("127.0.0.1", port_, "GET /api/v1/%zz HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Http("GET", port_, "/api/v1/health").status, 200);
  EXPECT_TRUE(FerryctlRaw({"--url", url_, "status"}).Succeeded());
}

// Without [admin] http_bind the node runs no HTTP API.
TEST(AdminHttpOff, EmptyHttpBindServesNoApi) {
  NodeProcess node;
  node.config().Set("admin", "http_bind", "\"\"");
  ASSERT_TRUE(node.Start());
  EXPECT_EQ(node.endpoints().count("admin.http"), 0u);
  EXPECT_TRUE(Ferryctl(node, {"status"}).Succeeded());
  EXPECT_TRUE(node.Stop());
}

}  // namespace
}  // namespace ferry::testing
