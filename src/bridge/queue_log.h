// QueueLog: a bridge's store-and-forward queue on disk, as a segmented,
// append-only log. One directory per bridge (data_dir/bridges/NAME/).
//
// Why a log and not SQLite (which keeps the node's sessions): every
// forwarded message is written once and deleted once. Appending records to a
// file and deleting whole files costs a memcpy and one write() per group of
// messages; an SQLite table costs a B-tree insert and a delete per message.
// bench/queue-store measures both on the same machine (figures in
// bench/RESULTS-bridge.md).
//
// Files. Segments named by the sequence number of the first message they may
// hold, zero-padded so that names sort like numbers:
//   00000000000000000001.seg   00000000000000004097.seg   ...
// Each starts with a 16-byte header ("FERRYQ01" and that first sequence
// number, u64 big-endian), then records:
//   u32 length of body | u32 CRC-32C of body | body
//   body = 0x01 message: u64 seq | u64 enqueued_unix_ms | u64 expiry_unix_ms
//                        | u8 qos | PUBLISH packet (MQTT 5 encoding: the
//                        upstream topic, RETAIN, the properties, the payload)
//        = 0x02 head:    u64 head (every message below it is done)
//        = 0x03 released: u64 seq, ... (QoS 2 messages the upstream has
//                        received, PUBREC, and that are released with
//                        PUBREL from now on, never published again)
//        = 0x04 unreleased: (no fields; every released record before it
//                        no longer holds: the upstream lost our session)
// Integers are big-endian. Reusing the MQTT codec means the properties
// (user properties, content type, the node path) need no format of their own.
//
// The head file, `head` in the same directory, also says how far the head
// has come, for when a head record cannot be appended (a full disk): 32
// bytes, two slots of
//   u64 head | u32 CRC-32C of those 8 bytes | u32 zero
// overwritten in place by turns (which needs no new space, and a torn write
// of one slot leaves the other). Recovery takes the highest valid slot and
// the highest head record; the head of the log is the higher of the two.
//
// Worked example. Messages 1..5 are appended (one write), the upstream acks
// 1, 2 and 4, messages 6 and 7 are appended:
//   00000000000000000001.seg: hdr | msg 1 | msg 2 | msg 3 | msg 4 | msg 5 |
//                             head 3 | msg 6 | msg 7
// The head record says 1 and 2 are done; 4 is acked too, but 3 is not, so
// the head stays at 3 and 4 would be sent again after a crash (duplicates are
// allowed at QoS 1; nothing acknowledged is lost). When the segment reaches
// segment_bytes a new one, 00000000000000000008.seg, is started with a head
// record; once the head passes 8, the first file is deleted whole.
//
// Released records make QoS 2 exactly once across a crash of this node: a
// message's packet identifier follows from its seq (upstream_session.h,
// QueuePacketId), so after a restart it goes again with the same identifier,
// as a PUBLISH with DUP if it was not released, and as a PUBREL if it was.
// A released record is written after the message it names and before the
// PUBREL goes out; it is in the same segment as the message or a later one,
// so it lives at least as long as the message is above the head.
// A PUBREL only delivers while the upstream keeps the session that sent the
// PUBREC. When a CONNACK says it does not (session present 0: a failover to
// another server, or the session expired), an unreleased record voids every
// released record before it, and those messages are published again.
//
// Recovery (Open) reads every segment. A record whose length runs past the
// end of the file, or whose CRC does not match, ends the newest segment: it
// is what a crash in the middle of a write leaves (nothing in it was ever
// acknowledged, since acknowledgements wait for the write), so it is cut off
// with ftruncate and appending continues there, as google/leveldb's
// log_reader treats a torn tail. The same damage in an older segment (a disk
// that lost data) skips the rest of that segment and counts the messages it
// held as lost, with a warning.
//
// Bounds. Before each append, while the log is larger than max_bytes, or its
// oldest segment holds only messages older than max_age, the oldest segment
// is dropped: the head jumps past it and its undelivered messages are
// counted in Trimmed::dropped. Dropping whole segments keeps trimming a file
// deletion; segments are a sixteenth of max_bytes or of the file system,
// whichever is smaller (at least 16 KB, at most 64 MB), so at most a
// sixteenth of the queue goes at once.
//
// A full disk. An append that fails for lack of space keeps nothing (the
// files are cut back). The disk is then the bound, as max_bytes is:
// TrimForSpace drops the oldest segment, counted the same way. RecordHead
// records the head in the head file, in place, and deletes what is done,
// cutting back even the newest segment once everything in it is done: what
// the upstream acknowledged frees its space with no room to write.
//
// Thread safety: none. The queue's storage thread owns a QueueLog.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "bridge/queue_env.h"
#include "core/message.h"
#include "core/status.h"

namespace ferry::bridge {

// One message on its way upstream.
struct QueuedMessage {
  uint64_t seq = 0;          // 0: not in the log (QoS 0 with queue_qos0 = false)
  uint64_t enqueued_ms = 0;  // Unix ms
  // The message as it goes upstream: topic is the upstream topic, qos the
  // upstream QoS, retain the upstream RETAIN flag. Shared, never copied.
  core::MessagePtr message;

  // What the message costs in memory and, roughly, on disk.
  size_t bytes() const;
};

class QueueLog {
 public:
  struct Options {
    std::string dir;
    uint64_t max_bytes = uint64_t{256} << 20;
    std::chrono::milliseconds max_age{0};  // 0 = none
    QueueEnv* env = QueueEnv::Default();
    // Receives warnings (one line each).
    std::function<void(const std::string&)> warn;
  };

