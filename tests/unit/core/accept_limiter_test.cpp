#include "core/accept_limiter.h"

#include <gtest/gtest.h>

namespace ferry::core {
namespace {

TEST(AcceptLimiter, ZeroMeansNoLimit) {
  AcceptLimiter l(0);
  for (int i = 0; i < 100000; ++i) {
    ASSERT_EQ(l.WaitMs(0), 0u);
    l.Take();
  }
}

TEST(AcceptLimiter, ABurstOfOneSecondsWorthThenOneTokenPerInterval) {
  AcceptLimiter l(100);  // one connection per 10 ms
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(l.WaitMs(1000), 0u) << i;
    l.Take();
  }
  EXPECT_EQ(l.WaitMs(1000), 10u);
  EXPECT_EQ(l.WaitMs(1004), 6u);
  EXPECT_EQ(l.WaitMs(1010), 0u);
  l.Take();
  EXPECT_EQ(l.WaitMs(1010), 10u);
}

TEST(AcceptLimiter, IdleTimeRefillsOnlyUpToTheBurst) {
  AcceptLimiter l(2);
  l.Take();
  l.Take();
  EXPECT_EQ(l.WaitMs(0), 500u);
  EXPECT_EQ(l.WaitMs(100000), 0u);  // long idle
  l.Take();
  l.Take();
  EXPECT_EQ(l.WaitMs(100000), 500u);  // still only two at once
}

TEST(AcceptLimiter, TimeGoingBackwardsIsHarmless) {
  AcceptLimiter l(1);
  l.Take();
  EXPECT_EQ(l.WaitMs(5000), 0u);
  l.Take();
  EXPECT_EQ(l.WaitMs(4000), 1000u);
}

}  // namespace
}  // namespace ferry::core
