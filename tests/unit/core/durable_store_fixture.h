// Shared by the durable store's unit tests: message builders, a Sync()
// that blocks the test thread, and a fixture owning a temporary directory.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/durable_store.h"

namespace ferry::core::store_test {

namespace fs = std::filesystem;

inline constexpr uint64_t kNow = 1'700'000'000'000;

inline MessagePtr MakeMessage(std::string topic, std::string payload, uint64_t expiry_at_ms = 0) {
  auto m = std::make_shared<Message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->qos = 1;
  m->expiry_at_ms = expiry_at_ms;
  m->received_at_ms = kNow - 5;
  m->origin_client = "publisher";
  return m;
}

inline StoredMessage Queued(uint64_t seq, MessagePtr m) {
  return StoredMessage{seq, 1, 0, StoredMessageState::kQueued, std::move(m)};
}

inline Properties RichProperties() {
  Properties p;
  p.payload_format_indicator = 1;
  p.content_type = "application/json";
  p.response_topic = "reply/here";
  p.correlation_data = std::string("\x00\x01\x00\xff", 4);
  p.user_properties = {{"z", "1"}, {"a", "2"}, {"z", std::string("\0x", 2)}};
  return p;
}

inline void ExpectSameMessage(const Message& got, const Message& want) {
  EXPECT_EQ(got.topic, want.topic);
  EXPECT_EQ(got.payload, want.payload);
  EXPECT_EQ(got.qos, want.qos);
  EXPECT_EQ(got.props, want.props);
  EXPECT_EQ(got.expiry_at_ms, want.expiry_at_ms);
  EXPECT_EQ(got.received_at_ms, want.received_at_ms);
  EXPECT_EQ(got.origin_client, want.origin_client);
}

inline std::vector<uint64_t> Seqs(const StoredSession& session) {
  std::vector<uint64_t> seqs;
  for (const StoredMessage& m : session.messages) seqs.push_back(m.seq);
  return seqs;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Waits for every mutation submitted so far and returns their commit status.
inline Status SyncNow(DurableStore& store) {
  std::promise<Status> done;
  std::future<Status> result = done.get_future();
  store.Sync([&done](const Status& s) { done.set_value(s); });
  return result.get();
}

// Runs SQL against the store file directly, as an outside tool would.
inline void RunSql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

class DurableStoreTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = testing::TempDir() + "ferry_store_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/store.db";
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  DurableStore::Options Options() {
    DurableStore::Options o;
    o.path = path_;
    o.retry_initial = std::chrono::milliseconds(1);
    o.retry_max = std::chrono::milliseconds(4);
    o.log = [this](std::string_view line) {
      std::lock_guard<std::mutex> lock(warnings_mu_);
      warnings_.emplace_back(line);
    };
    return o;
  }

  // Opens store_ (closing any previous one) and starts it.
  DurableStore& Open(const DurableStore::Options& options) {
    store_.reset();
    Result<std::unique_ptr<DurableStore>> r = DurableStore::Open(options);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) std::abort();
    store_ = std::move(r).value();
    EXPECT_TRUE(store_->Start().ok());
    return *store_;
  }
  DurableStore& Open() { return Open(Options()); }

  // Closes store_, reopens the file and loads it, leaving store_ not started.
  StoredState Reload(uint64_t now = kNow) {
    store_.reset();
    Result<std::unique_ptr<DurableStore>> r = DurableStore::Open(Options());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};
    store_ = std::move(r).value();
    Result<StoredState> state = store_->LoadAll(now);
    EXPECT_TRUE(state.ok()) << state.status().ToString();
    return state.ok() ? std::move(state).value() : StoredState{};
  }

  Status OpenFixture(const std::string& name) {
    fs::copy_file(std::string(FERRY_TEST_DATA_DIR) + "/store/" + name, path_);
    const std::string before = ReadFile(path_);
    Result<std::unique_ptr<DurableStore>> r = DurableStore::Open(Options());
    EXPECT_EQ(ReadFile(path_), before) << "Open modified " << name;
    return r.ok() ? Status::Ok() : r.status();
  }

  bool Warned(std::string_view text) {
    std::lock_guard<std::mutex> lock(warnings_mu_);
    for (const std::string& w : warnings_) {
      if (w.find(text) != std::string::npos) return true;
    }
    return false;
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<DurableStore> store_;
  std::mutex warnings_mu_;
  std::vector<std::string> warnings_;
};

}  // namespace ferry::core::store_test
