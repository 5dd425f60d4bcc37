// The lock table a node keeps of the locks it granted: holders, leases,
// renewals, fencing tokens, and what happens when a holder goes away.
#include "cluster/locks.h"

#include <gtest/gtest.h>

namespace ferry::cluster {
namespace {

TEST(LockTypes, NamesParseBackAndOthersAreRefused) {
  for (LockType t : {LockType::kLocal, LockType::kLeader, LockType::kQuorum, LockType::kAll}) {
    auto parsed = ParseLockType(LockTypeName(t));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, t);
  }
  auto bad = ParseLockType("majority");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "'majority': expected local, leader, quorum or all");
}

// A wall clock that stands still unless a test moves it.
struct Wall {
  uint64_t us = 1000;
  std::function<uint64_t()> Clock() {
    return [this] { return us; };
  }
};

TEST(LockTable, OneHolderAtATimeUntilReleaseOrExpiry) {
  Wall wall;
  LockTable t(wall.Clock());
  const LockTable::Lock& a = t.Acquire("client:c1", "a", 0, 15000);
  EXPECT_EQ(a.holder, "a");
  EXPECT_EQ(a.token, 1000u) << "the wall clock";
  const LockTable::Lock& b = t.Acquire("client:c1", "b", 100, 15000);
  EXPECT_EQ(b.holder, "a") << "held by another: refused";
  EXPECT_FALSE(t.Release("client:c1", "b")) << "only the holder lets go";
  EXPECT_TRUE(t.Release("client:c1", "a"));
  const LockTable::Lock& b2 = t.Acquire("client:c1", "b", 200, 15000);
  EXPECT_EQ(b2.holder, "b");
  EXPECT_GT(b2.token, 1000u) << "every grant a larger token, the clock standing still or not";
  // A lease that ran out is free for another holder, with a new token.
  const uint64_t before = b2.token;
  const LockTable::Lock& c = t.Acquire("client:c1", "c", 200 + 15000, 15000);
  EXPECT_EQ(c.holder, "c");
  EXPECT_GT(c.token, before);
}

TEST(LockTable, TokensFollowTheWallClockAndNeverGoBack) {
  Wall wall;
  LockTable t(wall.Clock());
  wall.us = 5000;
  EXPECT_EQ(t.Acquire("r1", "a", 0).token, 5000u);
  wall.us = 4000;  // the clock stepped back
  EXPECT_EQ(t.Acquire("r2", "a", 0).token, 5001u);
  // A token another node granted, seen here: the next one is larger, so a
  // grant made after it anywhere wins over it.
  t.Observe(9000);
  EXPECT_EQ(t.Acquire("r3", "a", 0).token, 9001u);
  t.Observe(10);  // an older one changes nothing
  EXPECT_EQ(t.Acquire("r4", "a", 0).token, 9002u);
  wall.us = 20000;
  EXPECT_EQ(t.Acquire("r5", "a", 0).token, 20000u);
}

TEST(LockTable, TheHolderRenewsItsLeaseAndKeepsItsToken) {
  Wall wall;
  LockTable t(wall.Clock());
  const uint64_t token = t.Acquire("r", "a", 0, 1000).token;
  const LockTable::Lock& again = t.Acquire("r", "a", 900, 1000);
  EXPECT_EQ(again.token, token);
  EXPECT_EQ(again.expires_ms, 1900u);
  EXPECT_EQ(t.Acquire("r", "b", 1500, 1000).holder, "a") << "renewed: still held";
  EXPECT_EQ(t.Expire(1899), 0u);
  EXPECT_EQ(t.Expire(1900), 1u);
  EXPECT_EQ(t.size(), 0u);
}

TEST(LockTable, AHolderDeclaredDownLosesEveryLock) {
  Wall wall;
  LockTable t(wall.Clock());
  t.Acquire("r1", "a", 0);
  t.Acquire("r2", "a", 0);
  t.Acquire("r3", "b", 0);
  EXPECT_EQ(t.DropHolder("a"), 2u);
  auto left = t.List();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].resource, "r3");
  EXPECT_EQ(left[0].holder, "b");
}

}  // namespace
}  // namespace ferry::cluster
