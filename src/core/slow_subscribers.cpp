// A subscriber that stops reading must not hold its publishers, and with
// them every other subscriber of their topics: the acknowledgements it
// holds wait at most [mqtt] max_queue_wait (queue_waits.h).
#include "core/broker_internal.h"
#include "core/log.h"

namespace ferry::core {

void Worker::StartQueueWait(Session& s) {
  const bool idle = queue_waits_.empty();
  queue_waits_.Start(s.client_id_, loop_.Now());
  if (idle) ArmQueueWaitTimer();
}

void Worker::ArmQueueWaitTimer() {
  if (!queue_wait_timer_) return;  // stopping
  const std::optional<uint64_t> due = queue_waits_.NextDeadline();
  if (!due) return;
  const uint64_t now = loop_.Now();
  uv_timer_start(
      queue_wait_timer_.get(),
      [](uv_timer_t* t) { static_cast<Worker*>(t->data)->ExpireQueueWaits(); },
      *due > now ? *due - now : 0, 0);
}

void Worker::ExpireQueueWaits() {
  const uint64_t wait_ms = ctx_.options.max_queue_wait_ms;
  for (const std::string& id : queue_waits_.Expired(loop_.Now())) {
    Session* s = FindSession(id);
    if (s == nullptr || s->connection() == nullptr) continue;
    Connection& c = *s->connection();
    if (ctx_.options.queue_wait_action == QueueWaitAction::kDisconnect) {
      Inc(ctx_.metrics.slow_subscribers_disconnected);
      // DisconnectClient releases the publishers it held.
      DisconnectClient(c, ReasonCode::kQuotaExceeded,
                       "queue full for " + std::to_string(wait_ms) + " ms (max_queue_wait)");
      continue;
    }
    FERRY_INFO(
        "%s: queue full for %llu ms (max_queue_wait): dropping its QoS 1/2 messages "
        "until it reads again",
        c.Describe().c_str(), static_cast<unsigned long long>(wait_ms));
    s->Shed();
  }
  ArmQueueWaitTimer();
}

}  // namespace ferry::core
