// Which routed messages a route hook is given (core/broker.h, RouteHook):
// a message another node forwarded only to hooks that take forwarded ones
// (a bridge of scope cluster), a message for this node alone
// (Message::node_local) to no hook that carries messages to other nodes,
// and the filters of a hook that takes forwarded messages are routes of
// this node. An in-process broker with one loopback listener and no
// persistence.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "broker_fixture.h"
#include "core/broker.h"

namespace ferry::core {
namespace {

class Hook : public RouteHook {
 public:
  Hook(bool takes_forwarded, bool carries_to_peers)
      : takes_forwarded_(takes_forwarded), carries_to_peers_(carries_to_peers) {}
  void OnRoute(const MessagePtr& m, std::span<const uint32_t>, RouteCompletion) override {
    std::lock_guard lock(mu_);
    seen_.push_back(m->payload);
  }
  bool TakesForwarded() const override { return takes_forwarded_; }
  bool CarriesToPeers() const override { return carries_to_peers_; }
  std::vector<std::string> Take() {
    std::lock_guard lock(mu_);
    return std::exchange(seen_, {});
  }

 private:
  const bool takes_forwarded_;
  const bool carries_to_peers_;
  std::mutex mu_;
  std::vector<std::string> seen_;
};

class Routes : public RouteObserver {
 public:
  void OnRouteEvent(const RouteEvent& e) override {
    std::lock_guard lock(mu_);
    seen_.push_back(e);
  }
  std::vector<RouteEvent> Take() {
    std::lock_guard lock(mu_);
    return std::exchange(seen_, {});
  }

 private:
  std::mutex mu_;
  std::vector<RouteEvent> seen_;
};

class Retained : public RetainedObserver {
 public:
  void OnRetained(const MessagePtr& m) override {
    std::lock_guard lock(mu_);
    seen_.push_back(m->payload);
  }
  std::vector<std::string> Take() {
    std::lock_guard lock(mu_);
    return std::exchange(seen_, {});
  }

 private:
  std::mutex mu_;
  std::vector<std::string> seen_;
};

MessagePtr Msg(const std::string& payload, bool node_local = false, bool retain = false) {
  auto m = std::make_shared<ferry::core::Message>();
  m->topic = "t/x";
  m->payload = payload;
  m->node_local = node_local;
  m->retain = retain;
  m->received_at_ms = 1;
  return m;
}

class BrokerHookScopeTest : public BrokerFixture {
 protected:
  void Forwarded(MessagePtr m) {
    bool done = false;
    broker_->PublishForwarded(std::move(m), ForwardedDelivery{}, [&](ReasonCode) { done = true; });
    EXPECT_TRUE(done);
  }

  // A bridge of scope node, one of scope cluster, and the cluster's hook
  // of a peer's routes.
  std::shared_ptr<Hook> node_ = std::make_shared<Hook>(false, false);
  std::shared_ptr<Hook> cluster_wide_ = std::make_shared<Hook>(true, false);
  std::shared_ptr<Hook> peer_ = std::make_shared<Hook>(false, true);
};

TEST_F(BrokerHookScopeTest, ForwardedAndNodeLocalMessagesReachOnlyTheHooksMeantForThem) {
  ASSERT_TRUE(broker_->AddHookFilter("$bridge:a", "t/#", 0, node_).ok());
  ASSERT_TRUE(broker_->AddHookFilter("$bridge:b", "t/#", 0, cluster_wide_).ok());
  ASSERT_TRUE(broker_->AddHookFilter("\x01peer", "t/#", 0, peer_).ok());

  Publish(Msg("here"));
  EXPECT_EQ(node_->Take(), std::vector<std::string>{"here"});
  EXPECT_EQ(cluster_wide_->Take(), std::vector<std::string>{"here"});
  EXPECT_EQ(peer_->Take(), std::vector<std::string>{"here"});

  // Published on another node, which gave it to its own bridges.
  Forwarded(Msg("there"));
  EXPECT_TRUE(node_->Take().empty());
  EXPECT_EQ(cluster_wide_->Take(), std::vector<std::string>{"there"});
  EXPECT_TRUE(peer_->Take().empty());

  // Pulled down by a bridge on every node: this node's subscribers and
  // hooks, not the other nodes.
  Publish(Msg("mine", /*node_local=*/true));
  EXPECT_EQ(node_->Take(), std::vector<std::string>{"mine"});
  EXPECT_EQ(cluster_wide_->Take(), std::vector<std::string>{"mine"});
  EXPECT_TRUE(peer_->Take().empty());
}

TEST_F(BrokerHookScopeTest, AHookThatTakesForwardedMessagesMakesItsFiltersRoutes) {
  auto routes = std::make_shared<Routes>();
  EXPECT_TRUE(broker_->WatchRoutes(routes).empty());
  ASSERT_TRUE(broker_->AddHookFilter("$bridge:a", "a/#", 0, node_).ok());
  ASSERT_TRUE(broker_->AddHookFilter("$bridge:b", "b/#", 0, cluster_wide_).ok());
  auto added = routes->Take();
  ASSERT_EQ(added.size(), 1u);
  EXPECT_EQ(added[0].route, "b/#");
  EXPECT_TRUE(added[0].present);
  broker_->RemoveHookFilter("$bridge:a", "a/#", 0);
  broker_->RemoveHookFilter("$bridge:b", "b/#", 0);
  auto removed = routes->Take();
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].route, "b/#");
  EXPECT_FALSE(removed[0].present);
  broker_->WatchRoutes(nullptr);
}

TEST_F(BrokerHookScopeTest, ANodeLocalRetainedMessageIsNotReplicated) {
  auto retained = std::make_shared<Retained>();
  broker_->WatchRetained("\x01peer", retained);
  Publish(Msg("everywhere", false, /*retain=*/true));
  Publish(Msg("here only", /*node_local=*/true, /*retain=*/true));
  EXPECT_EQ(retained->Take(), std::vector<std::string>{"everywhere"});
  broker_->WatchRetained("\x01peer", nullptr);
}

}  // namespace
}  // namespace ferry::core
