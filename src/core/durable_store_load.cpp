// DurableStore::Db::LoadAll: reads every table back into a StoredState.
//
// Rows are read as untrusted: the file may have been edited by hand or
// damaged below SQLite's checks. A row with an out-of-range value or a bad
// properties blob is skipped and reported; it never stops the load.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/durable_store_internal.h"

namespace ferry::core {
namespace {

constexpr uint64_t kMaxSubscriptionId = 268'435'455;  // MQTT 5.0 section 3.8.2.1.2

std::string ColBytes(sqlite3_stmt* stmt, int col) {
  const void* data = sqlite3_column_blob(stmt, col);
  int size = sqlite3_column_bytes(stmt, col);
  return data ? std::string(static_cast<const char*>(data), static_cast<size_t>(size)) : "";
}

uint64_t ColU64(sqlite3_stmt* stmt, int col) {
  return static_cast<uint64_t>(sqlite3_column_int64(stmt, col));
}

bool Expired(uint64_t expiry_at_ms, uint64_t now_unix_ms) {
  return expiry_at_ms != 0 && expiry_at_ms <= now_unix_ms;
}

}  // namespace

class DurableStore::Db::Loader {
 public:
  Loader(Db& db, uint64_t now_unix_ms, const Logger& warn)
      : db_(db), now_(now_unix_ms), warn_(warn) {}

  Result<StoredState> Run() {
    Status s = DeleteExpiredAndOrphans();
    if (!s.ok()) warn_(s.ToString() + "; expired and orphaned rows stay on disk, skipped");
    if (s = LoadSessions(); !s.ok()) return s;
    if (s = LoadSubscriptions(); !s.ok()) return s;
    if (s = LoadMessages(); !s.ok()) return s;
    if (s = LoadQos2Inbound(); !s.ok()) return s;
    if (s = LoadRetained(); !s.ok()) return s;
    // SQLite orders seq as a signed integer; the session's order is unsigned.
    for (StoredSession& session : state_.sessions) {
      std::sort(session.messages.begin(), session.messages.end(),
                [](const StoredMessage& a, const StoredMessage& b) { return a.seq < b.seq; });
    }
    return std::move(state_);
  }

