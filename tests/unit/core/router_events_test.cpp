// What the router tells a route observer (core/route_events.h), and route
// hook filters added and removed in bulk: the two seams a cluster uses to
// publish this node's routes and to hold its peers'.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/broker.h"
#include "core/router.h"

namespace ferry::core {
namespace {

class Recorder : public RouteObserver {
 public:
  explicit Recorder(Router* router = nullptr) : router_(router) {}
  void OnRouteEvent(const RouteEvent& e) override {
    // Outside the router's lock: reading the router here must not deadlock.
    if (router_ != nullptr) (void)router_->route_count();
    std::lock_guard lock(mu_);
    events_.push_back(e);
  }
  std::vector<RouteEvent> Take() {
    std::lock_guard lock(mu_);
    return std::exchange(events_, {});
  }

 private:
  Router* router_;
  std::mutex mu_;
  std::vector<RouteEvent> events_;
};

SubscriptionOptions Qos(uint8_t qos) {
  SubscriptionOptions o;
  o.qos = qos;
  return o;
}

class RouterEventsTest : public ::testing::Test {
 protected:
  Router router_;
  std::shared_ptr<Recorder> seen_ = std::make_shared<Recorder>(&router_);
};

TEST_F(RouterEventsTest, APlainRouteIsNewsWithItsFirstSubscriberAndItsLast) {
  EXPECT_TRUE(router_.WatchRoutes(seen_).empty());
  router_.Subscribe("c1", "a/+", Qos(1));
  router_.Subscribe("c2", "a/+", Qos(0));
  router_.Subscribe("c1", "a/+", Qos(2));  // new options, same route
  router_.Unsubscribe("c1", "a/+");
  router_.Unsubscribe("c9", "a/+");  // never subscribed
  EXPECT_EQ(seen_->Take(), (std::vector<RouteEvent>{{1, "a/+", true, 0}}));
  router_.Unsubscribe("c2", "a/+");
  EXPECT_EQ(seen_->Take(), (std::vector<RouteEvent>{{2, "a/+", false, 0}}));
}

TEST_F(RouterEventsTest, ASharedGroupReportsEveryMemberCount) {
  router_.WatchRoutes(seen_);
  router_.Subscribe("c1", "$share/g/x/#", Qos(1));
  router_.Subscribe("c2", "$share/g/x/#", Qos(1));
  router_.Subscribe("c2", "$share/g/x/#", Qos(2));  // replaced, no news
  router_.Unsubscribe("c1", "$share/g/x/#");
  router_.Unsubscribe("c2", "$share/g/x/#");
  EXPECT_EQ(seen_->Take(), (std::vector<RouteEvent>{{1, "$share/g/x/#", true, 1},
                                                    {2, "$share/g/x/#", true, 2},
                                                    {3, "$share/g/x/#", true, 1},
                                                    {4, "$share/g/x/#", false, 0}}));
}

TEST_F(RouterEventsTest, TheSnapshotHoldsTheRoutesAndEventsContinueAfterIt) {
  router_.Subscribe("c1", "b", Qos(0));
  router_.Subscribe("c2", "b", Qos(0));
  router_.Subscribe("c1", "a/#", Qos(0));
  router_.Subscribe("c1", "$share/g/s", Qos(0));
  router_.Subscribe("c2", "$share/g/s", Qos(0));
  const std::vector<RouteEvent> snapshot = router_.WatchRoutes(seen_);
  EXPECT_EQ(snapshot, (std::vector<RouteEvent>{
                          {0, "$share/g/s", true, 2}, {0, "a/#", true, 0}, {0, "b", true, 0}}));
  router_.Unsubscribe("c1", "a/#");
  const std::vector<RouteEvent> after = seen_->Take();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_GT(after[0].seq, snapshot[0].seq);
  EXPECT_FALSE(after[0].present);
}

TEST_F(RouterEventsTest, NoEventsOnceTheObserverIsGone) {
  router_.WatchRoutes(seen_);
  router_.WatchRoutes(nullptr);
  router_.Subscribe("c1", "a", Qos(0));
  EXPECT_TRUE(seen_->Take().empty());
}

TEST_F(RouterEventsTest, UnderConcurrentChangesTheHighestSeqPerRouteIsTheTruth) {
  router_.WatchRoutes(seen_);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t] {
      const std::string client = "c" + std::to_string(t);
      for (int i = 0; i < 2000; ++i) {
        const std::string filter = "r/" + std::to_string(i % 7);
        const std::string shared = "$share/g/" + std::to_string(i % 3);
        if ((i + t) % 2 == 0) {
          router_.Subscribe(client, filter, Qos(0));
          router_.Subscribe(client, shared, Qos(0));
        } else {
          router_.Unsubscribe(client, filter);
          router_.Unsubscribe(client, shared);
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  std::map<std::string, RouteEvent> latest;
  for (const RouteEvent& e : seen_->Take()) {
    auto [it, added] = latest.emplace(e.route, e);
    if (!added && e.seq > it->second.seq) it->second = e;
  }
  std::map<std::string, uint32_t> expected;  // route -> shared members (0 plain)
  for (const RouteEvent& e : router_.WatchRoutes(nullptr)) expected[e.route] = e.shared_members;
  for (const auto& [route, e] : latest) {
    if (!e.present) {
      EXPECT_FALSE(expected.contains(route)) << route;
      continue;
    }
    ASSERT_TRUE(expected.contains(route)) << route;
    EXPECT_EQ(e.shared_members, expected[route]) << route;
  }
  for (const auto& [route, members] : expected) {
    EXPECT_TRUE(latest.contains(route) && latest[route].present) << route;
  }
}

class NullHook : public RouteHook {
 public:
  void OnRoute(const MessagePtr&, std::span<const uint32_t>, RouteCompletion) override {}
};

TEST(RouterBulkHooks, AddAndRemoveManyFiltersOfOneOwnerAndTag) {
  Router router;
  auto hook = std::make_shared<NullHook>();
  std::vector<std::string> filters;
  for (int i = 0; i < 1000; ++i) filters.push_back("n/" + std::to_string(i) + "/#");
  filters.push_back("n/0/#");  // twice: counted once
  EXPECT_EQ(router.AddHookFilters("$cluster", 2, filters, hook), 1000u);
  EXPECT_EQ(router.AddHookFilters("$cluster", 3, std::vector<std::string>{"n/5/#"}, hook), 1u);
  EXPECT_EQ(router.hook_filter_count(), 1001u);

  std::vector<RouteTarget> clients;
  std::vector<HookTarget> hooks;
  router.Match("n/5/x", "", clients, hooks);
  ASSERT_EQ(hooks.size(), 1u);  // one target per hook, with both tags
  std::sort(hooks[0].tags.begin(), hooks[0].tags.end());
  EXPECT_EQ(hooks[0].tags, (std::vector<uint32_t>{2, 3}));

  EXPECT_EQ(router.RemoveHookFilters("$cluster", 2, filters), 1000u);
  EXPECT_EQ(router.hook_filter_count(), 1u);
  hooks.clear();
  router.Match("n/7/x", "", clients, hooks);
  EXPECT_TRUE(hooks.empty());
}

}  // namespace
}  // namespace ferry::core
