#include "core/router.h"

#include <gtest/gtest.h>

#include <map>

namespace ferry::core {
namespace {

class RouterTest : public ::testing::Test {
 protected:
  void Sub(const std::string& client, const std::string& filter, uint8_t qos = 0,
           uint32_t sub_id = 0, bool no_local = false) {
    SubscriptionOptions o;
    o.qos = qos;
    o.subscription_id = sub_id;
    o.no_local = no_local;
    router_.Subscribe(client, filter, o);
  }
  std::vector<RouteTarget> Match(const std::string& topic, const std::string& publisher = "") {
    std::vector<RouteTarget> out;
    router_.Match(topic, publisher, out);
    return out;
  }
  static MessagePtr Retained(const std::string& topic, const std::string& payload,
                             uint64_t expiry_at_ms = 0) {
    auto m = std::make_shared<Message>();
    m->topic = topic;
    m->payload = payload;
    m->retain = true;
    m->expiry_at_ms = expiry_at_ms;
    return m;
  }
  Router router_;
};

TEST_F(RouterTest, OverlappingSubscriptionsGiveOneTargetAtHighestQosWithEveryIdentifier) {
  // [MQTT-3.3.4-2] [MQTT-3.3.4-3]
  Sub("c1", "a/#", 0, 1);
  Sub("c1", "a/+", 2, 2);
  Sub("c1", "a/b", 1, 0);
  auto t = Match("a/b");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].qos, 2);
  EXPECT_EQ(t[0].subscription_ids, (std::vector<uint32_t>{1, 2}));
}

TEST_F(RouterTest, NoLocalSkipsThePublisherOnly) {
  Sub("c1", "a", 1, 0, true);
  Sub("c2", "a", 1, 0, true);
  auto t = Match("a", "c1");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].client_id, "c2");
}

TEST_F(RouterTest, SharedGroupDeliversToOneMemberRoundRobin) {
  Sub("c1", "$share/g/s/+");
  Sub("c2", "$share/g/s/+");
  Sub("c3", "$queue/s/x");
  std::map<std::string, int> counts;
  for (int i = 0; i < 10; ++i) {
    auto t = Match("s/x");
    ASSERT_EQ(t.size(), 2u);  // one of group g, plus the $queue member
    for (auto& x : t) counts[x.client_id]++;
  }
  EXPECT_EQ(counts["c1"], 5);
  EXPECT_EQ(counts["c2"], 5);
  EXPECT_EQ(counts["c3"], 10);
}

TEST_F(RouterTest, UnsubscribeRemovesSharedMemberAndEmptyGroup) {
  Sub("c1", "$share/g/t");
  EXPECT_EQ(router_.subscription_count(), 1u);
  EXPECT_TRUE(router_.Unsubscribe("c1", "$share/g/t"));
  EXPECT_FALSE(router_.Unsubscribe("c1", "$share/g/t"));
  EXPECT_TRUE(Match("t").empty());
  EXPECT_EQ(router_.subscription_count(), 0u);
}

TEST_F(RouterTest, ResubscribeReplacesOptions) {
  Sub("c1", "t", 0);
  Sub("c1", "t", 2);
  EXPECT_EQ(router_.subscription_count(), 1u);
  EXPECT_EQ(Match("t")[0].qos, 2);
}

TEST_F(RouterTest, RetainedEmptyPayloadDeletes) {
  // [MQTT-3.3.1-6] [MQTT-3.3.1-7]
  EXPECT_EQ(router_.SetRetained(Retained("a/b", "x")), 1);
  EXPECT_EQ(router_.SetRetained(Retained("a/b", "y")), 0);
  EXPECT_EQ(router_.retained_count(), 1u);
  EXPECT_EQ(router_.MatchRetained("a/+", 0)[0]->payload, "y");
  EXPECT_EQ(router_.SetRetained(Retained("a/b", "")), -1);
  EXPECT_TRUE(router_.MatchRetained("#", 0).empty());
}

