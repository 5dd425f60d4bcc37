// The node's durable store: retained messages and persistent MQTT sessions
// kept in one SQLite database (WAL mode) under data_dir.
//
// Threads. Open() and LoadAll() run on the caller's thread, before Start().
// After Start() only the store's own storage thread touches SQLite; every
// mutation (Put*/Delete*/Update*) and Sync() may be called from any thread,
// never blocks on disk, and only takes a mutex long enough to append to an
// in-memory queue and wake the storage thread. So no SQLite call ever runs on
// an I/O loop.
//
// Schema (version 1, kept in PRAGMA user_version; PRAGMA application_id marks
// the file as a ferry store). Every table is WITHOUT ROWID: rows are always
// found by their key, and most MQTT payloads are small.
//
//   sessions(client_id PK, expiry_interval_s, disconnected_at_ms)
//   subscriptions(client_id, filter, qos, no_local, retain_as_published,
//                 retain_handling, subscription_id, PK(client_id, filter))
//   session_messages(client_id, seq, qos, packet_id, state, topic, payload,
//                    msg_qos, retain, props, expiry_at_ms, received_at_ms,
//                    origin_client, PK(client_id, seq))
//   qos2_inbound(client_id, packet_id, PK(client_id, packet_id))
//   retained(topic PK, payload, qos, props, expiry_at_ms, received_at_ms,
//            origin_client)
//
// Example: client "c1" (session expiry 3600 s, disconnected at T) with one
// subscription, one QoS 2 message whose PUBREL has been sent, and one
// inbound QoS 2 packet 5 that was PUBREC'd but not yet released is stored as
//
//   sessions          ("c1", 3600, T)
//   subscriptions     ("c1", "a/#", 2, 0, 0, 0, 0)
//   session_messages  ("c1", 7, 2, 99, 2 /* kReleased */, "a/b", x'7b7d', 2, 0,
//                      NULL, 0, T-5, "publisher")
//   qos2_inbound      ("c1", 5)
//
// `props` is a private, versioned, length-prefixed encoding of the message
// properties Message documents (payload format indicator, content type,
// response topic, correlation data, user properties in order); NULL when
// there are none. It is decoded as untrusted bytes: a bad blob skips its row.
//
// Batching (group commit). The storage thread sleeps until something is
// queued, then takes everything queued and applies it, in submission order,
// in one BEGIN..COMMIT. While it commits, producers keep queueing; their ops
// form the next batch. Example: four workers PutMessage 1000 times each while
// a commit is in flight; the next wake-up takes all of them and commits once.
//
// Durability window. A batch is durable when its COMMIT returns, and Sync()
// callbacks fire only after that. With the default synchronous=NORMAL the
// commit has been written to the WAL file (the OS page cache) but not
// fsync'ed: it survives a crash or SIGKILL of the process, while a power loss
// or kernel crash can lose the last commits (never corrupting the database).
// Options::synchronous_full closes that window at the cost of one fsync per
// batch.
//
// Failures. A failed commit (disk full, I/O error) is rolled back and
// reported to that batch's Sync() callbacks (so a publisher waiting for them
// is not told its message is safe), counted in commit_errors, and the store
// is not writable (stats().writable) until a commit succeeds again. Its
// mutations stay queued and are retried with capped exponential backoff and
// decorrelated jitter (first retry after Options::retry_initial, at most
// Options::retry_max apart), so nothing submitted is silently lost and the
// store recovers by itself once space returns. Meanwhile:
//   - Deletions (DeleteSession, DeleteSubscription, DeleteMessage,
//     DeleteQos2Inbound, DeleteRetained) do not wait behind the failed puts:
//     each wake-up commits them first, in a transaction of their own, and
//     drops the queued mutations they make moot (a message put and then
//     deleted is never written). A session that ends or expires, or a
//     message a subscriber acknowledged, frees space even on a full disk.
//     A later update of a queued put is folded into it.
//   - The reserve (Options::reserve_bytes, a file next to the database) is
//     given up when a deletion or a checkpoint fails for lack of space, and
//     taken again before anything else is written: the other mutations are
//     retried only while the reserve is held (or the database has that much
//     free space inside), so they cannot eat the room deletions need. After
//     deletions the store vacuums free pages (auto_vacuum = incremental, in
//     stores created since) and truncates the WAL, handing the space back
//     to the file system.
//   - Puts are retried in chunks, in order, so that part of the queue can
//     commit when part of the space returns.
// Sync() callbacks submitted while the store fails are answered at the next
// attempt: OK if everything before them committed, else the error (at most
// retry_max later). An op that can never succeed (e.g. a value too big for
// SQLite) is dropped alone with a warning, so it cannot wedge the queue.
// Stop() does not wait forever: after a failure it makes one last attempt
// and, if that fails too, drops the batch with a warning.
//
// Ownership. Ops hold the MessagePtr they are given (shared, immutable): no
// payload is copied when queueing.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/backoff.h"
#include "core/message.h"
#include "core/status.h"

