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

TEST(K8sEndpointNodes, ReadyAddressesNamedByAddressType) {
  const std::string body = R"({"kind":"Endpoints","apiVersion":"v1",
    "metadata":{"name":"ferry","namespace":"edge"},
    "subsets":[{"addresses":[{"ip":"10.1.2.3","hostname":"ferry-0"},{"ip":"10.1.2.4"},
                             {"ip":"fd00::5","hostname":"ferry-2"}],
                "notReadyAddresses":[{"ip":"10.9.9.9"}],
                "ports":[{"name":"cluster","port":4370,"protocol":"TCP"}]},
               {"addresses":"junk"}, 7]})";
  K8sDiscoveryOptions o;
  o.name_space = "edge";
  auto ip = K8sEndpointNodes(body, o);
  ASSERT_TRUE(ip.ok());
  EXPECT_EQ(*ip, (std::vector<std::string>{"ferry@10.1.2.3", "ferry@10.1.2.4", "ferry@[fd00::5]"}));
  o.address_type = "dns";
  EXPECT_EQ(*K8sEndpointNodes(body, o),
            (std::vector<std::string>{"ferry@10-1-2-3.edge.pod.cluster.local",
                                      "ferry@10-1-2-4.edge.pod.cluster.local",
                                      "ferry@fd00--5.edge.pod.cluster.local"}));
  o.address_type = "hostname";
  EXPECT_EQ(*K8sEndpointNodes(body, o),
            (std::vector<std::string>{"ferry@ferry-0.ferry.edge.pod.cluster.local",
                                      "ferry@ferry-2.ferry.edge.pod.cluster.local"}));
  // No subsets yet (no pod ready): nothing found, no error; no JSON: an error.
  EXPECT_TRUE(K8sEndpointNodes(R"({"kind":"Endpoints"})", o)->empty());
  EXPECT_FALSE(K8sEndpointNodes("<html>", o).ok());
  EXPECT_FALSE(K8sEndpointNodes("[1]", o).ok());
}

TEST(McastDatagram, ReadBackOnlyWithTheSameCookieClusterAndAboutTheSameTime) {
  DiscoverySelf a{"ferry", "ferry1@10.0.0.1", "10.0.0.1", 4371, "s3cret"};
  const int64_t now = 1'800'000'000'000;
  auto heard = ParseMcastDatagram(McastDatagram('a', a, now), a, now + 5000);
  ASSERT_TRUE(heard.ok()) << heard.status().ToString();
  EXPECT_FALSE(heard->query);
  EXPECT_EQ(heard->node, "ferry1@10.0.0.1");
  EXPECT_EQ(heard->target, "ferry1@10.0.0.1:4371");
  EXPECT_TRUE(ParseMcastDatagram(McastDatagram('q', a, now), a, now)->query);

  DiscoverySelf other_cookie = a;
  other_cookie.cookie = "another";
  EXPECT_FALSE(ParseMcastDatagram(McastDatagram('a', other_cookie, now), a, now).ok());
  DiscoverySelf other_cluster = a;
  other_cluster.cluster = "edge";
  EXPECT_FALSE(ParseMcastDatagram(McastDatagram('a', other_cluster, now), a, now).ok());
  // Replayed two minutes later, or from a clock far ahead.
  EXPECT_FALSE(ParseMcastDatagram(McastDatagram('a', a, now), a, now + 120'000).ok());
  EXPECT_FALSE(ParseMcastDatagram(McastDatagram('a', a, now + 120'000), a, now).ok());
  // Tampered with, or no datagram of ours at all.
  std::string d = McastDatagram('a', a, now);
  d[d.find("4371")] = '5';
  EXPECT_FALSE(ParseMcastDatagram(d, a, now).ok());
  EXPECT_FALSE(ParseMcastDatagram("", a, now).ok());
  EXPECT_FALSE(ParseMcastDatagram(std::string(5000, 'x'), a, now).ok());
}

TEST(MakeDiscovery, OneBackendPerStrategyNoneForManual) {
  DiscoveryConfig c;
  EXPECT_EQ(MakeDiscovery(c), nullptr);
  for (const char* s : {"static", "dns", "etcd", "k8s", "mcast"}) {
    c.strategy = s;
    auto b = MakeDiscovery(c);
    ASSERT_NE(b, nullptr) << s;
    EXPECT_EQ(b->strategy(), s);
  }
}

}  // namespace
}  // namespace ferry::cluster
