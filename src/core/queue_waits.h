// QueueWaits: which sessions hold a publisher's acknowledgement, and since
// when, so that no subscriber holds its publishers longer than
// [mqtt] max_queue_wait.
//
// A QoS 1/2 message for a connected subscriber whose queue is full is queued
// anyway, and the publisher's PUBACK/PUBREC waits until the queue has room
// (Session::WhenQueueHasRoom): fast publishers are slowed down to the pace of
// their subscribers. A subscriber that stops reading would hold them, and
// every other subscriber of their topics, for ever. A session starts waiting
// with its first held acknowledgement and stops when its queue has room
// again (all its waiters are released then) or it loses its client; one that
// waited max_wait_ms is expired, and the worker drops its messages or
// disconnects it (QueueWaitAction).
//
// Worked example, max_wait_ms = 500: "a" starts waiting at t=100, "b" at
// t=300, "a" again at t=350 (no change: it waits already). NextDeadline() is
// 600. Expired(650) returns {"a"} and forgets it; NextDeadline() is 800. "b"'s
// queue gets room at 700: Release("b"), and NextDeadline() is none.
//
// Sans-I/O: times are passed in (the loop's uv_now()); the worker arms a
// timer for NextDeadline(). Thread: the owning worker's loop.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::core {

class QueueWaits {
 public:
  explicit QueueWaits(uint64_t max_wait_ms) : max_wait_ms_(max_wait_ms) {}

  // `client_id` starts waiting at `now_ms`, unless it waits already.
  void Start(std::string_view client_id, uint64_t now_ms);
  // `client_id` no longer waits (its queue has room, or it is gone).
  void Release(std::string_view client_id);
  // The sessions that have waited max_wait_ms or longer at `now_ms`, oldest
  // first; they are forgotten.
  std::vector<std::string> Expired(uint64_t now_ms);
  // When the next session expires; nullopt if none waits.
  std::optional<uint64_t> NextDeadline() const;
  bool empty() const { return since_.empty(); }

 private:
  uint64_t max_wait_ms_;
  // Waiting sessions by client id: few (only those whose queue is full and
  // holds a publisher), so a scan for the earliest is cheap.
  std::map<std::string, uint64_t, std::less<>> since_;
};

}  // namespace ferry::core
