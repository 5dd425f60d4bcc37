// Route hook filters in the router: matched in the same lookup as client
// subscriptions, one target per hook with the tags of every matching filter,
// and No Local for a hook's own injections (core/broker.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "core/broker.h"
#include "core/router.h"

namespace ferry::core {
namespace {

class NullHook : public RouteHook {
 public:
  void OnRoute(const MessagePtr&, std::span<const uint32_t>, RouteCompletion) override {}
};

class RouterHookTest : public ::testing::Test {
 protected:
  std::vector<HookTarget> Hooks(const std::string& topic, const std::string& publisher = "") {
    std::vector<RouteTarget> clients;
    std::vector<HookTarget> hooks;
    router_.Match(topic, publisher, clients, hooks);
    for (HookTarget& h : hooks) std::sort(h.tags.begin(), h.tags.end());
    return hooks;
  }
  Router router_;
  std::shared_ptr<RouteHook> a_ = std::make_shared<NullHook>();
  std::shared_ptr<RouteHook> b_ = std::make_shared<NullHook>();
};

TEST_F(RouterHookTest, OneTargetPerHookWithEveryMatchingTag) {
  router_.AddHookFilter("$bridge:a", "sensor/#", 1, a_);
  router_.AddHookFilter("$bridge:a", "sensor/+/temp", 2, a_);
  router_.AddHookFilter("$bridge:a", "other/#", 3, a_);
  router_.AddHookFilter("$bridge:b", "#", 7, b_);
  auto hooks = Hooks("sensor/1/temp");
  ASSERT_EQ(hooks.size(), 2u);
  auto a = std::find_if(hooks.begin(), hooks.end(), [&](auto& h) { return h.hook == a_; });
  ASSERT_NE(a, hooks.end());
  EXPECT_EQ(a->tags, (std::vector<uint32_t>{1, 2}));
  auto b = std::find_if(hooks.begin(), hooks.end(), [&](auto& h) { return h.hook == b_; });
  ASSERT_NE(b, hooks.end());
  EXPECT_EQ(b->tags, (std::vector<uint32_t>{7}));
}

TEST_F(RouterHookTest, HookFiltersAreNotClientSubscriptions) {
  router_.AddHookFilter("$bridge:a", "a/b", 1, a_);
  std::vector<RouteTarget> clients;
  std::vector<HookTarget> hooks;
  router_.Match("a/b", "", clients, hooks);
  EXPECT_TRUE(clients.empty());
  EXPECT_EQ(hooks.size(), 1u);
  EXPECT_EQ(router_.subscription_count(), 0u);
  EXPECT_EQ(router_.hook_filter_count(), 1u);
}

TEST_F(RouterHookTest, AHookDoesNotGetWhatItsOwnerInjected) {
  router_.AddHookFilter("$bridge:a", "a/#", 1, a_);
  router_.AddHookFilter("$bridge:b", "a/#", 1, b_);
  auto hooks = Hooks("a/x", "$bridge:a");
  ASSERT_EQ(hooks.size(), 1u);
  EXPECT_EQ(hooks[0].hook, b_);
}

TEST_F(RouterHookTest, AnInjectedMessageKeepsItsPublisherAndSkipsTheInjectorsHooks) {
  // The cluster injects what a peer forwarded under the real publisher's
  // client id: its own hooks never get it (no forwarding on), others do.
  router_.AddHookFilter("\x01cluster", "a/#", 1, a_);
  router_.AddHookFilter("$bridge:b", "a/#", 1, b_);
  router_.Subscribe("watcher", "a/#", SubscriptionOptions{.qos = 1, .no_local = true});
  std::vector<RouteTarget> clients;
  std::vector<HookTarget> hooks;
  router_.Match("a/x", "watcher", clients, hooks, "\x01cluster");
  ASSERT_EQ(hooks.size(), 1u);
  EXPECT_EQ(hooks[0].hook, b_);
  EXPECT_TRUE(clients.empty());  // No Local still holds for the real publisher
  hooks.clear();
  router_.Match("a/x", "someone", clients, hooks, "\x01cluster");
  EXPECT_EQ(clients.size(), 1u);
}

TEST_F(RouterHookTest, ASharedGroupPrefersLocalMembersThenRemoteOnesByTheirCounts) {
  router_.SetSharedHook("\x01cluster", "$share/g/s/#", 1, 1, a_);
  router_.SetSharedHook("\x01cluster", "$share/g/s/#", 2, 3, a_);
  std::map<uint32_t, int> picks;
  for (int i = 0; i < 400; ++i) {
    std::vector<RouteTarget> clients;
    std::vector<HookTarget> hooks;
    router_.Match("s/x", MatchScope{"pub", "", true}, clients, hooks);
    ASSERT_TRUE(clients.empty());
    ASSERT_EQ(hooks.size(), 1u);
    EXPECT_TRUE(hooks[0].tags.empty());
    ASSERT_EQ(hooks[0].shared.size(), 1u);
    EXPECT_EQ(hooks[0].shared[0].group, "$share/g/s/#");
    ++picks[hooks[0].shared[0].tag];
  }
  EXPECT_EQ(picks[1], 100);  // one member there
  EXPECT_EQ(picks[2], 300);  // three members there

  // A local member takes every message; the remote ones none.
  router_.Subscribe("local", "$share/g/s/#", SubscriptionOptions{.qos = 1});
  std::vector<RouteTarget> clients;
  std::vector<HookTarget> hooks;
  router_.Match("s/x", MatchScope{"pub", "", true}, clients, hooks);
  ASSERT_EQ(clients.size(), 1u);
  EXPECT_EQ(clients[0].client_id, "local");
  EXPECT_TRUE(hooks.empty());

  // A message another node forwarded skips the groups; a pick names them.
  clients.clear();
  router_.Match("s/x", MatchScope{"pub", "\x01cluster", false}, clients, hooks);
  EXPECT_TRUE(clients.empty());
  EXPECT_TRUE(router_.PickShared("$share/g/s/#", "pub", clients));
  ASSERT_EQ(clients.size(), 1u);
  EXPECT_FALSE(router_.PickShared("$share/other/s/#", "pub", clients));

  // Without local members and with the remote ones gone, nothing matches.
  router_.Unsubscribe("local", "$share/g/s/#");
  router_.SetSharedHook("\x01cluster", "$share/g/s/#", 1, 0, a_);
  router_.SetSharedHook("\x01cluster", "$share/g/s/#", 2, 0, a_);
  clients.clear();
  router_.Match("s/x", MatchScope{"pub", "", true}, clients, hooks);
  EXPECT_TRUE(clients.empty());
  EXPECT_TRUE(hooks.empty());
}

TEST_F(RouterHookTest, WildcardsDoNotMatchDollarTopics) {
  // [MQTT-4.7.2-1] holds for hooks as for clients.
  router_.AddHookFilter("$bridge:a", "#", 1, a_);
  EXPECT_TRUE(Hooks("$SYS/brokers/x/uptime").empty());
}

TEST_F(RouterHookTest, RemovedFilterNoLongerMatchesAndTagsAreDistinct) {
  router_.AddHookFilter("$bridge:a", "a/#", 1, a_);
  router_.AddHookFilter("$bridge:a", "a/#", 2, a_);
  EXPECT_TRUE(router_.RemoveHookFilter("$bridge:a", "a/#", 1));
  EXPECT_FALSE(router_.RemoveHookFilter("$bridge:a", "a/#", 1));
  auto hooks = Hooks("a/b");
  ASSERT_EQ(hooks.size(), 1u);
  EXPECT_EQ(hooks[0].tags, (std::vector<uint32_t>{2}));
  EXPECT_TRUE(router_.RemoveHookFilter("$bridge:a", "a/#", 2));
  EXPECT_TRUE(Hooks("a/b").empty());
}

TEST(RouteCompletion, CompletesOnceWhetherCalledOrDropped) {
  int calls = 0;
  {
    RouteCompletion c([&] { ++calls; });
    EXPECT_TRUE(c.waited_on());
    c.Complete();
    c.Complete();
  }
  EXPECT_EQ(calls, 1);
  {
    RouteCompletion dropped([&] { ++calls; });
    RouteCompletion moved = std::move(dropped);
    EXPECT_FALSE(dropped.waited_on());
  }
  EXPECT_EQ(calls, 2);
  RouteCompletion none;
  EXPECT_FALSE(none.waited_on());
}

TEST(NodePath, ParsesFormatsAndReplacesTheProperty) {
  EXPECT_EQ(ParseNodePath("a@h,b@h"), (std::vector<std::string>{"a@h", "b@h"}));
  EXPECT_EQ(ParseNodePath(",a@h,,"), (std::vector<std::string>{"a@h"}));
  EXPECT_TRUE(ParseNodePath("").empty());
  EXPECT_EQ(FormatNodePath({"a@h", "b@h"}), "a@h,b@h");

  Properties props;
  props.user_properties = {{"k", "v"}, {"ferry-path", "x@h"}, {"k2", "v2"}};
  EXPECT_EQ(NodePathOf(props), (std::vector<std::string>{"x@h"}));
  SetNodePath(props, {"x@h", "y@h"});
  EXPECT_EQ(props.user_properties,
            (UserProperties{{"k", "v"}, {"k2", "v2"}, {"ferry-path", "x@h,y@h"}}));
  SetNodePath(props, {});
  EXPECT_EQ(props.user_properties, (UserProperties{{"k", "v"}, {"k2", "v2"}}));
  EXPECT_TRUE(NodePathOf(props).empty());
}

}  // namespace
}  // namespace ferry::core
