#include "bridge/outbox.h"

#include <algorithm>

namespace ferry::bridge {

Outbox::Outbox(uint64_t head, uint64_t next_seq, size_t memory_budget)
    : budget_(std::max<size_t>(memory_budget, 1)),
      head_(head),
      latest_seq_(next_seq - 1),
      memory_end_(head - 1),
      spilled_(next_seq > head) {}

void Outbox::Forget(size_t bytes) {
  memory_bytes_ -= std::min(memory_bytes_, bytes);
  unsent_bytes_ -= std::min(unsent_bytes_, bytes);
}

void Outbox::Keep(QueuedMessage m) {
  const size_t bytes = m.bytes();
  memory_bytes_ += bytes;
  unsent_bytes_ += bytes;
  if (m.seq == 0) ++volatile_unsent_;
  unsent_.push_back(std::move(m));
}

void Outbox::OnArrived(std::vector<QueuedMessage> messages) {
  for (QueuedMessage& m : messages) {
    if (m.seq == 0) {
      // Not in the log: it can only go out from memory, in its place.
      if (spilled_ || !link_up_) {
        ++dropped_volatile_;
        continue;
      }
      Keep(std::move(m));
      continue;
    }
    latest_seq_ = std::max(latest_seq_, m.seq);
    if (m.seq < head_) continue;  // trimmed before it got here
    if (!spilled_ && m.seq == memory_end_ + 1 && memory_bytes_ < budget_) {
      memory_end_ = m.seq;
      Keep(std::move(m));
    } else {
      spilled_ = true;  // on disk only; read back in order later
    }
  }
}

void Outbox::OnLoaded(uint64_t from, std::vector<QueuedMessage> messages, uint64_t upto) {
  load_outstanding_ = false;
  size_t bytes = 0;
  for (const QueuedMessage& m : messages) bytes += m.bytes();
  // The read covered up to its last message if it stopped at its limit,
  // else everything in the log, which includes every seq known when it was
  // asked for (the storage thread writes what was appended before a load
  // request before it reads, unless that write fails: then only up to
  // `upto`). Seqs that arrived since may not be written yet, so they do not
  // count.
  const bool truncated = !messages.empty() && bytes >= budget_ / 2;
  const uint64_t covered = truncated ? messages.back().seq : std::min(load_upto_, upto);
  uint64_t expect = std::max(from, memory_end_ + 1);
  for (QueuedMessage& m : messages) {
    if (m.seq < expect) continue;
    for (uint64_t gone = expect; gone < m.seq; ++gone) MarkDone(gone);  // not in the log
    expect = m.seq + 1;
    memory_end_ = m.seq;
    if (m.seq < head_) continue;
    Keep(std::move(m));
  }
  for (uint64_t gone = expect; gone <= covered; ++gone) MarkDone(gone);
  memory_end_ = std::max(memory_end_, covered);
  if (memory_end_ >= latest_seq_) spilled_ = false;
}

uint64_t Outbox::OnTrimmed(uint64_t head) {
  if (head <= head_) return 0;
  uint64_t dropped = head - head_;
  for (auto it = done_above_head_.begin(); it != done_above_head_.end() && *it < head;) {
    --dropped;
    it = done_above_head_.erase(it);
  }
  // In flight ones may still be acknowledged; that is harmless.
  for (auto it = inflight_.begin(); it != inflight_.end() && it->first < head; ++it) --dropped;
  std::erase_if(unsent_, [&](const QueuedMessage& m) {
    if (m.seq == 0 || m.seq >= head) return false;
    Forget(m.bytes());
    return true;
  });
  head_ = head;
  head_changed_ = true;
  if (memory_end_ + 1 < head) memory_end_ = head - 1;
  latest_seq_ = std::max(latest_seq_, head - 1);
  return dropped;
}

const QueuedMessage* Outbox::Next(uint64_t now_ms, uint64_t expire_before_ms) {
  while (!unsent_.empty()) {
    const QueuedMessage& m = unsent_.front();
    const bool too_old = expire_before_ms != 0 && m.enqueued_ms < expire_before_ms;
    const bool expired = m.message->expiry_at_ms != 0 && m.message->expiry_at_ms <= now_ms;
    if (!too_old && !expired) return &m;
    ++expired_;
    QueuedMessage gone = TakeNext();
    Done(gone.seq);
  }
  return nullptr;
}

QueuedMessage Outbox::TakeNext() {
  QueuedMessage m = std::move(unsent_.front());
  unsent_.pop_front();
  const size_t bytes = m.bytes();
  unsent_bytes_ -= std::min(unsent_bytes_, bytes);
  if (m.seq == 0) {
    --volatile_unsent_;
    memory_bytes_ -= std::min(memory_bytes_, bytes);
    return m;
  }
  inflight_.emplace(m.seq, m);
  return m;
}

const QueuedMessage* Outbox::InFlight(uint64_t seq) const {
  auto it = inflight_.find(seq);
  return it == inflight_.end() ? nullptr : &it->second;
}

void Outbox::MarkDone(uint64_t seq) {
  if (seq < head_) return;
  if (seq == head_) {
    ++head_;
    while (!done_above_head_.empty() && *done_above_head_.begin() == head_) {
      done_above_head_.erase(done_above_head_.begin());
      ++head_;
    }
    head_changed_ = true;
    return;
  }
  done_above_head_.insert(seq);
}

void Outbox::Done(uint64_t seq) {
  if (seq == 0) return;
  auto it = inflight_.find(seq);
  if (it != inflight_.end()) {
    memory_bytes_ -= std::min(memory_bytes_, it->second.bytes());
    inflight_.erase(it);
  }
  MarkDone(seq);
}

void Outbox::OnLinkDown() {
  link_up_ = false;
  std::erase_if(unsent_, [&](const QueuedMessage& m) {
    if (m.seq != 0) return false;
    ++dropped_volatile_;
    Forget(m.bytes());
    return true;
  });
  volatile_unsent_ = 0;
}

void Outbox::OnLinkUp(const std::set<uint64_t>& keep_inflight) {
  link_up_ = true;
  // In flight messages all came from the front of `unsent_`, so they go back
  // there in seq order.
  std::deque<QueuedMessage> again;
  for (auto it = inflight_.begin(); it != inflight_.end();) {
    if (keep_inflight.contains(it->first)) {
      ++it;
      continue;
    }
    if (it->first >= head_) {
      unsent_bytes_ += it->second.bytes();
      again.push_back(std::move(it->second));
    } else {
      memory_bytes_ -= std::min(memory_bytes_, it->second.bytes());  // trimmed meanwhile
    }
    it = inflight_.erase(it);
  }
  for (QueuedMessage& m : unsent_) again.push_back(std::move(m));
  unsent_ = std::move(again);
}

std::optional<std::pair<uint64_t, size_t>> Outbox::WantLoad() {
  if (!spilled_ || load_outstanding_ || unsent_bytes_ >= budget_ / 4) return std::nullopt;
  load_outstanding_ = true;
  load_upto_ = latest_seq_;
  return std::make_pair(std::max(memory_end_ + 1, head_), budget_ / 2);
}

uint64_t Outbox::queued() const {
  uint64_t in_log = latest_seq_ + 1 > head_ ? latest_seq_ + 1 - head_ : 0;
  return in_log - std::min<uint64_t>(in_log, done_above_head_.size()) + volatile_unsent_;
}

}  // namespace ferry::bridge
