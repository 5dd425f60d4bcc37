// A cluster behind a real HAProxy, the central deployment of
// etc/examples/cluster/: three clustered nodes, each with a PROXY protocol
// listener, HAProxy in TCP mode with `balance roundrobin` (so a client that
// reconnects lands on another node) and HTTP health checks of each node's
// GET /api/v1/health. A client with a persistent session reconnects again
// and again through the balancer while messages are published for it: its
// session follows it from node to node and it never loses one.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "support/cluster_fixture.h"
#include "support/ctl.h"
#include "support/haproxy.h"
#include "support/paho_client.h"
#include "support/temp_dir.h"
#include "support/wait.h"

namespace ferry::testing {
namespace {

using std::chrono::seconds;

class ClusterHaproxy : public ClusterFixture {
 protected:
  void SetUp() override {
    Joined(3, "[listener.tcp.lb]\nbind = 127.0.0.1:0\nproxy_protocol = true\n");
    std::vector<HaproxyBackendServer> servers;
    for (int i = 1; i <= 3; ++i) {
      servers.push_back({"ferry" + std::to_string(i), N(i).port("tcp.lb"), N(i).admin_http_port()});
    }
    ASSERT_TRUE(haproxy_.StartBalancer(servers));
  }
  void TearDown() override { haproxy_.Stop(); }

  TempDir dir_;
  Haproxy haproxy_{dir_.path()};
};

TEST_F(ClusterHaproxy, APersistentSessionFollowsItsClientThroughTheBalancer) {
  const std::string uri = "tcp://127.0.0.1:" + std::to_string(haproxy_.ports()[0]);
  PahoConnectOptions persistent;
  persistent.clean_start = false;
  persistent.session_expiry_s = 3600;
  {
    PahoClient c(uri, "roamer", MqttVersion::kV5);
    ASSERT_TRUE(c.Connect(persistent));
    ASSERT_TRUE(c.Subscribe("roam/#", 1));
    ASSERT_TRUE(c.Disconnect());
  }
  PahoClient pub(N(1).port(), "roam-pub", MqttVersion::kV5);
  ASSERT_TRUE(pub.Connect());
  std::set<std::string> visited;
  int next = 0;
  constexpr int kRounds = 20;
  constexpr int kPerRound = 25;
  for (int round = 0; round < kRounds; ++round) {
    // While the client is away its session queues these, wherever it is.
    // Its route may still be on its way to the publisher's node right after
    // a move: each round waits until some node has it.
    ASSERT_TRUE(WaitFor([&] { return Ctl(N(1), {"routes", "show", "roam/x"}).Succeeded(); },
                        seconds(10), "the route of roam/#"));
    for (int i = 0; i < kPerRound; ++i) {
      ASSERT_TRUE(pub.Publish("roam/x", std::to_string(round * kPerRound + i), 1));
    }
    PahoClient c(uri, "roamer", MqttVersion::kV5);
    ASSERT_TRUE(c.Connect(persistent)) << "round " << round;
    EXPECT_TRUE(c.session_present()) << "round " << round;
    for (int i = 0; i < kPerRound; ++i) {
      auto m = c.Receive(seconds(10));
      ASSERT_TRUE(m.has_value()) << "round " << round << ": message " << next << " never came";
      ASSERT_EQ(m->payload, std::to_string(next)) << "round " << round;
      ++next;
    }
    auto shown = ParseJson(Ctl(N(1), {"clients", "show", "roamer", "--json"}).out);
    ASSERT_TRUE(shown.has_value());
    visited.insert((*shown)["node"].get<std::string>());
    ASSERT_TRUE(c.Disconnect());
  }
  EXPECT_EQ(next, kRounds * kPerRound);
  // Round robin sent it to every node in turn.
  EXPECT_EQ(visited.size(), 3u);
}

}  // namespace
}  // namespace ferry::testing
