// Other nodes' routes: the route update payload, and what snapshots, deltas,
// gaps, chunks and purges make the router do.
#include "cluster/remote_routes.h"

#include <gtest/gtest.h>

#include <span>
#include <string>
#include <vector>

namespace ferry::cluster {
namespace {

using Strings = std::vector<std::string>;
constexpr const char* kOrigin = "ferry2@127.0.0.1";

RouteUpdate Snapshot(uint64_t incarnation, uint64_t seq, std::vector<RouteEntry> entries,
                     bool more = false) {
  return RouteUpdate{kOrigin, incarnation, seq, true, more, std::move(entries)};
}

RouteUpdate Delta(uint64_t incarnation, uint64_t seq, std::vector<RouteEntry> entries) {
  return RouteUpdate{kOrigin, incarnation, seq, false, false, std::move(entries)};
}

Result<RouteUpdate> RoundTrip(const RouteUpdate& u) {
  const std::string bytes = EncodeRouteUpdate(u);
  return ParseRouteUpdate(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

TEST(RouteUpdatePayload, RoundTripsSnapshotsChunksAndDeltas) {
  for (const RouteUpdate& u :
       {Snapshot(7, 1, {{"a/+", true, 0}, {"$share/g/x", true, 3}}, true), Snapshot(7, 1, {}),
        Delta(7, 2, {{"a/+", false, 0}, {"b/#", true, 0}})}) {
    auto back = RoundTrip(u);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, u);
  }
}

TEST(RouteUpdatePayload, EveryTruncationAndEveryLieFails) {
  const std::string bytes = EncodeRouteUpdate(Delta(7, 2, {{"a/+", false, 0}, {"b/#", true, 0}}));
  const std::span<const uint8_t> all(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  for (size_t n = 0; n < bytes.size(); ++n)
    EXPECT_FALSE(ParseRouteUpdate(all.subspan(0, n)).ok()) << n;

  std::string lie = bytes;
  lie[0] = 0x02;  // "more" on a delta
  EXPECT_FALSE(
      ParseRouteUpdate(std::span(reinterpret_cast<const uint8_t*>(lie.data()), lie.size())).ok());
  lie = bytes;
  lie[0] = 0x04;  // unknown flag
  EXPECT_FALSE(
      ParseRouteUpdate(std::span(reinterpret_cast<const uint8_t*>(lie.data()), lie.size())).ok());
  // A count far beyond what the frame holds is refused before any allocation.
  std::string huge;
  FieldWriter w(huge);
  w.U8(0);
  w.Str(kOrigin);
  w.U64(1);
  w.U64(1);
  w.U32(0xFFFFFFFF);
  auto r = ParseRouteUpdate(std::span(reinterpret_cast<const uint8_t*>(huge.data()), huge.size()));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("larger than the frame"), std::string::npos);
  // A snapshot lists routes that exist, never removals.
  auto removal = RoundTrip(Snapshot(1, 1, {{"a", false, 0}}));
  EXPECT_FALSE(removal.ok());
}

TEST(RemoteRoutes, ASnapshotThenDeltasTellTheRouterWhatToAddAndDrop) {
  RemoteRoutes routes;
  RouteChanges c;
  ASSERT_EQ(routes.Apply(Snapshot(7, 10, {{"a/+", true, 0}, {"b", true, 0}}), c),
            RemoteRoutes::Outcome::kApplied);
  EXPECT_EQ(c.added, (Strings{"a/+", "b"}));
  EXPECT_TRUE(c.removed.empty());
  c = {};
  ASSERT_EQ(routes.Apply(Delta(7, 11, {{"b", false, 0}, {"c/#", true, 0}, {"a/+", true, 0}}), c),
            RemoteRoutes::Outcome::kApplied);
  EXPECT_EQ(c.added, (Strings{"c/#"}));  // a/+ was there already
  EXPECT_EQ(c.removed, (Strings{"b"}));
  EXPECT_EQ(routes.route_count(), 2u);
  EXPECT_EQ(routes.seq_of(kOrigin), 11u);
  EXPECT_EQ(routes.incarnation_of(kOrigin), 7u);
}

TEST(RemoteRoutes, AGapOrAnotherIncarnationAsksForASnapshotAndAnOldDeltaIsIgnored) {
  RemoteRoutes routes;
  RouteChanges c;
  routes.Apply(Snapshot(7, 10, {{"a", true, 0}}), c);
  c = {};
  EXPECT_EQ(routes.Apply(Delta(7, 12, {{"x", true, 0}}), c), RemoteRoutes::Outcome::kNeedSnapshot);
  EXPECT_EQ(routes.Apply(Delta(8, 11, {{"x", true, 0}}), c), RemoteRoutes::Outcome::kNeedSnapshot);
  EXPECT_EQ(routes.Apply(Delta(7, 10, {{"x", true, 0}}), c), RemoteRoutes::Outcome::kStale);
  EXPECT_TRUE(c.added.empty() && c.removed.empty());
  EXPECT_EQ(routes.Apply(Delta(1, 1, {}), c), RemoteRoutes::Outcome::kNeedSnapshot);

  // The restarted origin's snapshot replaces what it had.
  ASSERT_EQ(routes.Apply(Snapshot(8, 1, {{"x", true, 0}}), c), RemoteRoutes::Outcome::kApplied);
  EXPECT_EQ(c.added, (Strings{"x"}));
  EXPECT_EQ(c.removed, (Strings{"a"}));
  EXPECT_EQ(routes.RoutesOf(kOrigin), (std::vector<RouteEntry>{{"x", true, 0}}));
}

TEST(RemoteRoutes, AChunkedSnapshotChangesNothingUntilItsLastChunk) {
  RemoteRoutes routes;
  RouteChanges c;
  routes.Apply(Snapshot(7, 1, {{"old", true, 0}}), c);
  c = {};
  routes.Apply(Snapshot(7, 5, {{"a", true, 0}}, /*more=*/true), c);
  routes.Apply(Snapshot(7, 5, {{"b", true, 0}}, /*more=*/true), c);
  EXPECT_TRUE(c.added.empty() && c.removed.empty());
  EXPECT_EQ(routes.RoutesOf(kOrigin).size(), 1u);
  // A newer snapshot starts over: the chunks of seq 5 are dropped.
  routes.Apply(Snapshot(7, 6, {{"c", true, 0}}, /*more=*/true), c);
  routes.Apply(Snapshot(7, 6, {{"d", true, 0}}), c);
  EXPECT_EQ(c.added, (Strings{"c", "d"}));
  EXPECT_EQ(c.removed, (Strings{"old"}));
  EXPECT_EQ(routes.seq_of(kOrigin), 6u);
}

TEST(RemoteRoutes, SharedGroupsCarryMemberCountsAndAreNotPlainFilters) {
  RemoteRoutes routes;
  RouteChanges c;
  routes.Apply(Snapshot(7, 1, {{"$share/g/x", true, 2}}), c);
  EXPECT_TRUE(c.added.empty());
  EXPECT_EQ(c.shared, (std::vector<RouteEntry>{{"$share/g/x", true, 2}}));
  c = {};
  routes.Apply(Delta(7, 2, {{"$share/g/x", true, 5}}), c);
  routes.Apply(Delta(7, 3, {{"$share/g/x", true, 5}}), c);  // no change, no news
  routes.Apply(Delta(7, 4, {{"$share/g/x", false, 0}}), c);
  EXPECT_EQ(c.shared, (std::vector<RouteEntry>{{"$share/g/x", true, 5}, {"$share/g/x", false, 0}}));
}

TEST(RemoteRoutes, PurgeDropsEverythingOfTheOrigin) {
  RemoteRoutes routes;
  RouteChanges c;
  routes.Apply(Snapshot(7, 1, {{"a", true, 0}, {"$share/g/x", true, 1}}), c);
  RouteUpdate other = Snapshot(3, 1, {{"z", true, 0}});
  other.origin = "ferry3@127.0.0.1";
  routes.Apply(other, c);
  c = {};
  routes.Purge(kOrigin, c);
  EXPECT_EQ(c.removed, (Strings{"a"}));
  EXPECT_EQ(c.shared, (std::vector<RouteEntry>{{"$share/g/x", false, 0}}));
  EXPECT_EQ(routes.route_count(), 1u);
  EXPECT_EQ(routes.seq_of(kOrigin), 0u);
  c = {};
  routes.Purge("unknown@h", c);
  EXPECT_TRUE(c.removed.empty());
}

TEST(RemoteRoutesListing, PagesInRouteThenOriginOrderAndMatchesTopics) {
  RemoteRoutes routes;
  RouteChanges changes;
  auto snapshot = [&](const std::string& origin, std::vector<RouteEntry> entries) {
    RouteUpdate u{origin, 1, 1, true, false, std::move(entries)};
    ASSERT_EQ(routes.Apply(u, changes), RemoteRoutes::Outcome::kApplied);
  };
  snapshot("b@h", {{"a/+", true, 0}, {"c", true, 0}});
  snapshot("a@h", {{"a/+", true, 0}, {"$share/g/a/#", true, 2}});
  auto page = routes.ListAfter("", "", 2);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].route, "$share/g/a/#");
  EXPECT_EQ(page[0].shared_members, 2u);
  EXPECT_EQ(page[1].route, "a/+");
  EXPECT_EQ(page[1].origin, "a@h");
  page = routes.ListAfter(page[1].route, page[1].origin, 2);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].route, "a/+");
  EXPECT_EQ(page[0].origin, "b@h");
  EXPECT_EQ(page[1].route, "c");
  EXPECT_TRUE(routes.ListAfter("c", "b@h", 2).empty());

  auto matching = routes.Matching("a/x");
  ASSERT_EQ(matching.size(), 3u);
  EXPECT_EQ(matching[0].route, "$share/g/a/#");
  EXPECT_EQ(matching[1].origin, "a@h");
  EXPECT_EQ(matching[2].origin, "b@h");
  EXPECT_TRUE(routes.Matching("z").empty());
}

}  // namespace
}  // namespace ferry::cluster