TEST_F(RouterTest, ReplicatedRetainedMessagesTheLastWriterWins) {
  auto at = [](const std::string& payload, uint64_t received_at_ms) {
    auto m = std::make_shared<Message>(*Retained("r/t", payload));
    m->received_at_ms = received_at_ms;
    return MessagePtr(m);
  };
  EXPECT_TRUE(router_.SetRetainedIfNewer(at("b", 200)));
  EXPECT_FALSE(router_.SetRetainedIfNewer(at("a", 100)));  // older: ignored
  ASSERT_EQ(router_.MatchRetained("r/t", 0).size(), 1u);
  EXPECT_EQ(router_.MatchRetained("r/t", 0)[0]->payload, "b");
  EXPECT_TRUE(router_.SetRetainedIfNewer(at("c", 200)));  // a tie: the newcomer
  EXPECT_FALSE(router_.SetRetainedIfNewer(at("", 150)));  // an older delete
  EXPECT_EQ(router_.MatchRetained("r/t", 0)[0]->payload, "c");
  EXPECT_TRUE(router_.SetRetainedIfNewer(at("", 300)));
  EXPECT_TRUE(router_.MatchRetained("r/t", 0).empty());
  EXPECT_FALSE(router_.SetRetainedIfNewer(at("", 400)));  // nothing left to delete
}

TEST_F(RouterTest, ExpiredRetainedMessagesAreNotDeliveredAndAreExpired) {
  router_.SetRetained(Retained("a", "x", 1000));
  router_.SetRetained(Retained("b", "y"));
  EXPECT_EQ(router_.MatchRetained("#", 999).size(), 2u);
  EXPECT_EQ(router_.MatchRetained("#", 1000).size(), 1u);
  EXPECT_EQ(router_.ExpireRetained(1000), (std::vector<std::string>{"a"}));
  EXPECT_EQ(router_.retained_count(), 1u);
}

TEST_F(RouterTest, DollarTopicsAreNotMatchedByLeadingWildcards) {
  // [MQTT-4.7.2-1]
  Sub("c1", "#");
  Sub("c2", "+/x");
  Sub("c3", "$SYS/#");
  auto t = Match("$SYS/x");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].client_id, "c3");
}

}  // namespace
}  // namespace ferry::core

namespace ferry::core {
namespace {

std::vector<std::pair<std::string, size_t>> AllRoutes(const Router& r, size_t page) {
  std::vector<std::pair<std::string, size_t>> out;
  std::string after;
  for (;;) {
    auto routes = r.Routes(after, page);
    for (const auto& route : routes) out.emplace_back(route.filter, route.subscribers);
    if (routes.size() < page) return out;
    after = routes.back().filter;
  }
}

TEST(RouterRoutes, PagesThroughFiltersInOrderWithSubscriberCounts) {
  Router r;
  SubscriptionOptions o;
  r.Subscribe("c1", "b/+", o);
  r.Subscribe("c2", "b/+", o);
  r.Subscribe("c1", "a/#", o);
  r.Subscribe("c3", "$share/g/jobs", o);
  r.Subscribe("c4", "$share/g/jobs", o);
  r.Subscribe("c1", "c", o);
  const std::vector<std::pair<std::string, size_t>> expected{
      {"$share/g/jobs", 2}, {"a/#", 1}, {"b/+", 2}, {"c", 1}};
  EXPECT_EQ(AllRoutes(r, 1), expected);
  EXPECT_EQ(AllRoutes(r, 3), expected);
  EXPECT_EQ(r.route_count(), 4u);
  EXPECT_EQ(r.route_count_max(), 4u);

  r.Unsubscribe("c1", "b/+");
  r.Unsubscribe("c1", "a/#");
  r.Unsubscribe("c3", "$share/g/jobs");
  r.Unsubscribe("c4", "$share/g/jobs");
  EXPECT_EQ(AllRoutes(r, 2), (std::vector<std::pair<std::string, size_t>>{{"b/+", 1}, {"c", 1}}));
  EXPECT_EQ(r.route_count(), 2u);
  EXPECT_EQ(r.route_count_max(), 4u);  // the high-water mark stays
  EXPECT_EQ(r.subscription_count_max(), 6u);
}

}  // namespace
}  // namespace ferry::core