namespace ferry::core {

// One subscription of a persistent session (MQTT 5.0 section 3.8.3.1).
struct StoredSubscription {
  std::string filter;  // topic filter, as subscribed (including any $share/ prefix)
  uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  uint8_t retain_handling = 0;
  uint32_t subscription_id = 0;  // 0: none

  bool operator==(const StoredSubscription&) const = default;
};

enum class StoredMessageState : uint8_t {
  kQueued = 0,    // not yet sent to the client
  kSent = 1,      // PUBLISH sent, awaiting PUBACK (QoS 1) or PUBREC (QoS 2)
  kReleased = 2,  // QoS 2: PUBREL sent, awaiting PUBCOMP
};

// A message queued for, or in flight to, one session's client.
struct StoredMessage {
  uint64_t seq = 0;        // the session's order; unique per client
  uint8_t qos = 0;         // QoS granted for this delivery
  uint16_t packet_id = 0;  // 0 until sent
  StoredMessageState state = StoredMessageState::kQueued;
  MessagePtr message;  // never null
};

struct StoredSession {
  std::string client_id;
  uint32_t expiry_interval_s = 0;
  uint64_t disconnected_at_ms = 0;                // Unix ms; 0 while connected
  std::vector<StoredSubscription> subscriptions;  // ordered by filter
  std::vector<StoredMessage> messages;            // ordered by seq
  // Packet identifiers of QoS 2 PUBLISHes received and PUBREC'd but not yet
  // released by PUBREL [MQTT-4.3.3-9]; ascending.
  std::vector<uint16_t> qos2_inbound;
};

struct StoredState {
  std::vector<StoredSession> sessions;  // ordered by client_id
  std::vector<MessagePtr> retained;     // ordered by topic
  // Rows that could not be decoded (bad properties blob, out-of-range value)
  // and were left out; each was also logged.
  uint64_t skipped_rows = 0;
};

struct DurableStoreStats {
  uint64_t ops = 0;            // mutations committed (or made moot by a later deletion)
  uint64_t commits = 0;        // transactions committed
  uint64_t commit_errors = 0;  // transaction attempts that failed
  uint64_t pending_ops = 0;    // mutations submitted, not yet committed or dropped
  uint64_t dropped_ops = 0;    // mutations given up on (see Failures above)
  // False from a failed commit until a commit of everything that waited
  // succeeds (see Failures above).
  bool writable = true;
  uint64_t failing_since_ms = 0;  // Unix ms of the first failure; 0 while writable
  std::string last_error;         // of the last failed attempt; "" while writable
  uint64_t reserve_bytes = 0;     // disk space held in reserve now (0 once given up)
  uint64_t file_bytes = 0;        // the database and its WAL on disk
};

class DurableStore {
 public:
  struct Options {
    std::string path;  // database file; its directory must exist
    // PRAGMA synchronous=FULL (fsync per batch) instead of NORMAL.
    bool synchronous_full = false;
    // PRAGMA max_page_count; 0 = unlimited. Tests use a small value to make
    // SQLite fail with SQLITE_FULL, as a full disk would.
    uint32_t max_page_count = 0;
    // Disk space kept back in the file `path` + "-reserve" (see Failures
    // above); 0 = none. Open() lowers it to an eighth of the file system's
    // size, and keeps the WAL at most half of it between checkpoints.
    uint64_t reserve_bytes = 0;
    std::chrono::milliseconds retry_initial{50};
    std::chrono::milliseconds retry_max{5000};
    // Receives warnings (one line each, without a trailing newline), from the
    // storage thread or the thread calling LoadAll(); must not throw.
    // Empty: FERRY_WARN.
    std::function<void(std::string_view)> log;
  };

