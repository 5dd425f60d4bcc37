// BridgeQueue: sequence numbers, group commit, when publishers are
// acknowledged (queue_sync), the head, loads, trimming, and a full disk
// (bridge/queue.h). Waits are on futures and conditions, never on time.
#include "bridge/queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <future>
#include <thread>

#include "queue_test_support.h"

namespace ferry::bridge {
namespace {

using namespace queue_test;
using std::chrono::seconds;

core::MessagePtr Msg(const std::string& topic, uint8_t qos = 1, size_t payload = 10) {
  auto m = std::make_shared<core::Message>();
  m->topic = topic;
  m->payload = std::string(payload, 'x');
  m->qos = qos;
  return m;
}

// A RouteCompletion whose completion the test can wait for.
struct Ack {
  std::promise<void> promise;
  std::future<void> future = promise.get_future();
  core::RouteCompletion completion() {
    return core::RouteCompletion([this] { promise.set_value(); });
  }
  bool done() { return future.wait_for(seconds(0)) == std::future_status::ready; }
  bool Wait() { return future.wait_for(seconds(10)) == std::future_status::ready; }
};

// Bounded wait for a condition another thread makes true.
template <typename Pred>
bool Eventually(Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + seconds(10);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

class BridgeQueueTest : public ::testing::Test {
 protected:
  std::unique_ptr<BridgeQueue> Open(QueueSync sync = QueueSync::kWrite, bool queue_qos0 = true,
                                    uint64_t max_bytes = 1 << 20) {
    BridgeQueue::Options o;
    o.log.dir = dir_.path() + "/q";
    o.log.max_bytes = max_bytes;
    o.log.env = &env_;
    o.log.warn = [](const std::string&) {};
    o.sync = sync;
    o.queue_qos0 = queue_qos0;
    o.retry_initial = std::chrono::milliseconds(1);
    o.retry_max = std::chrono::milliseconds(5);
    o.notify = [this] {
      std::lock_guard lock(mu_);
      ++notified_;
    };
    auto q = BridgeQueue::Open(o);
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    return q.ok() ? std::move(q).value() : nullptr;
  }

  // Polls until an answer to a load is there.
  BridgeQueue::Events::Loaded Load(BridgeQueue& q, uint64_t from) {
    q.RequestLoad(from, 1 << 20);
    std::optional<BridgeQueue::Events::Loaded> loaded;
    EXPECT_TRUE(Eventually([&] {
      auto ev = q.Poll();
      if (ev.loaded) loaded = std::move(ev.loaded);
      return loaded.has_value();
    }));
    return loaded.value_or(BridgeQueue::Events::Loaded{});
  }

  // Polls until the queue reports a trim past seq 1; returns the head it
  // reported (0 if none came).
  uint64_t TrimmedHead(BridgeQueue& q) {
    uint64_t trimmed = 0;
    EXPECT_TRUE(Eventually([&] {
      trimmed = std::max(trimmed, q.Poll().trimmed_head);
      return trimmed > 1;
    }));
    return trimmed;
  }

  TempDir dir_;
  FaultEnv env_;
  std::mutex mu_;
  int notified_ = 0;
};

TEST_F(BridgeQueueTest, AppendsArriveInOrderWithSequenceNumbers) {
  auto q = Open();
  q->Append({Msg("a"), Msg("b")}, {});
  q->Append({Msg("c")}, {});
  auto ev = q->Poll();
  ASSERT_EQ(ev.arrived.size(), 3u);
  EXPECT_EQ(Seqs(ev.arrived), Range(1, 3));
  EXPECT_EQ(ev.arrived[2].message->topic, "c");
  EXPECT_GE(notified_, 1);
  EXPECT_TRUE(q->Poll().arrived.empty());
}

TEST_F(BridgeQueueTest, PublisherIsAcknowledgedOnceWrittenAndTheMessagesSurviveReopen) {
  {
    auto q = Open();
    Ack ack;
    q->Append({Msg("a"), Msg("b")}, ack.completion());
    ASSERT_TRUE(ack.Wait());
    EXPECT_EQ(q->stats().pending_writes, 0u);
    EXPECT_EQ(q->stats().appended, 2u);
  }
  auto q = Open();
  EXPECT_EQ(q->recovered_head(), 1u);
  EXPECT_EQ(q->recovered_next_seq(), 3u);
  auto loaded = Load(*q, 1);
  EXPECT_EQ(Seqs(loaded.messages), Range(1, 2));
}

TEST_F(BridgeQueueTest, FsyncModeSyncsBeforeAcknowledging) {
  auto q = Open(QueueSync::kFsync);
  Ack ack;
  q->Append({Msg("a")}, ack.completion());
  ASSERT_TRUE(ack.Wait());
  EXPECT_GE(env_.syncs.load(), 1);
}

TEST_F(BridgeQueueTest, NoneModeAcknowledgesAtOnce) {
  auto q = Open(QueueSync::kNone);
  env_.disk_left = 0;  // nothing can be written
  Ack ack;
  q->Append({Msg("a")}, ack.completion());
  EXPECT_TRUE(ack.done());
}

// A full disk holds the acknowledgement back (the publisher waits, nothing
// it was told is safe is lost); once space is freed the retry writes it.
TEST_F(BridgeQueueTest, FullDiskDelaysTheAcknowledgementUntilTheWriteSucceeds) {
  auto q = Open();
  env_.disk_left = 0;
  Ack ack;
  q->Append({Msg("a", 1, 1000)}, ack.completion());
  ASSERT_TRUE(Eventually([&] { return q->stats().write_errors >= 2; }));
  EXPECT_FALSE(ack.done());
  EXPECT_NE(q->stats().last_error.find("No space left on device"), std::string::npos);
  EXPECT_EQ(q->stats().pending_writes, 1u);
  env_.disk_left = INT64_MAX;
  ASSERT_TRUE(ack.Wait());
  EXPECT_EQ(q->stats().last_error, "");
  EXPECT_EQ(Seqs(Load(*q, 1).messages), Range(1, 1));
}

TEST_F(BridgeQueueTest, StoppingWithAFullDiskLeavesThePublisherUnacknowledged) {
  auto q = Open();
  env_.disk_left = 0;
  Ack ack;
  q->Append({Msg("a", 1, 1000)}, ack.completion());
  ASSERT_TRUE(Eventually([&] { return q->stats().write_errors >= 1; }));
  q->Stop();
  EXPECT_FALSE(ack.done());
  Ack late;
  q->Append({Msg("b")}, late.completion());  // after Stop: abandoned too
  EXPECT_FALSE(late.done());
}

// ---- A full disk (queue.h, "Failures").

// The disk bounds the queue as max_bytes does: the oldest segments go,
// counted, and the publishers are acknowledged.
TEST_F(BridgeQueueTest, AFullDiskDropsTheOldestLikeOverflow) {
  env_.frees_space = true;
  env_.fs_bytes = 256 * 1024;  // 16 KB segments
  auto q = Open(QueueSync::kWrite, true, 64u << 20);
  env_.disk_left = 200 * 1024;
  for (int i = 0; i < 200; ++i) {
    Ack ack;
    q->Append({Msg("t", 1, 2000)}, ack.completion());
    ASSERT_TRUE(ack.Wait()) << "publisher held at message " << i;
  }
  QueueStats st = q->stats();
  EXPECT_GT(st.dropped_trim, 0u);
  EXPECT_EQ(st.pending_writes, 0u);
  EXPECT_LE(st.bytes, 200u * 1024);
  const uint64_t trimmed = TrimmedHead(*q);
  ASSERT_GT(trimmed, 1u);
  auto loaded = Load(*q, 1);
  ASSERT_FALSE(loaded.messages.empty());
  EXPECT_EQ(loaded.messages.front().seq, trimmed);
  EXPECT_EQ(loaded.messages.back().seq, 200u);
  EXPECT_EQ(st.dropped_trim + loaded.messages.size(), 200u);
}

// With one segment holding everything, nothing can be dropped: publishers
// wait. Once the upstream acknowledges what is queued, that space comes
// back (the newest segment is cut back), the head is on disk, and the
// waiting group is written.
TEST_F(BridgeQueueTest, AcknowledgedMessagesFreeTheDiskAndHeldPublishersGoOn) {
  env_.frees_space = true;
  auto q = Open();  // 1 MB queue, 64 KB segments
  {
    Ack ack;
    q->Append({Msg("a", 1, 20000), Msg("b", 1, 20000)}, ack.completion());
    ASSERT_TRUE(ack.Wait());
  }
  const uint64_t bytes = q->stats().bytes;
  env_.disk_left = 0;
  Ack held;
  q->Append({Msg("c", 1, 20000)}, held.completion());
  ASSERT_TRUE(Eventually([&] { return q->stats().write_errors >= 2; }));
  EXPECT_FALSE(held.done());
  q->SetHead(3);  // a and b acknowledged upstream
  ASSERT_TRUE(held.Wait()) << q->stats().last_error;
  EXPECT_LT(q->stats().bytes, bytes);
  EXPECT_EQ(q->stats().last_error, "");
  q.reset();
  env_.disk_left = INT64_MAX;
  q = Open();
  EXPECT_EQ(q->recovered_head(), 3u);
  EXPECT_EQ(Seqs(Load(*q, 1).messages), Range(3, 3));
}

// The head the loop reports is recorded while writes fail, and a restart
// does not send again what the upstream acknowledged.
TEST_F(BridgeQueueTest, TheHeadIsRecordedWhileWritesFail) {
  {
    auto q = Open();
    Ack ack;
    q->Append({Msg("a"), Msg("b"), Msg("c")}, ack.completion());
    ASSERT_TRUE(ack.Wait());
    env_.disk_left = 0;
    Ack held;
    q->Append({Msg("d")}, held.completion());
    ASSERT_TRUE(Eventually([&] { return q->stats().write_errors >= 1; }));
    q->SetHead(3);
    ASSERT_TRUE(Eventually([&] { return q->stats().write_errors >= 3; }));
    q->Stop();
    EXPECT_FALSE(held.done());
  }
  env_.disk_left = INT64_MAX;
  auto q = Open();
  EXPECT_EQ(q->recovered_head(), 3u);
  EXPECT_EQ(Seqs(Load(*q, 1).messages), Range(3, 3));
}

// The loop sends what arrives before it is written; a message the upstream
// acknowledged needs no writing, so its publisher is acknowledged even
// though the disk is full.
TEST_F(BridgeQueueTest, AMessageAcknowledgedUpstreamBeforeItWasWrittenIsDone) {
  env_.frees_space = true;
  auto q = Open();
  env_.disk_left = 0;
  Ack ack;
  q->Append({Msg("a"), Msg("b")}, ack.completion());
  ASSERT_EQ(Seqs(q->Poll().arrived), Range(1, 2));
  ASSERT_TRUE(Eventually([&] { return q->stats().write_errors >= 1; }));
  q->SetHead(3);
  ASSERT_TRUE(ack.Wait());
  EXPECT_EQ(q->stats().pending_writes, 0u);
  q.reset();
  env_.disk_left = INT64_MAX;
  q = Open();
  EXPECT_EQ(q->recovered_head(), 3u);
  EXPECT_EQ(q->recovered_next_seq(), 3u);
}

// While a group fails, what is on disk can still be loaded (the upstream
// may be back to take it); a load of what the group holds waits.
TEST_F(BridgeQueueTest, LoadsOfWhatIsOnDiskAreServedWhileAWriteFails) {
  auto q = Open();
  Ack ack;
  q->Append({Msg("a"), Msg("b")}, ack.completion());
  ASSERT_TRUE(ack.Wait());
  env_.disk_left = 0;
  q->Append({Msg("c")}, {});
  ASSERT_TRUE(Eventually([&] { return q->stats().write_errors >= 1; }));
  auto loaded = Load(*q, 1);
  EXPECT_EQ(Seqs(loaded.messages), Range(1, 2));
  EXPECT_EQ(loaded.upto, 2u);
}

TEST_F(BridgeQueueTest, TheHeadIsRecordedAndSurvivesReopen) {
  {
    auto q = Open();
    Ack ack;
    q->Append({Msg("a"), Msg("b"), Msg("c")}, ack.completion());
    ASSERT_TRUE(ack.Wait());
    q->SetHead(3);
  }
  auto q = Open();
  EXPECT_EQ(q->recovered_head(), 3u);
  EXPECT_EQ(Seqs(Load(*q, 1).messages), Range(3, 3));
}

// Release(): the loop hears of it once the released record is written, and
// a reopened queue knows it (queue_log.h).
TEST_F(BridgeQueueTest, ReleasedMessagesAreReportedOnceWrittenAndSurviveReopen) {
  {
    auto q = Open();
    Ack ack;
    q->Append({Msg("a", 2), Msg("b", 2)}, ack.completion());
    ASSERT_TRUE(ack.Wait());
    q->Release(2);
    std::vector<uint64_t> released;
    ASSERT_TRUE(Eventually([&] {
      auto ev = q->Poll();
      released.insert(released.end(), ev.released.begin(), ev.released.end());
      return !released.empty();
    }));
    EXPECT_EQ(released, std::vector<uint64_t>{2});
  }
  auto q = Open();
  EXPECT_EQ(q->recovered_released(), std::set<uint64_t>{2});
}

TEST_F(BridgeQueueTest, UnreleaseVoidsEarlierReleasesOnDisk) {
  {
    auto q = Open();
    Ack ack;
    q->Append({Msg("a", 2), Msg("b", 2), Msg("c", 2)}, ack.completion());
    ASSERT_TRUE(ack.Wait());
    q->Release(1);
    q->Unrelease();
    q->Release(3);
    std::vector<uint64_t> released;
    ASSERT_TRUE(Eventually([&] {
      auto ev = q->Poll();
      released.insert(released.end(), ev.released.begin(), ev.released.end());
      return std::find(released.begin(), released.end(), 3) != released.end();
    }));
    EXPECT_EQ(released.back(), 3u);
  }
  auto q = Open();
  EXPECT_EQ(q->recovered_released(), std::set<uint64_t>{3});
}

TEST_F(BridgeQueueTest, QosZeroStaysOutOfTheLogWhenAsked) {
  auto q = Open(QueueSync::kWrite, /*queue_qos0=*/false);
  Ack ack;
  q->Append({Msg("q0", 0), Msg("q1", 1)}, ack.completion());
  ASSERT_TRUE(ack.Wait());
  auto ev = q->Poll();
  ASSERT_EQ(ev.arrived.size(), 2u);
  EXPECT_EQ(ev.arrived[0].seq, 0u);
  EXPECT_EQ(ev.arrived[1].seq, 1u);
  EXPECT_EQ(Seqs(Load(*q, 1).messages), Range(1, 1));
}

TEST_F(BridgeQueueTest, OverflowTrimsTheOldestAndTellsTheLoop) {
  auto q = Open(QueueSync::kWrite, true, 64 * 1024);  // 16 KB segments
  for (int i = 0; i < 40; ++i) {
    Ack ack;
    q->Append({Msg("t", 1, 2000), Msg("t", 1, 2000)}, ack.completion());
    ASSERT_TRUE(ack.Wait());
  }
  EXPECT_GT(q->stats().dropped_trim, 0u);
  EXPECT_LE(q->stats().bytes, 64u * 1024 + 4500);
  const uint64_t trimmed = TrimmedHead(*q);
  ASSERT_GT(trimmed, 1u);
  auto loaded = Load(*q, 1);
  ASSERT_FALSE(loaded.messages.empty());
  EXPECT_GE(loaded.messages.front().seq, trimmed);
  EXPECT_EQ(loaded.messages.back().seq, 80u);
}

TEST_F(BridgeQueueTest, AMessageTooLargeForTheQueueIsDroppedAndCounted) {
  auto q = Open(QueueSync::kWrite, true, 64 * 1024);
  Ack ack;
  q->Append({Msg("big", 1, 40 * 1024)}, ack.completion());
  EXPECT_TRUE(ack.done());
  EXPECT_EQ(q->stats().dropped_too_large, 1u);
  EXPECT_TRUE(q->Poll().arrived.empty());
}

// A read that fails must not be answered as "no messages" (the Outbox would
// take them for gone): it is tried again until it works.
TEST_F(BridgeQueueTest, AFailedReadIsRetriedNotAnsweredEmpty) {
  auto q = Open();
  Ack ack;
  q->Append({Msg("a"), Msg("b")}, ack.completion());
  ASSERT_TRUE(ack.Wait());
  env_.fail_reads = true;
  q->RequestLoad(1, 1 << 20);
  ASSERT_TRUE(Eventually([&] { return env_.failed_reads >= 2; }));
  EXPECT_FALSE(q->Poll().loaded.has_value());
  env_.fail_reads = false;
  std::optional<BridgeQueue::Events::Loaded> loaded;
  ASSERT_TRUE(Eventually([&] {
    auto ev = q->Poll();
    if (ev.loaded) loaded = std::move(ev.loaded);
    return loaded.has_value();
  }));
  EXPECT_EQ(Seqs(loaded->messages), Range(1, 2));
}

TEST_F(BridgeQueueTest, ManyThreadsAppendingKeepOneOrderOnDiskAndToTheLoop) {
  auto q = Open();
  constexpr int kThreads = 4, kEach = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        Ack ack;
        q->Append({Msg("t" + std::to_string(t) + "/" + std::to_string(i))}, ack.completion());
        ack.Wait();
      }
    });
  }
  for (auto& t : threads) t.join();
  std::vector<QueuedMessage> arrived = q->Poll().arrived;
  ASSERT_EQ(arrived.size(), size_t{kThreads * kEach});
  EXPECT_EQ(Seqs(arrived), Range(1, kThreads * kEach));
  auto loaded = Load(*q, 1);
  ASSERT_EQ(loaded.messages.size(), arrived.size());
  for (size_t i = 0; i < arrived.size(); ++i) {
    EXPECT_EQ(loaded.messages[i].message->topic, arrived[i].message->topic);
  }
}

}  // namespace
}  // namespace ferry::bridge
