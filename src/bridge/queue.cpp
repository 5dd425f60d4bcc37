// BridgeQueue: sequence numbers, the storage thread and its group commit.
#include "bridge/queue.h"

#include <algorithm>

namespace ferry::bridge {

namespace {

using ferry::Result;
using ferry::Status;
using std::chrono::milliseconds;

// How often an idle storage thread checks max_age.
milliseconds AgeCheckInterval(milliseconds max_age) {
  return std::clamp(max_age / 4, milliseconds(100), milliseconds(10000));
}

}  // namespace

Result<std::unique_ptr<BridgeQueue>> BridgeQueue::Open(Options options) {
  auto log = QueueLog::Open(options.log);
  if (!log.ok()) return log.status();
  std::unique_ptr<BridgeQueue> q(new BridgeQueue(std::move(options), std::move(log).value()));
  q->thread_ = std::thread([raw = q.get()] { raw->Run(); });
  return q;
}

BridgeQueue::BridgeQueue(Options options, std::unique_ptr<QueueLog> log)
    : options_(std::move(options)),
      log_(std::move(log)),
      backoff_(options_.retry_initial, options_.retry_max, core::BackoffSeed(this)) {
  recovered_head_ = log_->head();
  recovered_next_seq_ = log_->next_seq();
  lost_at_recovery_ = log_->lost_at_recovery();
  recovered_released_ = log_->released();
  next_seq_ = recovered_next_seq_;
  head_ = recovered_head_;
  bytes_ = log_->bytes();
}

BridgeQueue::~BridgeQueue() { Stop(); }

uint64_t BridgeQueue::NowMs() const { return options_.now_ms ? options_.now_ms() : core::UnixNowMs(); }

void BridgeQueue::Notify() {
  if (notified_ || !options_.notify) return;
  notified_ = true;
  options_.notify();
}

void BridgeQueue::Append(std::vector<core::MessagePtr> messages, core::RouteCompletion done) {
  const uint64_t now = NowMs();
  bool durable = false;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      done.Abandon();
      return;
    }
    for (core::MessagePtr& m : messages) {
      QueuedMessage q;
      q.enqueued_ms = now;
      q.message = std::move(m);
      // A message that could never fit would drop everything else first.
      if (q.bytes() > options_.log.max_bytes / 2) {
        dropped_too_large_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (q.message->qos > 0 || options_.queue_qos0) {
        q.seq = next_seq_++;
        pending_.messages.push_back(q);
        pending_writes_.fetch_add(1, std::memory_order_relaxed);
        appended_.fetch_add(1, std::memory_order_relaxed);
        durable = true;
      }
      events_.arrived.push_back(std::move(q));
    }
    if (durable && options_.sync != QueueSync::kNone && done.waited_on()) {
      pending_.waiters.push_back(std::move(done));
    }
    Notify();
  }
  if (durable) cv_.notify_one();
  // Not waited on by the group (queue_sync = none, or nothing durable):
  // `done` completes as it goes out of scope here.
}

BridgeQueue::Events BridgeQueue::Poll() {
  std::lock_guard lock(mu_);
  notified_ = false;
  Events out = std::move(events_);
  events_ = Events{};
  return out;
}

void BridgeQueue::SetHead(uint64_t head) {
  {
    std::lock_guard lock(mu_);
    if (head <= head_) return;
    head_ = head;
  }
  cv_.notify_one();
}

void BridgeQueue::Release(uint64_t seq) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    pending_.released.push_back(seq);
  }
  cv_.notify_one();
}

void BridgeQueue::Unrelease() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    pending_.released.clear();
    pending_.unrelease = true;
  }
  cv_.notify_one();
}

void BridgeQueue::RequestLoad(uint64_t from, size_t max_bytes) {
  {
    std::lock_guard lock(mu_);
    load_ = std::make_pair(from, max_bytes);
  }
  cv_.notify_one();
}

