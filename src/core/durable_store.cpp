// DurableStore: the submission queue and the storage thread (group commit,
// retry with backoff). SQLite itself is in durable_store_sqlite.cpp.

#include "core/durable_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <system_error>
#include <utility>

#include "core/durable_store_internal.h"
#include "core/log.h"

namespace ferry::core {

namespace {

// Size of the file system holding `path`; 0 if unknown.
uint64_t FileSystemBytes(const std::string& path) {
  std::string dir = path.substr(0, path.find_last_of('/') + 1);
  if (dir.empty()) dir = ".";
  struct statvfs vfs;
  if (::statvfs(dir.c_str(), &vfs) != 0) return 0;
  return static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
}

uint64_t FileBytes(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

}  // namespace

Result<std::unique_ptr<DurableStore>> DurableStore::Open(const Options& options) {
  Options capped = options;
  if (capped.reserve_bytes > 0) {
    const uint64_t fs = FileSystemBytes(options.path);
    if (fs > 0) capped.reserve_bytes = std::min(capped.reserve_bytes, fs / 8);
  }
  Result<std::unique_ptr<Db>> db = Db::Open(capped);
  if (!db.ok()) return db.status();
  std::unique_ptr<DurableStore> store(new DurableStore(capped, std::move(db).value()));
  if (store->reserve_size_ > 0 && !store->TakeReserve()) {
    store->Warn("durable store " + options.path + ": no room for the reserve of " +
                std::to_string(store->reserve_size_) + " bytes (" + store->reserve_path() +
                "); taken once there is");
  }
  return store;
}

DurableStore::DurableStore(Options options, std::unique_ptr<Db> db)
    : options_(std::move(options)),
      db_(std::move(db)),
      max_page_count_(options_.max_page_count),
      retry_backoff_(options_.retry_initial, options_.retry_max, BackoffSeed(this)),
      reserve_size_(options_.reserve_bytes) {}

std::string DurableStore::reserve_path() const { return options_.path + "-reserve"; }

bool DurableStore::TakeReserve() {
  if (reserve_size_ == 0) return true;
  if (reserve_held_.load(std::memory_order_relaxed) != 0) return true;
  const std::string path = reserve_path();
  if (FileBytes(path) >= reserve_size_) {  // kept from before a restart
    reserve_held_ = reserve_size_;
    return true;
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return false;
  // Allocated blocks, not a sparse file: the space must really be held.
  const int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(reserve_size_));
  ::close(fd);
  if (rc != 0) {
    ::unlink(path.c_str());
    return false;
  }
  reserve_held_ = reserve_size_;
  return true;
}

void DurableStore::GiveUpReserve() {
  if (reserve_held_.load(std::memory_order_relaxed) == 0) return;
  ::unlink(reserve_path().c_str());
  reserve_held_ = 0;
  Warn("durable store " + options_.path + ": the disk is full; gave up the reserve of " +
       std::to_string(reserve_size_) + " bytes so that deletions can commit");
}

DurableStore::~DurableStore() { Stop(); }

void DurableStore::Warn(std::string_view line) const {
  if (options_.log) {
    options_.log(line);
  } else {
    FERRY_WARN("%.*s", static_cast<int>(line.size()), line.data());
  }
}

Result<StoredState> DurableStore::LoadAll(uint64_t now_unix_ms) {
  {
    std::lock_guard<std::mutex> lock(lifecycle_mu_);
    if (started_ || stopped_) {
      return Status::InvalidArgument("durable store " + options_.path +
                                     ": LoadAll() must be called before Start()");
    }
  }
  return db_->LoadAll(now_unix_ms, [this](std::string_view line) { Warn(line); });
}

Status DurableStore::Start() {
  std::lock_guard<std::mutex> lock(lifecycle_mu_);
  if (started_ || stopped_) return Status::Ok();
  try {
    thread_ = std::thread([this] { Run(); });
  } catch (const std::system_error& e) {
    return Status::IoError("durable store " + options_.path +
                           ": cannot start the storage thread: " + e.what());
  }
  started_ = true;
  return Status::Ok();
}

void DurableStore::Stop() {
  std::lock_guard<std::mutex> lock(lifecycle_mu_);
  if (stopped_) return;
  assert(!started_ || thread_.get_id() != std::this_thread::get_id());
  {
    std::lock_guard<std::mutex> queue_lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (started_) {
    thread_.join();
  } else {
    Run();  // nothing else touches db_ before Start(): apply on this thread
  }
  stopped_ = true;
}

void DurableStore::Submit(Op op, bool is_mutation) {
  bool accepted = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      queue_.push_back(std::move(op));
      accepted = true;
      if (is_mutation) pending_ops_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (accepted) {
    cv_.notify_one();
    return;
  }
  // Stopped: nothing will ever apply this op.
  if (auto* sync = std::get_if<store_ops::Sync>(&op.v)) {
    sync->done(Status::Unavailable("durable store " + options_.path + ": stopped"));
    return;
  }
  dropped_ops_.fetch_add(1, std::memory_order_relaxed);
  if (!warned_after_stop_.exchange(true)) {
    Warn("durable store " + options_.path + ": dropping mutations submitted after Stop()");
  }
}

void DurableStore::PutSession(std::string client_id, uint32_t expiry_interval_s,
                              uint64_t disconnected_at_ms) {
  Submit(Op{store_ops::PutSession{std::move(client_id), expiry_interval_s, disconnected_at_ms}},
         true);
}

void DurableStore::DeleteSession(std::string client_id) {
  Submit(Op{store_ops::DeleteSession{std::move(client_id)}}, true);
}

void DurableStore::PutSubscription(std::string client_id, StoredSubscription sub) {
  Submit(Op{store_ops::PutSubscription{std::move(client_id), std::move(sub)}}, true);
}

void DurableStore::DeleteSubscription(std::string client_id, std::string filter) {
  Submit(Op{store_ops::DeleteSubscription{std::move(client_id), std::move(filter)}}, true);
}

void DurableStore::PutMessage(std::string client_id, StoredMessage msg) {
  assert(msg.message != nullptr);
  if (msg.message == nullptr) {
    Warn("durable store " + options_.path + ": dropping PutMessage without a message for '" +
         client_id + "'");
    return;
  }
  Submit(Op{store_ops::PutMessage{std::move(client_id), std::move(msg)}}, true);
}

void DurableStore::UpdateMessage(std::string client_id, uint64_t seq, StoredMessageState state,
                                 uint16_t packet_id) {
  Submit(Op{store_ops::UpdateMessage{std::move(client_id), seq, state, packet_id}}, true);
}

void DurableStore::DeleteMessage(std::string client_id, uint64_t seq) {
  Submit(Op{store_ops::DeleteMessage{std::move(client_id), seq}}, true);
}

void DurableStore::PutQos2Inbound(std::string client_id, uint16_t packet_id) {
  Submit(Op{store_ops::PutQos2Inbound{std::move(client_id), packet_id}}, true);
}

void DurableStore::DeleteQos2Inbound(std::string client_id, uint16_t packet_id) {
  Submit(Op{store_ops::DeleteQos2Inbound{std::move(client_id), packet_id}}, true);
}

void DurableStore::PutRetained(MessagePtr message) {
  assert(message != nullptr);
  if (message == nullptr) {
    Warn("durable store " + options_.path + ": dropping PutRetained without a message");
    return;
  }
  Submit(Op{store_ops::PutRetained{std::move(message)}}, true);
}

void DurableStore::DeleteRetained(std::string topic) {
  Submit(Op{store_ops::DeleteRetained{std::move(topic)}}, true);
}

void DurableStore::Sync(std::function<void(const Status&)> done) {
  Submit(Op{store_ops::Sync{std::move(done)}}, false);
}

DurableStoreStats DurableStore::stats() const {
  DurableStoreStats s;
  s.ops = ops_.load(std::memory_order_relaxed);
  s.commits = commits_.load(std::memory_order_relaxed);
  s.commit_errors = commit_errors_.load(std::memory_order_relaxed);
  s.pending_ops = pending_ops_.load(std::memory_order_relaxed);
  s.dropped_ops = dropped_ops_.load(std::memory_order_relaxed);
  s.writable = writable_.load(std::memory_order_relaxed);
  s.failing_since_ms = failing_since_ms_.load(std::memory_order_relaxed);
  s.reserve_bytes = reserve_held_.load(std::memory_order_relaxed);
  s.file_bytes = FileBytes(options_.path) + FileBytes(options_.path + "-wal");
  if (!s.writable) {
    std::lock_guard<std::mutex> lock(error_mu_);
    s.last_error = last_error_;
  }
  return s;
}

void DurableStore::SetMaxPageCountForTest(uint32_t max_page_count) {
  std::lock_guard<std::mutex> lock(mu_);
  max_page_count_ = max_page_count;
  max_page_count_dirty_ = true;
  cv_.notify_one();
}

}  // namespace ferry::core
