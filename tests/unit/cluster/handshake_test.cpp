// The peer handshake, both sides in one process: frames are carried from one
// Handshake's output to the other's input as a link would.
#include "cluster/handshake.h"

#include <gtest/gtest.h>

#include <set>
#include <span>
#include <string>
#include <utility>

namespace ferry::cluster {
namespace {

LocalIdentity Identity(std::string node, std::string cookie = "secret",
                       std::string cluster = "ferry") {
  LocalIdentity id;
  id.node = std::move(node);
  id.cookie = std::move(cookie);
  id.cluster = std::move(cluster);
  id.incarnation = std::hash<std::string>{}(id.node);
  return id;
}

// Feeds every frame in `from`'s output to `to`, clearing it.
void Carry(Handshake& from, Handshake& to) {
  std::string bytes = std::move(from.output());
  from.output().clear();
  std::span<const uint8_t> in(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  while (!in.empty()) {
    auto f = ParseFrame(in);
    ASSERT_TRUE(f.ok() && f.value().has_value());
    to.OnFrame(*f.value());
    in = in.subspan(f.value()->size());
  }
}

// Runs the exchange until neither side has anything to send.
void Exchange(Handshake& a, Handshake& b) {
  for (int turn = 0; turn < 8 && (!a.output().empty() || !b.output().empty()); ++turn) {
    Carry(a, b);
    Carry(b, a);
  }
}

constexpr const char* kNode1 = "ferry1@127.0.0.1";
constexpr const char* kNode2 = "ferry2@127.0.0.1";

TEST(PeerHandshake, SameCookieEstablishesBothSidesWithEachOthersIdentity) {
  Handshake a = Handshake::Initiate(Identity(kNode1), kNode2, "control");
  Handshake b = Handshake::Accept(Identity(kNode2), nullptr);
  Exchange(a, b);
  ASSERT_EQ(a.state(), Handshake::State::kEstablished);
  ASSERT_EQ(b.state(), Handshake::State::kEstablished);
  EXPECT_EQ(a.peer().node, kNode2);
  EXPECT_EQ(b.peer().node, kNode1);
  EXPECT_EQ(b.peer().purpose, "control");
  EXPECT_EQ(a.peer().version, kProtocolVersion);
  EXPECT_EQ(b.peer().incarnation, Identity(kNode1).incarnation);
  EXPECT_EQ(a.peer().incarnation, Identity(kNode2).incarnation);
}

TEST(PeerHandshake, WrongCookieFailsOnBothSidesAndNeverSendsTheCookie) {
  Handshake a = Handshake::Initiate(Identity(kNode1, "cookie-one"), kNode2, "control");
  Handshake b = Handshake::Accept(Identity(kNode2, "cookie-two"), nullptr);
  std::string wire;
  for (int turn = 0; turn < 4; ++turn) {
    wire += a.output() + b.output();
    Carry(a, b);
    Carry(b, a);
  }
  ASSERT_EQ(a.state(), Handshake::State::kFailed);
  ASSERT_EQ(b.state(), Handshake::State::kFailed);
  EXPECT_EQ(a.failure().reason, Refusal::kCookieMismatch);
  EXPECT_FALSE(a.failure().by_peer);  // the initiator checks the first MAC
  EXPECT_EQ(a.failure().text, "cookie mismatch with 'ferry2@127.0.0.1'");
  EXPECT_EQ(b.failure().reason, Refusal::kCookieMismatch);
  EXPECT_TRUE(b.failure().by_peer);
  EXPECT_EQ(b.failure().text, "cookie mismatch with 'ferry1@127.0.0.1' (refused by the peer)");
  for (const char* cookie : {"cookie-one", "cookie-two"}) {
    EXPECT_EQ(wire.find(cookie), std::string::npos) << cookie << " went over the wire";
    EXPECT_EQ(a.failure().text.find(cookie), std::string::npos);
    EXPECT_EQ(b.failure().text.find(cookie), std::string::npos);
  }
}

TEST(PeerHandshake, ClusterNameMismatchIsRefusedWithBothNames) {
  Handshake a = Handshake::Initiate(Identity(kNode1, "secret", "east"), kNode2, "control");
  Handshake b = Handshake::Accept(Identity(kNode2, "secret", "west"), nullptr);
  Exchange(a, b);
  ASSERT_EQ(a.state(), Handshake::State::kFailed);
  ASSERT_EQ(b.state(), Handshake::State::kFailed);
  EXPECT_EQ(a.failure().reason, Refusal::kClusterNameMismatch);
  EXPECT_TRUE(a.failure().by_peer);
  EXPECT_NE(a.failure().text.find("cluster 'east'"), std::string::npos) << a.failure().text;
  EXPECT_NE(a.failure().text.find("cluster 'west'"), std::string::npos) << a.failure().text;
  EXPECT_EQ(b.failure().reason, Refusal::kClusterNameMismatch);
  EXPECT_FALSE(b.failure().by_peer);
}

TEST(PeerHandshake, LinkToTheWrongNodeNameIsRefused) {
  Handshake a = Handshake::Initiate(Identity(kNode1), "ferry3@127.0.0.1", "control");
  Handshake b = Handshake::Accept(Identity(kNode2), nullptr);
  Exchange(a, b);
  ASSERT_EQ(a.state(), Handshake::State::kFailed);
  EXPECT_EQ(a.failure().reason, Refusal::kWrongNodeName);
  EXPECT_NE(a.failure().text.find("this node is 'ferry2@127.0.0.1'"), std::string::npos)
      << a.failure().text;
  EXPECT_EQ(b.state(), Handshake::State::kFailed);
}

TEST(PeerHandshake, NoCommonVersionIsRefused) {
  LocalIdentity old_node = Identity(kNode1);
  old_node.min_version = old_node.max_version = 7;
  Handshake a = Handshake::Initiate(old_node, kNode2, "control");
  Handshake b = Handshake::Accept(Identity(kNode2), nullptr);
  Exchange(a, b);
  ASSERT_EQ(a.state(), Handshake::State::kFailed);
  EXPECT_EQ(a.failure().reason, Refusal::kUnsupportedVersion);
  EXPECT_EQ(b.failure().reason, Refusal::kUnsupportedVersion);
}

TEST(PeerHandshake, OverlappingVersionRangesAgreeOnTheHighestCommonOne) {
  LocalIdentity newer = Identity(kNode1);
  newer.min_version = 1;
  newer.max_version = 3;
  LocalIdentity older = Identity(kNode2);
  older.min_version = 1;
  older.max_version = 2;
  Handshake a = Handshake::Initiate(newer, kNode2, "control");
  Handshake b = Handshake::Accept(older, nullptr);
  Exchange(a, b);
  ASSERT_EQ(a.state(), Handshake::State::kEstablished);
  EXPECT_EQ(a.peer().version, 2);
  EXPECT_EQ(b.peer().version, 2);
}

TEST(PeerHandshake, ANodeRemovedByForceLeaveIsRefusedAndTold) {
  const std::set<std::string, std::less<>> removed{kNode1};
  Handshake a = Handshake::Initiate(Identity(kNode1), kNode2, "control");
  Handshake b = Handshake::Accept(Identity(kNode2),
                                  [&](std::string_view node) { return removed.contains(node); });
  Exchange(a, b);
  ASSERT_EQ(a.state(), Handshake::State::kFailed);
  EXPECT_EQ(a.failure().reason, Refusal::kRemoved);
  EXPECT_NE(a.failure().text.find("removed by force-leave"), std::string::npos);
}

TEST(PeerHandshake, AProofFromAnotherLinkDoesNotOpenThisOne) {
  // Two links from node1 to node2: the AUTH of the first is sent on the
  // second, whose responder chose a fresh nonce.
  Handshake a1 = Handshake::Initiate(Identity(kNode1), kNode2, "control");
  Handshake b1 = Handshake::Accept(Identity(kNode2), nullptr);
  Carry(a1, b1);  // HELLO
  Carry(b1, a1);  // HELLO_ACK; a1's output now holds its AUTH
  const std::string auth1 = a1.output();

  Handshake a2 = Handshake::Initiate(Identity(kNode1), kNode2, "control");
  Handshake b2 = Handshake::Accept(Identity(kNode2), nullptr);
  Carry(a2, b2);
  b2.output().clear();  // its HELLO_ACK never reaches a2
  std::span<const uint8_t> in(reinterpret_cast<const uint8_t*>(auth1.data()), auth1.size());
  auto f = ParseFrame(in);
  ASSERT_TRUE(f.ok() && f.value());
  EXPECT_EQ(b2.OnFrame(*f.value()), Handshake::State::kFailed);
  EXPECT_EQ(b2.failure().reason, Refusal::kCookieMismatch);
}

TEST(PeerHandshake, FramesOutOfTurnOrUnreadableAreRefusedAsMalformed) {
  // An AUTH first, a truncated HELLO, a HELLO with trailing bytes.
  std::string auth, short_hello, long_hello;
  AppendFrame(auth, FrameType::kAuth, std::string(32, 'x'));
  AppendFrame(short_hello, FrameType::kHello, std::string("\x00\x01", 2));
  Handshake good = Handshake::Initiate(Identity(kNode1), kNode2, "control");
  std::string hello = good.output();
  hello += "!";  // one byte more in the payload: fix the length
  hello[3] = static_cast<char>(hello[3] + 1);
  long_hello = hello;
  for (const std::string& bytes : {auth, short_hello, long_hello}) {
    Handshake b = Handshake::Accept(Identity(kNode2), nullptr);
    std::span<const uint8_t> in(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    auto f = ParseFrame(in);
    ASSERT_TRUE(f.ok() && f.value());
    EXPECT_EQ(b.OnFrame(*f.value()), Handshake::State::kFailed);
    EXPECT_EQ(b.failure().reason, Refusal::kMalformed);
    EXPECT_FALSE(b.output().empty()) << "no REFUSE for the peer";
  }
}

TEST(PeerHandshake, FramesAfterTheEndAreNotTheHandshakes) {
  Handshake a = Handshake::Initiate(Identity(kNode1), kNode2, "control");
  Handshake b = Handshake::Accept(Identity(kNode2), nullptr);
  Exchange(a, b);
  ASSERT_EQ(b.state(), Handshake::State::kEstablished);
  std::string refuse;
  AppendFrame(refuse, FrameType::kRefuse, std::string("\x01\x00\x00", 3));
  std::span<const uint8_t> in(reinterpret_cast<const uint8_t*>(refuse.data()), refuse.size());
  EXPECT_EQ(b.OnFrame(*ParseFrame(in).value()), Handshake::State::kEstablished);
}

}  // namespace
}  // namespace ferry::cluster
