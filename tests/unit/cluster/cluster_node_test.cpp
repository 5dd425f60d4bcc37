// Several ClusterNodes in one process on 127.0.0.1, each on its own cluster
// thread with its own data_dir and a fake router as its route source: join,
// leave, force-leave, restart, wrong cookie, and route streams between them.
// Conditions that become true over the links are polled with a bounded wait.
#include "cluster/cluster_node.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ferry::cluster {
namespace {

using namespace std::chrono_literals;

// Plays the router: routes added and removed by the test, reported to the
// observer the ClusterNode sets, as the router's route events are.
class FakeRouter {
 public:
  std::vector<core::RouteEvent> Watch(std::shared_ptr<core::RouteObserver> observer) {
    std::lock_guard lock(mu_);
    observer_ = std::move(observer);
    std::vector<core::RouteEvent> snapshot;
    for (const auto& [route, members] : routes_) snapshot.push_back({seq_, route, true, members});
    return snapshot;
  }
  void Set(const std::string& route, bool present) {
    std::shared_ptr<core::RouteObserver> observer;
    core::RouteEvent e;
    {
      std::lock_guard lock(mu_);
      if (present) {
        routes_[route] = 0;
      } else {
        routes_.erase(route);
      }
      e = core::RouteEvent{++seq_, route, present, 0};
      observer = observer_;
    }
    if (observer) observer->OnRouteEvent(e);
  }

 private:
  std::mutex mu_;
  std::shared_ptr<core::RouteObserver> observer_;
  std::map<std::string, uint32_t> routes_;
  uint64_t seq_ = 0;
};

template <typename T>
T Await(std::future<T> f) {
  EXPECT_EQ(f.wait_for(20s), std::future_status::ready) << "no answer from the cluster thread";
  return f.get();
}

class ClusterNodeTest : public ::testing::Test {
 protected:
  struct Member {
    std::string name;
    std::string data_dir;
    std::string cookie = "secret";
    FakeRouter router;
    std::unique_ptr<ClusterNode> node;
  };

  void SetUp() override {
    char tmpl[] = "/tmp/ferry-cluster-node-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    for (auto& [name, m] : members_) m->node.reset();
    std::filesystem::remove_all(root_);
  }

  // Creates (the first time) and starts the node `name`@127.0.0.1.
  Member& Start(const std::string& name, const std::string& cookie = "secret",
                size_t link_cap = 64u << 20) {
    auto& m = members_[name];
    if (!m) {
      m = std::make_unique<Member>();
      m->name = name + "@127.0.0.1";
      m->data_dir = root_ + "/" + name;
      std::filesystem::create_directory(m->data_dir);
    }
    m->cookie = cookie;
    ClusterOptions o;
    o.node = m->name;
    o.cookie = m->cookie;
    o.listen_host = "127.0.0.1";
    o.data_dir = m->data_dir;
    o.redial_min_ms = 50;
    o.redial_max_ms = 200;
    o.link.heartbeat_ms = 100;
    o.link.max_buffered_bytes = link_cap;
    auto node = ClusterNode::Create(
        o, [r = &m->router](std::shared_ptr<core::RouteObserver> obs) { return r->Watch(obs); });
    EXPECT_TRUE(node.ok()) << node.status().ToString();
    m->node = std::move(node).value();
    EXPECT_TRUE(m->node->Start().ok());
    return *m;
  }
  void Stop(const std::string& name) { members_.at(name)->node.reset(); }

