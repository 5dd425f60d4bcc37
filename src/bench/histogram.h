// A latency histogram with bounded relative error, in the spirit of
// HdrHistogram: values (nanoseconds) fall into log-linear buckets, so memory
// is fixed and a percentile is exact to within 1/kSubBuckets of its value.
//
// Layout: values below kSubBuckets are counted exactly, one bucket each.
// Above that, every power-of-two range [2^k, 2^(k+1)) is split into
// kSubBuckets/2 equal sub-buckets. With kSubBuckets = 256 the error is under
// 0.8%. Example: 1,000,000 ns lies in [2^19, 2^20), whose 128 sub-buckets are
// 4096 ns wide, so it is reported as a value in [999,424, 1,003,520).
//
// Percentile(p) returns the upper edge of the bucket holding the p-th value
// (clamped to Max()), so a reported p99 is never below the true one.
//
// Not thread-safe: one histogram per loop thread, merged after the threads
// have joined.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace ferry::bench {

class LatencyHistogram {
 public:
  static constexpr uint64_t kSubBuckets = 256;
  static constexpr int kSubBits = 8;  // log2(kSubBuckets)
  // Covers every uint64_t value: exact range plus one half-range per power.
  static constexpr size_t kBuckets = kSubBuckets + (64 - kSubBits) * (kSubBuckets / 2);

  void Record(uint64_t value) {
    ++counts_[BucketOf(value)];
    ++count_;
    sum_ += value;
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }

  void Merge(const LatencyHistogram& other) {
    for (size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    sum_ += other.sum_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }

  uint64_t Count() const { return count_; }
  uint64_t Min() const { return count_ == 0 ? 0 : min_; }
  uint64_t Max() const { return max_; }
  uint64_t Mean() const { return count_ == 0 ? 0 : sum_ / count_; }

  // The value at or below which `percent` percent of the values lie
  // (0 < percent <= 100); 0 when empty.
  uint64_t Percentile(double percent) const {
    if (count_ == 0) return 0;
    double want = percent / 100.0 * static_cast<double>(count_);
    uint64_t rank = static_cast<uint64_t>(want);
    if (static_cast<double>(rank) < want) ++rank;
    rank = std::clamp<uint64_t>(rank, 1, count_);
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(UpperEdge(i), max_);
    }
    return max_;
  }

  // Bucket arithmetic, public for tests.
  static size_t BucketOf(uint64_t value) {
    if (value < kSubBuckets) return static_cast<size_t>(value);
    int top = 63 - std::countl_zero(value);  // >= kSubBits
    int shift = top - (kSubBits - 1);
    uint64_t sub = (value >> shift) - kSubBuckets / 2;  // 0 .. kSubBuckets/2 - 1
    return static_cast<size_t>(kSubBuckets + static_cast<uint64_t>(top - kSubBits) *
                                                 (kSubBuckets / 2) + sub);
  }
  // Largest value that falls into bucket `index`.
  static uint64_t UpperEdge(size_t index) {
    if (index < kSubBuckets) return index;
    size_t rel = index - kSubBuckets;
    int top = static_cast<int>(rel / (kSubBuckets / 2)) + kSubBits;
    uint64_t sub = rel % (kSubBuckets / 2) + kSubBuckets / 2;
    int shift = top - (kSubBits - 1);
    uint64_t low = sub << shift;
    return low + ((uint64_t{1} << shift) - 1);
  }

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace ferry::bench
