// Private to the durable store (durable_store*.cpp and its unit test): the
// queued op types, the SQLite wrapper the storage thread drives, and the
// properties blob codec.
#pragma once

#include <sqlite3.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "core/durable_store.h"
#include "core/packet.h"
#include "core/status.h"

namespace ferry::core {

namespace store_ops {

struct PutSession {
  std::string client_id;
  uint32_t expiry_interval_s;
  uint64_t disconnected_at_ms;
};
struct DeleteSession {
  std::string client_id;
};
struct PutSubscription {
  std::string client_id;
  StoredSubscription sub;
};
struct DeleteSubscription {
  std::string client_id;
  std::string filter;
};
struct PutMessage {
  std::string client_id;
  StoredMessage msg;
};
struct UpdateMessage {
  std::string client_id;
  uint64_t seq;
  StoredMessageState state;
  uint16_t packet_id;
};
struct DeleteMessage {
  std::string client_id;
  uint64_t seq;
};
struct PutQos2Inbound {
  std::string client_id;
  uint16_t packet_id;
};
struct DeleteQos2Inbound {
  std::string client_id;
  uint16_t packet_id;
};
struct PutRetained {
  MessagePtr message;
};
struct DeleteRetained {
  std::string topic;
};
struct Sync {
  std::function<void(const Status&)> done;
};

using Variant = std::variant<PutSession, DeleteSession, PutSubscription, DeleteSubscription,
                             PutMessage, UpdateMessage, DeleteMessage, PutQos2Inbound,
                             DeleteQos2Inbound, PutRetained, DeleteRetained, Sync>;

}  // namespace store_ops

struct DurableStore::Op {
  store_ops::Variant v;
  bool is_sync() const { return std::holds_alternative<store_ops::Sync>(v); }
  // DeleteSession, DeleteSubscription, DeleteMessage, DeleteQos2Inbound or
  // DeleteRetained: what frees space, committed first by a failing store.
  bool is_deletion() const {
    return std::holds_alternative<store_ops::DeleteSession>(v) ||
           std::holds_alternative<store_ops::DeleteSubscription>(v) ||
           std::holds_alternative<store_ops::DeleteMessage>(v) ||
           std::holds_alternative<store_ops::DeleteQos2Inbound>(v) ||
           std::holds_alternative<store_ops::DeleteRetained>(v);
  }
};

// One SQLite connection with its cached statements. Not thread-safe: used by
// one thread at a time (see DurableStore::db_).
class DurableStore::Db {
 public:
  using Logger = std::function<void(std::string_view)>;

  // See DurableStore::Open for the errors.
  static Result<std::unique_ptr<Db>> Open(const Options& options);
  ~Db();

  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  Status Begin();
  Status Commit();
  // Rolls back the open transaction, if SQLite has not already done so.
  void Rollback();
  // Applies one mutation inside the open transaction.
  Status Apply(const store_ops::Variant& op);
  Status SetMaxPageCount(uint32_t max_page_count);
  // PRAGMA wal_checkpoint(TRUNCATE): copies the WAL into the database and
  // empties it, handing its space back to the file system.
  Status Checkpoint();
  // Moves up to `pages` free pages to the end of the file and cuts them off
  // (the file shrinks at the next checkpoint). Only for a store with
  // auto_vacuum = incremental (created by this version on); OK and nothing
  // otherwise. *freed is the number of pages it released.
  Status IncrementalVacuum(uint32_t pages, uint64_t* freed);
  // Free pages inside the database, in bytes.
  uint64_t FreeBytes();
  // Deletes up to `limit` messages of `client_id` in a transaction of its
  // own; *more is false once it found fewer (a large session is deleted a
  // step at a time on a full disk).
  Status DeleteSomeMessages(const std::string& client_id, size_t limit, bool* more);
  // The primary SQLite result code of the last failure.
  int last_error() const { return last_error_; }

  // See DurableStore::LoadAll. Defined in durable_store_load.cpp.
  Result<StoredState> LoadAll(uint64_t now_unix_ms, const Logger& warn);

 private:
  enum Stmt : int {
    kBegin,
    kCommit,
    kPutSession,
    kDeleteSession,
    kDeleteSessionSubscriptions,
    kDeleteSessionMessages,
    kDeleteSessionQos2,
    kPutSubscription,
    kDeleteSubscription,
    kPutMessage,
    kUpdateMessage,
    kDeleteMessage,
    kPutQos2Inbound,
    kDeleteQos2Inbound,
    kPutRetained,
    kDeleteRetained,
    kNumStmts,
  };

  Db(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  Status CheckExisting(bool* fresh);
  Status QuickCheck();
  Status Configure(const Options& options);
  Status CreateSchema();
  Status PrepareStatements();
  // Runs SQL that returns no rows we need.
  Status Exec(const char* sql);
  // Runs a PRAGMA returning one value, as text.
  Status QueryText(const char* sql, std::string* out);
  // Steps `stmt` unless binding failed (bind_rc); the caller resets it.
  Status Finish(sqlite3_stmt* stmt, int bind_rc, std::string_view what);
  // Runs a PRAGMA returning one integer.
  int64_t QueryInt(const char* sql);
  // An error Status for SQLite result code `rc` while doing `what`.
  Status Error(int rc, std::string_view what);

  Status ApplyOp(const store_ops::PutSession& op);
  Status ApplyOp(const store_ops::DeleteSession& op);
  Status ApplyOp(const store_ops::PutSubscription& op);
  Status ApplyOp(const store_ops::DeleteSubscription& op);
  Status ApplyOp(const store_ops::PutMessage& op);
  Status ApplyOp(const store_ops::UpdateMessage& op);
  Status ApplyOp(const store_ops::DeleteMessage& op);
  Status ApplyOp(const store_ops::PutQos2Inbound& op);
  Status ApplyOp(const store_ops::DeleteQos2Inbound& op);
  Status ApplyOp(const store_ops::PutRetained& op);
  Status ApplyOp(const store_ops::DeleteRetained& op);
  Status ApplyOp(const store_ops::Sync& op);

  // Reads the tables for LoadAll (durable_store_load.cpp).
  class Loader;

  sqlite3* db_;
  std::string path_;
  std::array<sqlite3_stmt*, kNumStmts> stmts_{};
  int last_error_ = SQLITE_OK;
  uint32_t default_max_page_count_ = 0;  // the connection's own limit
  bool incremental_vacuum_ = false;      // auto_vacuum = incremental
};

namespace store_internal {

// Schema version kept in PRAGMA user_version.
inline constexpr int kSchemaVersion = 1;
// PRAGMA application_id of a ferry store: "FRRY".
inline constexpr int32_t kApplicationId = 0x46525259;


}  // namespace store_internal

}  // namespace ferry::core