  struct Trimmed {
    uint64_t dropped = 0;  // undelivered messages dropped
    uint64_t head = 0;     // the head afterwards
  };

  // Opens (creating `dir` if needed) and recovers the log, as described at
  // the top of this file. Errors: IoError if the directory or a segment
  // cannot be read or created; Corruption if a file named like a segment is
  // not one (wrong header), naming it.
  static ferry::Result<std::unique_ptr<QueueLog>> Open(const Options& options);

  // Every message below head() is done (delivered, or dropped and counted).
  uint64_t head() const { return head_; }
  // The sequence number the next appended message must have.
  uint64_t next_seq() const { return next_seq_; }
  // Bytes of every segment file.
  uint64_t bytes() const { return bytes_; }
  size_t segment_count() const { return segments_.size(); }
  // Messages found lost at recovery (damaged older segments).
  uint64_t lost_at_recovery() const { return lost_at_recovery_; }
  // Seqs at or above head() with a released record.
  const std::set<uint64_t>& released() const { return released_; }

  // Appends `messages` (seq next_seq(), next_seq()+1, ...), an unreleased
  // record if `unrelease` and any seq is released, a released record for
  // `released` if any, and, if `head` is above the recorded
  // head, a head record, in as few writes as the segment size allows. On
  // error nothing of the call is kept (the files are cut back) and the call
  // can be retried as is.
  // REQUIRES: messages[i].seq == next_seq() + i, head <= next_seq() after,
  // every seq in `released` < next_seq() after.
  ferry::Status Append(const std::vector<QueuedMessage>& messages, uint64_t head,
                       const std::vector<uint64_t>& released = {}, bool unrelease = false);
  // fdatasync of the segment written last (and of the directory if segments
  // were created or removed since the last Sync).
  ferry::Status Sync();

  // Drops oldest segments as described under Bounds, making room for
  // `incoming` more bytes. Call before Append.
  Trimmed Trim(uint64_t now_unix_ms, uint64_t incoming);

  // The disk is full: drops the oldest segment, unless only the one
  // appended to is left (see "A full disk" above). `removed` is false if
  // nothing could go.
  Trimmed TrimForSpace(bool* removed);

  // Every message below `head` is done: records it in the head file (in
  // place, without appending to a segment) and deletes the segments that
  // hold only done messages; with `reclaim_newest`, the newest one too is
  // cut back to its header once all it holds is done (only after the head
  // file has the head). A head past next_seq() moves next_seq() with it:
  // those messages went upstream before they were written, and never will
  // be. Errors: the head file could not be written (nothing was deleted
  // that recovery would need).
  ferry::Status RecordHead(uint64_t head, bool reclaim_newest);

  // Reads messages with seq >= `from` in order, stopping after `max_bytes`
  // (at least one message if there is one). Messages below head() are
  // skipped. Errors: IoError; damaged records end the read early.
  ferry::Result<std::vector<QueuedMessage>> Read(uint64_t from, size_t max_bytes);

  // The segment size used for this max_bytes, on a file system of
  // `fs_bytes` (0 = unknown).
  static uint64_t SegmentBytesFor(uint64_t max_bytes, uint64_t fs_bytes = 0);

 private:
  struct Segment {
    uint64_t first_seq = 0;  // from the name and header
    uint64_t last_seq = 0;   // highest message seq in it; 0 if none
    uint64_t messages = 0;   // message records in it
    uint64_t newest_ms = 0;  // highest enqueued_ms in it
    bool damaged = false;    // recovery stopped reading it early
    std::string path;
    std::unique_ptr<QueueFile> file;  // open for the newest segment only
  };
  struct ReadCursor {
    uint64_t first_seq = 0;  // segment
    uint64_t offset = 0;     // next record
    uint64_t next_seq = 0;   // seq expected there
  };

  explicit QueueLog(Options options);

  ferry::Status Recover();
  // Scans one segment, filling its counters; `newest` says whether damage
  // is a torn tail (cut off) or data loss (skipped and counted).
  ferry::Status ScanSegment(Segment& s, bool newest);
  ferry::Status StartSegment(uint64_t first_seq);
  // The head file (see the top of this file).
  ferry::Status ReadHeadFile();
  void CreateHeadFile();
  ferry::Status WriteHeadFile(uint64_t head);
  ferry::Status RemoveSegment(size_t index);
  void RemoveDoneSegments();
  void ForgetReleasedBelowHead();
  void Warn(const std::string& line) const;

  Options options_;
  uint64_t segment_bytes_;
  std::deque<Segment> segments_;  // oldest first; the last one is appended to
  uint64_t head_ = 1;
  uint64_t recorded_head_ = 0;  // the last head record written
  uint64_t next_seq_ = 1;
  uint64_t bytes_ = 0;
  uint64_t lost_at_recovery_ = 0;
  std::set<uint64_t> released_;
  bool dir_dirty_ = false;
  std::unique_ptr<QueueFile> head_file_;  // null until it exists
  uint64_t head_file_value_ = 0;          // the highest head it holds
  int head_slot_ = 0;                     // the slot written next
  bool head_file_dirty_ = false;          // written since the last Sync
  ReadCursor cursor_;
  std::string buffer_;  // reused by Append
};

}  // namespace ferry::bridge
