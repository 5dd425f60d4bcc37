// Shared by the bridge queue's unit tests: a temporary directory, message
// builders, and FaultEnv, a QueueEnv that fails writes the way a full disk
// does (the seam of bridge/queue_env.h).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "bridge/queue_env.h"
#include "bridge/queue_log.h"

namespace ferry::bridge::queue_test {

namespace fs = std::filesystem;

inline constexpr uint64_t kNow = 1'700'000'000'000;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "ferry-queue-XXXXXX").string();
    char* made = ::mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline QueuedMessage Message(uint64_t seq, std::string topic, std::string payload,
                             uint8_t qos = 1, uint64_t enqueued_ms = kNow) {
  auto m = std::make_shared<core::Message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->qos = qos;
  QueuedMessage q;
  q.seq = seq;
  q.enqueued_ms = enqueued_ms;
  q.message = std::move(m);
  return q;
}

// Messages seq first..first+n-1 on "t/<seq>" with payload "p<seq>".
inline std::vector<QueuedMessage> Messages(uint64_t first, size_t n, size_t payload_bytes = 0,
                                           uint64_t enqueued_ms = kNow) {
  std::vector<QueuedMessage> out;
  for (uint64_t s = first; s < first + n; ++s) {
    std::string payload = "p" + std::to_string(s);
    if (payload.size() < payload_bytes) payload.resize(payload_bytes, 'x');
    out.push_back(Message(s, "t/" + std::to_string(s), payload, 1, enqueued_ms));
  }
  return out;
}

inline std::vector<uint64_t> Seqs(const std::vector<QueuedMessage>& ms) {
  std::vector<uint64_t> out;
  for (const auto& m : ms) out.push_back(m.seq);
  return out;
}

inline std::vector<uint64_t> Range(uint64_t first, uint64_t last) {
  std::vector<uint64_t> out;
  for (uint64_t s = first; s <= last; ++s) out.push_back(s);
  return out;
}

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

inline std::vector<std::string> SegmentFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".seg") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The real file system, except that once `disk_left` bytes have been
// appended every further append fails with "No space left on device"
// (Status::NoSpace), after writing what still fits (as a real full disk
// does). With `frees_space`, truncating and removing files give their bytes
// back to disk_left, as on a real disk. Overwriting within a file's size
// (WriteAt) needs no space. `fs_bytes` is what FileSystemBytes reports.
class FaultEnv : public QueueEnv {
 public:
  std::atomic<int64_t> disk_left{INT64_MAX};
  std::atomic<bool> frees_space{false};
  std::atomic<uint64_t> fs_bytes{0};
  std::atomic<int> failed_appends{0};
  std::atomic<bool> fail_reads{false};  // every ReadAt fails with EIO
  std::atomic<int> failed_reads{0};
  std::atomic<int> syncs{0};

  Status CreateDirs(const std::string& dir) override { return real_->CreateDirs(dir); }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    return real_->ListDir(dir);
  }
  Result<std::unique_ptr<QueueFile>> Open(const std::string& path, bool create) override {
    auto f = real_->Open(path, create);
    if (!f.ok()) return f.status();
    return std::unique_ptr<QueueFile>(new File(*this, std::move(f).value()));
  }
  Status Remove(const std::string& path) override {
    if (frees_space) {
      if (auto f = real_->Open(path, false); f.ok()) Free(f.value()->Size());
    }
    return real_->Remove(path);
  }
  Status SyncDir(const std::string& dir) override { return real_->SyncDir(dir); }
  uint64_t FileSystemBytes(const std::string&) override { return fs_bytes; }

  // Gives `n` bytes back to the disk (with frees_space).
  void Free(uint64_t n) {
    if (frees_space && disk_left < INT64_MAX / 2) disk_left += static_cast<int64_t>(n);
  }

 private:
  class File : public QueueFile {
   public:
    File(FaultEnv& env, std::unique_ptr<QueueFile> real) : env_(env), real_(std::move(real)) {}
    Status Append(std::string_view data) override {
      int64_t left = env_.disk_left.load();
      if (left >= static_cast<int64_t>(data.size())) {
        env_.disk_left -= static_cast<int64_t>(data.size());
        return real_->Append(data);
      }
      if (left > 0) {
        real_->Append(data.substr(0, static_cast<size_t>(left)));
        env_.disk_left = 0;
      }
      ++env_.failed_appends;
      return Status::NoSpace("write: No space left on device");
    }
    Status WriteAt(uint64_t offset, std::string_view data) override {
      const uint64_t end = offset + data.size();
      const uint64_t size = real_->Size();
      if (end > size) {
        const int64_t grow = static_cast<int64_t>(end - size);
        if (env_.disk_left < grow) {
          ++env_.failed_appends;
          return Status::NoSpace("write: No space left on device");
        }
        env_.disk_left -= grow;
      }
      return real_->WriteAt(offset, data);
    }
    Status ReadAt(uint64_t offset, size_t n, std::string* out) override {
      if (env_.fail_reads) {
        ++env_.failed_reads;
        return Status::IoError("read: Input/output error");
      }
      return real_->ReadAt(offset, n, out);
    }
    Status Truncate(uint64_t size) override {
      const uint64_t before = real_->Size();
      if (size < before) env_.Free(before - size);
      return real_->Truncate(size);
    }
    Status Sync() override {
      ++env_.syncs;
      return real_->Sync();
    }
    uint64_t Size() const override { return real_->Size(); }

   private:
    FaultEnv& env_;
    std::unique_ptr<QueueFile> real_;
  };

  QueueEnv* real_ = QueueEnv::Default();
};

}  // namespace ferry::bridge::queue_test
