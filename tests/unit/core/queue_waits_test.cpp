// QueueWaits (core/queue_waits.h): which sessions hold a publisher's
// acknowledgement, and which have held one for max_queue_wait.
#include "core/queue_waits.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ferry::core {
namespace {

using Ids = std::vector<std::string>;

TEST(QueueWaits, NothingWaitsAtFirst) {
  QueueWaits w(500);
  EXPECT_TRUE(w.empty());
  EXPECT_FALSE(w.NextDeadline().has_value());
  EXPECT_EQ(w.Expired(1'000'000), Ids{});
}

// The worked example of the header.
TEST(QueueWaits, ExpiresTheSessionsThatWaitedMaxWait) {
  QueueWaits w(500);
  w.Start("a", 100);
  w.Start("b", 300);
  w.Start("a", 350);  // waits already: still since 100
  EXPECT_EQ(w.NextDeadline(), 600u);
  EXPECT_EQ(w.Expired(599), Ids{});
  EXPECT_EQ(w.Expired(650), Ids{"a"});
  EXPECT_EQ(w.NextDeadline(), 800u);
  w.Release("b");
  EXPECT_TRUE(w.empty());
  EXPECT_FALSE(w.NextDeadline().has_value());
  EXPECT_EQ(w.Expired(10'000), Ids{});
}

TEST(QueueWaits, ExpiredComesOldestFirstAndIsForgotten) {
  QueueWaits w(100);
  w.Start("late", 50);
  w.Start("early", 10);
  w.Start("never", 900);
  EXPECT_EQ(w.Expired(200), (Ids{"early", "late"}));
  EXPECT_EQ(w.Expired(200), Ids{});
  EXPECT_EQ(w.NextDeadline(), 1000u);
}

// A session whose queue got room starts a new wait from its next held
// acknowledgement: a subscriber that reads, however slowly, is never expired.
TEST(QueueWaits, AReleaseStartsTheWaitAgain) {
  QueueWaits w(500);
  w.Start("slow", 0);
  w.Release("slow");
  w.Start("slow", 400);
  EXPECT_EQ(w.Expired(600), Ids{});
  EXPECT_EQ(w.Expired(900), Ids{"slow"});
}

TEST(QueueWaits, ReleasingAnUnknownSessionIsHarmless) {
  QueueWaits w(500);
  w.Release("nobody");
  EXPECT_TRUE(w.empty());
}

}  // namespace
}  // namespace ferry::core
