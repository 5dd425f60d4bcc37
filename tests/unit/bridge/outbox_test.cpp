// Outbox: send order, acknowledgements and the head, spilling to disk and
// loading back, requeue on a lost link, trimming and expiry
// (bridge/outbox.h). The "disk" here is a vector the test serves loads from.
#include "bridge/outbox.h"

#include <gtest/gtest.h>

#include "queue_test_support.h"

namespace ferry::bridge {
namespace {

using namespace queue_test;

class OutboxTest : public ::testing::Test {
 protected:
  // Appends messages first..first+n-1 to the fake disk and hands them to the
  // outbox as arrivals.
  void Arrive(Outbox& o, uint64_t first, size_t n, size_t payload = 0) {
    auto ms = Messages(first, n, payload);
    for (const auto& m : ms) disk_.push_back(m);
    o.OnArrived(ms);
  }
  // Serves whatever load the outbox wants from the fake disk.
  bool ServeLoad(Outbox& o) {
    auto want = o.WantLoad();
    if (!want) return false;
    std::vector<QueuedMessage> out;
    size_t bytes = 0;
    for (const auto& m : disk_) {
      if (m.seq < want->first || bytes >= want->second) continue;
      bytes += m.bytes();
      out.push_back(m);
    }
    o.OnLoaded(want->first, out);
    return true;
  }
  // Sends everything sendable, returning the seqs in order.
  std::vector<uint64_t> SendAll(Outbox& o) {
    std::vector<uint64_t> sent;
    while (o.Next(kNow, 0) != nullptr) sent.push_back(o.TakeNext().seq);
    return sent;
  }
  // Sends and loads until nothing is left; returns every seq sent.
  std::vector<uint64_t> Drain(Outbox& o) {
    std::vector<uint64_t> sent;
    for (int rounds = 0; rounds < 10000; ++rounds) {
      auto s = SendAll(o);
      for (uint64_t seq : s) {
        sent.push_back(seq);
        o.Done(seq);
      }
      if (s.empty() && !ServeLoad(o)) break;
    }
    return sent;
  }
  std::vector<QueuedMessage> disk_;
};

TEST_F(OutboxTest, ArrivalsGoOutInOrderAndAcksMoveTheHead) {
  Outbox o(1, 1, 1 << 20);
  o.OnLinkUp();
  Arrive(o, 1, 5);
  EXPECT_EQ(o.queued(), 5u);
  EXPECT_EQ(SendAll(o), Range(1, 5));
  EXPECT_EQ(o.inflight_count(), 5u);
  o.Done(2);
  o.Done(3);
  EXPECT_EQ(o.head(), 1u);  // 1 is still out
  EXPECT_EQ(o.queued(), 3u);
  o.Done(1);
  EXPECT_EQ(o.head(), 4u);
  EXPECT_TRUE(o.TakeHeadChanged());
  EXPECT_FALSE(o.TakeHeadChanged());
  o.Done(5);
  o.Done(4);
  EXPECT_EQ(o.head(), 6u);
  EXPECT_TRUE(o.empty());
}

TEST_F(OutboxTest, SpillsBeyondItsBudgetAndLoadsBackInOrder) {
  // Each message costs about 64 + 6 + 500 bytes; the budget holds ~3.
  Outbox o(1, 1, 1800);
  o.OnLinkUp();
  Arrive(o, 1, 10, 500);
  EXPECT_TRUE(o.spilled());
  EXPECT_LT(o.memory_bytes(), 2400u);
  EXPECT_EQ(o.queued(), 10u);
  EXPECT_EQ(Drain(o), Range(1, 10));
  EXPECT_FALSE(o.spilled());
  EXPECT_EQ(o.head(), 11u);
  Arrive(o, 11, 1);  // kept in memory again
  EXPECT_EQ(SendAll(o), Range(11, 11));
}

TEST_F(OutboxTest, AfterARestartTheWholeQueueIsLoadedFromTheHead) {
  disk_ = Messages(1, 20);
  Outbox o(8, 21, 1 << 20);  // 1..7 were done before the restart
  o.OnLinkUp();
  EXPECT_TRUE(o.spilled());
  EXPECT_EQ(o.queued(), 13u);
  EXPECT_TRUE(SendAll(o).empty());
  EXPECT_EQ(Drain(o), Range(8, 20));
}

TEST_F(OutboxTest, SeqsTheLogNoLongerHasAreDone) {
  disk_ = Messages(1, 10);
  disk_.erase(disk_.begin() + 3, disk_.begin() + 6);  // 4, 5, 6 lost
  Outbox o(1, 11, 1 << 20);
  o.OnLinkUp();
  std::vector<uint64_t> sent = Drain(o);
  EXPECT_EQ(sent, (std::vector<uint64_t>{1, 2, 3, 7, 8, 9, 10}));
  EXPECT_EQ(o.head(), 11u);
}

// A message that arrives after a load was asked for, and before its answer,
// may not be on disk when the load reads: it must not be taken for lost.
TEST_F(OutboxTest, AnArrivalRacingALoadIsNotMistakenForLost) {
  Outbox o(1, 1, 1800);
  o.OnLinkUp();
  Arrive(o, 1, 6, 500);  // spills after ~3
  for (uint64_t seq : SendAll(o)) o.Done(seq);
  auto want = o.WantLoad();
  ASSERT_TRUE(want.has_value());
  std::vector<QueuedMessage> answer;
  for (const auto& m : disk_) {
    if (m.seq >= want->first) answer.push_back(m);
  }
  auto late = Messages(7, 1, 500);  // appended after the read
  o.OnLoaded(want->first, answer);
  o.OnArrived(late);
  disk_.push_back(late[0]);
  std::vector<uint64_t> rest = Drain(o);
  EXPECT_EQ(rest.back(), 7u);
  EXPECT_EQ(o.head(), 8u);
}

TEST_F(OutboxTest, ALostLinkSendsEverythingInFlightAgainInOrder) {
  Outbox o(1, 1, 1 << 20);
  o.OnLinkUp();
  Arrive(o, 1, 6);
  EXPECT_EQ(SendAll(o), Range(1, 6));
  o.Done(2);
  o.OnLinkDown();
  o.OnLinkUp();
  EXPECT_EQ(SendAll(o), (std::vector<uint64_t>{1, 3, 4, 5, 6}));
}

TEST_F(OutboxTest, AResumedSessionKeepsWhatItResendsItself) {
  Outbox o(1, 1, 1 << 20);
  o.OnLinkUp();
  Arrive(o, 1, 4);
  EXPECT_EQ(SendAll(o), Range(1, 4));
  o.OnLinkDown();
  o.OnLinkUp({1, 3});
  EXPECT_EQ(o.inflight_count(), 2u);
  EXPECT_NE(o.InFlight(3), nullptr);
  EXPECT_EQ(SendAll(o), (std::vector<uint64_t>{2, 4}));
}

TEST_F(OutboxTest, TrimmedMessagesAreDroppedCountedAndNotSent) {
  Outbox o(1, 1, 1 << 20);
  o.OnLinkUp();
  Arrive(o, 1, 10);
  std::vector<uint64_t> first = {o.TakeNext().seq, o.TakeNext().seq};  // 1, 2 in flight
  o.Done(3);  // cannot be: 3 is unsent; acts as done-above-head
  EXPECT_EQ(o.OnTrimmed(6), 2u);  // 4, 5 dropped; 1, 2 in flight; 3 done
  EXPECT_EQ(o.head(), 6u);
  EXPECT_EQ(SendAll(o), Range(6, 10));
  o.Done(1);  // a late ack of a trimmed message is harmless
  EXPECT_EQ(o.head(), 6u);
  (void)first;
}

TEST_F(OutboxTest, ExpiredMessagesAreSkippedAndCounted) {
  Outbox o(1, 1, 1 << 20);
  o.OnLinkUp();
  auto ms = Messages(1, 3);
  ms[0].enqueued_ms = kNow - 10'000;  // older than max age
  auto m = std::make_shared<core::Message>(*ms[1].message);
  m->expiry_at_ms = kNow - 1;  // MQTT message expiry passed
  ms[1].message = m;
  o.OnArrived(ms);
  const QueuedMessage* next = o.Next(kNow, kNow - 5'000);  // queue_max_age 5 s
  ASSERT_NE(next, nullptr);
  EXPECT_EQ(next->seq, 3u);
  EXPECT_EQ(o.expired(), 2u);
  EXPECT_EQ(o.head(), 3u);
}

TEST_F(OutboxTest, MessagesOutsideTheLogGoOnlyOverALiveLink) {
  Outbox o(1, 1, 1 << 20);
  auto v = Message(0, "v", "x", 0);
  o.OnArrived({v});  // link down
  EXPECT_EQ(o.dropped_volatile(), 1u);
  o.OnLinkUp();
  Arrive(o, 1, 1);
  o.OnArrived({v});
  Arrive(o, 2, 1);
  EXPECT_EQ(o.queued(), 3u);
  EXPECT_EQ(SendAll(o), (std::vector<uint64_t>{1, 0, 2}));
  o.OnLinkDown();
  o.OnLinkUp();
  EXPECT_EQ(SendAll(o), (std::vector<uint64_t>{1, 2}));
  o.OnArrived({v});
  o.OnLinkDown();  // unsent, lost with the link
  EXPECT_EQ(o.dropped_volatile(), 2u);
}

}  // namespace
}  // namespace ferry::bridge
