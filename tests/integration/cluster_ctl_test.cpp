// Three real ferryd nodes on loopback made one cluster with ferryctl:
// `cluster join|leave|force-leave|remove|status|nodes`, their exact output,
// a wrong cookie, a node without a cookie, and a restart that rejoins.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "support/cluster_fixture.h"
#include "support/ctl.h"
#include "support/mqtt_wire.h"
#include "support/node_process.h"
#include "support/raw_client.h"
#include "support/session_helpers.h"
#include "support/wait.h"

namespace ferry::testing {
namespace {

using std::chrono::seconds;

using ClusterCtl = ClusterFixture;

TEST_F(ClusterCtl, ThreeNodesJoinAndEachReportsTheSameStatus) {
  ThreeJoined();
  CommandResult json = Ctl(N(3), {"cluster", "status", "--json"});
  ASSERT_TRUE(json.Succeeded()) << json.ToString();
  auto j = ParseJson(json.out);
  ASSERT_TRUE(j.has_value()) << json.out;
  EXPECT_EQ((*j)["running_nodes"], Json({Name(1), Name(2), Name(3)}));
  EXPECT_EQ((*j)["stopped_nodes"], Json::array());
  CommandResult self = Ctl(N(1), {"cluster", "join", Name(1)});
  ASSERT_TRUE(self.Succeeded()) << self.ToString();
  EXPECT_EQ(self.out, "Ignore.\n");
  for (auto& n : nodes_) EXPECT_TRUE(n->Stop());
}

TEST_F(ClusterCtl, RoutesOfEveryNodeAreKnownEverywhere) {
  ThreeJoined();
  RawClient sub;
  ASSERT_TRUE(ConnectRaw(sub, N(2).port(), Clean(MqttVersion::kV311, "sub")));
  ASSERT_TRUE(SubscribeRaw(sub, MqttVersion::kV311, "sensor/+/temp", 1));
  auto routes_of_2 = [&](NodeProcess& at) { return RoutesOf(at, Name(2)); };
  for (int i : {1, 3}) {
    EXPECT_TRUE(WaitFor([&] { return routes_of_2(N(i)) == 1; }, seconds(10), "ferry2's route"));
  }
  // Each member's sessions, as it says every second.
  EXPECT_TRUE(WaitFor([&] { return MemberField(N(1), Name(2), "sessions") == 1; }, seconds(10),
                      "ferry2's session count on ferry1"));
  EXPECT_EQ(MemberField(N(2), Name(2), "sessions"), 1);
  auto metric = [&](const std::string& series) {
    return MetricValue(Http("GET", N(1).admin_http_port(), "/metrics").body, series);
  };
  EXPECT_TRUE(
      WaitFor([&] { return metric("ferry_cluster_member_routes{node=\"" + Name(2) + "\"}") == 1u; },
              seconds(10), "ferry2's route in /metrics"));
  EXPECT_EQ(metric("ferry_cluster_member_up{node=\"" + Name(3) + "\"}"), 1u);
  EXPECT_EQ(metric("ferry_cluster_members"), 3u);
  // `routes list` and `routes show` on ferry1 name ferry2 beside ferry1's own.
  RawClient local;
  ASSERT_TRUE(ConnectRaw(local, N(1).port(), Clean(MqttVersion::kV311, "local")));
  ASSERT_TRUE(SubscribeRaw(local, MqttVersion::kV311, "sensor/#", 1));
  auto routes = ParseJson(Ctl(N(1), {"routes", "list", "--json"}).out);
  ASSERT_TRUE(routes.has_value());
  EXPECT_EQ(*routes, (Json{{{"topic", "sensor/#"}, {"node", Name(1)}, {"subscribers", 1}},
                           {{"topic", "sensor/+/temp"}, {"node", Name(2)}, {"subscribers", nullptr}}}))
      << routes->dump();
  EXPECT_EQ(ParseJson(Ctl(N(1), {"routes", "list", "--limit", "1", "--json"}).out)->size(), 1u);
  auto shown = ParseJson(Ctl(N(1), {"routes", "show", "sensor/9/temp", "--json"}).out);
  ASSERT_TRUE(shown.has_value());
  EXPECT_EQ((*shown)["subscribers"].size(), 1u);
  EXPECT_EQ((*shown)["nodes"], (Json{{{"topic", "sensor/+/temp"}, {"node", Name(2)},
                                      {"subscribers", nullptr}}}));
  shown = ParseJson(Ctl(N(3), {"routes", "show", "sensor/9/temp", "--json"}).out);
  ASSERT_TRUE(shown.has_value());
  EXPECT_EQ((*shown)["subscribers"].size(), 0u);
  EXPECT_EQ((*shown)["nodes"].size(), 2u);
  CommandResult none = Ctl(N(1), {"routes", "show", "elsewhere"});
  EXPECT_FALSE(none.Succeeded());
  local.Close();

  CommandResult table = Ctl(N(1), {"cluster", "nodes"});
  ASSERT_TRUE(table.Succeeded()) << table.ToString();
  EXPECT_EQ(table.out.rfind("NODE ", 0), 0u) << table.out;
  EXPECT_NE(table.out.find(Name(3)), std::string::npos) << table.out;
  sub.Close();
  for (int i : {1, 3}) {
    EXPECT_TRUE(WaitFor([&] { return routes_of_2(N(i)) == 0; }, seconds(10), "route withdrawn"));
  }
}

TEST_F(ClusterCtl, ALeavingNodeAndAForceLeftNodeAreDropped) {
  ThreeJoined();
  CommandResult leave = Ctl(N(3), {"cluster", "leave"});
  ASSERT_TRUE(leave.Succeeded()) << leave.ToString();
  EXPECT_EQ(leave.out, "Leave the cluster successfully.\n" + StatusLine({Name(3)}));
  EXPECT_TRUE(StatusIs(N(1), StatusLine({Name(1), Name(2)})));
  EXPECT_TRUE(StatusIs(N(2), StatusLine({Name(1), Name(2)})));

  // ferry2 goes down; ferry1 lists it as stopped, then removes it.
  N(2).Kill();
  EXPECT_TRUE(StatusIs(N(1), StatusLine({Name(1)}, {Name(2)})));
  CommandResult removed = Ctl(N(1), {"cluster", "force-leave", Name(2)});
  ASSERT_TRUE(removed.Succeeded()) << removed.ToString();
  EXPECT_EQ(removed.out, "Remove the node '" + Name(2) + "' from the cluster successfully.\n" +
                             StatusLine({Name(1)}));
  // Back, it is refused and says why; it goes on alone.
  ASSERT_TRUE(N(2).Start());
  EXPECT_TRUE(N(2).WaitForLog("removed from cluster 'ferry' by force-leave"));
  EXPECT_TRUE(N(1).WaitForLog("refused: removed by force-leave with '" + Name(2) + "'"));
  EXPECT_TRUE(StatusIs(N(2), StatusLine({Name(2)})));
  EXPECT_TRUE(StatusIs(N(1), StatusLine({Name(1)})));

  CommandResult unknown = Ctl(N(1), {"cluster", "remove", "ferry9@127.0.0.1"});
  EXPECT_FALSE(unknown.Succeeded());
  EXPECT_NE(unknown.err.find("'ferry9@127.0.0.1' is not a member"), std::string::npos)
      << unknown.ToString();
  // Its own explicit join lets it back in.
  CommandResult back = Ctl(N(2), {"cluster", "join", Target(N(1))});
  ASSERT_TRUE(back.Succeeded()) << back.ToString();
  EXPECT_TRUE(StatusIs(N(1), StatusLine({Name(1), Name(2)})));
}

TEST_F(ClusterCtl, AWrongCookieIsRefusedWithTheReasonOnBothSides) {
  NodeProcess& n1 = Add(1);
  NodeProcess& n2 = Add(2, "another-cookie");
  CommandResult r = Ctl(n2, {"cluster", "join", Target(n1)});
  EXPECT_FALSE(r.Succeeded());
  EXPECT_EQ(r.err, "ferryctl: Failed to join the cluster: cookie mismatch with '" + Name(1) + "'\n")
      << r.ToString();
  EXPECT_TRUE(n1.WaitForLog("cookie mismatch with '" + Name(2) + "'"));
  EXPECT_TRUE(StatusIs(n1, StatusLine({Name(1)})));
  // Neither cookie shows up anywhere.
  EXPECT_EQ(n1.Log().find("s3cret"), std::string::npos);
  EXPECT_EQ(n2.Log().find("another-cookie"), std::string::npos);
}

TEST_F(ClusterCtl, ANodeWithoutACookieOpensNoClusterPortAndSaysWhy) {
  NodeProcess& n1 = Add(1);
  NodeProcess& n2 = Add(2, "");
  EXPECT_EQ(n2.endpoints().count("cluster"), 0u);
  CommandResult r = Ctl(n2, {"cluster", "join", Target(n1)});
  EXPECT_FALSE(r.Succeeded());
  EXPECT_NE(r.err.find("Failed to join the cluster: this node has no cluster cookie"),
            std::string::npos)
      << r.ToString();
  EXPECT_EQ(Ctl(n2, {"cluster", "status"}).out, StatusLine({Name(2)}));
}

TEST_F(ClusterCtl, GarbageOnTheClusterPortClosesThatConnectionOnly) {
  ThreeJoined();
  for (const std::string& junk :
       {std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), std::string(64, '\0'),
        std::string("\x00\x00\x00\x04\x01\x02\x00\x00"
                    "abcd",
                    12)}) {
    RawClient raw;
    ASSERT_TRUE(raw.Connect(N(1).port("cluster")));
    ASSERT_TRUE(raw.Send(Bytes(junk.begin(), junk.end())));
    EXPECT_TRUE(raw.IsClosed(seconds(10))) << "the node closes the connection";
  }
  EXPECT_TRUE(
      N(1).WaitForLog("cluster: connection from an unnamed peer closed during the handshake"));
  EXPECT_TRUE(StatusIs(N(1), StatusLine({Name(1), Name(2), Name(3)})));
  for (auto& n : nodes_) EXPECT_TRUE(n->Stop());
}

TEST_F(ClusterCtl, ARestartedNodeRejoinsByItself) {
  NodeProcess& n1 = Add(1);
  NodeProcess& n2 = Add(2);
  ASSERT_TRUE(Ctl(n2, {"cluster", "join", Target(n1)}).Succeeded());
  ASSERT_TRUE(StatusIs(n1, StatusLine({Name(1), Name(2)})));
  ASSERT_TRUE(n2.Restart());
  EXPECT_TRUE(StatusIs(n2, StatusLine({Name(1), Name(2)})));
  EXPECT_TRUE(StatusIs(n1, StatusLine({Name(1), Name(2)})));
  ASSERT_TRUE(n1.Restart());
  EXPECT_TRUE(StatusIs(n1, StatusLine({Name(1), Name(2)})));
}

}  // namespace
}  // namespace ferry::testing