  // Opens or creates the database at options.path, sets WAL mode and the
  // synchronous level, creates the schema in a new file, and checks an
  // existing one with PRAGMA quick_check (which reads the whole file once).
  // Takes the reserve (a reserve that does not fit is warned about and taken
  // later).
  // Errors:
  //   Corruption: the file is not an SQLite database, is corrupt or
  //     truncated, or is another application's database. The message names
  //     the path and SQLite's message. The file is never modified.
  //   InvalidArgument: the store was written by a newer ferry (its schema
  //     version is higher than this build's).
  //   IoError: the file cannot be opened or configured (missing directory,
  //     permissions, no WAL support).
  static Result<std::unique_ptr<DurableStore>> Open(const Options& options);

  // Stop()s if started, then closes the database.
  ~DurableStore();

  DurableStore(const DurableStore&) = delete;
  DurableStore& operator=(const DurableStore&) = delete;

  // Reads everything. Blocking; runs on the caller's thread.
  // Messages still queued (never sent) whose expiry_at_ms is non-zero and
  // <= now_unix_ms are dropped from the result and deleted [MQTT-3.3.2-5];
  // in-flight messages (kSent, kReleased) are kept, since onward delivery has
  // started. Expired retained messages are dropped and deleted likewise.
  // Subscriptions, messages and QoS 2 identifiers of a client that has no
  // session row are discarded and deleted. Rows that cannot be decoded are
  // skipped, logged and counted in skipped_rows (they stay on disk).
  // REQUIRES: called before Start(); later calls return InvalidArgument.
  // Errors: Corruption or IoError when SQLite cannot read a table.
  Result<StoredState> LoadAll(uint64_t now_unix_ms);

  // Starts the storage thread, which applies what was queued so far.
  // Errors: IoError if the thread cannot be created. Calling it again is a
  // no-op returning OK.
  Status Start();

  // Stops accepting mutations, lets the storage thread apply and commit
  // everything submitted (one last attempt after a failure, see the top of
  // this file), and joins it. Without a prior Start(), the queue is applied
  // on the calling thread. Idempotent.
  // REQUIRES: not called from a Sync() callback.
  void Stop();

  // Mutations. Any thread; never block on disk. Applied in submission order.
  // Mutations submitted after Stop() are dropped (counted in dropped_ops,
  // warned about once).

  // Upserts a session row by client_id.
  void PutSession(std::string client_id, uint32_t expiry_interval_s, uint64_t disconnected_at_ms);
  // Deletes the session and all its subscriptions, messages and QoS 2
  // identifiers.
  void DeleteSession(std::string client_id);
  // Upserts by (client_id, sub.filter).
  void PutSubscription(std::string client_id, StoredSubscription sub);
  void DeleteSubscription(std::string client_id, std::string filter);
  // Upserts by (client_id, msg.seq). Shares msg.message; copies no payload.
  // REQUIRES: msg.message != nullptr (a null message is dropped and logged).
  void PutMessage(std::string client_id, StoredMessage msg);
  // Sets state and packet_id of an existing message; no-op if there is none.
  void UpdateMessage(std::string client_id, uint64_t seq, StoredMessageState state,
                     uint16_t packet_id);
  void DeleteMessage(std::string client_id, uint64_t seq);
  void PutQos2Inbound(std::string client_id, uint16_t packet_id);
  void DeleteQos2Inbound(std::string client_id, uint16_t packet_id);
  // Upserts the retained message of message->topic. Shares the message.
  // REQUIRES: message != nullptr (a null message is dropped and logged).
  void PutRetained(MessagePtr message);
  void DeleteRetained(std::string topic);

  // Calls done(status) on the storage thread once every mutation submitted
  // before this call has been committed (OK) or its commit attempt failed
  // (that error, with reason kQuotaExceeded when the disk is full; the
  // mutations stay queued and are retried). OK means durable: a later
  // Sync() returns OK only once every earlier mutation committed too. Used to
  // acknowledge a publish only once it is durable: `done` should post to the
  // caller's own loop and return. It may submit mutations; it must not throw,
  // call Stop() or destroy the store. If Start() never ran, Stop() applies the
  // queue and runs `done` on its own thread. After Stop(), done(Unavailable)
  // runs at once on the calling thread.
  void Sync(std::function<void(const Status&)> done);

  // Any thread; each field is read atomically, the set is not a snapshot.
  DurableStoreStats stats() const;

  // Test hook: PRAGMA max_page_count to apply before the next transaction
  // attempt (0 = unlimited), e.g. to let a store that hit SQLITE_FULL
  // recover as if disk space had been freed. Any thread.
  void SetMaxPageCountForTest(uint32_t max_page_count);

