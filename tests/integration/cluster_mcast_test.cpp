// Discovery by multicast ([cluster] discovery = mcast) on a real segment
// of network namespaces (support/netns_segment.h), a node per namespace:
// two clusters with different cookies announce on the same group and
// segment, and each forms on its own, never taking the other's nodes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/cluster_fixture.h"
#include "support/netns_segment.h"

namespace ferry::testing {
namespace {

using std::chrono::seconds;

constexpr int kNodes = 4;

class ClusterMcastDiscovery : public ClusterFixture {
 protected:
  void SetUp() override {
    if (!net_.ok()) GTEST_SKIP() << net_.why() << "; multicast discovery needs a segment of hosts";
  }
  void TearDown() override {
    for (auto& n : nodes_) n->Kill();
  }
  static std::string NodeName(int i) { return "ferry" + std::to_string(i) + "@" + NetnsSegment::Ip(i); }
  NodeProcess& Node(int i, const std::string& cookie) {
    const std::string ip = NetnsSegment::Ip(i);
    return AddNamed(NodeName(i), cookie,
                    "[cluster]\nlisten = " + ip +
                        ":4370\ndiscovery = mcast\n[cluster.mcast]\naddr = 239.192.0.1\n"
                        "ports = 4369,4370\niface = " + ip + "\nttl = 1\n",
                    net_.Exec(i));
  }

  NetnsSegment net_{kNodes};
};

TEST_F(ClusterMcastDiscovery, TwoClustersOnOneSegmentFormApartByCookie) {
  Node(2, "alpha");
  Node(4, "beta");
  Node(1, "alpha");
  Node(3, "beta");
  EXPECT_TRUE(StatusIs(N(1), StatusLine({NodeName(1), NodeName(2)}), seconds(40)));
  EXPECT_TRUE(StatusIs(N(3), StatusLine({NodeName(1), NodeName(2)})));
  EXPECT_TRUE(StatusIs(N(2), StatusLine({NodeName(3), NodeName(4)}), seconds(40)));
  EXPECT_TRUE(StatusIs(N(4), StatusLine({NodeName(3), NodeName(4)})));
  // It heard only its own cluster: the other cookie's datagrams are dropped.
  // (ferry4 joined ferry3 after finding it; ferry3 may have been joined
  // before its own first round, with nothing found.)
  std::optional<Json> d;
  EXPECT_TRUE(WaitFor(
      [&] {
        d = ParseJson(Ctl(N(4), {"cluster", "discovery", "status", "--json"}).out);
        return d && !(*d)["found"].empty();
      },
      seconds(20), "a discovery round on ferry4"));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ((*d)["strategy"], "mcast");
  EXPECT_EQ((*d)["found"].size(), 1u) << d->dump();
}

}  // namespace
}  // namespace ferry::testing
