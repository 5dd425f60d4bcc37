// DurableStore::Db: opening, checking and configuring the SQLite file, the
// schema, and applying queued mutations with cached statements.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <string>
#include <string_view>
#include <variant>

#include "core/durable_store_internal.h"

namespace ferry::core {
namespace {

using store_internal::kApplicationId;
using store_internal::kSchemaVersion;

// Version 1. A change here needs a new kSchemaVersion and a migration in
// CheckExisting(); older builds refuse the newer file.
constexpr const char* kSchemaSql = R"sql(
CREATE TABLE IF NOT EXISTS sessions(
  client_id TEXT NOT NULL PRIMARY KEY,
  expiry_interval_s INTEGER NOT NULL,
  disconnected_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS subscriptions(
  client_id TEXT NOT NULL,
  filter TEXT NOT NULL,
  qos INTEGER NOT NULL,
  no_local INTEGER NOT NULL,
  retain_as_published INTEGER NOT NULL,
  retain_handling INTEGER NOT NULL,
  subscription_id INTEGER NOT NULL,
  PRIMARY KEY(client_id, filter)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS session_messages(
  client_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  qos INTEGER NOT NULL,
  packet_id INTEGER NOT NULL,
  state INTEGER NOT NULL,
  topic TEXT NOT NULL,
  payload BLOB,
  msg_qos INTEGER NOT NULL,
  retain INTEGER NOT NULL,
  props BLOB,
  expiry_at_ms INTEGER NOT NULL,
  received_at_ms INTEGER NOT NULL,
  origin_client TEXT NOT NULL,
  PRIMARY KEY(client_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS qos2_inbound(
  client_id TEXT NOT NULL,
  packet_id INTEGER NOT NULL,
  PRIMARY KEY(client_id, packet_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS retained(
  topic TEXT NOT NULL PRIMARY KEY,
  payload BLOB,
  qos INTEGER NOT NULL,
  props BLOB,
  expiry_at_ms INTEGER NOT NULL,
  received_at_ms INTEGER NOT NULL,
  origin_client TEXT NOT NULL
) WITHOUT ROWID;
)sql";

// Indexed by Db::Stmt.
constexpr const char* kStmtSql[] = {
    "BEGIN IMMEDIATE",
    "COMMIT",
    "INSERT OR REPLACE INTO sessions(client_id, expiry_interval_s, disconnected_at_ms) "
    "VALUES(?1, ?2, ?3)",
    "DELETE FROM sessions WHERE client_id = ?1",
    "DELETE FROM subscriptions WHERE client_id = ?1",
    "DELETE FROM session_messages WHERE client_id = ?1",
    "DELETE FROM qos2_inbound WHERE client_id = ?1",
    "INSERT OR REPLACE INTO subscriptions(client_id, filter, qos, no_local, "
    "retain_as_published, retain_handling, subscription_id) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    "DELETE FROM subscriptions WHERE client_id = ?1 AND filter = ?2",
    "INSERT OR REPLACE INTO session_messages(client_id, seq, qos, packet_id, state, topic, "
    "payload, msg_qos, retain, props, expiry_at_ms, received_at_ms, origin_client) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    "UPDATE session_messages SET state = ?3, packet_id = ?4 WHERE client_id = ?1 AND seq = ?2",
    "DELETE FROM session_messages WHERE client_id = ?1 AND seq = ?2",
    "INSERT OR REPLACE INTO qos2_inbound(client_id, packet_id) VALUES(?1, ?2)",
    "DELETE FROM qos2_inbound WHERE client_id = ?1 AND packet_id = ?2",
    "INSERT OR REPLACE INTO retained(topic, payload, qos, props, expiry_at_ms, received_at_ms, "
    "origin_client) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    "DELETE FROM retained WHERE topic = ?1",
};

// Binds parameters 1, 2, ... in order and remembers the first failure;
// resets the statement when it goes out of scope so it can be reused.
class Binder {
 public:
  explicit Binder(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~Binder() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Binder(const Binder&) = delete;
  Binder& operator=(const Binder&) = delete;

  // SQLITE_STATIC: the op that owns the bytes outlives the step.
  Binder& Text(std::string_view v) {
    return Check(sqlite3_bind_text64(stmt_, ++index_, v.data() ? v.data() : "", v.size(),
                                     SQLITE_STATIC, SQLITE_UTF8));
  }
  Binder& Blob(std::string_view v) {
    return Check(
        sqlite3_bind_blob64(stmt_, ++index_, v.data() ? v.data() : "", v.size(), SQLITE_STATIC));
  }
  // NULL for an empty value.
  Binder& BlobOrNull(std::string_view v) {
    if (v.empty()) return Check(sqlite3_bind_null(stmt_, ++index_));
    return Blob(v);
  }
  // uint64 values are stored bit for bit as SQLite's signed 64-bit integer.
  Binder& Int(uint64_t v) {
    return Check(sqlite3_bind_int64(stmt_, ++index_, static_cast<sqlite3_int64>(v)));
  }

  sqlite3_stmt* stmt() const { return stmt_; }
  int rc() const { return rc_; }

 private:
  Binder& Check(int rc) {
    if (rc_ == SQLITE_OK) rc_ = rc;
    return *this;
  }
  sqlite3_stmt* stmt_;
  int index_ = 0;
  int rc_ = SQLITE_OK;
};

// PRAGMA results are SQLite's own decimal integers.
long long ToInt(const std::string& text) { return std::strtoll(text.c_str(), nullptr, 10); }

bool IsCorruption(int rc) {
  rc &= 0xff;
  return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

}  // namespace

Result<std::unique_ptr<DurableStore::Db>> DurableStore::Db::Open(const Options& options) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(options.path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<Db> db(new Db(raw, options.path));
  if (rc != SQLITE_OK) return db->Error(rc, "cannot open");
  sqlite3_extended_result_codes(raw, 1);
  // Only an outside reader (the sqlite3 CLI) can hold a lock; wait for it on
  // the storage thread rather than failing a batch.
  sqlite3_busy_timeout(raw, 5000);

  bool fresh = false;
  Status s = db->CheckExisting(&fresh);
  if (s.ok() && !fresh) s = db->QuickCheck();
  // A new file vacuums incrementally, so that a store that deleted much can
  // hand the space back to the file system (IncrementalVacuum). SQLite takes
  // the setting only before the first table and before WAL mode. Files of
  // earlier versions keep auto_vacuum = none and reuse freed pages inside.
  if (s.ok() && fresh) s = db->Exec("PRAGMA auto_vacuum=INCREMENTAL");
  if (s.ok()) s = db->Configure(options);
  if (s.ok() && fresh) s = db->CreateSchema();
  if (s.ok()) db->incremental_vacuum_ = db->QueryInt("PRAGMA auto_vacuum") == 2;
  if (s.ok()) s = db->SetMaxPageCount(options.max_page_count);
  if (s.ok()) s = db->PrepareStatements();
  if (!s.ok()) return s;
  return db;
}

DurableStore::Db::~Db() {
  for (sqlite3_stmt* stmt : stmts_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

Status DurableStore::Db::Error(int rc, std::string_view what) {
  last_error_ = rc & 0xff;
  const char* detail = sqlite3_errstr(rc);
  if (db_ != nullptr && (sqlite3_errcode(db_) & 0xff) == (rc & 0xff)) detail = sqlite3_errmsg(db_);
  std::string msg = "durable store " + path_ + ": " + std::string(what) + ": " + detail;
  if (IsCorruption(rc)) return Status::Corruption(msg);
  return (rc & 0xff) == SQLITE_FULL ? Status::NoSpace(msg) : Status::IoError(msg);
}

Status DurableStore::Db::Exec(const char* sql) {
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? Status::Ok() : Error(rc, sql);
}

Status DurableStore::Db::QueryText(const char* sql, std::string* out) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr);
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      out->assign(text ? reinterpret_cast<const char*>(text) : "");
      rc = SQLITE_OK;
    }
  }
  Status s = rc == SQLITE_OK ? Status::Ok() : Error(rc, sql);
  sqlite3_finalize(stmt);
  return s;
}

// Reads the header fields first: they are on page 1, so a file that is not
// an SQLite database fails here, before anything could write to it.
Status DurableStore::Db::CheckExisting(bool* fresh) {
  std::string app_text, version_text, tables_text;
  Status s = QueryText("PRAGMA application_id", &app_text);
  if (s.ok()) s = QueryText("PRAGMA user_version", &version_text);
  if (s.ok()) s = QueryText("SELECT count(*) FROM sqlite_master", &tables_text);
  if (!s.ok()) return s;
  const int32_t app = static_cast<int32_t>(ToInt(app_text));
  const long long version = ToInt(version_text);
  const long long tables = ToInt(tables_text);
  *fresh = app == 0 && version == 0 && tables == 0;
  if (*fresh) return Status::Ok();
  if (app != kApplicationId) {
    char hex[16];
    std::snprintf(hex, sizeof(hex), "0x%08x", static_cast<uint32_t>(app));
    return Status::Corruption("durable store " + path_ +
                              ": not a ferry durable store (application_id " + hex + ")");
  }
  if (version > kSchemaVersion) {
    return Status::InvalidArgument(
        "durable store " + path_ + ": schema version " + std::to_string(version) +
        " was written by a newer ferry; this build reads up to version " +
        std::to_string(kSchemaVersion));
  }
  if (version < 1) {
    return Status::Corruption("durable store " + path_ + ": invalid schema version " +
                              std::to_string(version));
  }
  return Status::Ok();
}

// A truncated file still has a valid page 1; only walking the b-trees finds
// the missing pages.
Status DurableStore::Db::QuickCheck() {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, "PRAGMA quick_check(5)", -1, &stmt, nullptr);
  std::string report;
  while (rc == SQLITE_OK || rc == SQLITE_ROW) {
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) break;
    const unsigned char* line = sqlite3_column_text(stmt, 0);
    if (!report.empty()) report += "; ";
    report += line ? reinterpret_cast<const char*>(line) : "";
  }
  Status s;
  if (rc != SQLITE_DONE) {
    s = Error(rc, "integrity check");
  } else if (report != "ok") {
    s = Status::Corruption("durable store " + path_ + ": integrity check failed: " + report);
  }
  sqlite3_finalize(stmt);
  return s;
}

Status DurableStore::Db::Configure(const Options& options) {
  std::string mode;
  Status s = QueryText("PRAGMA journal_mode=WAL", &mode);
  if (!s.ok()) return s;
  if (mode != "wal") {
    return Status::IoError("durable store " + path_ + ": cannot use WAL mode (journal mode " +
                           mode + ")");
  }
  s = Exec(options.synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  // Keep the WAL from staying large after a burst has been checkpointed. With
  // a reserve, the WAL stays within half of it between checkpoints, so that
  // the reserve covers a deletion and the checkpoint after it on a full disk
  // (SQLite's own default is 1000 pages, 4 MB).
  uint64_t wal_limit = uint64_t{64} << 20;
  if (options.reserve_bytes > 0) {
    wal_limit = std::min(wal_limit, std::max<uint64_t>(options.reserve_bytes, 256 * 1024));
    const uint64_t pages = std::clamp<uint64_t>(options.reserve_bytes / 2 / 4096, 32, 1000);
    if (s.ok()) s = Exec(("PRAGMA wal_autocheckpoint=" + std::to_string(pages)).c_str());
  }
  if (s.ok()) s = Exec(("PRAGMA journal_size_limit=" + std::to_string(wal_limit)).c_str());
  std::string max_pages;
  if (s.ok()) s = QueryText("PRAGMA max_page_count", &max_pages);
  if (s.ok()) default_max_page_count_ = static_cast<uint32_t>(ToInt(max_pages));
  return s;
}

int64_t DurableStore::Db::QueryInt(const char* sql) {
  std::string text;
  return QueryText(sql, &text).ok() ? ToInt(text) : 0;
}

Status DurableStore::Db::CreateSchema() {
  std::string sql = "BEGIN IMMEDIATE;";
  sql += kSchemaSql;
  sql += "PRAGMA application_id=" + std::to_string(kApplicationId) + ";";
  sql += "PRAGMA user_version=" + std::to_string(kSchemaVersion) + ";";
  sql += "COMMIT;";
  Status s = Exec(sql.c_str());
  if (!s.ok()) Rollback();
  return s;
}

// SQLite never lowers the limit below the current size, so a small value
// means "no more growth". PRAGMA max_page_count=0 would leave the limit
// unchanged; "unlimited" restores the connection's own default.
Status DurableStore::Db::SetMaxPageCount(uint32_t max_page_count) {
  uint32_t pages = max_page_count == 0 ? default_max_page_count_ : max_page_count;
  std::string result;
  std::string sql = "PRAGMA max_page_count=" + std::to_string(pages);
  return QueryText(sql.c_str(), &result);
}

Status DurableStore::Db::Checkpoint() {
  int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  return rc == SQLITE_OK ? Status::Ok() : Error(rc, "checkpoint");
}

Status DurableStore::Db::IncrementalVacuum(uint32_t pages, uint64_t* freed) {
  *freed = 0;
  if (!incremental_vacuum_) return Status::Ok();
  const int64_t before = QueryInt("PRAGMA freelist_count");
  if (before <= 0) return Status::Ok();
  const std::string sql = "PRAGMA incremental_vacuum(" + std::to_string(pages) + ")";
  Status s = Exec(sql.c_str());
  if (!s.ok()) {
    Rollback();
    return s;
  }
  const int64_t after = QueryInt("PRAGMA freelist_count");
  *freed = before > after ? static_cast<uint64_t>(before - after) : 0;
  return s;
}

Status DurableStore::Db::DeleteSomeMessages(const std::string& client_id, size_t limit,
                                            bool* more) {
  *more = false;
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_,
                              "DELETE FROM session_messages WHERE client_id = ?1 AND seq IN "
                              "(SELECT seq FROM session_messages WHERE client_id = ?1 LIMIT ?2)",
                              -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return Error(rc, "delete session messages");
  Status s;
  {
    Binder b(stmt);  // resets the statement before it is finalized
    b.Text(client_id).Int(limit);
    s = Finish(stmt, b.rc(), "delete session messages");
  }
  if (s.ok()) *more = static_cast<size_t>(sqlite3_changes(db_)) >= limit;
  sqlite3_finalize(stmt);
  return s;
}

uint64_t DurableStore::Db::FreeBytes() {
  const int64_t pages = QueryInt("PRAGMA freelist_count");
  const int64_t page_size = QueryInt("PRAGMA page_size");
  return pages > 0 && page_size > 0 ? static_cast<uint64_t>(pages * page_size) : 0;
}

Status DurableStore::Db::PrepareStatements() {
  static_assert(std::size(kStmtSql) == kNumStmts);
  for (int i = 0; i < kNumStmts; ++i) {
    int rc =
        sqlite3_prepare_v3(db_, kStmtSql[i], -1, SQLITE_PREPARE_PERSISTENT, &stmts_[i], nullptr);
    if (rc != SQLITE_OK) return Error(rc, kStmtSql[i]);
  }
  return Status::Ok();
}

Status DurableStore::Db::Begin() {
  Binder b(stmts_[kBegin]);
  return Finish(b.stmt(), b.rc(), "begin");
}

Status DurableStore::Db::Commit() {
  Binder b(stmts_[kCommit]);
  return Finish(b.stmt(), b.rc(), "commit");
}

void DurableStore::Db::Rollback() {
  // SQLite rolls back by itself after some errors (SQLITE_FULL, SQLITE_IOERR).
  if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

Status DurableStore::Db::Finish(sqlite3_stmt* stmt, int bind_rc, std::string_view what) {
  int rc = bind_rc != SQLITE_OK ? bind_rc : sqlite3_step(stmt);
  if (rc == SQLITE_DONE || rc == SQLITE_ROW) return Status::Ok();
  return Error(rc, what);
}

Status DurableStore::Db::Apply(const store_ops::Variant& op) {
  return std::visit([this](const auto& o) { return ApplyOp(o); }, op);
}

Status DurableStore::Db::ApplyOp(const store_ops::PutSession& op) {
  Binder b(stmts_[kPutSession]);
  b.Text(op.client_id).Int(op.expiry_interval_s).Int(op.disconnected_at_ms);
  return Finish(b.stmt(), b.rc(), "put session");
}

Status DurableStore::Db::ApplyOp(const store_ops::DeleteSession& op) {
  for (Stmt stmt :
       {kDeleteSessionSubscriptions, kDeleteSessionMessages, kDeleteSessionQos2, kDeleteSession}) {
    Binder b(stmts_[stmt]);
    b.Text(op.client_id);
    Status s = Finish(b.stmt(), b.rc(), "delete session");
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Status DurableStore::Db::ApplyOp(const store_ops::PutSubscription& op) {
  Binder b(stmts_[kPutSubscription]);
  b.Text(op.client_id).Text(op.sub.filter).Int(op.sub.qos).Int(op.sub.no_local);
  b.Int(op.sub.retain_as_published).Int(op.sub.retain_handling).Int(op.sub.subscription_id);
  return Finish(b.stmt(), b.rc(), "put subscription");
}

Status DurableStore::Db::ApplyOp(const store_ops::DeleteSubscription& op) {
  Binder b(stmts_[kDeleteSubscription]);
  b.Text(op.client_id).Text(op.filter);
  return Finish(b.stmt(), b.rc(), "delete subscription");
}

Status DurableStore::Db::ApplyOp(const store_ops::PutMessage& op) {
  const Message& m = *op.msg.message;
  const std::string props = EncodeMessageProperties(m.props);
  Binder b(stmts_[kPutMessage]);
  b.Text(op.client_id).Int(op.msg.seq).Int(op.msg.qos).Int(op.msg.packet_id);
  b.Int(static_cast<uint8_t>(op.msg.state)).Text(m.topic).Blob(m.payload).Int(m.qos);
  b.Int(m.retain).BlobOrNull(props).Int(m.expiry_at_ms).Int(m.received_at_ms);
  b.Text(m.origin_client);
  return Finish(b.stmt(), b.rc(), "put message");
}

Status DurableStore::Db::ApplyOp(const store_ops::UpdateMessage& op) {
  Binder b(stmts_[kUpdateMessage]);
  b.Text(op.client_id).Int(op.seq).Int(static_cast<uint8_t>(op.state)).Int(op.packet_id);
  return Finish(b.stmt(), b.rc(), "update message");
}

Status DurableStore::Db::ApplyOp(const store_ops::DeleteMessage& op) {
  Binder b(stmts_[kDeleteMessage]);
  b.Text(op.client_id).Int(op.seq);
  return Finish(b.stmt(), b.rc(), "delete message");
}

Status DurableStore::Db::ApplyOp(const store_ops::PutQos2Inbound& op) {
  Binder b(stmts_[kPutQos2Inbound]);
  b.Text(op.client_id).Int(op.packet_id);
  return Finish(b.stmt(), b.rc(), "put qos2 inbound");
}

Status DurableStore::Db::ApplyOp(const store_ops::DeleteQos2Inbound& op) {
  Binder b(stmts_[kDeleteQos2Inbound]);
  b.Text(op.client_id).Int(op.packet_id);
  return Finish(b.stmt(), b.rc(), "delete qos2 inbound");
}

Status DurableStore::Db::ApplyOp(const store_ops::PutRetained& op) {
  const Message& m = *op.message;
  const std::string props = EncodeMessageProperties(m.props);
  Binder b(stmts_[kPutRetained]);
  b.Text(m.topic).Blob(m.payload).Int(m.qos).BlobOrNull(props).Int(m.expiry_at_ms);
  b.Int(m.received_at_ms).Text(m.origin_client);
  return Finish(b.stmt(), b.rc(), "put retained");
}

Status DurableStore::Db::ApplyOp(const store_ops::DeleteRetained& op) {
  Binder b(stmts_[kDeleteRetained]);
  b.Text(op.topic);
  return Finish(b.stmt(), b.rc(), "delete retained");
}

Status DurableStore::Db::ApplyOp(const store_ops::Sync&) { return Status::Ok(); }

}  // namespace ferry::core