 private:
  // Calls row(stmt) for each result row of `sql`.
  template <typename RowFn>
  Status ForEachRow(const char* sql, RowFn row) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_.db_, sql, -1, &stmt, nullptr);
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
      rc = sqlite3_step(stmt);
      if (rc == SQLITE_ROW) row(stmt);
    }
    Status s = rc == SQLITE_DONE ? Status::Ok() : db_.Error(rc, sql);
    sqlite3_finalize(stmt);
    return s;
  }

  void Skip(std::string_view table, const std::string& key, std::string_view why) {
    ++state_.skipped_rows;
    warn_("durable store " + db_.path_ + ": skipping " + std::string(table) + " row " + key + ": " +
          std::string(why));
  }

  // The session a row belongs to, or nullptr for a client without a session
  // row (only possible if the orphan cleanup failed).
  StoredSession* SessionOf(const std::string& client_id) {
    auto it = index_.find(client_id);
    return it == index_.end() ? nullptr : &state_.sessions[it->second];
  }

  // Queued messages past their expiry have not started onward delivery, so
  // they go [MQTT-3.3.2-5]; in-flight ones stay for the handshake to finish.
  Status DeleteExpiredAndOrphans() {
    const uint64_t now = std::min<uint64_t>(now_, std::numeric_limits<int64_t>::max());
    const std::string t = std::to_string(now);
    std::string sql = "BEGIN IMMEDIATE;";
    sql +=
        "DELETE FROM session_messages WHERE state = 0 AND expiry_at_ms > 0 AND expiry_at_ms <= " +
        t + ";";
    sql += "DELETE FROM retained WHERE expiry_at_ms > 0 AND expiry_at_ms <= " + t + ";";
    for (const char* table : {"subscriptions", "session_messages", "qos2_inbound"}) {
      sql += std::string("DELETE FROM ") + table +
             " WHERE client_id NOT IN (SELECT client_id FROM sessions);";
    }
    sql += "COMMIT;";
    Status s = db_.Exec(sql.c_str());
    if (!s.ok()) db_.Rollback();
    return s;
  }

  Status LoadSessions() {
    return ForEachRow(
        "SELECT client_id, expiry_interval_s, disconnected_at_ms FROM sessions ORDER BY client_id",
        [this](sqlite3_stmt* stmt) {
          StoredSession session;
          session.client_id = ColBytes(stmt, 0);
          const uint64_t expiry = ColU64(stmt, 1);
          if (expiry > std::numeric_limits<uint32_t>::max()) {
            return Skip("sessions", "'" + session.client_id + "'", "expiry interval out of range");
          }
          session.expiry_interval_s = static_cast<uint32_t>(expiry);
          session.disconnected_at_ms = ColU64(stmt, 2);
          index_.emplace(session.client_id, state_.sessions.size());
          state_.sessions.push_back(std::move(session));
        });
  }

  Status LoadSubscriptions() {
    return ForEachRow(
        "SELECT client_id, filter, qos, no_local, retain_as_published, retain_handling, "
        "subscription_id FROM subscriptions ORDER BY client_id, filter",
        [this](sqlite3_stmt* stmt) {
          StoredSession* session = SessionOf(ColBytes(stmt, 0));
          if (session == nullptr) return;
          StoredSubscription sub;
          sub.filter = ColBytes(stmt, 1);
          const uint64_t qos = ColU64(stmt, 2), no_local = ColU64(stmt, 3), rap = ColU64(stmt, 4),
                         rh = ColU64(stmt, 5), id = ColU64(stmt, 6);
          if (qos > 2 || no_local > 1 || rap > 1 || rh > 2 || id > kMaxSubscriptionId) {
            return Skip("subscriptions", "'" + session->client_id + "' '" + sub.filter + "'",
                        "value out of range");
          }
          sub.qos = static_cast<uint8_t>(qos);
          sub.no_local = no_local != 0;
          sub.retain_as_published = rap != 0;
          sub.retain_handling = static_cast<uint8_t>(rh);
          sub.subscription_id = static_cast<uint32_t>(id);
          session->subscriptions.push_back(std::move(sub));
        });
  }

  Status LoadMessages() {
    return ForEachRow(
        "SELECT client_id, seq, qos, packet_id, state, topic, payload, msg_qos, retain, props, "
        "expiry_at_ms, received_at_ms, origin_client FROM session_messages "
        "ORDER BY client_id, seq",
        [this](sqlite3_stmt* stmt) {
          StoredSession* session = SessionOf(ColBytes(stmt, 0));
          if (session == nullptr) return;
          StoredMessage stored;
          stored.seq = ColU64(stmt, 1);
          const std::string key = "'" + session->client_id + "' seq " + std::to_string(stored.seq);
          const uint64_t qos = ColU64(stmt, 2), packet_id = ColU64(stmt, 3),
                         state = ColU64(stmt, 4), msg_qos = ColU64(stmt, 7),
                         retain = ColU64(stmt, 8);
          if (qos > 2 || packet_id > 0xFFFF || state > 2 || msg_qos > 2 || retain > 1) {
            return Skip("session_messages", key, "value out of range");
          }
          Result<Properties> props = DecodeMessageProperties(ColBytes(stmt, 9));
          if (!props.ok()) return Skip("session_messages", key, props.status().message());
          stored.qos = static_cast<uint8_t>(qos);
          stored.packet_id = static_cast<uint16_t>(packet_id);
          stored.state = static_cast<StoredMessageState>(state);
          const uint64_t expiry_at_ms = ColU64(stmt, 10);
          if (stored.state == StoredMessageState::kQueued && Expired(expiry_at_ms, now_)) return;
          auto m = std::make_shared<Message>();
          m->topic = ColBytes(stmt, 5);
          m->payload = ColBytes(stmt, 6);
          m->qos = static_cast<uint8_t>(msg_qos);
          m->retain = retain != 0;
          m->props = std::move(props.value());
          m->expiry_at_ms = expiry_at_ms;
          m->received_at_ms = ColU64(stmt, 11);
          m->origin_client = ColBytes(stmt, 12);
          stored.message = std::move(m);
          session->messages.push_back(std::move(stored));
        });
  }

  Status LoadQos2Inbound() {
    return ForEachRow("SELECT client_id, packet_id FROM qos2_inbound ORDER BY client_id, packet_id",
                      [this](sqlite3_stmt* stmt) {
                        StoredSession* session = SessionOf(ColBytes(stmt, 0));
                        if (session == nullptr) return;
                        const uint64_t packet_id = ColU64(stmt, 1);
                        if (packet_id == 0 || packet_id > 0xFFFF) {
                          return Skip("qos2_inbound", "'" + session->client_id + "'",
                                      "packet identifier out of range");
                        }
                        session->qos2_inbound.push_back(static_cast<uint16_t>(packet_id));
                      });
  }

  Status LoadRetained() {
    return ForEachRow(
        "SELECT topic, payload, qos, props, expiry_at_ms, received_at_ms, origin_client "
        "FROM retained ORDER BY topic",
        [this](sqlite3_stmt* stmt) {
          auto m = std::make_shared<Message>();
          m->topic = ColBytes(stmt, 0);
          const uint64_t qos = ColU64(stmt, 2);
          if (qos > 2) return Skip("retained", "'" + m->topic + "'", "qos out of range");
          Result<Properties> props = DecodeMessageProperties(ColBytes(stmt, 3));
          if (!props.ok()) return Skip("retained", "'" + m->topic + "'", props.status().message());
          m->expiry_at_ms = ColU64(stmt, 4);
          if (Expired(m->expiry_at_ms, now_)) return;
          m->payload = ColBytes(stmt, 1);
          m->qos = static_cast<uint8_t>(qos);
          m->retain = true;
          m->props = std::move(props.value());
          m->received_at_ms = ColU64(stmt, 5);
          m->origin_client = ColBytes(stmt, 6);
          state_.retained.push_back(std::move(m));
        });
  }

  Db& db_;
  const uint64_t now_;
  const Logger& warn_;
  StoredState state_;
  std::unordered_map<std::string, size_t> index_;  // client_id -> state_.sessions index
};

Result<StoredState> DurableStore::Db::LoadAll(uint64_t now_unix_ms, const Logger& warn) {
  return Loader(*this, now_unix_ms, warn).Run();
}

}  // namespace ferry::core
