// ferry behind a real HAProxy, as deployed in production (see
// etc/examples/haproxy.cfg): HAProxy on loopback in front of two ferry nodes,
// TCP mode, `balance source`, `send-proxy-v2`, health checks. One frontend
// terminates TLS at HAProxy and forwards plain MQTT to the nodes' PROXY
// listeners; another passes TLS through to the nodes' own TLS listeners.
// Clients connect from distinct loopback addresses (127.0.0.5, ...), HAProxy
// from 127.0.0.1, so a node that logs the client's address proves it read
// the PROXY header.
//
// The admin health endpoint (/api/v1/health) is not on this branch, so the
// health checks here are TCP checks (with a PROXY LOCAL header).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

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

// A port that was free a moment ago (HAProxy cannot report a port 0 bind).
uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), len);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool Accepts(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

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
  }

  void TearDown() override {
    if (haproxy_) haproxy_->Terminate();
    for (auto& n : nodes_) {
      if (n->Running()) {
        EXPECT_TRUE(n->Stop());
      }
    }
  }

  ::testing::AssertionResult StartHaproxy() {
    for (int attempt = 0; attempt < 3; ++attempt) {
      tls_port_ = FreePort();
      passthrough_port_ = FreePort();
      std::string cfg =
          "global\n  maxconn 1000\n"
          "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 1m\n"
          "  timeout server 1m\n  option redispatch\n  retries 2\n"
          "frontend mqtt_tls\n  bind 127.0.0.1:" + std::to_string(tls_port_) + " ssl crt " +
          certs_.server_pem + "\n  default_backend ferry_mqtt\n"
          "frontend mqtt_passthrough\n  bind 127.0.0.1:" + std::to_string(passthrough_port_) +
          "\n  default_backend ferry_mqtts\n"
          "backend ferry_mqtt\n  balance source\n";
      for (size_t i = 0; i < nodes_.size(); ++i) {
        cfg += "  server n" + std::to_string(i + 1) + " 127.0.0.1:" +
               std::to_string(nodes_[i]->port("tcp.lb")) +
               " send-proxy-v2 check check-send-proxy inter 300ms fall 1 rise 1\n";
      }
      cfg += "backend ferry_mqtts\n  balance source\n";
      for (size_t i = 0; i < nodes_.size(); ++i) {
        cfg += "  server n" + std::to_string(i + 1) + " 127.0.0.1:" +
               std::to_string(nodes_[i]->port("ssl.lbtls")) +
               " send-proxy-v2 check check-send-proxy inter 300ms fall 1 rise 1\n";
      }
      const std::string path = dir_.File("haproxy.cfg");
      std::ofstream(path) << cfg;
      haproxy_ = StartCommand({"haproxy", "-db", "-f", path});
      if (!haproxy_) return ::testing::AssertionFailure() << "cannot start haproxy";
      if (WaitFor([&] { return Accepts(tls_port_) && Accepts(passthrough_port_); },
                  milliseconds(5000), "haproxy to listen")) {
        return ::testing::AssertionSuccess();
      }
      CommandResult r = haproxy_->Terminate();  // a port was taken meanwhile: again
      if (attempt == 2) return ::testing::AssertionFailure() << "haproxy: " << r.ToString();
    }
    return ::testing::AssertionFailure();
  }

  // Which node logged `needle` since it started; -1 if none.
  int NodeThatLogged(const std::string& needle) {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i]->LogSinceStart().find(needle) != std::string::npos) return static_cast<int>(i);
    }
    return -1;
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
  std::unique_ptr<RunningCommand> haproxy_;
  uint16_t tls_port_ = 0;
  uint16_t passthrough_port_ = 0;
};

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
  ASSERT_TRUE(WaitFor([&] { return NodeThatLogged("client 'lb-sub' (127.0.0.5:") >= 0; },
                      milliseconds(5000), "a node to log lb-sub's own address"));
  EXPECT_EQ(NodeThatLogged("client 'lb-sub' (127.0.0.1:"), -1);
  EXPECT_TRUE(sub.Disconnect());
  EXPECT_TRUE(pub.Disconnect());
}

TEST_F(HaproxyTest, TlsPassedThroughToTheNodesTlsListener) {
  MosqClient c(passthrough_port_, "lb-passthrough", MqttVersion::kV311);
  ASSERT_TRUE(c.Connect(From("127.0.0.6")));
  EXPECT_TRUE(RoundTrip(c, "p/t", "end to end TLS", 0));
  EXPECT_TRUE(WaitFor([&] { return NodeThatLogged("client 'lb-passthrough' (127.0.0.6:") >= 0; },
                      milliseconds(5000), "a node to log the client's own address"));
  EXPECT_TRUE(c.Disconnect());
}

TEST_F(HaproxyTest, BalanceSourceSpreadsClientsOverBothNodes) {
  std::vector<std::unique_ptr<MosqClient>> clients;
  for (int i = 10; i < 26; ++i) {
    clients.push_back(std::make_unique<MosqClient>(tls_port_, "spread-" + std::to_string(i)));
    ASSERT_TRUE(clients.back()->Connect(From("127.0.0." + std::to_string(i))));
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        return nodes_[0]->LogSinceStart().find("client 'spread-") != std::string::npos &&
               nodes_[1]->LogSinceStart().find("client 'spread-") != std::string::npos;
      },
      milliseconds(5000), "clients on both nodes"));
  for (auto& c : clients) EXPECT_TRUE(c->Disconnect());
}

TEST_F(HaproxyTest, StoppedNodeIsTakenOutAndClientsReconnectToTheOther) {
  MosqClient probe(tls_port_, "probe");
  ASSERT_TRUE(probe.Connect(From("127.0.0.7")));
  ASSERT_TRUE(WaitFor([&] { return NodeThatLogged("client 'probe' (127.0.0.7:") >= 0; },
                      milliseconds(5000), "the probe to be logged"));
  const int first = NodeThatLogged("client 'probe' (127.0.0.7:");
  ASSERT_TRUE(nodes_[static_cast<size_t>(first)]->Stop());
  EXPECT_TRUE(probe.WaitDisconnected());
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
