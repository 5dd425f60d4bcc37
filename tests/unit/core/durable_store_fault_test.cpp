// DurableStore under faults: a killed process, a full disk, a mutation that
// always fails, and files that are corrupt, truncated, foreign or newer.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <string>

#include "core/durable_store.h"
#include "durable_store_fixture.h"

namespace ferry::core::store_test {
namespace {

TEST_F(DurableStoreTest, KilledProcessKeepsEverythingSyncConfirmed) {
  pid_t pid = fork();
  ASSERT_NE(pid, -1);
  if (pid == 0) {
    DurableStore::Options options;
    options.path = path_;
    Result<std::unique_ptr<DurableStore>> r = DurableStore::Open(options);
    if (!r.ok() || !r.value()->Start().ok()) _exit(2);
    DurableStore& store = *r.value();
    for (int i = 0; i < 50; ++i) {
      store.PutSession("c" + std::to_string(i), 60, 0);
      store.PutMessage("c" + std::to_string(i), Queued(1, MakeMessage("t", "confirmed")));
    }
    if (!SyncNow(store).ok()) _exit(3);
    store.PutSession("unconfirmed", 60, 0);  // may or may not make it
    kill(getpid(), SIGKILL);
    _exit(4);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;
  StoredState state = Reload();
  int confirmed = 0;
  for (const StoredSession& s : state.sessions) {
    if (s.client_id == "unconfirmed") continue;
    ++confirmed;
    ASSERT_EQ(s.messages.size(), 1u) << s.client_id;
    EXPECT_EQ(s.messages[0].message->payload, "confirmed");
  }
  EXPECT_EQ(confirmed, 50);
}

// max_page_count stands in for a full disk: SQLite fails with SQLITE_FULL.
TEST_F(DurableStoreTest, FullDiskIsReportedAndStopGivesUpWithoutLosingEarlierCommits) {
  DurableStore::Options options = Options();
  options.max_page_count = 1;  // SQLite raises it to the current size: no growth
  DurableStore& store = Open(options);
  store.PutSession("small", 60, 0);  // fits in the existing pages
  ASSERT_TRUE(SyncNow(store).ok());
  store.PutRetained(MakeMessage("big", std::string(256 * 1024, 'x')));
  Status s = SyncNow(store);
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_NE(s.message().find("full"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find(path_), std::string::npos) << s.ToString();
  EXPECT_GE(store.stats().commit_errors, 1u);
  EXPECT_EQ(store.stats().pending_ops, 1u);

  store.Stop();  // one last attempt, then gives up instead of hanging
  EXPECT_EQ(store.stats().dropped_ops, 1u);
  EXPECT_EQ(store.stats().pending_ops, 0u);
  EXPECT_TRUE(Warned("giving up on 1 mutations"));
  StoredState state = Reload();
  ASSERT_EQ(state.sessions.size(), 1u);
  EXPECT_EQ(state.sessions[0].client_id, "small");
  EXPECT_TRUE(state.retained.empty());
}

TEST_F(DurableStoreTest, FailedBatchIsRetriedUntilSpaceIsFreed) {
  DurableStore::Options options = Options();
  options.max_page_count = 1;
  DurableStore& store = Open(options);
  store.PutRetained(MakeMessage("big", std::string(256 * 1024, 'x')));
  ASSERT_FALSE(SyncNow(store).ok());
  store.SetMaxPageCountForTest(0);
  store.PutSession("after", 60, 0);
  ASSERT_TRUE(SyncNow(store).ok());
  EXPECT_EQ(store.stats().pending_ops, 0u);
  EXPECT_EQ(store.stats().dropped_ops, 0u);
  StoredState state = Reload();
  ASSERT_EQ(state.retained.size(), 1u);
  EXPECT_EQ(state.retained[0]->payload.size(), 256u * 1024);
  EXPECT_EQ(state.sessions.size(), 1u);
}

// An op that fails the same way on every attempt (here a trigger raises a
// constraint error for one topic) is dropped alone instead of wedging the
// queue behind it.
TEST_F(DurableStoreTest, PoisonMutationIsDroppedAndTheRestCommitted) {
  Open();
  store_.reset();
  RunSql(path_,
         "CREATE TRIGGER poison BEFORE INSERT ON retained WHEN NEW.topic = 'poison' "
         "BEGIN SELECT RAISE(ABORT, 'poisoned'); END;");
  Result<std::unique_ptr<DurableStore>> r = DurableStore::Open(Options());
  ASSERT_TRUE(r.ok());
  store_ = std::move(r).value();
  DurableStore& store = *store_;
  // Queued before Start(), so the first batch holds all of them and the Sync.
  store.PutRetained(MakeMessage("before", "x"));
  store.PutRetained(MakeMessage("poison", "x"));
  store.PutRetained(MakeMessage("after", "x"));
  std::promise<Status> first;
  store.Sync([&first](const Status& s) { first.set_value(s); });
  ASSERT_TRUE(store.Start().ok());
  Status s = first.get_future().get();
  EXPECT_NE(s.message().find("poisoned"), std::string::npos) << s.ToString();
  ASSERT_TRUE(SyncNow(store).ok());
  EXPECT_EQ(store.stats().dropped_ops, 1u);
  EXPECT_EQ(store.stats().ops, 2u);
  EXPECT_TRUE(Warned("dropping that mutation"));
  StoredState state = Reload();
  ASSERT_EQ(state.retained.size(), 2u);
  EXPECT_EQ(state.retained[0]->topic, "after");
  EXPECT_EQ(state.retained[1]->topic, "before");
}

TEST_F(DurableStoreTest, GarbageFileIsCorruptionNamingThePath) {
  Status s = OpenFixture("garbage.db");
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find(path_), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("not a database"), std::string::npos) << s.ToString();
}

TEST_F(DurableStoreTest, TruncatedFileIsCorruptionNamingThePath) {
  Status s = OpenFixture("truncated.db");
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find(path_), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("malformed"), std::string::npos) << s.ToString();
}

TEST_F(DurableStoreTest, HandWrittenVersion1FileLoads) {
  std::ifstream in(std::string(FERRY_TEST_DATA_DIR) + "/store/valid_v1.sql");
  std::stringstream sql;
  sql << in.rdbuf();
  RunSql(path_, sql.str());
  StoredState state = Reload();
  EXPECT_EQ(state.sessions.size(), 200u);
  EXPECT_EQ(state.retained.size(), 200u);
  EXPECT_EQ(state.skipped_rows, 0u);
}

TEST_F(DurableStoreTest, AnotherApplicationsDatabaseIsRefused) {
  RunSql(path_, "CREATE TABLE notes(body TEXT); INSERT INTO notes VALUES('mine');");
  const std::string before = ReadFile(path_);
  Result<std::unique_ptr<DurableStore>> r = DurableStore::Open(Options());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
  EXPECT_NE(r.status().message().find("not a ferry durable store"), std::string::npos);
  EXPECT_EQ(ReadFile(path_), before);
}

TEST_F(DurableStoreTest, NewerSchemaVersionIsRefused) {
  Open();
  store_.reset();
  RunSql(path_, "PRAGMA user_version=99");
  Result<std::unique_ptr<DurableStore>> r = DurableStore::Open(Options());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("newer"), std::string::npos) << r.status().ToString();
}

TEST_F(DurableStoreTest, MissingDirectoryIsIoError) {
  DurableStore::Options options = Options();
  options.path = dir_ + "/no/such/dir/store.db";
  Result<std::unique_ptr<DurableStore>> r = DurableStore::Open(options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIoError);
  EXPECT_NE(r.status().message().find(options.path), std::string::npos);
}

TEST_F(DurableStoreTest, UndecodableRowsAreSkippedCountedAndLogged) {
  DurableStore& store = Open();
  store.PutSession("c", 60, 0);
  store.PutSubscription("c", {"bad", 1, false, false, 0, 0});
  store.PutSubscription("c", {"good", 1, false, false, 0, 0});
  store.PutMessage("c", Queued(1, MakeMessage("t", "bad")));
  store.PutMessage("c", Queued(2, MakeMessage("t", "good")));
  store.PutRetained(MakeMessage("bad", "x"));
  store.PutRetained(MakeMessage("good", "x"));
  ASSERT_TRUE(SyncNow(store).ok());
  store_.reset();
  RunSql(path_,
         "UPDATE subscriptions SET qos = 7 WHERE filter = 'bad';"
         "UPDATE session_messages SET props = x'09' WHERE seq = 1;"
         "UPDATE retained SET props = x'0101' WHERE topic = 'bad';");
  StoredState state = Reload();
  EXPECT_EQ(state.skipped_rows, 3u);
  ASSERT_EQ(state.sessions.size(), 1u);
  ASSERT_EQ(state.sessions[0].subscriptions.size(), 1u);
  EXPECT_EQ(state.sessions[0].subscriptions[0].filter, "good");
  EXPECT_EQ(Seqs(state.sessions[0]), (std::vector<uint64_t>{2}));
  ASSERT_EQ(state.retained.size(), 1u);
  EXPECT_EQ(state.retained[0]->topic, "good");
  EXPECT_TRUE(Warned("unknown format version 9"));
  EXPECT_TRUE(Warned("truncated payload format indicator"));
}

}  // namespace
}  // namespace ferry::core::store_test