  std::string Target(const Member& m) { return m.name + ":" + std::to_string(m.node->port()); }
  JoinResult Join(Member& m, const Member& target) {
    std::promise<JoinResult> p;
    m.node->Join(Target(target), [&](JoinResult r) { p.set_value(std::move(r)); });
    return Await(p.get_future());
  }
  Status Leave(Member& m) {
    std::promise<Status> p;
    m.node->Leave([&](Status s) { p.set_value(std::move(s)); });
    return Await(p.get_future());
  }
  Status ForceLeave(Member& m, const Member& gone) {
    std::promise<Status> p;
    m.node->ForceLeave(gone.name, [&](Status s) { p.set_value(std::move(s)); });
    return Await(p.get_future());
  }
  ClusterStatus StatusOf(Member& m) {
    std::promise<ClusterStatus> p;
    m.node->GetStatus([&](ClusterStatus s) { p.set_value(std::move(s)); });
    return Await(p.get_future());
  }
  std::vector<std::string> RoutesAt(Member& at, const Member& origin) {
    std::promise<std::vector<RouteEntry>> p;
    at.node->GetRoutes(origin.name, [&](std::vector<RouteEntry> r) { p.set_value(std::move(r)); });
    std::vector<std::string> out;
    for (const RouteEntry& e : Await(p.get_future())) out.push_back(e.route);
    return out;
  }
  std::vector<std::string> Running(Member& m) { return StatusOf(m).running_nodes(); }
  std::vector<std::string> Names(std::initializer_list<const Member*> ms) {
    std::vector<std::string> out;
    for (const Member* m : ms) out.push_back(m->name);
    std::sort(out.begin(), out.end());
    return out;
  }

  // Polls `pred` until it holds or 10 s pass.
  template <typename Pred>
  bool Eventually(Pred pred) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(20ms);
    }
    return true;
  }

  // a, b, c started and joined into one cluster.
  void ThreeNodes() {
    Member& a = Start("a1");
    Member& b = Start("b2");
    Member& c = Start("c3");
    ASSERT_TRUE(Join(b, a).status.ok());
    ASSERT_TRUE(Join(c, a).status.ok());
    const auto all = Names({&a, &b, &c});
    for (Member* m : {&a, &b, &c}) {
      ASSERT_TRUE(Eventually([&] { return Running(*m) == all; })) << m->name;
    }
  }
  Member& M(const std::string& name) { return *members_.at(name); }

  std::string root_;
  std::map<std::string, std::unique_ptr<Member>> members_;
};

TEST_F(ClusterNodeTest, AJoinedNodeAndItsTargetSeeEachOtherRunning) {
  Member& a = Start("a1");
  Member& b = Start("b2");
  JoinResult r = Join(b, a);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_FALSE(r.ignored);
  EXPECT_EQ(r.status_after.running_nodes(), Names({&a, &b}));
  EXPECT_TRUE(Eventually([&] { return Running(a) == Names({&a, &b}); }));
  EXPECT_TRUE(std::filesystem::exists(a.data_dir + "/cluster_members.json"));
}

TEST_F(ClusterNodeTest, JoiningItselfIsIgnored) {
  Member& a = Start("a1");
  JoinResult r = Join(a, a);
  EXPECT_TRUE(r.status.ok());
  EXPECT_TRUE(r.ignored);
  EXPECT_EQ(StatusOf(a).members.size(), 1u);
}

TEST_F(ClusterNodeTest, AJoinThroughAMemberThatIsNotTheCoordinatorIsRedirected) {
  Member& a = Start("a1");  // the oldest: the coordinator
  Member& b = Start("b2");
  Member& c = Start("c3");
  ASSERT_TRUE(Join(b, a).status.ok());
  JoinResult r = Join(c, b);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  const auto all = Names({&a, &b, &c});
  for (Member* m : {&a, &b, &c}) EXPECT_TRUE(Eventually([&] { return Running(*m) == all; }));
}

TEST_F(ClusterNodeTest, AWrongCookieIsRefusedWithTheReason) {
  Member& a = Start("a1");
  Member& b = Start("b2", "another secret");
  JoinResult r = Join(b, a);
  ASSERT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("cookie mismatch with '" + a.name + "'"), std::string::npos)
      << r.status.message();
  EXPECT_EQ(StatusOf(a).members.size(), 1u);
  EXPECT_EQ(StatusOf(b).members.size(), 1u);
}

