// ferry-queue-bench: the bridge queue's segmented log (src/bridge/queue_log.h)
// beside an SQLite table doing the same job, on this machine's disk.
//
// Both take N messages in groups (as the storage thread's group commit does),
// and after each group mark the previous group done (as the upstream's
// acknowledgements would): the log appends a head record and deletes whole
// segments, SQLite deletes the rows. Printed: messages per second through
// each store, wall clock, with the write durable as queue_sync = write (the
// log's write(), SQLite's WAL commit with synchronous=NORMAL) and as fsync
// (fdatasync per group; SQLite synchronous=FULL).
//
//   ferry-queue-bench [--messages N] [--group G] [--payload BYTES] [--dir DIR]
//
// bench/bridge.sh runs it first; the figures are in bench/RESULTS-bridge.md.
#include <sqlite3.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "bridge/queue_log.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  int messages = 200000;
  int group = 256;
  int payload = 64;
  std::string dir;
};

std::vector<ferry::bridge::QueuedMessage> Group(uint64_t first, int n, int payload) {
  std::vector<ferry::bridge::QueuedMessage> out;
  for (int i = 0; i < n; ++i) {
    auto m = std::make_shared<ferry::core::Message>();
    m->topic = "sensor/site1/line" + std::to_string(i % 8) + "/temp";
    m->payload.assign(static_cast<size_t>(payload), 'x');
    m->qos = 1;
    ferry::bridge::QueuedMessage q;
    q.seq = first + static_cast<uint64_t>(i);
    q.enqueued_ms = 1700000000000;
    q.message = std::move(m);
    out.push_back(std::move(q));
  }
  return out;
}

double RunLog(const Args& a, bool fsync) {
  const std::string dir = a.dir + (fsync ? "/log-fsync" : "/log-write");
  std::filesystem::remove_all(dir);
  ferry::bridge::QueueLog::Options o;
  o.dir = dir;
  o.max_bytes = uint64_t{1} << 30;
  auto log = ferry::bridge::QueueLog::Open(o);
  if (!log.ok()) {
    std::fprintf(stderr, "%s\n", log.status().ToString().c_str());
    std::exit(1);
  }
  // Build the messages first: the store is what is timed.
  std::vector<std::vector<ferry::bridge::QueuedMessage>> groups;
  for (int done = 0; done < a.messages; done += a.group) {
    groups.push_back(Group(static_cast<uint64_t>(done) + 1, std::min(a.group, a.messages - done), a.payload));
  }
  auto start = Clock::now();
  uint64_t head = 1;
  for (const auto& g : groups) {
    if (!(*log)->Append(g, head).ok()) std::exit(1);
    if (fsync && !(*log)->Sync().ok()) std::exit(1);
    head = g.front().seq;  // the previous group is done
  }
  double s = std::chrono::duration<double>(Clock::now() - start).count();
  std::filesystem::remove_all(dir);
  return a.messages / s;
}

void Check(int rc, sqlite3* db, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    std::fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db));
    std::exit(1);
  }
}

double RunSqlite(const Args& a, bool full) {
  const std::string path = a.dir + (full ? "/q-full.db" : "/q-normal.db");
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  sqlite3* db = nullptr;
  Check(sqlite3_open(path.c_str(), &db), db, "open");
  Check(sqlite3_exec(db, full ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                              : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                     nullptr, nullptr, nullptr),
        db, "pragma");
  Check(sqlite3_exec(db,
                     "CREATE TABLE queue(seq INTEGER PRIMARY KEY, enqueued_ms INTEGER, "
                     "expiry_ms INTEGER, qos INTEGER, retain INTEGER, topic TEXT, props BLOB, "
                     "payload BLOB)",
                     nullptr, nullptr, nullptr),
        db, "create");
  sqlite3_stmt* ins = nullptr;
  sqlite3_stmt* del = nullptr;
  Check(sqlite3_prepare_v2(db, "INSERT INTO queue VALUES(?,?,?,?,?,?,?,?)", -1, &ins, nullptr), db,
        "prepare");
  Check(sqlite3_prepare_v2(db, "DELETE FROM queue WHERE seq < ?", -1, &del, nullptr), db,
        "prepare");
  std::vector<std::vector<ferry::bridge::QueuedMessage>> groups;
  for (int done = 0; done < a.messages; done += a.group) {
    groups.push_back(Group(static_cast<uint64_t>(done) + 1, std::min(a.group, a.messages - done), a.payload));
  }
  auto start = Clock::now();
  for (const auto& g : groups) {
    Check(sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr), db, "begin");
    for (const auto& q : g) {
      const ferry::core::Message& m = *q.message;
      sqlite3_bind_int64(ins, 1, static_cast<sqlite3_int64>(q.seq));
      sqlite3_bind_int64(ins, 2, static_cast<sqlite3_int64>(q.enqueued_ms));
      sqlite3_bind_int64(ins, 3, 0);
      sqlite3_bind_int(ins, 4, m.qos);
      sqlite3_bind_int(ins, 5, m.retain);
      sqlite3_bind_text(ins, 6, m.topic.data(), static_cast<int>(m.topic.size()), SQLITE_STATIC);
      sqlite3_bind_null(ins, 7);
      sqlite3_bind_blob(ins, 8, m.payload.data(), static_cast<int>(m.payload.size()), SQLITE_STATIC);
      Check(sqlite3_step(ins), db, "insert");
      sqlite3_reset(ins);
    }
    sqlite3_bind_int64(del, 1, static_cast<sqlite3_int64>(g.front().seq));
    Check(sqlite3_step(del), db, "delete");
    sqlite3_reset(del);
    Check(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), db, "commit");
  }
  double s = std::chrono::duration<double>(Clock::now() - start).count();
  sqlite3_finalize(ins);
  sqlite3_finalize(del);
  sqlite3_close(db);
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  return a.messages / s;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--messages") a.messages = std::atoi(argv[i + 1]);
    else if (k == "--group") a.group = std::atoi(argv[i + 1]);
    else if (k == "--payload") a.payload = std::atoi(argv[i + 1]);
    else if (k == "--dir") a.dir = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: ferry-queue-bench [--messages N] [--group G] [--payload B] [--dir DIR]\n");
      return 2;
    }
  }
  if (a.messages <= 0 || a.group <= 0 || a.payload < 0) return 2;
  bool made = false;
  if (a.dir.empty()) {
    char tmpl[] = "/tmp/ferry-queue-bench.XXXXXX";
    a.dir = mkdtemp(tmpl);
    made = true;
  }
  std::printf("store\tsync\tmessages_per_s\n");
  std::printf("log\twrite\t%.0f\n", RunLog(a, false));
  std::printf("sqlite\twrite\t%.0f\n", RunSqlite(a, false));
  std::printf("log\tfsync\t%.0f\n", RunLog(a, true));
  std::printf("sqlite\tfsync\t%.0f\n", RunSqlite(a, true));
  if (made) std::filesystem::remove_all(a.dir);
  return 0;
}
