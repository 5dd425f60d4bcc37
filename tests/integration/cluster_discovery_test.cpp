// Discovery ([cluster] discovery = static): real ferryd nodes on loopback
// find each other from a seed list and form one cluster without `cluster
// join`, whatever order they start in; `cluster leave` turns discovery off
// until `cluster discovery enable`; a discovered node with another cookie is
// not joined, and the reason is logged once.

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "support/cluster_fixture.h"

namespace ferry::testing {
namespace {

using std::chrono::seconds;

class ClusterDiscovery : public ClusterFixture {
 protected:
  void SetUp() override {
    ports_ = FreePorts(4);
    for (int i = 1; i <= 3; ++i) {
      seeds_ += (i > 1 ? ", " : "") + Name(i) + ":" + std::to_string(ports_[i - 1]);
    }
  }
  // Node i with discovery on the seed list, its cluster port fixed.
  NodeProcess& Discovering(int i, const std::string& cookie = "s3cret") {
    return AddNamed(Name(i), cookie,
                    "[cluster]\nlisten = 127.0.0.1:" + std::to_string(ports_[i - 1]) +
                        "\ndiscovery = static\n[cluster.static]\nseeds = " + seeds_ + "\n");
  }
  ::testing::AssertionResult AllThreeTogether() { return AllTogether({Name(1), Name(2), Name(3)}); }

  std::vector<uint16_t> ports_;
  std::string seeds_;
};

TEST_F(ClusterDiscovery, NodesStartedInReverseOrderFormOneCluster) {
  Discovering(3);
  Discovering(2);
  Discovering(1);
  EXPECT_TRUE(AllThreeTogether());
  auto d = ParseJson(Ctl(N(1), {"cluster", "discovery", "status", "--json"}).out);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ((*d)["strategy"], "static");
  EXPECT_EQ((*d)["enabled"], true);
  EXPECT_EQ((*d)["found"].size(), 3u);
}

TEST_F(ClusterDiscovery, NodesStartedAtOnceFormOneCluster) {
  for (int i = 1; i <= 3; ++i) Discovering(i);
  EXPECT_TRUE(AllThreeTogether());
}

TEST_F(ClusterDiscovery, LeaveTurnsDiscoveryOffUntilItIsEnabled) {
  for (int i : {2, 1, 3}) Discovering(i);
  ASSERT_TRUE(AllThreeTogether());
  CommandResult leave = Ctl(N(3), {"cluster", "leave"});  // nodes_ are in start order: ferry3
  ASSERT_TRUE(leave.Succeeded()) << leave.ToString();
  auto d = ParseJson(Ctl(N(3), {"cluster", "discovery", "status", "--json"}).out);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ((*d)["enabled"], false);
  // Two discovery rounds later it is still alone, and still after a restart.
  std::this_thread::sleep_for(seconds(6));
  EXPECT_TRUE(StatusIs(N(3), StatusLine({Name(3)})));
  ASSERT_TRUE(N(3).Restart());  // its cluster port is fixed by its config
  EXPECT_TRUE(N(3).WaitForLog("discovery (static) is off"));
  EXPECT_TRUE(StatusIs(N(3), StatusLine({Name(3)})));

  CommandResult enable = Ctl(N(3), {"cluster", "discovery", "enable"});
  ASSERT_TRUE(enable.Succeeded()) << enable.ToString();
  EXPECT_TRUE(AllThreeTogether());
}

TEST_F(ClusterDiscovery, ADiscoveredNodeWithAnotherCookieIsNotJoined) {
  Discovering(1);
  NodeProcess& stranger = Discovering(2, "another-cookie");
  EXPECT_TRUE(stranger.WaitForLog("cookie mismatch"));
  std::this_thread::sleep_for(seconds(6));  // more rounds: the reason is logged once
  const std::string log = stranger.LogSinceStart();
  size_t count = 0;
  for (size_t at = log.find("discovery (static): 'ferry1"); at != std::string::npos;
       at = log.find("discovery (static): 'ferry1", at + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 1u) << log;
  EXPECT_TRUE(StatusIs(N(1), StatusLine({Name(1)})));
  EXPECT_TRUE(StatusIs(stranger, StatusLine({Name(2)})));
  auto d = ParseJson(Ctl(stranger, {"cluster", "discovery", "status", "--json"}).out);
  ASSERT_TRUE(d.has_value());
  ASSERT_TRUE((*d)["errors"].contains(Name(1) + ":" + std::to_string(ports_[0]))) << d->dump();
  EXPECT_NE((*d)["errors"][Name(1) + ":" + std::to_string(ports_[0])].get<std::string>().find(
                "cookie mismatch"),
            std::string::npos)
      << d->dump();
}

}  // namespace
}  // namespace ferry::testing