TEST_F(ClusterNodeTest, AnUnreachableTargetFailsTheJoin) {
  Member& a = Start("a1");
  Member& b = Start("b2");
  const std::string target = Target(a);
  Stop("a1");
  std::promise<JoinResult> p;
  b.node->Join(target, [&](JoinResult r) { p.set_value(std::move(r)); });
  JoinResult r = Await(p.get_future());
  ASSERT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("cannot connect"), std::string::npos) << r.status.message();
}

TEST_F(ClusterNodeTest, RoutesReachEveryMemberAsSnapshotThenDeltas) {
  Member& a = Start("a1");
  a.router.Set("before/join", true);
  Member& b = Start("b2");
  Member& c = Start("c3");
  ASSERT_TRUE(Join(b, a).status.ok());
  ASSERT_TRUE(Join(c, a).status.ok());
  using V = std::vector<std::string>;
  EXPECT_TRUE(Eventually([&] { return RoutesAt(b, a) == V{"before/join"}; }));
  EXPECT_TRUE(Eventually([&] { return RoutesAt(c, a) == V{"before/join"}; }));

  a.router.Set("sensor/+/temp", true);
  b.router.Set("b/#", true);
  a.router.Set("before/join", false);
  EXPECT_TRUE(Eventually([&] { return RoutesAt(c, a) == V{"sensor/+/temp"}; }));
  EXPECT_TRUE(Eventually([&] { return RoutesAt(b, a) == V{"sensor/+/temp"}; }));
  EXPECT_TRUE(Eventually([&] { return RoutesAt(a, b) == V{"b/#"}; }));
  EXPECT_TRUE(Eventually([&] { return RoutesAt(c, b) == V{"b/#"}; }));
  EXPECT_EQ(RoutesAt(a, a), V{"sensor/+/temp"});
}

TEST_F(ClusterNodeTest, ASnapshotLargerThanTheLinkCapGoesOutAsThePeerReads) {
  // 20,000 routes of ~40 bytes: about 13 times a 64 KiB link cap.
  Member& a = Start("a1", "secret", 64 * 1024);
  for (int i = 0; i < 20000; ++i) {
    a.router.Set("building/" + std::to_string(i) + "/floor/+/temperature", true);
  }
  Member& b = Start("b2", "secret", 64 * 1024);
  ASSERT_TRUE(Join(b, a).status.ok());
  EXPECT_TRUE(Eventually([&] { return RoutesAt(b, a).size() == 20000; }));
  a.router.Set("after/the/snapshot", true);
  EXPECT_TRUE(Eventually([&] { return RoutesAt(b, a).size() == 20001; }));
  EXPECT_EQ(Running(a), Names({&a, &b})) << "the link stayed up";
}

TEST_F(ClusterNodeTest, ALeavingNodeIsDroppedWithItsRoutes) {
  ThreeNodes();
  Member &a = M("a1"), &b = M("b2"), &c = M("c3");
  c.router.Set("c/only", true);
  ASSERT_TRUE(Eventually([&] { return RoutesAt(a, c).size() == 1; }));
  ASSERT_TRUE(Leave(c).ok());
  EXPECT_EQ(StatusOf(c).members.size(), 1u);
  for (Member* m : {&a, &b}) {
    EXPECT_TRUE(Eventually([&] { return StatusOf(*m).members.size() == 2; })) << m->name;
    EXPECT_TRUE(RoutesAt(*m, c).empty());
  }
  EXPECT_FALSE(Leave(c).ok()) << "a node alone is in no cluster to leave";
}

TEST_F(ClusterNodeTest, AForceLeftNodeIsToldAndStaysOut) {
  ThreeNodes();
  Member &a = M("a1"), &b = M("b2"), &c = M("c3");
  ASSERT_TRUE(ForceLeave(b, c).ok()) << "on a member that is not the coordinator";
  EXPECT_TRUE(Eventually([&] { return StatusOf(c).members.size() == 1; }));
  for (Member* m : {&a, &b}) {
    EXPECT_TRUE(Eventually([&] {
      ClusterStatus s = StatusOf(*m);
      return s.members.size() == 2 && s.removed == std::vector<std::string>{c.name};
    })) << m->name;
  }
  EXPECT_EQ(StatusOf(a).epoch, StatusOf(b).epoch);
  EXPECT_EQ(ForceLeave(a, a).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ForceLeave(a, c).code(), Status::Code::kNotFound);
}

