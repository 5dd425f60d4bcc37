// BridgeQueue: a bridge's durable store-and-forward queue. Workers append the
// messages a forward rule matched; a storage thread writes them to the
// QueueLog (queue_log.h) in groups; the bridge's loop sends them upstream and
// reports what the upstream acknowledged, which the storage thread records.
//
//   worker threads --Append--> [pending batch] --storage thread--> QueueLog
//        |                                          |  (group commit,
//        |                                          |   retries with backoff)
//        +--arrived (same order)--> bridge loop <---+ loaded, trimmed
//                                    | SetHead(h): every message below h is done
//                                    +--------------------> storage thread
//
// Sequence numbers are given out under one mutex in Append, in the order the
// messages reach the queue, so the log, the arrivals the loop sees and what
// goes upstream all have one order: a live message never overtakes an older
// queued one.
//
// Durability window (queue_sync). A QoS 1/2 publisher waits for the
// RouteCompletion given to Append:
//   write (default): completed once the group holding the message has been
//     written to the segment file (write() returned). The page cache has it:
//     a crash or SIGKILL of ferryd loses nothing acknowledged; a power loss or
//     kernel crash can lose the last writes not yet flushed by the OS
//     (normally within 30 s), but never corrupts older ones (torn tails are
//     cut off at recovery, see queue_log.h).
//   fsync: completed after fdatasync of the segment: survives a power loss,
//     at the cost of one fdatasync per group.
//   none: completed at once: a crash loses what was not yet written (what
//     arrived in the last few milliseconds).
// Worked example, queue_sync = write: publisher P sends QoS 1 messages A and
// B 0.1 ms apart; both land in one group, written at t = 0.4 ms; P gets
// PUBACK A and PUBACK B right after. ferryd is SIGKILLed at t = 0.5 ms, before
// the upstream acknowledged either: on restart the log holds A and B with
// the head below them, so both are sent again, in order. Had the kill come at
// t = 0.3 ms, neither was acknowledged to P, which sends them again itself.
//
// What leaves the queue: a QoS 1 message on PUBACK, QoS 2 on PUBCOMP, QoS 0
// once written to the socket (all through SetHead); the oldest messages when
// the queue is over max_bytes or older than max_age (counted, see Events).
// QoS 0 messages with queue_qos0 = false never enter the log (seq 0).
//
// Failures. A failed write (disk full, I/O error) is retried with backoff
// (core/backoff.h); publishers wait meanwhile, so a failing disk slows them
// down instead of losing what they were told was safe. A full disk bounds
// the queue as max_bytes does: the oldest segments are dropped, counted, to
// make room, unless only the newest is left (then publishers wait). While a
// write fails, the head the loop reports is still recorded (in place, in the
// log's head file) and what it covers deleted, the newest segment too once
// everything is done, so that what the upstream acknowledged frees its space
// and is not sent again after a restart; messages the upstream acknowledged
// before they could be written are not written at all (their publishers
// are acknowledged), and loads of what is on disk are served. Stop() makes
// one last attempt; messages it cannot write are not acknowledged (their
// publishers will send them again).
//
// Threads: Append and the accessors from any thread; Poll, SetHead and
// RequestLoad from the bridge's loop only (one consumer).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bridge/bridge_config.h"
#include "bridge/queue_log.h"
#include "core/backoff.h"
#include "core/broker.h"

namespace ferry::bridge {

struct QueueStats {
  uint64_t bytes = 0;           // on disk
  uint64_t appended = 0;        // messages appended since start
  uint64_t dropped_trim = 0;    // dropped by max_bytes / max_age in the log
  uint64_t dropped_too_large = 0;
  uint64_t write_errors = 0;    // failed write attempts
  uint64_t pending_writes = 0;  // appended, not yet written
  std::string last_error;       // of the last failed write, "" once one succeeds
};

class BridgeQueue {
 public:
  struct Options {
    QueueLog::Options log;
    QueueSync sync = QueueSync::kWrite;
    bool queue_qos0 = true;
    // Any thread: there is something for Poll(). Called once until Poll()
    // runs; it should post to the loop and return.
    std::function<void()> notify;
    std::chrono::milliseconds retry_initial{50};
    std::chrono::milliseconds retry_max{5000};
    // Unix milliseconds; tests replace it.
    std::function<uint64_t()> now_ms;
  };

