// QueueLog: the bridge queue on disk (bridge/queue_log.h). Appends and reads
// in order, the head, segment deletion, recovery from a torn tail or damage,
// trimming by size and age, and a full disk through the QueueEnv seam.
#include "bridge/queue_log.h"

#include <gtest/gtest.h>

#include "queue_test_support.h"

namespace ferry::bridge {
namespace {

using namespace queue_test;

class QueueLogTest : public ::testing::Test {
 protected:
  std::unique_ptr<QueueLog> Open(uint64_t max_bytes = 1 << 20,
                                 std::chrono::milliseconds max_age = {}) {
    QueueLog::Options o;
    o.dir = dir_.path() + "/q";
    o.max_bytes = max_bytes;
    o.max_age = max_age;
    o.env = &env_;
    o.warn = [this](const std::string& line) { warnings_.push_back(line); };
    auto log = QueueLog::Open(o);
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    return log.ok() ? std::move(log).value() : nullptr;
  }

  std::vector<QueuedMessage> ReadAllFrom(QueueLog& log, uint64_t from) {
    auto r = log.Read(from, SIZE_MAX);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r.value() : std::vector<QueuedMessage>{};
  }

  bool Warned(std::string_view needle) const {
    for (const auto& w : warnings_) {
      if (w.find(needle) != std::string::npos) return true;
    }
    return false;
  }

  std::string dir() const { return dir_.path() + "/q"; }

