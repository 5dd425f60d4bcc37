// Retained messages on a cluster of real ferryd nodes: set or cleared on any
// node, the same on every node, also on a node that joins later (which drops
// its own first) and after a node restarts.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "support/cluster_fixture.h"
#include "support/ctl.h"
#include "support/mosq_client.h"
#include "support/wait.h"

namespace ferry::testing {
namespace {

using std::chrono::seconds;

using ClusterRetained = ClusterFixture;

// The payload of the retained message on `topic` at node `n`, as `ferryctl
// retained show` has it; "" if there is none.
std::string RetainedAt(const NodeProcess& n, const std::string& topic) {
  CommandResult r = Ferryctl(n, {"retained", "show", topic, "--json"});
  if (!r.Succeeded()) return "";
  auto j = ParseJson(r.out);
  return j && j->contains("payload") ? (*j)["payload"].get<std::string>() : "";
}

::testing::AssertionResult RetainedIs(const NodeProcess& n, const std::string& topic,
                                      const std::string& payload) {
  return WaitFor([&] { return RetainedAt(n, topic) == payload; }, seconds(10),
                 "retained '" + topic + "' = '" + payload + "' on " + n.name());
}

TEST_F(ClusterRetained, SetAndClearedOnAnyNodeTheSameEverywhere) {
  ThreeJoined();
  MosqClient pub2(N(2).port(), "pub2");
  ASSERT_TRUE(pub2.Connect());
  ASSERT_TRUE(pub2.Publish("status/door", "open", 1, true));
  for (int i : {1, 2, 3}) EXPECT_TRUE(RetainedIs(N(i), "status/door", "open"));

  // A new subscriber on ferry3 gets it as a retained message.
  MosqClient sub3(N(3).port(), "sub3");
  ASSERT_TRUE(sub3.Connect());
  ASSERT_TRUE(sub3.Subscribe("status/#", 1));
  auto m = sub3.Receive(seconds(10));
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->payload, "open");
  EXPECT_TRUE(m->retained);

  // Replaced on ferry1, cleared on ferry3 (an empty retained publish).
  MosqClient pub1(N(1).port(), "pub1");
  ASSERT_TRUE(pub1.Connect());
  ASSERT_TRUE(pub1.Publish("status/door", "closed", 1, true));
  for (int i : {1, 2, 3}) EXPECT_TRUE(RetainedIs(N(i), "status/door", "closed"));
  MosqClient pub3(N(3).port(), "pub3");
  ASSERT_TRUE(pub3.Connect());
  ASSERT_TRUE(pub3.Publish("status/door", "", 1, true));
  for (int i : {1, 2, 3}) EXPECT_TRUE(RetainedIs(N(i), "status/door", ""));

  // `ferryctl retained clean` on one node cleans every node.
  ASSERT_TRUE(pub2.Publish("status/light", "on", 1, true));
  for (int i : {1, 2, 3}) ASSERT_TRUE(RetainedIs(N(i), "status/light", "on"));
  ASSERT_TRUE(Ctl(N(1), {"retained", "clean", "status/#"}).Succeeded());
  for (int i : {1, 2, 3}) EXPECT_TRUE(RetainedIs(N(i), "status/light", ""));
}

TEST_F(ClusterRetained, ANodeThatJoinsLaterTakesTheClustersAndDropsItsOwn) {
  Joined(2);
  MosqClient pub(N(2).port(), "pub");
  ASSERT_TRUE(pub.Connect());
  ASSERT_TRUE(pub.Publish("site/a", "from-cluster", 1, true));
  ASSERT_TRUE(RetainedIs(N(1), "site/a", "from-cluster"));

  NodeProcess& n3 = Add(3);
  MosqClient own(n3.port(), "own");
  ASSERT_TRUE(own.Connect());
  ASSERT_TRUE(own.Publish("site/b", "its-own", 1, true));
  ASSERT_TRUE(RetainedIs(n3, "site/b", "its-own"));
  CommandResult j = Ctl(n3, {"cluster", "join", Target(N(1))});
  ASSERT_TRUE(j.Succeeded()) << j.ToString();
  EXPECT_NE(j.out.find("This node dropped 1 retained message."), std::string::npos) << j.ToString();
  EXPECT_TRUE(RetainedIs(n3, "site/a", "from-cluster"));
  EXPECT_EQ(RetainedAt(n3, "site/b"), "");
  EXPECT_EQ(RetainedAt(N(1), "site/b"), "");

  // A node that restarts keeps them (its store) and hears what changed
  // meanwhile when it links up again.
  ASSERT_TRUE(n3.Stop());
  ASSERT_TRUE(pub.Publish("site/a", "changed", 1, true));
  ASSERT_TRUE(n3.Restart());
  EXPECT_TRUE(RetainedIs(n3, "site/a", "changed"));
}

}  // namespace
}  // namespace ferry::testing
