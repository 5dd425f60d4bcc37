// Node names as join targets, and the port rule.
#include "cluster/peer_address.h"

#include <gtest/gtest.h>

#include <string>

namespace ferry::cluster {
namespace {

TEST(ClusterPort, BaseOrBasePlusTheNumberTheNameEndsIn) {
  EXPECT_EQ(DefaultClusterPort("ferry@10.0.0.1"), 4370);
  EXPECT_EQ(DefaultClusterPort("ferry1@10.0.0.1"), 4371);
  EXPECT_EQ(DefaultClusterPort("ferry2@192.168.0.20"), 4372);
  EXPECT_EQ(DefaultClusterPort("node-17@h"), 4387);
  EXPECT_EQ(DefaultClusterPort("edge007@h"), 4377);
  EXPECT_EQ(DefaultClusterPort("n61165@h"), 65535);
  EXPECT_EQ(DefaultClusterPort("n61166@h"), 4370);     // past the last port
  EXPECT_EQ(DefaultClusterPort("n99999999@h"), 4370);  // too long a number
  EXPECT_EQ(DefaultClusterPort("ferry2x@h"), 4370);    // does not end in a number
  EXPECT_EQ(DefaultClusterPort("ferry@host9"), 4370);  // the host's digits do not count
}

TEST(PeerAddress, NameAtHostTakesThePortByTheRule) {
  auto a = ParsePeerAddress("ferry1@192.168.0.10");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->node, "ferry1@192.168.0.10");
  EXPECT_EQ(a->host, "192.168.0.10");
  EXPECT_EQ(a->port, 4371);
}

TEST(PeerAddress, AnExplicitPortWinsAndIsNotPartOfTheName) {
  auto a = ParsePeerAddress("ferry2@node2.example.com:5000");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->node, "ferry2@node2.example.com");
  EXPECT_EQ(a->host, "node2.example.com");
  EXPECT_EQ(a->port, 5000);
}

TEST(PeerAddress, IPv6InBrackets) {
  auto a = ParsePeerAddress("ferry3@[::1]:4400");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->node, "ferry3@[::1]");
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 4400);
  auto b = ParsePeerAddress("ferry3@[fe80::1]");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->port, 4373);
}

TEST(PeerAddress, WhatIsNotANodeSaysWhy) {
  const std::pair<const char*, const char*> bad[] = {
      {"ferry1", "no '@'"},
      {"@10.0.0.1", "the name before '@'"},
      {"fer ry@10.0.0.1", "the name before '@'"},
      {"ferry@", "no host"},
      {"ferry@:4370", "no host"},
      {"ferry@h:0", "the port"},
      {"ferry@h:65536", "the port"},
      {"ferry@h:12x", "the port"},
      {"ferry@h:", "the port"},
      {"ferry@::1", "in brackets"},
      {"ferry@[::1", "no ']'"},
      {"ferry@[::1]x", "junk after"},
      {"ferry@a@b", "'@'"},
  };
  for (const auto& [target, why] : bad) {
    auto a = ParsePeerAddress(target);
    ASSERT_FALSE(a.ok()) << target;
    EXPECT_NE(a.status().message().find(why), std::string::npos)
        << target << ": " << a.status().message();
  }
}

}  // namespace
}  // namespace ferry::cluster