TEST_F(ClusterNodeTest, ANodeForceLeftWhileDownIsRefusedWhenItComesBack) {
  ThreeNodes();
  Member &a = M("a1"), &b = M("b2");
  Stop("c3");
  ASSERT_TRUE(ForceLeave(a, M("c3")).ok());
  Member& c = Start("c3");  // its saved set still lists a and b
  EXPECT_TRUE(Eventually([&] { return StatusOf(c).members.size() == 1; }))
      << "refused with 'removed by force-leave', it goes on alone";
  EXPECT_EQ(Running(a), Names({&a, &b}));
  // An explicit join lets it back in.
  ASSERT_TRUE(Join(c, a).status.ok());
  EXPECT_TRUE(Eventually([&] { return Running(b) == Names({&a, &b, &c}); }));
  EXPECT_TRUE(StatusOf(a).removed.empty());
}

TEST_F(ClusterNodeTest, ARestartedNodeRejoinsByItself) {
  ThreeNodes();
  Member &a = M("a1"), &c = M("c3");
  Stop("b2");
  EXPECT_TRUE(Eventually([&] { return StatusOf(a).stopped_nodes() == std::vector{M("b2").name}; }));
  Member& b = Start("b2");
  b.router.Set("after/restart", true);
  const auto all = Names({&a, &b, &c});
  for (Member* m : {&a, &b, &c}) EXPECT_TRUE(Eventually([&] { return Running(*m) == all; }));
  EXPECT_TRUE(
      Eventually([&] { return RoutesAt(c, b) == std::vector<std::string>{"after/restart"}; }));
  // Every restart binds a new port here: the members learn it from the node.
  Stop("a1");
  Member& a2 = Start("a1");
  for (Member* m : {&a2, &b, &c}) EXPECT_TRUE(Eventually([&] { return Running(*m) == all; }));
}

TEST_F(ClusterNodeTest, ANodeInAClusterCannotStartUnderAnotherName) {
  Member& a = Start("a1");
  Member& b = Start("b2");
  ASSERT_TRUE(Join(b, a).status.ok());
  Stop("b2");
  ClusterOptions renamed;
  renamed.node = "z9@127.0.0.1";
  renamed.cookie = "secret";
  renamed.data_dir = b.data_dir;
  auto node = ClusterNode::Create(renamed, nullptr);
  ASSERT_FALSE(node.ok());
  EXPECT_NE(node.status().message().find("it cannot start as 'z9@127.0.0.1'"), std::string::npos)
      << node.status().message();
}

TEST_F(ClusterNodeTest, JoiningAnotherClusterLeavesTheOldOneFirst) {
  Member& a = Start("a1");
  Member& b = Start("b2");
  Member& c = Start("c3");
  Member& d = Start("d4");
  ASSERT_TRUE(Join(b, a).status.ok());
  ASSERT_TRUE(Join(d, c).status.ok());
  a.router.Set("a/route", true);
  ASSERT_TRUE(Eventually([&] { return RoutesAt(b, a).size() == 1; }));
  JoinResult r = Join(b, c);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_NE(r.dropped.find(a.name), std::string::npos) << r.dropped;
  EXPECT_NE(r.dropped.find("dropped 1 route of 1 node"), std::string::npos) << r.dropped;
  EXPECT_TRUE(Eventually([&] { return StatusOf(a).members.size() == 1; }));
  EXPECT_TRUE(Eventually([&] { return Running(c) == Names({&b, &c, &d}); }));
  EXPECT_TRUE(RoutesAt(b, a).empty());
}

}  // namespace
}  // namespace ferry::cluster
