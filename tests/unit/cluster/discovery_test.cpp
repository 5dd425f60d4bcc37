// Discovery's order of attempts, the static backend, and the join request's
// probe flag on the wire.
#include "cluster/discovery.h"

#include <gtest/gtest.h>

#include <span>
#include <string>
#include <vector>

#include "cluster/cluster_messages.h"
#include "core/loop.h"

namespace ferry::cluster {
namespace {

TEST(DiscoveryOrder, LowerNamesOutrightThenHigherOnlyIntoAClusterSelfAndDuplicatesDropped) {
  std::vector<std::string> bad;
  auto order = DiscoveryOrder({"ferry3@h", "ferry1@h:4400", "ferry2@h", "ferry4@h", "ferry1@h",
                               "not a node", "ferry2@h"},
                              "ferry2@h", &bad);
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(order[0].target, "ferry1@h:4400");  // sorts first; joined outright
  EXPECT_FALSE(order[0].only_if_clustered);
  EXPECT_EQ(order[1].target, "ferry3@h");  // sorts after: only if in a cluster
  EXPECT_TRUE(order[1].only_if_clustered);
  EXPECT_EQ(order[2].target, "ferry4@h");
  EXPECT_TRUE(order[2].only_if_clustered);
  EXPECT_EQ(bad, (std::vector<std::string>{"not a node"}));
  // The first-named node joins nobody outright.
  order = DiscoveryOrder({"ferry2@h", "ferry1@h"}, "ferry1@h");
  ASSERT_EQ(order.size(), 1u);
  EXPECT_TRUE(order[0].only_if_clustered);
  EXPECT_TRUE(DiscoveryOrder({}, "ferry1@h").empty());
}

TEST(StaticDiscovery, FindsItsSeedsOnTheLoop) {
  core::Loop loop;
  loop.BindToCurrentThread();
  auto backend = MakeStaticDiscovery({"a@h", "b@h"});
  EXPECT_EQ(backend->strategy(), "static");
  std::vector<std::string> found;
  backend->Find(loop, [&](Result<std::vector<std::string>> r) {
    ASSERT_TRUE(r.ok());
    found = *r;
    loop.Stop();
  });
  EXPECT_TRUE(found.empty());  // never inside Find
  loop.Run();
  EXPECT_EQ(found, (std::vector<std::string>{"a@h", "b@h"}));
}

TEST(JoinRequestPayload, CarriesTheProbeFlag) {
  JoinRequest probe{MemberRecord{"a@h", "h", 4371, 9, 1000}, 5, true};
  const std::string bytes = EncodeJoinRequest(probe);
  auto back =
      ParseJoinRequest(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, probe);
  std::string bad = bytes;
  bad.back() = 2;  // an unknown flag
  EXPECT_FALSE(
      ParseJoinRequest(std::span(reinterpret_cast<const uint8_t*>(bad.data()), bad.size())).ok());
}

}  // namespace
}  // namespace ferry::cluster
