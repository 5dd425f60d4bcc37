// LatencyHistogram: bucket arithmetic, percentiles and merging.
#include "bench/histogram.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace ferry::bench {
namespace {

TEST(LatencyHistogram, EmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.Count(), 0u);
  EXPECT_EQ(h.Percentile(50), 0u);
  EXPECT_EQ(h.Percentile(99.9), 0u);
  EXPECT_EQ(h.Min(), 0u);
  EXPECT_EQ(h.Max(), 0u);
  EXPECT_EQ(h.Mean(), 0u);
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.Percentile(50), 50u);
  EXPECT_EQ(h.Percentile(99), 99u);
  EXPECT_EQ(h.Percentile(100), 100u);
  EXPECT_EQ(h.Min(), 1u);
  EXPECT_EQ(h.Max(), 100u);
  EXPECT_EQ(h.Mean(), 50u);  // 5050 / 100, truncated
}

TEST(LatencyHistogram, EveryBucketHoldsItsOwnEdges) {
  for (size_t i = 0; i + 1 < LatencyHistogram::kBuckets; ++i) {
    uint64_t edge = LatencyHistogram::UpperEdge(i);
    ASSERT_EQ(LatencyHistogram::BucketOf(edge), i) << "bucket " << i;
    ASSERT_EQ(LatencyHistogram::BucketOf(edge + 1), i + 1) << "bucket " << i;
  }
  EXPECT_EQ(LatencyHistogram::BucketOf(UINT64_MAX), LatencyHistogram::kBuckets - 1);
  EXPECT_EQ(LatencyHistogram::UpperEdge(LatencyHistogram::kBuckets - 1), UINT64_MAX);
}

TEST(LatencyHistogram, LargeValuesWithinOnePercent) {
  for (uint64_t v : {1000ull, 123456ull, 1000000ull, 987654321ull, 60000000000ull}) {
    LatencyHistogram h;
    h.Record(v);
    h.Record(v * 2);  // Percentile(50) is then v's bucket, not clamped by Max
    uint64_t p = h.Percentile(50);
    EXPECT_GE(p, v);
    EXPECT_LE(p - v, v / 100) << v;
  }
}

TEST(LatencyHistogram, PercentileNeverBelowTheTrueValue) {
  LatencyHistogram h;
  // 990 fast values and 10 slow ones: p99 is the last fast value, p99.9 a slow one.
  for (int i = 0; i < 990; ++i) h.Record(1000);
  for (int i = 0; i < 10; ++i) h.Record(5000000);
  EXPECT_GE(h.Percentile(99), 1000u);
  EXPECT_LT(h.Percentile(99), 1100u);
  EXPECT_GE(h.Percentile(99.9), 5000000u);
  EXPECT_EQ(h.Percentile(100), 5000000u);  // clamped to the maximum seen
}

TEST(LatencyHistogram, MergeAddsCountsAndExtremes) {
  LatencyHistogram a, b;
  a.Record(10);
  a.Record(20);
  b.Record(5);
  b.Record(1000000);
  a.Merge(b);
  EXPECT_EQ(a.Count(), 4u);
  EXPECT_EQ(a.Min(), 5u);
  EXPECT_EQ(a.Max(), 1000000u);
  EXPECT_EQ(a.Percentile(50), 10u);
}

TEST(LatencyHistogram, MergingAnEmptyHistogramChangesNothing) {
  LatencyHistogram a, empty;
  a.Record(42);
  a.Merge(empty);
  EXPECT_EQ(a.Count(), 1u);
  EXPECT_EQ(a.Min(), 42u);
  EXPECT_EQ(a.Max(), 42u);
}

}  // namespace
}  // namespace ferry::bench
