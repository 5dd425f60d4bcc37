// DurableStore on a full disk ("Failures" in core/durable_store.h): a failed
// commit is reported and never answered OK, deletions commit first and make
// queued puts moot, the store recovers by itself, and its stats say so. The
// reserve is tested on a real tmpfs this test mounts (skipped where mounting
// is not allowed); the rest uses max_page_count, with which SQLite fails as
// on a full disk.

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "core/durable_store.h"
#include "durable_store_fixture.h"

namespace ferry::core::store_test {
namespace {

using std::chrono::milliseconds;

const std::string kBig(256 * 1024, 'x');

// Bounded wait for a condition the storage thread makes true.
template <typename Pred>
bool Eventually(Pred pred, milliseconds timeout = milliseconds(10000)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

TEST_F(DurableStoreTest, AFailedCommitIsQuotaExceededAndTheStoreSaysItCannotWrite) {
  DurableStore::Options options = Options();
  options.max_page_count = 1;  // no growth: SQLITE_FULL, as a full disk
  DurableStore& store = Open(options);
  store.PutSession("c", 60, 0);
  ASSERT_TRUE(SyncNow(store).ok());
  EXPECT_TRUE(store.stats().writable);

  store.PutMessage("c", Queued(1, MakeMessage("t", kBig)));
  Status s = SyncNow(store);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.reason(), ReasonCode::kQuotaExceeded) << s.ToString();
  DurableStoreStats st = store.stats();
  EXPECT_FALSE(st.writable);
  EXPECT_NE(st.failing_since_ms, 0u);
  EXPECT_NE(st.last_error.find("full"), std::string::npos) << st.last_error;
  EXPECT_EQ(st.pending_ops, 1u);
  EXPECT_GT(st.file_bytes, 0u);

  // Retried with backoff, never answered OK while it cannot commit: a Sync
  // submitted later covers the failed put too.
  store.PutSession("d", 60, 0);
  EXPECT_FALSE(SyncNow(store).ok());

  store.SetMaxPageCountForTest(0);  // space is back
  ASSERT_TRUE(SyncNow(store).ok());
  st = store.stats();
  EXPECT_TRUE(st.writable);
  EXPECT_EQ(st.failing_since_ms, 0u);
  EXPECT_EQ(st.last_error, "");
  EXPECT_EQ(st.pending_ops, 0u);
  EXPECT_TRUE(Warned("writing again"));
  StoredState state = Reload();
  ASSERT_EQ(state.sessions.size(), 2u);
  EXPECT_EQ(Seqs(state.sessions[0]), (std::vector<uint64_t>{1}));
}

// A subscriber that takes its messages deletes them: those deletions commit
// while the store cannot write anything else, and the puts they make moot
// are never written.
TEST_F(DurableStoreTest, DeletionsCommitFirstAndMakeQueuedPutsMoot) {
  DurableStore::Options options = Options();
  options.max_page_count = 1;
  DurableStore& store = Open(options);
  store.PutSession("gone", 60, 0);
  store.PutSubscription("gone", {"a/#", 1, false, false, 0, 0});
  store.PutSession("c", 60, 0);
  ASSERT_TRUE(SyncNow(store).ok());

  store.PutMessage("c", Queued(1, MakeMessage("t", kBig)));
  store.UpdateMessage("c", 1, StoredMessageState::kSent, 7);
  ASSERT_FALSE(SyncNow(store).ok());
  // Taken by the client, and another session ends: all the store still had
  // to do is deletions.
  store.DeleteMessage("c", 1);
  store.DeleteSession("gone");
  ASSERT_TRUE(SyncNow(store).ok());
  DurableStoreStats st = store.stats();
  EXPECT_TRUE(st.writable);
  EXPECT_EQ(st.pending_ops, 0u);
  EXPECT_EQ(st.dropped_ops, 0u);
  StoredState state = Reload();
  ASSERT_EQ(state.sessions.size(), 1u);
  EXPECT_EQ(state.sessions[0].client_id, "c");
  EXPECT_TRUE(state.sessions[0].messages.empty());
}

// Deletions queued behind puts that cannot commit do not wait for them:
// they are on disk although the puts before them are not.
TEST_F(DurableStoreTest, DeletionsDoNotWaitBehindPutsThatCannotCommit) {
  DurableStore::Options options = Options();
  options.max_page_count = 1;
  DurableStore& store = Open(options);
  store.PutSession("ending", 60, 0);
  store.PutSession("c", 60, 0);
  ASSERT_TRUE(SyncNow(store).ok());
  store.PutRetained(MakeMessage("big", kBig));
  ASSERT_FALSE(SyncNow(store).ok());
  store.DeleteSession("ending");
  // The Sync covers the retained put too, so it cannot be OK.
  ASSERT_FALSE(SyncNow(store).ok());
  store.Stop();  // gives up on the retained put
  EXPECT_EQ(store.stats().dropped_ops, 1u);
  StoredState state = Reload();
  ASSERT_EQ(state.sessions.size(), 1u);
  EXPECT_EQ(state.sessions[0].client_id, "c");
  EXPECT_TRUE(state.retained.empty());
}

// An update of a message whose put is still queued is folded into it: one
// row, with the update's state, once space returns.
TEST_F(DurableStoreTest, AnUpdateFoldsIntoTheQueuedPut) {
  DurableStore::Options options = Options();
  options.max_page_count = 1;
  DurableStore& store = Open(options);
  store.PutSession("c", 60, 0);
  ASSERT_TRUE(SyncNow(store).ok());
  store.PutMessage("c", Queued(1, MakeMessage("t", kBig)));
  ASSERT_FALSE(SyncNow(store).ok());
  store.UpdateMessage("c", 1, StoredMessageState::kSent, 7);
  store.UpdateMessage("c", 1, StoredMessageState::kReleased, 7);
  store.SetMaxPageCountForTest(0);
  ASSERT_TRUE(SyncNow(store).ok());
  StoredState state = Reload();
  ASSERT_EQ(state.sessions.size(), 1u);
  ASSERT_EQ(state.sessions[0].messages.size(), 1u);
  EXPECT_EQ(state.sessions[0].messages[0].state, StoredMessageState::kReleased);
  EXPECT_EQ(state.sessions[0].messages[0].packet_id, 7u);
}

// A session deleted and created again while the store fails: the old rows
// go, the new ones stay (the deletion commits first, the puts after it).
TEST_F(DurableStoreTest, ASessionDeletedAndCreatedAgainKeepsOnlyTheNewRows) {
  DurableStore::Options options = Options();
  options.max_page_count = 1;
  DurableStore& store = Open(options);
  store.PutSession("c", 60, 0);
  store.PutSubscription("c", {"old", 1, false, false, 0, 0});
  ASSERT_TRUE(SyncNow(store).ok());
  store.PutRetained(MakeMessage("big", kBig));
  ASSERT_FALSE(SyncNow(store).ok());
  store.PutSubscription("c", {"older", 1, false, false, 0, 0});
  store.DeleteSession("c");
  store.PutSession("c", 120, 0);
  store.PutSubscription("c", {"new", 1, false, false, 0, 0});
  store.DeleteRetained("big");
  ASSERT_TRUE(SyncNow(store).ok());
  StoredState state = Reload();
  ASSERT_EQ(state.sessions.size(), 1u);
  EXPECT_EQ(state.sessions[0].expiry_interval_s, 120u);
  ASSERT_EQ(state.sessions[0].subscriptions.size(), 1u);
  EXPECT_EQ(state.sessions[0].subscriptions[0].filter, "new");
  EXPECT_TRUE(state.retained.empty());
}

// ---- A real full disk: a tmpfs of 4 MB, with the reserve.

class DurableStoreTmpfsTest : public DurableStoreTest {
 protected:
  void SetUp() override {
    DurableStoreTest::SetUp();
    mount_ = dir_ + "/fs";
    ASSERT_EQ(::mkdir(mount_.c_str(), 0700), 0);
    // In a mount namespace of this process's own, where it can have one, so
    // that a run killed before TearDown leaves no mount on the machine.
    static const bool own_namespace =
        ::unshare(CLONE_NEWNS) == 0 &&
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
    (void)own_namespace;
    if (::mount("tmpfs", mount_.c_str(), "tmpfs", 0, "size=4m") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs at " << mount_ << " (" << std::strerror(errno)
                   << "): the full-disk test needs root or CAP_SYS_ADMIN";
    }
    mounted_ = true;
    path_ = mount_ + "/ferry.db";
  }
  void TearDown() override {
    store_.reset();
    if (mounted_) ::umount2(mount_.c_str(), MNT_DETACH);
    DurableStoreTest::TearDown();
  }

  // The store's warnings so far, for a failure message.
  std::string Warnings() {
    std::lock_guard<std::mutex> lock(warnings_mu_);
    std::string out;
    for (const std::string& w : warnings_) out += "\n  " + w;
    for (const auto& e : fs::directory_iterator(mount_)) {
      out += "\n  " + e.path().string() + " " + std::to_string(e.file_size());
    }
    return out;
  }

  std::string mount_;
  bool mounted_ = false;
};

TEST_F(DurableStoreTmpfsTest, DeletionsFreeTheDiskAndTheStoreRecoversByItself) {
  DurableStore::Options options = Options();
  options.reserve_bytes = 64 << 20;  // capped to an eighth of the 4 MB
  DurableStore& store = Open(options);
  const uint64_t reserve = 512 * 1024;
  EXPECT_EQ(store.stats().reserve_bytes, reserve);
  EXPECT_EQ(fs::file_size(path_ + "-reserve"), reserve);

  // Session "full" takes messages until the disk is full.
  store.PutSession("full", 60, 0);
  store.PutSession("other", 60, 0);
  ASSERT_TRUE(SyncNow(store).ok());
  const std::string payload(10 * 1024, 'p');
  uint64_t seq = 1;
  Status s;
  for (; seq < 2000; ++seq) {
    store.PutMessage("full", Queued(seq, MakeMessage("t", payload)));
    s = SyncNow(store);
    if (!s.ok()) break;
  }
  ASSERT_FALSE(s.ok()) << "the disk never filled up";
  EXPECT_EQ(s.reason(), ReasonCode::kQuotaExceeded) << s.ToString();
  EXPECT_GT(seq, 100u);
  EXPECT_FALSE(store.stats().writable);

  // Another session's message waits too.
  store.PutMessage("other", Queued(1, MakeMessage("o", "kept")));
  EXPECT_FALSE(SyncNow(store).ok());

  // The full session ends: its deletion commits and frees the disk, the
  // reserve is taken again and what waited commits, without any help.
  store.DeleteSession("full");
  ASSERT_TRUE(Eventually([&] { return store.stats().writable; }))
      << store.stats().last_error << Warnings();
  ASSERT_TRUE(SyncNow(store).ok());
  DurableStoreStats st = store.stats();
  EXPECT_EQ(st.reserve_bytes, reserve);
  EXPECT_EQ(st.pending_ops, 0u);
  EXPECT_LT(st.file_bytes, 1u << 20) << "the space was not handed back" << Warnings();
  // And it writes again.
  store.PutMessage("other", Queued(2, MakeMessage("o", payload)));
  ASSERT_TRUE(SyncNow(store).ok());

  StoredState state = Reload();
  ASSERT_EQ(state.sessions.size(), 1u);
  EXPECT_EQ(state.sessions[0].client_id, "other");
  EXPECT_EQ(Seqs(state.sessions[0]), (std::vector<uint64_t>{1, 2}));
}

// The disk filled up by someone else: nothing the store holds can go, so
// it waits; once the space is back it writes again, no restart needed.
TEST_F(DurableStoreTmpfsTest, SpaceFreedOutsideTheStoreIsTakenBack) {
  DurableStore::Options options = Options();
  options.reserve_bytes = 256 * 1024;
  DurableStore& store = Open(options);
  store.PutSession("c", 60, 0);
  ASSERT_TRUE(SyncNow(store).ok());
  // A filler file takes what is left.
  const std::string filler = mount_ + "/filler";
  {
    std::ofstream out(filler, std::ios::binary);
    const std::string chunk(64 * 1024, 'f');
    while (out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()))) {
    }
  }
  store.PutMessage("c", Queued(1, MakeMessage("t", std::string(300 * 1024, 'p'))));
  Status s = SyncNow(store);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.reason(), ReasonCode::kQuotaExceeded) << s.ToString();
  EXPECT_FALSE(store.stats().writable);

  fs::remove(filler);
  ASSERT_TRUE(Eventually([&] { return store.stats().writable; }))
      << store.stats().last_error << Warnings();
  ASSERT_TRUE(SyncNow(store).ok());
  EXPECT_EQ(store.stats().reserve_bytes, 256u * 1024);
  StoredState state = Reload();
  ASSERT_EQ(state.sessions.size(), 1u);
  EXPECT_EQ(Seqs(state.sessions[0]), (std::vector<uint64_t>{1}));
}

}  // namespace
}  // namespace ferry::core::store_test
