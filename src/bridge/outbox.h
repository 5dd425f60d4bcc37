// Outbox: the bridge loop's view of its queue. What to send next, what is in
// flight, what is done, and how far the head (every sequence number below it
// done) has come. No I/O: the bridge feeds it the queue's events and the
// upstream's acknowledgements, and carries out the loads it asks for.
//
// Memory. Messages are kept in memory from the head on, up to a budget.
// Beyond it the Outbox "spills": arriving messages are left on disk only, and
// when the unsent backlog in memory runs low it asks for the next stretch to
// be read back (WantLoad). After a restart it starts spilled, with the whole
// recovered queue on disk.
//
// Worked example, budget 3 messages. Head 1; messages 1, 2, 3 arrive and are
// kept; 4 and 5 arrive and stay on disk (spilled, memory holds up to 3).
// 1 and 2 are sent; the upstream acks 2, then 1: the head moves to 3. With
// only 3 left unsent, WantLoad() asks for seq 4 on; the load brings 4 and 5;
// memory now ends at 5, the latest seq: no longer spilled, and 6 will be kept
// when it arrives.
//
// A sequence number between two loaded messages, or before the first, that
// the log no longer has (trimmed, or lost to damage) is done. QoS 0 messages
// that never entered the log (seq 0, queue_qos0 = false) travel in order
// with the others but are dropped, and counted, while spilled or while the
// link is down.
//
// Thread safety: none; the bridge's loop thread owns it.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "bridge/queue_log.h"

namespace ferry::bridge {

class Outbox {
 public:
  // Everything from `head` to `next_seq` - 1 may be queued on disk.
  Outbox(uint64_t head, uint64_t next_seq, size_t memory_budget);

  // ---- Events from the queue.

  // Appended messages, in seq order.
  void OnArrived(std::vector<QueuedMessage> messages);
  // The answer to the last WantLoad(): messages with seq >= from, in order,
  // read when the log held every seq up to `upto` (a seq above it missing
  // from the answer is not yet written, not gone). Handle it before the
  // arrivals of the same Poll().
  void OnLoaded(uint64_t from, std::vector<QueuedMessage> messages, uint64_t upto = UINT64_MAX);
  // The log dropped every message below `head`. Returns how many of them
  // were not yet done (dropped undelivered).
  uint64_t OnTrimmed(uint64_t head);

  // ---- Sending.

  // The next message to send, or nullptr if there is none in memory. Skips
  // (and counts as expired) messages past `expire_before_ms` (queue_max_age;
  // 0 = none) or past their MQTT message expiry at `now_ms`.
  const QueuedMessage* Next(uint64_t now_ms, uint64_t expire_before_ms);
  // Moves the message Next() returned to in flight and returns it.
  QueuedMessage TakeNext();
  // The in-flight message with `seq`, or nullptr.
  const QueuedMessage* InFlight(uint64_t seq) const;
  size_t inflight_count() const { return inflight_.size(); }
  // The upstream took message `seq` (or it was given up): it is done.
  void Done(uint64_t seq);
  // The link went down: unsent messages that never entered the log are
  // dropped (and counted), and so are those that arrive until OnLinkUp.
  void OnLinkDown();
  // A link is up. In flight messages are sent again as new, in order,
  // except those in `keep_inflight` (the upstream resumed the session and
  // they are resent as they were, see UpstreamSession::InflightForResend).
  void OnLinkUp(const std::set<uint64_t>& keep_inflight = {});

  // ---- Loading.

  // (from, max_bytes) to load, if the backlog in memory ran low while
  // spilled and no load is outstanding. Marks the load outstanding.
  std::optional<std::pair<uint64_t, size_t>> WantLoad();

  // ---- State.

  uint64_t head() const { return head_; }
  // True once since the last call if the head moved.
  bool TakeHeadChanged() { return std::exchange(head_changed_, false); }
  // Messages not done: in the log and not acknowledged, plus unsent ones
  // that never entered the log.
  uint64_t queued() const;
  size_t memory_bytes() const { return memory_bytes_; }
  bool spilled() const { return spilled_; }
  bool empty() const { return queued() == 0; }
  uint64_t expired() const { return expired_; }
  uint64_t dropped_volatile() const { return dropped_volatile_; }

 private:
  void Keep(QueuedMessage m);
  // An unsent message of `bytes` leaves memory.
  void Forget(size_t bytes);
  void MarkDone(uint64_t seq);

  const size_t budget_;
  uint64_t head_;
  uint64_t latest_seq_;    // highest seq known to exist
  uint64_t memory_end_;    // every unacked seq <= this is in memory
  bool spilled_ = false;
  bool load_outstanding_ = false;
  uint64_t load_upto_ = 0;  // latest_seq_ when the outstanding load was asked for
  bool link_up_ = false;
  bool head_changed_ = false;
  std::deque<QueuedMessage> unsent_;         // seq order (seq 0 in arrival order)
  std::map<uint64_t, QueuedMessage> inflight_;  // by seq; seq 0 never here
  std::set<uint64_t> done_above_head_;
  size_t memory_bytes_ = 0;  // unsent and in flight
  size_t unsent_bytes_ = 0;
  uint64_t volatile_unsent_ = 0;
  uint64_t expired_ = 0;
  uint64_t dropped_volatile_ = 0;
};

}  // namespace ferry::bridge
