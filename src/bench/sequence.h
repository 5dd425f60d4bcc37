// Per-publisher sequence tracking on the receiving side: how many messages
// of one publisher arrived, and how many of those were duplicates or arrived
// out of order; what is still missing.
//
// Every publisher numbers its messages 0, 1, 2, ... A receiver keeps, per
// publisher, the next number it expects and the holes below it, as ranges.
// Example, arrivals 0 1 4 2 2 5:
//   0, 1  in order                    next = 2
//   4     jumps ahead: hole [2, 4)    next = 5
//   2     fills part of the hole      out_of_order = 1, hole [3, 4)
//   2     seen before                 duplicates = 1
//   5     in order                    next = 6
// Missing(6) = 1 (message 3); Missing(8) = 3 (3, 6 and 7 never came).
//
// Not thread-safe: owned by the loop thread of the receiving client.
#pragma once

#include <cstdint>
#include <map>

namespace ferry::bench {

class SequenceTracker {
 public:
  enum class Arrival { kInOrder, kAhead, kLate, kDuplicate };

  Arrival Observe(uint64_t seq) {
    ++received_;
    if (seq == next_) {
      ++next_;
      ++unique_;
      return Arrival::kInOrder;
    }
    if (seq > next_) {
      holes_[next_] = seq;  // [next_, seq) are missing so far
      hole_count_ += seq - next_;
      next_ = seq + 1;
      ++unique_;
      return Arrival::kAhead;
    }
    if (FillHole(seq)) {
      ++unique_;
      ++out_of_order_;
      return Arrival::kLate;
    }
    ++duplicates_;
    return Arrival::kDuplicate;
  }

  uint64_t Received() const { return received_; }
  uint64_t Unique() const { return unique_; }
  uint64_t Duplicates() const { return duplicates_; }
  uint64_t OutOfOrder() const { return out_of_order_; }
  // One past the highest number seen.
  uint64_t Next() const { return next_; }
  // Numbers below Next() that have not arrived.
  uint64_t Holes() const { return hole_count_; }

  // Messages missing when the publisher is known to have sent `sent`
  // messages (0 .. sent-1); with sent = 0, only the holes.
  uint64_t Missing(uint64_t sent) const {
    uint64_t tail = sent > next_ ? sent - next_ : 0;
    return hole_count_ + tail;
  }

 private:
  // Removes seq from the hole containing it; false if it is in none.
  bool FillHole(uint64_t seq) {
    auto it = holes_.upper_bound(seq);
    if (it == holes_.begin()) return false;
    --it;
    uint64_t begin = it->first;
    uint64_t end = it->second;
    if (seq >= end) return false;
    holes_.erase(it);
    if (begin < seq) holes_[begin] = seq;
    if (seq + 1 < end) holes_[seq + 1] = end;
    --hole_count_;
    return true;
  }

  std::map<uint64_t, uint64_t> holes_;  // begin -> end (exclusive), disjoint
  uint64_t next_ = 0;
  uint64_t received_ = 0;
  uint64_t unique_ = 0;
  uint64_t duplicates_ = 0;
  uint64_t out_of_order_ = 0;
  uint64_t hole_count_ = 0;
};

}  // namespace ferry::bench