QueueStats BridgeQueue::stats() const {
  QueueStats s;
  s.bytes = bytes_.load(std::memory_order_relaxed);
  s.appended = appended_.load(std::memory_order_relaxed);
  s.dropped_trim = dropped_trim_.load(std::memory_order_relaxed);
  s.dropped_too_large = dropped_too_large_.load(std::memory_order_relaxed);
  s.write_errors = write_errors_.load(std::memory_order_relaxed);
  s.pending_writes = pending_writes_.load(std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  s.last_error = last_error_;
  return s;
}

void BridgeQueue::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void BridgeQueue::CountTrimmed(const QueueLog::Trimmed& t) {
  if (t.dropped == 0 && t.head == 0) return;
  dropped_trim_.fetch_add(t.dropped, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  events_.trimmed_head = std::max(events_.trimmed_head, t.head);
  Notify();
}

bool BridgeQueue::WriteGroup(Pending& group, uint64_t head, bool failing, Status* error) {
  if (failing) {
    // What the upstream acknowledged is recorded first, in place, and the
    // space it held given back: that needs no room on the disk.
    if (Status s = log_->RecordHead(head, /*reclaim_newest=*/true); !s.ok() && options_.log.warn) {
      options_.log.warn(s.ToString() + "; the head stays unrecorded for now");
    }
    bytes_ = log_->bytes();
    // Messages the upstream acknowledged before they could be written are
    // done: they need no writing (RecordHead moved next_seq past them).
    const uint64_t next = log_->next_seq();
    const size_t before = group.messages.size();
    std::erase_if(group.messages, [next](const QueuedMessage& m) { return m.seq < next; });
    pending_writes_.fetch_sub(before - group.messages.size(), std::memory_order_relaxed);
    std::erase_if(group.released, [&](uint64_t seq) { return seq < log_->head(); });
  }
  Status s = log_->Append(group.messages, std::max(head, log_->head()), group.released,
                         group.unrelease);
  // A full disk bounds the queue as max_bytes does: the oldest segments go,
  // counted, to make room (queue_log.h, "A full disk").
  for (int tries = 0; !s.ok() && s.reason() == ReasonCode::kQuotaExceeded && tries < 64; ++tries) {
    bool removed = false;
    const QueueLog::Trimmed t = log_->TrimForSpace(&removed);
    if (!removed) break;
    CountTrimmed(t);
    if (t.dropped > 0 && options_.log.warn) {
      options_.log.warn(s.ToString() + "; dropped the " + std::to_string(t.dropped) +
                        " oldest queued messages to make room");
    }
    s = log_->Append(group.messages, std::max(head, log_->head()), group.released, group.unrelease);
  }
  if (s.ok() && options_.sync == QueueSync::kFsync) s = log_->Sync();
  // The bounds are kept after each group, so a group larger than what was
  // free still leaves the log within max_bytes: its oldest segments go.
  QueueLog::Trimmed t = log_->Trim(NowMs(), 0);
  if (t.dropped > 0) CountTrimmed(t);
  bytes_ = log_->bytes();
  if (!s.ok()) {
    write_errors_.fetch_add(1, std::memory_order_relaxed);
    *error = s;
    return false;
  }
  pending_writes_.fetch_sub(group.messages.size(), std::memory_order_relaxed);
  {
    std::lock_guard lock(mu_);
    last_error_.clear();
    if (!group.released.empty()) {
      events_.released.insert(events_.released.end(), group.released.begin(),
                              group.released.end());
      Notify();
    }
  }
  for (core::RouteCompletion& w : group.waiters) w.Complete();
  group = Pending{};
  return true;
}

void BridgeQueue::Run() {
  Pending group;         // a failed group stays here until it is written
  uint64_t written_head = log_->head();
  bool failing = false;
  milliseconds retry_delay{0};
  for (;;) {
    uint64_t head = 0;
    std::optional<std::pair<uint64_t, size_t>> load;
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      // While a group fails, a load of what is in the log is served (the
      // upstream may be back to take it); one of what the group holds waits.
      auto loadable = [&] {
        return load_.has_value() && (!failing || load_->first < log_->next_seq());
      };
      auto ready = [&] {
        return stopping_ || !pending_.messages.empty() || !pending_.released.empty() ||
               pending_.unrelease || head_ > written_head || loadable();
      };
      if (failing) {
        // What the upstream acknowledged frees space: no need to wait for
        // the retry to record it.
        cv_.wait_for(lock, retry_delay,
                     [&] { return stopping_ || head_ > written_head || loadable(); });
      } else if (options_.log.max_age.count() > 0) {
        cv_.wait_for(lock, AgeCheckInterval(options_.log.max_age), ready);
      } else {
        cv_.wait(lock, ready);
      }
      // Messages appended while a group was failing go after it.
      std::move(pending_.messages.begin(), pending_.messages.end(),
                std::back_inserter(group.messages));
      std::move(pending_.waiters.begin(), pending_.waiters.end(),
                std::back_inserter(group.waiters));
      if (pending_.unrelease) {
        // Voids what a failing group still holds as well.
        group.released.clear();
        group.unrelease = true;
      }
      group.released.insert(group.released.end(), pending_.released.begin(),
                            pending_.released.end());
      pending_ = Pending{};
      head = head_;
      stopping = stopping_;
      if (loadable()) {
        load = load_;
        load_.reset();
      }
    }
    Status error;
    if (!group.messages.empty() || !group.released.empty() || group.unrelease ||
        head > written_head ||
        options_.log.max_age.count() > 0) {
      if (WriteGroup(group, head, failing, &error)) {
        written_head = std::max(head, log_->head());
        failing = false;
        backoff_.Reset();
      } else {
        failing = true;
        retry_delay = backoff_.Next();
        {
          std::lock_guard lock(mu_);
          last_error_ = error.ToString();
        }
        if (options_.log.warn) {
          options_.log.warn(error.ToString() + "; retrying in " +
                            std::to_string(retry_delay.count()) + " ms");
        }
      }
    }
    if (load && (!failing || load->first < log_->next_seq())) {
      const uint64_t upto = log_->next_seq() - 1;
      auto read = log_->Read(load->first, load->second);
      if (!read.ok()) {
        // An answer without the messages would say they are gone: ask again
        // after a while instead.
        const milliseconds delay = backoff_.Next();
        if (options_.log.warn) {
          options_.log.warn(read.status().ToString() + "; reading again in " +
                            std::to_string(delay.count()) + " ms");
        }
        if (stopping) return;  // the group, if any, was written above
        std::unique_lock lock(mu_);
        if (!load_) load_ = load;
        cv_.wait_for(lock, delay, [&] { return stopping_; });
        continue;
      }
      std::lock_guard lock(mu_);
      Events::Loaded loaded;
      loaded.from = load->first;
      loaded.upto = upto;
      loaded.messages = std::move(read).value();
      events_.loaded = std::move(loaded);
      Notify();
    } else if (load) {
      std::lock_guard lock(mu_);
      if (!load_) load_ = load;  // serve it once the group is written
    }
    if (stopping) {
      if (failing) {
        // One last attempt, then give up: those publishers were never
        // acknowledged and will send again.
        if (!WriteGroup(group, head, true, &error)) {
          if (options_.log.warn) {
            options_.log.warn(error.ToString() + "; stopping with " +
                              std::to_string(group.messages.size()) +
                              " messages that could not be written (their publishers were "
                              "not acknowledged)");
          }
          for (core::RouteCompletion& w : group.waiters) w.Abandon();
        }
      }
      return;
    }
  }
}

}  // namespace ferry::bridge