 private:
  // Defined in durable_store_internal.h.
  class Db;
  struct Op;

  DurableStore(Options options, std::unique_ptr<Db> db);

  enum class Outcome { kCommitted, kRetryNow, kFailed };

  void Submit(Op op, bool is_mutation);
  void Warn(std::string_view line) const;
  // The storage thread's loop; Stop() runs it inline if Start() never ran.
  void Run();
  // Applies the mutations of batch[0, end) in one transaction. Committed:
  // answers the Sync ops of that range OK and erases it. Failed: an op
  // that can never succeed is dropped (kRetryNow); otherwise *error is set
  // and nothing changes (kFailed).
  Outcome CommitRange(std::vector<Op>& batch, size_t end, Status* error);
  // BEGIN, every op of `ops`, COMMIT; ROLLBACK on failure. *failed_at is
  // the index in `ops` of the op that failed; untouched if the failure was
  // not an op's (BEGIN or COMMIT).
  Status ApplyOps(const std::vector<const Op*>& ops, size_t* failed_at);
  // The failing store's attempt (see Failures above): deletions first, then,
  // if `retry` and the reserve allows (or this is the `last` attempt, at
  // Stop()), the rest in chunks. Answers the Sync ops it can; with `retry`
  // every one left gets the error. True once `batch` is empty.
  bool Recover(std::vector<Op>& batch, bool retry, bool last);
  // Commits the deletions of `batch` in one transaction and removes them,
  // with the mutations they made moot. True if something was committed.
  bool CommitDeletions(std::vector<Op>& batch);
  // Drops from `batch` (in submission order) the mutations a later deletion
  // makes moot, and folds an UpdateMessage into an earlier queued PutMessage
  // or UpdateMessage of the same message. After it, no deletion has an
  // earlier mutation of the same key, so the deletions may be committed
  // before everything else. Returns how many mutations it removed; Sync ops
  // stay where they are.
  // Example: Put(c,7) Update(c,7,sent) Sync Put(c,8) Delete(c,7) becomes
  // Sync Put(c,8) Delete(c,7): the Sync's promise (message 7 is safe) is
  // kept by the deletion, which commits first.
  static size_t CompactForRetry(std::vector<Op>& batch);
  // Hands space back after deletions: vacuum, then truncate the WAL.
  void ReturnSpace();
  std::string reserve_path() const;
  // Takes the reserve if it is not held; true if it is held (or there is
  // none to hold).
  bool TakeReserve();
  void GiveUpReserve();
  // Whether the other mutations may be retried: the reserve is held, or the
  // database has that much free space inside.
  bool MayWriteMore();
  void SetFailing(const Status& error);
  void SetWritable();
  static void AnswerSyncs(std::vector<Op>& batch, size_t end, const Status& status);
  // Drops the answered Sync ops of `batch`.
  static void EraseAnsweredSyncs(std::vector<Op>& batch);

  const Options options_;
  // Used by the caller's thread until Start(), then by the storage thread only.
  std::unique_ptr<Db> db_;

  std::mutex lifecycle_mu_;  // serializes Start() and Stop()
  bool started_ = false;     // guarded by lifecycle_mu_
  bool stopped_ = false;     // guarded by lifecycle_mu_
  std::thread thread_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Op> queue_;              // guarded by mu_
  bool stopping_ = false;              // guarded by mu_
  uint32_t max_page_count_ = 0;        // guarded by mu_
  bool max_page_count_dirty_ = false;  // guarded by mu_

  std::atomic<uint64_t> ops_{0};
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> commit_errors_{0};
  std::atomic<uint64_t> pending_ops_{0};
  std::atomic<uint64_t> dropped_ops_{0};
  std::atomic<bool> warned_after_stop_{false};
  std::atomic<bool> writable_{true};
  std::atomic<uint64_t> failing_since_ms_{0};
  std::atomic<uint64_t> reserve_held_{0};
  mutable std::mutex error_mu_;
  std::string last_error_;  // guarded by error_mu_

  // Storage thread only (or the caller's before Start()).
  Backoff retry_backoff_;      // delays between commit retries
  bool failing_ = false;       // a commit failed and none succeeded since
  uint64_t reserve_size_ = 0;  // Options::reserve_bytes as capped by Open()
};

}  // namespace ferry::core
