// The publishing half of Client: pacing (-I), max-rate batches (-I 0), the
// QoS 1/2 window (-F) and the end-to-end window (--window). See client.h.
#include <algorithm>

#include "bench/client.h"
#include "bench/payload.h"
#include "bench/run_context.h"
#include "bench/worker.h"

namespace ferry::bench {

void Client::StartPublishing() {
  want_publishing_ = true;
  if (state_ == State::kConnected && !publishing_) BeginPublishing();
}

void Client::BeginPublishing() {
  if (done_ || spec_.role != Role::kPublisher) return;
  publishing_ = true;
  uint64_t interval_us = worker_.context().options->message_interval_us;
  if (interval_us == 0) {
    worker_.MarkReady(this);
    return;
  }
  // Below a millisecond (libuv's timer resolution), one tick of 1 ms sends
  // the messages due since the last.
  const uint64_t tick_ms = std::max<uint64_t>(1, interval_us / 1000);
  per_tick_ = std::max<uint64_t>(1, tick_ms * 1000 / interval_us);
  pub_start_us_ = uv_hrtime() / 1000 + spec_.pace_offset_us;
  pace_ = core::UvHandle<uv_timer_t>::Make();
  uv_timer_init(worker_.loop(), pace_.get());
  pace_->data = this;
  uv_timer_start(pace_.get(), &Client::OnPaceTimer, spec_.pace_offset_us / 1000, tick_ms);
}

void Client::StopPublishing() {
  want_publishing_ = false;
  publishing_ = false;
  pace_.Reset();
}

void Client::OnPaceTimer(uv_timer_t* t) { static_cast<Client*>(t->data)->PublishDue(); }

void Client::PublishDue() {
  if (!publishing_) return;
  const uint64_t interval_us = worker_.context().options->message_interval_us;
  const uint64_t now_us = uv_hrtime() / 1000;
  if (now_us < pub_start_us_) return;
  uint64_t due = (now_us - pub_start_us_) / interval_us + 1 - missed_ticks_;
  // One tick late at most: a 1 ms timer often fires after 1.x ms.
  const uint64_t catch_up = per_tick_ == 1 ? kMaxCatchUp : 2 * per_tick_;
  if (due > sent_ + catch_up) {
    // Far behind (ferry-bench itself did not run, or the broker held us
    // back): the messages missed are dropped, not sent in one burst that
    // would measure queueing in the broker instead of its latency at this
    // pace.
    missed_ticks_ += due - sent_ - catch_up;
    due = sent_ + catch_up;
  }
  if (spec_.limit > 0) due = std::min(due, spec_.limit);
  uint64_t n = due > sent_ ? due - sent_ : 0;
  for (uint64_t i = 0; i < n && CanPublish(); ++i) EncodePublish();
  Flush();
}

bool Client::WindowOpen() const {
  const RunContext& ctx = worker_.context();
  uint64_t subs = spec_.matching_subscribers;
  if (ctx.accounted == nullptr || subs == 0) return true;
  uint64_t accounted =
      ctx.accounted[spec_.index - ctx.first_publisher].load(std::memory_order_relaxed);
  uint64_t owed = sent_ * subs;
  return owed <= accounted || owed - accounted < uint64_t{ctx.options->window} * subs;
}

bool Client::CanPublish() const {
  if (!publishing_ || state_ != State::kConnected) return false;
  if (spec_.limit > 0 && sent_ >= spec_.limit) return false;
  if (spec_.qos > 0 && inflight_ >= worker_.context().options->inflight) return false;
  if (!WindowOpen()) return false;
  return uv_stream_get_write_queue_size(reinterpret_cast<const uv_stream_t*>(tcp_.get())) <
         kHighWater;
}

void Client::PumpBatch() {
  if (!CanPublish()) return;
  size_t per_message = proto_.payload.size() + proto_.topic.size() + 8;
  size_t batch = std::max<size_t>(1, kBatchBytes / per_message);
  for (size_t i = 0; i < batch && CanPublish(); ++i) EncodePublish();
  Flush();
  if (publishing_ && state_ == State::kConnected && !WindowOpen()) {
    worker_.WaitForWindow(this);
    return;
  }
  // Socket took it all at once: more next iteration. Otherwise OnWritable.
  if (CanPublish() &&
      uv_stream_get_write_queue_size(reinterpret_cast<const uv_stream_t*>(tcp_.get())) == 0) {
    worker_.MarkReady(this);
  }
}

void Client::EncodePublish() {
  const RunContext& ctx = worker_.context();
  if (topic_per_message_ && sent_ > 0) {
    proto_.topic = ExpandTemplate(spec_.topic, {spec_.index, spec_.client_id, sent_});
  }
  if (spec_.qos > 0) {
    if (++next_packet_id_ == 0) next_packet_id_ = 1;
    proto_.packet_id = next_packet_id_;
    ++inflight_;
    Bump(worker_.counters().inflight);
  }
  uint64_t now = MonoNs();
  WriteStamp({static_cast<uint32_t>(spec_.index), sent_, now},
             std::span<uint8_t>(reinterpret_cast<uint8_t*>(proto_.payload.data()),
                                proto_.payload.size()));
  core::Encode(proto_, ctx.version, out_);
  ++sent_;
  Counters& c = worker_.counters();
  Bump(c.sent);
  if (Get(c.first_send_ns) == 0) Set(c.first_send_ns, now);
  Set(c.last_send_ns, now);
  CheckDone();
}

void Client::CheckDone() {
  if (done_ || spec_.role != Role::kPublisher || spec_.limit == 0) return;
  if (sent_ >= spec_.limit && inflight_ == 0) {
    done_ = true;
    Bump(worker_.counters().publishers_done);
  }
}

}  // namespace ferry::bench
