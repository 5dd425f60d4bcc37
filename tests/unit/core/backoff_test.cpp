#include "core/backoff.h"

#include <gtest/gtest.h>

namespace ferry::core {
namespace {

using std::chrono::milliseconds;

TEST(Backoff, StartsAtBaseGrowsWithinThreeTimesThePreviousAndStaysUnderTheCap) {
  Backoff b(milliseconds(100), milliseconds(5000), 42);
  milliseconds previous = b.Next();
  EXPECT_EQ(previous, milliseconds(100));
  for (int i = 0; i < 1000; ++i) {
    milliseconds d = b.Next();
    EXPECT_GE(d, milliseconds(100));
    EXPECT_LE(d, std::min(milliseconds(5000), previous * 3));
    previous = d;
  }
}

TEST(Backoff, ResetStartsOverAtBase) {
  Backoff b(milliseconds(10), milliseconds(1000), 7);
  for (int i = 0; i < 20; ++i) b.Next();
  b.Reset();
  EXPECT_EQ(b.Next(), milliseconds(10));
}

TEST(Backoff, ReachesTheCap) {
  Backoff b(milliseconds(1), milliseconds(50), 1);
  bool capped = false;
  for (int i = 0; i < 200 && !capped; ++i) capped = b.Next() == milliseconds(50);
  EXPECT_TRUE(capped);
}

TEST(Backoff, NonsenseBoundsAreRaised) {
  Backoff b(milliseconds(0), milliseconds(0), 3);
  EXPECT_EQ(b.base(), milliseconds(1));
  EXPECT_EQ(b.cap(), milliseconds(1));
  EXPECT_EQ(b.Next(), milliseconds(1));
  EXPECT_EQ(b.Next(), milliseconds(1));
}

}  // namespace
}  // namespace ferry::core