  TempDir dir_;
  FaultEnv env_;
  std::vector<std::string> warnings_;
};

TEST_F(QueueLogTest, FreshLogIsEmpty) {
  auto log = Open();
  EXPECT_EQ(log->head(), 1u);
  EXPECT_EQ(log->next_seq(), 1u);
  EXPECT_TRUE(ReadAllFrom(*log, 1).empty());
  EXPECT_EQ(SegmentFiles(dir()).size(), 1u);
}

TEST_F(QueueLogTest, AppendedMessagesReadBackInOrderAfterReopen) {
  {
    auto log = Open();
    ASSERT_TRUE(log->Append(Messages(1, 3), 1).ok());
    ASSERT_TRUE(log->Append(Messages(4, 2), 1).ok());
    EXPECT_EQ(log->next_seq(), 6u);
  }
  auto log = Open();
  EXPECT_EQ(log->head(), 1u);
  EXPECT_EQ(log->next_seq(), 6u);
  auto got = ReadAllFrom(*log, 1);
  EXPECT_EQ(Seqs(got), Range(1, 5));
  EXPECT_EQ(got[2].message->topic, "t/3");
  EXPECT_EQ(got[2].message->payload, "p3");
  EXPECT_EQ(got[2].message->qos, 1);
  EXPECT_EQ(got[2].enqueued_ms, kNow);
  EXPECT_EQ(Seqs(ReadAllFrom(*log, 4)), Range(4, 5));
}

TEST_F(QueueLogTest, PropertiesRetainExpiryAndNodePathSurvive) {
  auto q = Message(1, "a/b", std::string("\0bin\xff", 5), 2);
  auto m = std::make_shared<core::Message>(*q.message);
  m->retain = true;
  m->expiry_at_ms = kNow + 60000;
  m->props.content_type = "application/json";
  m->props.correlation_data = std::string("\0\1", 2);
  m->props.user_properties = {{"k", "v"}};
  core::SetNodePath(m->props, {"edge@h", "hub@h"});
  q.message = m;
  {
    auto log = Open();
    ASSERT_TRUE(log->Append({q}, 1).ok());
  }
  auto got = ReadAllFrom(*Open(), 1);
  ASSERT_EQ(got.size(), 1u);
  const core::Message& g = *got[0].message;
  EXPECT_EQ(g.topic, "a/b");
  EXPECT_EQ(g.payload, m->payload);
  EXPECT_EQ(g.qos, 2);
  EXPECT_TRUE(g.retain);
  EXPECT_EQ(g.expiry_at_ms, kNow + 60000);
  EXPECT_EQ(g.props, m->props);
  EXPECT_EQ(g.path, (std::vector<std::string>{"edge@h", "hub@h"}));
}

TEST_F(QueueLogTest, HeadSurvivesReopenAndReadsSkipBelowIt) {
  {
    auto log = Open();
    ASSERT_TRUE(log->Append(Messages(1, 5), 1).ok());
    ASSERT_TRUE(log->Append({}, 4).ok());  // 1..3 done
  }
  auto log = Open();
  EXPECT_EQ(log->head(), 4u);
  EXPECT_EQ(Seqs(ReadAllFrom(*log, 1)), Range(4, 5));
}

// Released QoS 2 messages (queue_log.h) are known again after a reopen,
// until the head passes them.
TEST_F(QueueLogTest, ReleasedSeqsSurviveReopenUntilTheHeadPasses) {
  {
    auto log = Open();
    ASSERT_TRUE(log->Append(Messages(1, 5), 1, {2}).ok());
    ASSERT_TRUE(log->Append({}, 1, {4, 3}).ok());
  }
  {
    auto log = Open();
    EXPECT_EQ(log->released(), (std::set<uint64_t>{2, 3, 4}));
    ASSERT_TRUE(log->Append({}, 4).ok());
    EXPECT_EQ(log->released(), (std::set<uint64_t>{4}));
  }
  auto log = Open();
  EXPECT_EQ(log->released(), (std::set<uint64_t>{4}));
  EXPECT_EQ(Seqs(ReadAllFrom(*log, 1)), Range(4, 5));
}

// After the upstream lost our session an unreleased record voids what was
// released before it, in the same append or an earlier one; later releases
// hold.
TEST_F(QueueLogTest, UnreleasedRecordVoidsEarlierReleases) {
  {
    auto log = Open();
    ASSERT_TRUE(log->Append(Messages(1, 5), 1, {2, 3}).ok());
    ASSERT_TRUE(log->Append({}, 1, {4}, /*unrelease=*/true).ok());
    EXPECT_EQ(log->released(), (std::set<uint64_t>{4}));
  }
  {
    auto log = Open();
    EXPECT_EQ(log->released(), (std::set<uint64_t>{4}));
    ASSERT_TRUE(log->Append({}, 1, {}, /*unrelease=*/true).ok());
    ASSERT_TRUE(log->Append({}, 1, {5}).ok());
  }
  auto log = Open();
  EXPECT_EQ(log->released(), (std::set<uint64_t>{5}));
  EXPECT_EQ(Seqs(ReadAllFrom(*log, 1)), Range(1, 5));
}

TEST_F(QueueLogTest, SegmentsRollAndAreDeletedOnceDone) {
  auto log = Open(256 * 1024);  // 16 KB segments
  for (uint64_t s = 1; s <= 200; s += 10) ASSERT_TRUE(log->Append(Messages(s, 10, 500), 1).ok());
  EXPECT_GT(log->segment_count(), 4u);
  EXPECT_EQ(SegmentFiles(dir()).size(), log->segment_count());
  ASSERT_TRUE(log->Append({}, 150).ok());
  EXPECT_LT(log->segment_count(), 4u);
  EXPECT_EQ(SegmentFiles(dir()).size(), log->segment_count());
  EXPECT_EQ(Seqs(ReadAllFrom(*log, 1)), Range(150, 200));
  log.reset();
  log = Open(256 * 1024);
  EXPECT_EQ(log->head(), 150u);
  EXPECT_EQ(Seqs(ReadAllFrom(*log, 1)), Range(150, 200));
  EXPECT_EQ(log->next_seq(), 201u);
}

TEST_F(QueueLogTest, EverythingDoneKeepsTheSequenceGoing) {
  {
    auto log = Open(256 * 1024);
    for (uint64_t s = 1; s <= 100; s += 10) ASSERT_TRUE(log->Append(Messages(s, 10, 500), 1).ok());
    ASSERT_TRUE(log->Append({}, 101).ok());
  }
  auto log = Open(256 * 1024);
  EXPECT_EQ(log->head(), 101u);
  EXPECT_EQ(log->next_seq(), 101u);
  EXPECT_TRUE(ReadAllFrom(*log, 1).empty());
  ASSERT_TRUE(log->Append(Messages(101, 1), 101).ok());
  EXPECT_EQ(Seqs(ReadAllFrom(*log, 1)), Range(101, 101));
}

// A crash in the middle of a write leaves part of a record at the end of
// the newest segment: it is cut off, nothing before it is lost, and
// appending continues where the good data ends (google/leveldb's
// log_test.cc TruncatedTrailingRecordIsIgnored).
TEST_F(QueueLogTest, TornTailOfTheNewestSegmentIsCutOff) {
  std::string segment;
  {
    auto log = Open();
    ASSERT_TRUE(log->Append(Messages(1, 4), 1).ok());
    segment = SegmentFiles(dir()).back();
  }
  std::string data = ReadAll(segment);
  const size_t good = data.size();
  {
    auto log = Open();
    ASSERT_TRUE(log->Append(Messages(5, 1, 300), 1).ok());
  }
  data = ReadAll(segment);
  WriteAll(segment, data.substr(0, good + 40));  // message 5 torn after 40 bytes
  auto log = Open();
  EXPECT_TRUE(Warned("cutting off 40 bytes of an incomplete write"));
  EXPECT_EQ(log->next_seq(), 5u);
  EXPECT_EQ(Seqs(ReadAllFrom(*log, 1)), Range(1, 4));
  EXPECT_EQ(ReadAll(segment).size(), good);
  ASSERT_TRUE(log->Append(Messages(5, 2), 1).ok());
  EXPECT_EQ(Seqs(ReadAllFrom(*Open(), 1)), Range(1, 6));
}

TEST_F(QueueLogTest, ChecksumMismatchAtTheTailIsATornWriteToo) {
  std::string segment;
  size_t good = 0;
  {
    auto log = Open();
    ASSERT_TRUE(log->Append(Messages(1, 2), 1).ok());
    segment = SegmentFiles(dir()).back();
    good = ReadAll(segment).size();
    ASSERT_TRUE(log->Append(Messages(3, 1), 1).ok());
  }
  std::string data = ReadAll(segment);
  data[data.size() - 3] ^= 0x55;  // a payload byte of message 3
  WriteAll(segment, data);
  auto log = Open();
  EXPECT_EQ(Seqs(ReadAllFrom(*log, 1)), Range(1, 2));
  EXPECT_EQ(ReadAll(segment).size(), good);
}

TEST_F(QueueLogTest, NewestSegmentWithAnIncompleteHeaderIsRewritten) {
  {
    auto log = Open(256 * 1024);
    ASSERT_TRUE(log->Append(Messages(1, 40, 500), 1).ok());
    ASSERT_GT(log->segment_count(), 1u);
  }
  const std::string newest = SegmentFiles(dir()).back();
  WriteAll(newest, "FERRY");  // the crash came right after creating it
  auto log = Open(256 * 1024);
  EXPECT_TRUE(Warned("segment header incomplete"));
  auto got = ReadAllFrom(*log, 1);
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.front().seq, 1u);
  ASSERT_TRUE(log->Append(Messages(log->next_seq(), 1), 1).ok());
}

TEST_F(QueueLogTest, DamageInAnOlderSegmentSkipsItsRestAndCountsTheLoss) {
  {
    auto log = Open(256 * 1024);
    for (uint64_t s = 1; s <= 100; s += 10) ASSERT_TRUE(log->Append(Messages(s, 10, 500), 1).ok());
  }
  auto files = SegmentFiles(dir());
  ASSERT_GE(files.size(), 3u);
  std::string data = ReadAll(files[0]);
  data[data.size() / 2] ^= 0x55;
  WriteAll(files[0], data);
  auto log = Open(256 * 1024);
  EXPECT_TRUE(Warned("damaged record"));
  EXPECT_GT(log->lost_at_recovery(), 0u);
  auto got = ReadAllFrom(*log, 1);
  EXPECT_EQ(got.front().seq, 1u);
  EXPECT_EQ(got.back().seq, 100u);
  EXPECT_EQ(got.size() + log->lost_at_recovery(), 100u);
}

TEST_F(QueueLogTest, AFileNamedLikeASegmentButForeignIsCorruption) {
  { Open(); }
  WriteAll(dir() + "/00000000000000000007.seg", "this is not a queue segment at all");
  WriteAll(dir() + "/00000000000000000009.seg", "");
  QueueLog::Options o;
  o.dir = dir();
  auto log = QueueLog::Open(o);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), Status::Code::kCorruption);
  EXPECT_NE(log.status().message().find("00000000000000000007.seg"), std::string::npos);
}

