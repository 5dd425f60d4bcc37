// This node's route stream: events in any order, deltas and snapshots out.
#include "cluster/local_routes.h"

#include <gtest/gtest.h>

#include "cluster/cluster_messages.h"

namespace ferry::cluster {
namespace {

core::RouteEvent Event(uint64_t seq, const char* route, bool present, uint32_t members = 0) {
  return core::RouteEvent{seq, route, present, members};
}

TEST(LocalRoutes, ALateEventOfARouteChangesNothing) {
  // The worked example of local_routes.h.
  LocalRoutes routes("a@h", 7);
  routes.Reset({Event(1, "a/b", true)});
  routes.TakeDelta();
  routes.Apply(Event(5, "a/+", true));
  routes.Apply(Event(7, "a/b", false));
  routes.Apply(Event(6, "a/b", true));
  ASSERT_TRUE(routes.has_delta());
  RouteUpdate delta = routes.TakeDelta();
  EXPECT_EQ(delta.seq, 2u);
  EXPECT_EQ(delta.incarnation, 7u);
  EXPECT_FALSE(delta.snapshot);
  EXPECT_EQ(delta.entries, (std::vector<RouteEntry>{{"a/+", true, 0}, {"a/b", false, 0}}));
  std::vector<RouteUpdate> snapshot = routes.Snapshot(100);
  ASSERT_EQ(snapshot.size(), 1u);
  EXPECT_TRUE(snapshot[0].snapshot);
  EXPECT_EQ(snapshot[0].seq, 2u);
  EXPECT_EQ(snapshot[0].entries, (std::vector<RouteEntry>{{"a/+", true, 0}}));
}

TEST(LocalRoutes, ASnapshotComesInChunksThatARemoteTableReassembles) {
  LocalRoutes routes("a@h", 1);
  std::vector<core::RouteEvent> events;
  for (int i = 0; i < 10; ++i) events.push_back(Event(1, ("t/" + std::to_string(i)).c_str(), true));
  events.push_back(Event(1, "$share/g/x", true, 3));
  routes.Reset(events);
  routes.TakeDelta();
  std::vector<RouteUpdate> chunks = routes.Snapshot(4);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_TRUE(chunks[0].more);
  EXPECT_FALSE(chunks[2].more);
  RemoteRoutes remote;
  for (const RouteUpdate& u : chunks) {
    RouteChanges changes;
    EXPECT_EQ(remote.Apply(u, changes), RemoteRoutes::Outcome::kApplied);
  }
  EXPECT_EQ(remote.count_of("a@h"), 11u);
  EXPECT_EQ(remote.RoutesOf("a@h"), routes.Present());
  // The next delta follows on.
  routes.Apply(Event(2, "t/0", false));
  RouteChanges changes;
  EXPECT_EQ(remote.Apply(routes.TakeDelta(), changes), RemoteRoutes::Outcome::kApplied);
  EXPECT_EQ(changes.removed, std::vector<std::string>{"t/0"});
}

TEST(LocalRoutes, SnapshotsAndDeltasSplitByBytesAndStayConsistent) {
  LocalRoutes routes("a@h", 1);
  std::vector<core::RouteEvent> events;
  for (int i = 0; i < 100; ++i) {
    events.push_back(Event(1, ("sensors/" + std::to_string(i) + "/temperature").c_str(), true));
  }
  routes.Reset(events);
  RemoteRoutes remote;
  RouteChanges changes;
  // Deltas of at most ~200 bytes: several, numbered one after the other.
  while (routes.has_delta()) {
    RouteUpdate delta = routes.TakeDelta(200);
    EXPECT_LE(EncodeRouteUpdate(delta).size(), 200u);
    if (delta.seq == 1) {
      delta.snapshot = true;  // the first one opens the stream here
    }
    ASSERT_EQ(remote.Apply(delta, changes), RemoteRoutes::Outcome::kApplied);
  }
  EXPECT_GT(routes.seq(), 5u);
  EXPECT_EQ(remote.count_of("a@h"), 100u);
  std::vector<RouteUpdate> chunks = routes.Snapshot(1000, 300);
  EXPECT_GT(chunks.size(), 5u);
  RemoteRoutes fresh;
  for (const RouteUpdate& u : chunks) {
    EXPECT_LE(EncodeRouteUpdate(u).size(), 300u);
    fresh.Apply(u, changes);
  }
  EXPECT_EQ(fresh.RoutesOf("a@h"), routes.Present());
}

TEST(LocalRoutes, AnEmptyTableIsOneEmptySnapshot) {
  LocalRoutes routes("a@h", 1);
  std::vector<RouteUpdate> chunks = routes.Snapshot(4);
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_TRUE(chunks[0].entries.empty());
  EXPECT_FALSE(chunks[0].more);
}

TEST(LocalRoutes, AResetDropsWhatTheNewSnapshotLacks) {
  LocalRoutes routes("a@h", 1);
  routes.Reset({Event(1, "x", true), Event(1, "y", true)});
  routes.TakeDelta();
  routes.Reset({Event(3, "y", true)});
  EXPECT_EQ(routes.TakeDelta().entries, (std::vector<RouteEntry>{{"x", false, 0}}));
  EXPECT_EQ(routes.size(), 1u);
}

TEST(LocalRoutes, ARemovedRouteIsForgottenAfterTwoPrunes) {
  LocalRoutes routes("a@h", 1);
  routes.Apply(Event(5, "x", true));
  routes.Apply(Event(6, "x", false));
  routes.TakeDelta();
  routes.PruneRemoved();
  routes.Apply(Event(4, "x", true));  // late: still known as removed at 6
  EXPECT_FALSE(routes.has_delta());
  routes.PruneRemoved();
  routes.PruneRemoved();
  routes.Apply(Event(7, "x", true));
  EXPECT_TRUE(routes.has_delta());
}

TEST(JoinMessages, RoundTripAndRejectTruncation) {
  JoinRequest request{MemberRecord{"a@h", "h", 4371, 9, 1000}, 5};
  const std::string bytes = EncodeJoinRequest(request);
  auto back =
      ParseJoinRequest(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, request);
  for (const JoinReply& reply :
       {JoinReply{JoinReply::Kind::kAccepted, "members", {}, ""},
        JoinReply{JoinReply::Kind::kRedirect, "", MemberRecord{"c@h", "h", 4370, 1, 2}, ""},
        JoinReply{JoinReply::Kind::kRefused, "", {}, "no"}}) {
    const std::string r = EncodeJoinReply(reply);
    auto parsed = ParseJoinReply(std::span(reinterpret_cast<const uint8_t*>(r.data()), r.size()));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, reply);
    for (size_t n = 0; n < r.size(); ++n) {
      EXPECT_FALSE(ParseJoinReply(std::span(reinterpret_cast<const uint8_t*>(r.data()), n)).ok());
    }
  }
  const uint8_t unknown[] = {9};
  EXPECT_FALSE(ParseJoinReply(unknown).ok());
}

}  // namespace
}  // namespace ferry::cluster
