// Discovery by multicast ([cluster] discovery = mcast) on a real segment:
// the test moves itself into a network namespace of its own
// (unshare(CLONE_NEWNET), which needs root), makes a bridge there, and
// gives each node a namespace of its own (`ip netns add`) joined to the
// bridge by a veth pair, with an address on 10.77.0.0/24. Two clusters
// with different cookies announce on the same group and segment: each
// forms on its own and never takes the other's nodes. ferryctl reaches
// each node through its admin socket, a file, from outside its namespace.
#include <sched.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "support/cluster_fixture.h"
#include "support/subprocess.h"

namespace ferry::testing {
namespace {

using std::chrono::seconds;

constexpr int kNodes = 4;

class ClusterMcastDiscovery : public ClusterFixture {
 protected:
  void SetUp() override {
    if (unshare(CLONE_NEWNET) != 0) {
      GTEST_SKIP() << "cannot create a network namespace here (" << std::strerror(errno)
                   << "); multicast discovery needs a segment of namespaces to be tested";
    }
    if (!Run({"ip", "link", "set", "lo", "up"}) ||
        !Run({"ip", "link", "add", "brf", "type", "bridge", "mcast_snooping", "0"}) ||
        !Run({"ip", "link", "set", "brf", "up"})) {
      GTEST_SKIP() << "the kernel refuses a bridge here: " << last_error_;
    }
    for (int i = 1; i <= kNodes; ++i) {
      const std::string ns = Namespace(i);
      const std::string veth = "vf" + std::to_string(i);
      if (!Run({"ip", "netns", "add", ns})) {
        GTEST_SKIP() << "the kernel refuses named network namespaces here: " << last_error_;
      }
      namespaces_.push_back(ns);
      ASSERT_TRUE(Run({"ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns}))
          << last_error_;
      ASSERT_TRUE(Run({"ip", "link", "set", veth, "master", "brf", "up"})) << last_error_;
      ASSERT_TRUE(Run({"ip", "-n", ns, "link", "set", "lo", "up"})) << last_error_;
      ASSERT_TRUE(Run({"ip", "-n", ns, "addr", "add", Ip(i) + "/24", "dev", "eth0"})) << last_error_;
      ASSERT_TRUE(Run({"ip", "-n", ns, "link", "set", "eth0", "up"})) << last_error_;
      ASSERT_TRUE(Run({"ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0"})) << last_error_;
    }
  }
  void TearDown() override {
    for (auto& n : nodes_) n->Kill();
    for (const std::string& ns : namespaces_) Run({"ip", "netns", "del", ns});
  }

  bool Run(const std::vector<std::string>& argv) {
    CommandResult r = RunCommand(argv);
    if (!r.Succeeded()) last_error_ = r.ToString();
    return r.Succeeded();
  }
  static std::string Ip(int i) { return "10.77.0." + std::to_string(i); }
  static std::string NodeName(int i) { return "ferry" + std::to_string(i) + "@" + Ip(i); }
  static std::string Namespace(int i) {
    return "ferrymc-" + std::to_string(getpid()) + "-" + std::to_string(i);
  }
  NodeProcess& Node(int i, const std::string& cookie) {
    return AddNamed(NodeName(i), cookie,
                    "[cluster]\nlisten = " + Ip(i) +
                        ":4370\ndiscovery = mcast\n[cluster.mcast]\naddr = 239.192.0.1\n"
                        "ports = 4369,4370\niface = " + Ip(i) + "\nttl = 1\n",
                    {"ip", "netns", "exec", Namespace(i)});
  }

  std::vector<std::string> namespaces_;
  std::string last_error_;
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
  auto d = ParseJson(Ctl(N(3), {"cluster", "discovery", "status", "--json"}).out);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ((*d)["strategy"], "mcast");
  // It heard only its own cluster: the other cookie's datagrams are dropped.
  EXPECT_EQ((*d)["found"].size(), 1u) << d->dump();
}

}  // namespace
}  // namespace ferry::testing
