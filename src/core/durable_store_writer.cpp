// DurableStore's storage thread: takes everything queued, commits it as one
// transaction (group commit), answers Sync() callbacks, and retries failed
// commits with capped exponential backoff.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <iterator>
#include <optional>
#include <string>
#include <utility>

#include "core/durable_store.h"
#include "core/durable_store_internal.h"

namespace ferry::core {
namespace {

using std::chrono::milliseconds;

// Errors that come from one op's content and would fail every retry.
bool IsPermanentOpError(int rc) {
  return rc == SQLITE_TOOBIG || rc == SQLITE_CONSTRAINT || rc == SQLITE_MISMATCH ||
         rc == SQLITE_RANGE;
}

}  // namespace

void DurableStore::Run() {
  std::vector<Op> batch;  // a failed batch stays here until it commits
  for (;;) {
    bool stopping = false;
    std::optional<uint32_t> page_limit;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || !batch.empty(); });
      // Ops queued while a batch was failing go after it: submission order.
      if (batch.empty()) {
        batch.swap(queue_);
      } else {
        std::move(queue_.begin(), queue_.end(), std::back_inserter(batch));
        queue_.clear();
      }
      stopping = stopping_;
      if (max_page_count_dirty_) page_limit = max_page_count_;
      max_page_count_dirty_ = false;
    }
    if (page_limit) {
      if (Status s = db_->SetMaxPageCount(*page_limit); !s.ok()) Warn(s.ToString());
    }
    if (batch.empty()) return;  // only when stopping with nothing left
    Status error;
    switch (CommitBatch(batch, stopping, &error)) {
      case Outcome::kCommitted:
      case Outcome::kRetryNow:
        retry_backoff_.Reset();
        break;
      case Outcome::kRetryLater: {
        // Jitter keeps many nodes that hit the same full disk from retrying
        // in lockstep (core/backoff.h).
        const milliseconds delay = retry_backoff_.Next();
        Warn(error.ToString() + "; retrying in " + std::to_string(delay.count()) + " ms");
        WaitBeforeRetry(delay);
        break;
      }
      case Outcome::kGaveUp:
        return;
    }
  }
}

DurableStore::Outcome DurableStore::CommitBatch(std::vector<Op>& batch, bool last_attempt,
                                                Status* error) {
  const size_t mutations = static_cast<size_t>(
      std::count_if(batch.begin(), batch.end(), [](const Op& op) { return !op.is_sync(); }));
  size_t failed_at = batch.size();
  Status s = mutations > 0 ? ApplyBatch(batch, &failed_at) : Status::Ok();
  if (s.ok()) {
    if (mutations > 0) commits_.fetch_add(1, std::memory_order_relaxed);
    ops_.fetch_add(mutations, std::memory_order_relaxed);
    pending_ops_.fetch_sub(mutations, std::memory_order_relaxed);
    AnswerSyncs(batch, s);
    batch.clear();
    return Outcome::kCommitted;
  }
  commit_errors_.fetch_add(1, std::memory_order_relaxed);
  AnswerSyncs(batch, s);
  std::erase_if(batch, [](const Op& op) { return op.is_sync(); });  // each is answered once
  // A poison op would fail every retry and hold back everything behind it.
  if (failed_at < mutations && IsPermanentOpError(db_->last_error())) {
    Warn(s.ToString() + "; dropping that mutation, retrying the other " +
         std::to_string(batch.size() - 1));
    batch.erase(batch.begin() + static_cast<std::ptrdiff_t>(failed_at));
    dropped_ops_.fetch_add(1, std::memory_order_relaxed);
    pending_ops_.fetch_sub(1, std::memory_order_relaxed);
    return Outcome::kRetryNow;
  }
  if (!last_attempt) {
    *error = std::move(s);
    return Outcome::kRetryLater;
  }
  Warn(s.ToString() + "; stopping, giving up on " + std::to_string(batch.size()) +
       " mutations that could not be committed");
  dropped_ops_.fetch_add(batch.size(), std::memory_order_relaxed);
  pending_ops_.fetch_sub(batch.size(), std::memory_order_relaxed);
  batch.clear();
  return Outcome::kGaveUp;
}

Status DurableStore::ApplyBatch(const std::vector<Op>& batch, size_t* failed_at) {
  Status s = db_->Begin();
  if (!s.ok()) return s;
  size_t index = 0;  // among mutations, matching the batch once syncs are erased
  for (const Op& op : batch) {
    if (op.is_sync()) continue;
    s = db_->Apply(op.v);
    if (!s.ok()) {
      *failed_at = index;
      db_->Rollback();
      return s;
    }
    ++index;
  }
  s = db_->Commit();
  if (!s.ok()) db_->Rollback();
  return s;
}

void DurableStore::AnswerSyncs(std::vector<Op>& batch, const Status& status) {
  for (Op& op : batch) {
    if (auto* sync = std::get_if<store_ops::Sync>(&op.v); sync && sync->done) {
      sync->done(status);
      sync->done = nullptr;
    }
  }
}

void DurableStore::WaitBeforeRetry(milliseconds delay) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, delay, [this] { return stopping_ || max_page_count_dirty_; });
}

}  // namespace ferry::core