TEST_F(QueueLogTest, TrimDropsTheOldestSegmentsBeyondMaxBytes) {
  auto log = Open(256 * 1024);  // 16 KB segments
  uint64_t seq = 1;
  uint64_t dropped = 0;
  for (int i = 0; i < 100; ++i) {
    auto batch = Messages(seq, 10, 1000);
    QueueLog::Trimmed t = log->Trim(kNow, 10 * 1100);
    dropped += t.dropped;
    ASSERT_TRUE(log->Append(batch, t.head).ok());
    seq += 10;
    EXPECT_LE(log->bytes(), 256u * 1024);
  }
  EXPECT_GT(dropped, 0u);
  auto got = ReadAllFrom(*log, 1);
  EXPECT_EQ(got.front().seq, log->head());
  EXPECT_EQ(got.back().seq, seq - 1);
  // Dropped are the oldest: what is left is a contiguous run to the end.
  EXPECT_EQ(Seqs(got), Range(log->head(), seq - 1));
  EXPECT_EQ(dropped + got.size(), seq - 1);
}

TEST_F(QueueLogTest, TrimDropsSegmentsOlderThanMaxAge) {
  auto log = Open(256 * 1024, std::chrono::minutes(1));
  ASSERT_TRUE(log->Append(Messages(1, 40, 500, kNow), 1).ok());
  ASSERT_TRUE(log->Append(Messages(41, 5, 10, kNow + 120'000), 1).ok());
  QueueLog::Trimmed t = log->Trim(kNow + 120'000, 0);
  EXPECT_GT(t.dropped, 0u);
  auto got = ReadAllFrom(*log, 1);
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back().seq, 45u);
  for (const auto& m : got) {
    if (m.seq >= t.head) continue;
    ADD_FAILURE() << "message " << m.seq << " below the head was read";
  }
}

// A full disk fails the append; the log keeps nothing of it (no torn record
// that recovery would have to cut off later) and the same append succeeds
// once there is space again.
TEST_F(QueueLogTest, FullDiskFailsTheWholeAppendWhichCanBeRetried) {
  auto log = Open();
  ASSERT_TRUE(log->Append(Messages(1, 2), 1).ok());
  const uint64_t size = ReadAll(SegmentFiles(dir()).back()).size();
  env_.disk_left = 100;
  auto batch = Messages(3, 5, 200);
  Status s = log->Append(batch, 1);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("No space left on device"), std::string::npos);
  EXPECT_EQ(log->next_seq(), 3u);
  EXPECT_EQ(ReadAll(SegmentFiles(dir()).back()).size(), size);
  EXPECT_EQ(Seqs(ReadAllFrom(*log, 1)), Range(1, 2));
  env_.disk_left = INT64_MAX;
  ASSERT_TRUE(log->Append(batch, 1).ok());
  EXPECT_EQ(Seqs(ReadAllFrom(*Open(), 1)), Range(1, 7));
}

TEST_F(QueueLogTest, FullDiskWhileRollingToANewSegmentLeavesNoHalfSegment) {
  auto log = Open(256 * 1024);
  ASSERT_TRUE(log->Append(Messages(1, 20, 500), 1).ok());
  const auto files = SegmentFiles(dir());
  env_.disk_left = 20000;  // enough for part of the batch only
  auto batch = Messages(21, 60, 500);
  EXPECT_FALSE(log->Append(batch, 1).ok());
  EXPECT_EQ(SegmentFiles(dir()), files);
  env_.disk_left = INT64_MAX;
  ASSERT_TRUE(log->Append(batch, 1).ok());
  EXPECT_EQ(Seqs(ReadAllFrom(*Open(256 * 1024), 1)), Range(1, 80));
}

// ---- A full disk (queue_log.h, "A full disk").

TEST_F(QueueLogTest, SegmentsAreASixteenthOfASmallFileSystem) {
  EXPECT_EQ(QueueLog::SegmentBytesFor(256u << 20), 16u << 20);
  EXPECT_EQ(QueueLog::SegmentBytesFor(256u << 20, 8u << 20), 512u * 1024);
  EXPECT_EQ(QueueLog::SegmentBytesFor(1u << 20, 8u << 20), 64u * 1024);
  EXPECT_EQ(QueueLog::SegmentBytesFor(256u << 20, 64 * 1024), 16u * 1024);  // at least
  env_.fs_bytes = 1 << 20;
  auto log = Open(256u << 20);
  for (uint64_t s = 1; s <= 200; s += 10) ASSERT_TRUE(log->Append(Messages(s, 10, 2000), 1).ok());
  EXPECT_GT(log->segment_count(), 4u);  // 64 KB segments, not 16 MB
}

// The head is recorded in place when nothing can be appended: what the
// upstream acknowledged is not sent again after a restart, and the space
// it held comes back, the newest segment's too.
TEST_F(QueueLogTest, RecordHeadOnAFullDiskKeepsTheHeadAndFreesTheSpace) {
  env_.frees_space = true;
  auto log = Open();
  ASSERT_TRUE(log->Append(Messages(1, 20, 1000), 1).ok());
  const std::string segment = SegmentFiles(dir()).back();
  env_.disk_left = 0;
  EXPECT_FALSE(log->Append(Messages(21, 1), 1).ok());
  ASSERT_TRUE(log->RecordHead(11, /*reclaim_newest=*/true).ok());
  EXPECT_EQ(log->head(), 11u);
  EXPECT_GT(ReadAll(segment).size(), 10u * 1000);  // 11..20 are still to go
  log.reset();
  log = Open();
  EXPECT_EQ(log->head(), 11u);
  EXPECT_EQ(Seqs(ReadAllFrom(*log, 1)), Range(11, 20));

  env_.disk_left = 0;
  ASSERT_TRUE(log->RecordHead(21, /*reclaim_newest=*/true).ok());
  EXPECT_EQ(ReadAll(segment).size(), 16u) << "the done segment kept its data";
  EXPECT_LT(log->bytes(), 100u);
  EXPECT_GT(env_.disk_left.load(), 20 * 1000);
  // Appending goes on after it, on the freed space.
  ASSERT_TRUE(log->Append(Messages(21, 2), 21).ok());
  log.reset();
  log = Open();
  EXPECT_EQ(log->head(), 21u);
  EXPECT_EQ(log->next_seq(), 23u);
  EXPECT_EQ(Seqs(ReadAllFrom(*log, 1)), Range(21, 22));
}

// Messages acknowledged upstream before they could be written (the loop
// sends what arrives at once): the head passes next_seq, and those numbers
// are used, never given again.
TEST_F(QueueLogTest, AHeadPastTheLastWrittenMessageMovesNextSeq) {
  {
    auto log = Open();
    ASSERT_TRUE(log->Append(Messages(1, 3), 1).ok());
    ASSERT_TRUE(log->RecordHead(10, /*reclaim_newest=*/true).ok());
    EXPECT_EQ(log->next_seq(), 10u);
    ASSERT_TRUE(log->Append(Messages(10, 1), 10).ok());
  }
  auto log = Open();
  EXPECT_EQ(log->head(), 10u);
  EXPECT_EQ(log->next_seq(), 11u);
  EXPECT_EQ(Seqs(ReadAllFrom(*log, 1)), Range(10, 10));
}

// A torn write of one slot of the head file leaves the other.
TEST_F(QueueLogTest, ATornHeadFileSlotFallsBackToTheOther) {
  {
    auto log = Open();
    ASSERT_TRUE(log->Append(Messages(1, 10), 1).ok());
    ASSERT_TRUE(log->RecordHead(4, false).ok());
    ASSERT_TRUE(log->RecordHead(7, false).ok());
  }
  std::string head = ReadAll(dir() + "/head");
  ASSERT_EQ(head.size(), 32u);
  // The slots hold 4 and 7 (u64 big-endian first): tear the one with 7.
  const size_t torn = head[7] == 7 ? 0 : 16;
  ASSERT_EQ(head[torn + 7], 7);
  head[torn + 3] ^= 0x5a;
  WriteAll(dir() + "/head", head);
  auto log = Open();
  // The segment has no head record past 1: the head file's other slot says 4.
  EXPECT_EQ(log->head(), 4u);
  EXPECT_EQ(Seqs(ReadAllFrom(*log, 1)), Range(4, 10));
}

// Without a segment left (deleted after the head file said all was done,
// before a new one was made), the log goes on from the head.
TEST_F(QueueLogTest, NoSegmentLeftGoesOnFromTheHeadFile) {
  {
    auto log = Open();
    ASSERT_TRUE(log->Append(Messages(1, 5), 1).ok());
    ASSERT_TRUE(log->RecordHead(6, false).ok());
  }
  for (const std::string& f : SegmentFiles(dir())) fs::remove(f);
  auto log = Open();
  EXPECT_EQ(log->head(), 6u);
  EXPECT_EQ(log->next_seq(), 6u);
  ASSERT_TRUE(log->Append(Messages(6, 1), 6).ok());
}

TEST_F(QueueLogTest, TrimForSpaceDropsTheOldestSegmentButNeverTheNewest) {
  auto log = Open(256 * 1024);  // 16 KB segments
  for (uint64_t s = 1; s <= 100; s += 10) ASSERT_TRUE(log->Append(Messages(s, 10, 500), 1).ok());
  const size_t segments = log->segment_count();
  ASSERT_GT(segments, 2u);
  bool removed = false;
  QueueLog::Trimmed t = log->TrimForSpace(&removed);
  EXPECT_TRUE(removed);
  EXPECT_GT(t.dropped, 0u);
  EXPECT_EQ(t.head, 1 + t.dropped);
  EXPECT_EQ(log->segment_count(), segments - 1);
  EXPECT_EQ(Seqs(ReadAllFrom(*log, 1)), Range(t.head, 100));
  while (log->segment_count() > 1) log->TrimForSpace(&removed);
  t = log->TrimForSpace(&removed);
  EXPECT_FALSE(removed);
  EXPECT_EQ(log->segment_count(), 1u);
  EXPECT_FALSE(ReadAllFrom(*log, 1).empty());
}

TEST_F(QueueLogTest, ReadsInChunksContinueWhereTheLastEnded) {
  auto log = Open(256 * 1024);
  for (uint64_t s = 1; s <= 300; s += 10) ASSERT_TRUE(log->Append(Messages(s, 10, 300), 1).ok());
  std::vector<uint64_t> seen;
  uint64_t from = 1;
  while (true) {
    auto r = log->Read(from, 5000);
    ASSERT_TRUE(r.ok());
    if (r->empty()) break;
    for (const auto& m : r.value()) seen.push_back(m.seq);
    from = r->back().seq + 1;
  }
  EXPECT_EQ(seen, Range(1, 300));
}

// A segment written from the documented format by tests/data/queue/
// make_fixtures.py, torn in the middle of its fourth message.
TEST_F(QueueLogTest, FixtureWrittenFromTheDocumentedFormatRecovers) {
  fs::create_directories(dir());
  fs::copy_file(FERRY_TEST_DATA_DIR "/queue/00000000000000000001.seg.torn",
                dir() + "/00000000000000000001.seg");
  auto log = Open();
  EXPECT_TRUE(Warned("cutting off 38 bytes"));
  auto got = ReadAllFrom(*log, 1);
  ASSERT_EQ(Seqs(got), Range(1, 3));
  EXPECT_EQ(got[1].message->topic, "sensor/2");
  EXPECT_EQ(got[1].message->payload, "reading 2");
  EXPECT_EQ(got[1].message->qos, 1);
  EXPECT_EQ(got[1].enqueued_ms, 1700000000002u);
  EXPECT_EQ(log->next_seq(), 4u);
}

TEST(Crc32c, MatchesTheStandardCheckValueAndContinues) {
  // The CRC-32C check value (RFC 3720, Castagnoli).
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
  EXPECT_EQ(Crc32c("6789", Crc32c("12345")), 0xE3069283u);
  std::string long_text(1000, 'a');
  EXPECT_EQ(Crc32c(long_text.substr(500), Crc32c(long_text.substr(0, 500))), Crc32c(long_text));
}

TEST_F(QueueLogTest, SyncReachesTheFile) {
  auto log = Open();
  ASSERT_TRUE(log->Append(Messages(1, 1), 1).ok());
  ASSERT_TRUE(log->Sync().ok());
  EXPECT_GE(env_.syncs.load(), 1);
}

}  // namespace
}  // namespace ferry::bridge
