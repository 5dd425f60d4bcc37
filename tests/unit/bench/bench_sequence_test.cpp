// SequenceTracker: loss, duplicates and out-of-order arrivals per publisher.
#include "bench/sequence.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>

namespace ferry::bench {
namespace {

using Arrival = SequenceTracker::Arrival;

SequenceTracker Feed(std::initializer_list<uint64_t> seqs) {
  SequenceTracker t;
  for (uint64_t s : seqs) t.Observe(s);
  return t;
}

TEST(SequenceTracker, InOrderArrivalsLoseNothing) {
  SequenceTracker t = Feed({0, 1, 2, 3, 4});
  EXPECT_EQ(t.Received(), 5u);
  EXPECT_EQ(t.Unique(), 5u);
  EXPECT_EQ(t.Duplicates(), 0u);
  EXPECT_EQ(t.OutOfOrder(), 0u);
  EXPECT_EQ(t.Missing(5), 0u);
  EXPECT_EQ(t.Next(), 5u);
}

TEST(SequenceTracker, WorkedExampleFromTheHeader) {
  SequenceTracker t;
  EXPECT_EQ(t.Observe(0), Arrival::kInOrder);
  EXPECT_EQ(t.Observe(1), Arrival::kInOrder);
  EXPECT_EQ(t.Observe(4), Arrival::kAhead);
  EXPECT_EQ(t.Observe(2), Arrival::kLate);
  EXPECT_EQ(t.Observe(2), Arrival::kDuplicate);
  EXPECT_EQ(t.Observe(5), Arrival::kInOrder);
  EXPECT_EQ(t.OutOfOrder(), 1u);
  EXPECT_EQ(t.Duplicates(), 1u);
  EXPECT_EQ(t.Holes(), 1u);
  EXPECT_EQ(t.Missing(6), 1u);
  EXPECT_EQ(t.Missing(8), 3u);
}

TEST(SequenceTracker, TailLossNeedsTheSentCount) {
  SequenceTracker t = Feed({0, 1, 2});
  EXPECT_EQ(t.Missing(0), 0u);
  EXPECT_EQ(t.Missing(10), 7u);
}

TEST(SequenceTracker, FirstMessageLostIsAHole) {
  SequenceTracker t = Feed({1, 2});
  EXPECT_EQ(t.Holes(), 1u);
  EXPECT_EQ(t.Missing(3), 1u);
}

TEST(SequenceTracker, FillingTheMiddleOfAHoleSplitsIt) {
  SequenceTracker t = Feed({0, 10});  // hole [1, 10)
  EXPECT_EQ(t.Holes(), 9u);
  EXPECT_EQ(t.Observe(5), Arrival::kLate);
  EXPECT_EQ(t.Observe(1), Arrival::kLate);
  EXPECT_EQ(t.Observe(9), Arrival::kLate);
  EXPECT_EQ(t.Holes(), 6u);  // 2 3 4 6 7 8
  EXPECT_EQ(t.Observe(5), Arrival::kDuplicate);
  for (uint64_t s : {2, 3, 4, 6, 7, 8}) EXPECT_EQ(t.Observe(s), Arrival::kLate) << s;
  EXPECT_EQ(t.Holes(), 0u);
  EXPECT_EQ(t.OutOfOrder(), 9u);
  EXPECT_EQ(t.Unique(), 11u);
  EXPECT_EQ(t.Missing(11), 0u);
}

TEST(SequenceTracker, RepeatedInOrderMessageIsADuplicate) {
  SequenceTracker t = Feed({0, 1, 1, 1, 2});
  EXPECT_EQ(t.Duplicates(), 2u);
  EXPECT_EQ(t.Unique(), 3u);
  EXPECT_EQ(t.Received(), 5u);
}

TEST(SequenceTracker, ReverseOrderIsAllLateButTheFirst) {
  SequenceTracker t = Feed({4, 3, 2, 1, 0});
  EXPECT_EQ(t.OutOfOrder(), 4u);
  EXPECT_EQ(t.Holes(), 0u);
  EXPECT_EQ(t.Missing(5), 0u);
}

}  // namespace
}  // namespace ferry::bench