  // What the loop learns, collected since the last Poll().
  struct Events {
    // Appended messages, in sequence order.
    std::vector<QueuedMessage> arrived;
    // Answer to RequestLoad: messages with seq >= from, in order.
    struct Loaded {
      uint64_t from = 0;
      // The log held every seq up to this one when it was read: a seq above
      // it (appended, not yet written) is not known gone for being missing.
      uint64_t upto = UINT64_MAX;
      std::vector<QueuedMessage> messages;
    };
    std::optional<Loaded> loaded;
    // If non-zero, every message below it was dropped by the log's bounds.
    uint64_t trimmed_head = 0;
    // Seqs given to Release() whose released record is now written (synced
    // with queue_sync = fsync): their PUBREL may go.
    std::vector<uint64_t> released;
  };

  // Opens and recovers the log in options.log.dir (see QueueLog::Open for the
  // errors) and starts the storage thread.
  static ferry::Result<std::unique_ptr<BridgeQueue>> Open(Options options);
  ~BridgeQueue();  // Stop()
  BridgeQueue(const BridgeQueue&) = delete;
  BridgeQueue& operator=(const BridgeQueue&) = delete;

  // The log as recovered by Open(): messages head..next_seq-1 may be queued.
  uint64_t recovered_head() const { return recovered_head_; }
  uint64_t recovered_next_seq() const { return recovered_next_seq_; }
  uint64_t lost_at_recovery() const { return lost_at_recovery_; }
  // QoS 2 messages released before the restart (queue_log.h): they go
  // again as PUBREL, never as PUBLISH.
  const std::set<uint64_t>& recovered_released() const { return recovered_released_; }

  // Any thread, never blocks on disk. Appends `messages` (each already in its
  // upstream form: topic, qos, retain) and completes `done` once they are
  // safe (see the durability window above). After Stop(), `done` is
  // abandoned and the messages are dropped.
  void Append(std::vector<core::MessagePtr> messages, core::RouteCompletion done);

  // Loop thread.
  Events Poll();
  // Every message below `head` is done; recorded in the log with the next
  // group. Lower values than before are ignored.
  void SetHead(uint64_t head);
  // The upstream received QoS 2 message `seq` (PUBREC): records that it is
  // released, with the next group, and reports it in Poll().released once
  // written. Whatever queue_sync says, the report waits for the write (and
  // for fdatasync with fsync): the PUBREL must not overtake the record.
  void Release(uint64_t seq);
  // The upstream lost the session those PUBRECs came in (CONNACK with
  // session present 0): records that no message is released any more, with
  // the next group, before the releases asked for after this call. Those
  // asked for before and not yet reported may still be reported.
  void Unrelease();
  // Asks for up to `max_bytes` of messages with seq >= from; the answer comes
  // in a later Poll().loaded. One request at a time.
  void RequestLoad(uint64_t from, size_t max_bytes);

  // Any thread.
  QueueStats stats() const;

  // Writes what is queued (one attempt after failures), records the head,
  // and joins the storage thread. Idempotent.
  void Stop();

 private:
  struct Pending {
    std::vector<QueuedMessage> messages;
    std::vector<core::RouteCompletion> waiters;
    std::vector<uint64_t> released;  // after the unrelease, if any
    bool unrelease = false;
  };

  explicit BridgeQueue(Options options, std::unique_ptr<QueueLog> log);
  void Run();
  // One group: trim, append, sync; answers waiters. False if it failed.
  // `failing`: the last attempt failed, so first record the head in place
  // and reclaim what is done (queue_log.h, "A full disk").
  bool WriteGroup(Pending& group, uint64_t head, bool failing, ferry::Status* error);
  // Counts messages the log dropped and tells the loop.
  void CountTrimmed(const QueueLog::Trimmed& t);
  void Notify();  // REQUIRES: mu_ held
  uint64_t NowMs() const;

  const Options options_;
  std::unique_ptr<QueueLog> log_;  // storage thread only, after Open
  uint64_t recovered_head_ = 1;
  uint64_t recovered_next_seq_ = 1;
  uint64_t lost_at_recovery_ = 0;
  std::set<uint64_t> recovered_released_;
  core::Backoff backoff_;  // storage thread only

  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_seq_ = 1;           // guarded by mu_
  Pending pending_;                 // guarded by mu_: to write
  uint64_t head_ = 1;               // guarded by mu_: as the loop reported it
  std::optional<std::pair<uint64_t, size_t>> load_;  // guarded by mu_
  Events events_;                   // guarded by mu_
  bool notified_ = false;           // guarded by mu_
  bool stopping_ = false;           // guarded by mu_
  std::string last_error_;          // guarded by mu_
  std::thread thread_;

  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> appended_{0};
  std::atomic<uint64_t> dropped_trim_{0};
  std::atomic<uint64_t> dropped_too_large_{0};
  std::atomic<uint64_t> write_errors_{0};
  std::atomic<uint64_t> pending_writes_{0};
};

}  // namespace ferry::bridge
