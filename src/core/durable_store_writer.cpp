// DurableStore's storage thread: takes everything queued, commits it as one
// transaction (group commit), answers Sync() callbacks, and, after a failed
// commit, retries with capped exponential backoff while deletions go first
// (see "Failures" in durable_store.h).

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <iterator>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "core/durable_store.h"
#include "core/durable_store_internal.h"

namespace ferry::core {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// While a failing store retries, the mutations other than deletions go in
// transactions of at most this many mutations and payload bytes, so that
// part of them commits when only part of the space returned.
constexpr size_t kRetryChunkOps = 256;
constexpr size_t kRetryChunkBytes = 1 << 20;
// Most pages moved per incremental vacuum step (4 MB with 4 KB pages; a
// quarter of the reserve if that is less), and how long one round of
// vacuuming may hold the storage thread.
constexpr uint32_t kVacuumPages = 1024;
constexpr milliseconds kVacuumTime{1000};
// Deletions per transaction on a full disk, and messages per step when a
// large session goes (see CommitDeletions).
constexpr size_t kDeletionChunk = 32;
// How often a writable store that lost its reserve tries to take it again.
constexpr milliseconds kReserveRetry{1000};

// Errors that come from one op's content and would fail every retry.
bool IsPermanentOpError(int rc) {
  return rc == SQLITE_TOOBIG || rc == SQLITE_CONSTRAINT || rc == SQLITE_MISMATCH ||
         rc == SQLITE_RANGE;
}

bool IsNoSpace(const Status& s) { return s.reason() == ReasonCode::kQuotaExceeded; }

// Roughly what an op writes.
size_t OpBytes(const store_ops::Variant& v) {
  if (const auto* p = std::get_if<store_ops::PutMessage>(&v)) {
    return 64 + p->msg.message->topic.size() + p->msg.message->payload.size();
  }
  if (const auto* p = std::get_if<store_ops::PutRetained>(&v)) {
    return 64 + p->message->topic.size() + p->message->payload.size();
  }
  return 64;
}

template <typename... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <typename... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

}  // namespace

size_t DurableStore::CompactForRetry(std::vector<Op>& batch) {
  // The queued mutations of each key ("m" client NUL seq, ...) and of each
  // client, in order; a deletion kills what it covers and starts them anew.
  std::unordered_map<std::string, std::vector<size_t>> by_key;
  std::unordered_map<std::string, std::vector<size_t>> by_client;
  std::vector<bool> gone(batch.size(), false);
  size_t removed = 0;
  auto kill = [&](size_t i) {
    if (!gone[i]) {
      gone[i] = true;
      ++removed;
    }
  };
  auto key = [](char table, const std::string& client, const std::string& rest) {
    std::string k(1, table);
    k += client;
    k += '\0';
    k += rest;
    return k;
  };
  // A deletion of `k`: what was queued for it before is moot.
  auto deletion = [&](size_t i, const std::string& k, const std::string* client) {
    auto it = by_key.find(k);
    if (it != by_key.end()) {
      for (size_t j : it->second) kill(j);
      it->second.clear();
    }
    by_key[k].push_back(i);
    if (client != nullptr) by_client[*client].push_back(i);
  };
  auto put = [&](size_t i, const std::string& k, const std::string* client) {
    by_key[k].push_back(i);
    if (client != nullptr) by_client[*client].push_back(i);
  };
  // The last live op queued for `k`, if any.
  auto last_live = [&](const std::string& k) -> std::optional<size_t> {
    auto it = by_key.find(k);
    if (it == by_key.end()) return std::nullopt;
    for (auto j = it->second.rbegin(); j != it->second.rend(); ++j) {
      if (!gone[*j]) return *j;
    }
    return std::nullopt;
  };
  for (size_t i = 0; i < batch.size(); ++i) {
    std::visit(Overloaded{
                   [&](const store_ops::PutSession& op) {
                     put(i, key('s', op.client_id, ""), &op.client_id);
                   },
                   [&](const store_ops::DeleteSession& op) {
                     // Every row of the client goes: all it had queued is moot.
                     auto it = by_client.find(op.client_id);
                     if (it != by_client.end()) {
                       for (size_t j : it->second) kill(j);
                       it->second.clear();
                     }
                     by_client[op.client_id].push_back(i);
                   },
                   [&](const store_ops::PutSubscription& op) {
                     put(i, key('u', op.client_id, op.sub.filter), &op.client_id);
                   },
                   [&](const store_ops::DeleteSubscription& op) {
                     deletion(i, key('u', op.client_id, op.filter), &op.client_id);
                   },
                   [&](const store_ops::PutMessage& op) {
                     put(i, key('m', op.client_id, std::to_string(op.msg.seq)), &op.client_id);
                   },
                   [&](const store_ops::UpdateMessage& op) {
                     const std::string k = key('m', op.client_id, std::to_string(op.seq));
                     if (auto j = last_live(k)) {
                       // Folded into the put or update queued before it.
                       if (auto* p = std::get_if<store_ops::PutMessage>(&batch[*j].v)) {
                         p->msg.state = op.state;
                         p->msg.packet_id = op.packet_id;
                         return kill(i);
                       }
                       if (auto* u = std::get_if<store_ops::UpdateMessage>(&batch[*j].v)) {
                         u->state = op.state;
                         u->packet_id = op.packet_id;
                         return kill(i);
                       }
                     }
                     put(i, k, &op.client_id);
                   },
                   [&](const store_ops::DeleteMessage& op) {
                     deletion(i, key('m', op.client_id, std::to_string(op.seq)), &op.client_id);
                   },
                   [&](const store_ops::PutQos2Inbound& op) {
                     put(i, key('q', op.client_id, std::to_string(op.packet_id)), &op.client_id);
                   },
                   [&](const store_ops::DeleteQos2Inbound& op) {
                     deletion(i, key('q', op.client_id, std::to_string(op.packet_id)),
                              &op.client_id);
                   },
                   [&](const store_ops::PutRetained& op) {
                     put(i, key('r', "", op.message->topic), nullptr);
                   },
                   [&](const store_ops::DeleteRetained& op) {
                     deletion(i, key('r', "", op.topic), nullptr);
                   },
                   [&](const store_ops::Sync&) {},
               },
               batch[i].v);
  }
  if (removed == 0) return 0;
  size_t i = 0;
  std::erase_if(batch, [&](const Op&) { return gone[i++]; });
  return removed;
}

void DurableStore::Run() {
  // What a failing store still has to commit, with the Sync ops after it.
  std::vector<Op> batch;
  Clock::time_point next_retry{};
  Clock::time_point next_reserve_try{};
  for (;;) {
    bool stopping = false;
    bool retry = false;
    bool new_deletion = false;
    std::optional<uint32_t> page_limit;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto woken = [&] { return stopping_ || !queue_.empty() || max_page_count_dirty_; };
      if (failing_) {
        cv_.wait_until(lock, next_retry, woken);
      } else {
        cv_.wait(lock, woken);
      }
      // Ops queued while a batch was failing go after it: submission order.
      if (failing_) {
        new_deletion = std::any_of(queue_.begin(), queue_.end(),
                                   [](const Op& op) { return op.is_deletion(); });
      }
      std::move(queue_.begin(), queue_.end(), std::back_inserter(batch));
      queue_.clear();
      stopping = stopping_;
      if (max_page_count_dirty_) page_limit = max_page_count_;
      max_page_count_dirty_ = false;
    }
    if (page_limit) {
      if (Status s = db_->SetMaxPageCount(*page_limit); !s.ok()) Warn(s.ToString());
      retry = true;  // as if space had been freed
    }
    if (failing_ && Clock::now() >= next_retry) retry = true;

    Status error;
    if (!failing_) {
      if (reserve_size_ > 0 && reserve_held_ == 0 && Clock::now() >= next_reserve_try) {
        TakeReserve();
        next_reserve_try = Clock::now() + kReserveRetry;
      }
      Outcome outcome = Outcome::kRetryNow;
      while (outcome == Outcome::kRetryNow && !batch.empty()) {
        outcome = CommitRange(batch, batch.size(), &error);
      }
      if (outcome == Outcome::kFailed) {
        SetFailing(error);
        AnswerSyncs(batch, batch.size(), error);
        EraseAnsweredSyncs(batch);
        // Deletions need not wait for the retry.
        Recover(batch, /*retry=*/false, /*last=*/false);
        if (!stopping) {
          const milliseconds delay = retry_backoff_.Next();
          Warn(error.ToString() + "; retrying in " + std::to_string(delay.count()) +
               " ms (deletions go first)");
          next_retry = Clock::now() + delay;
        }
      }
    } else if (retry || stopping || new_deletion) {
      // Between retries only deletions are worth a wake-up: the rest waits.
      if (Recover(batch, retry || stopping, /*last=*/stopping)) {
        SetWritable();
      } else if (retry && !stopping) {
        const milliseconds delay = retry_backoff_.Next();
        std::string why;
        {
          std::lock_guard<std::mutex> lock(error_mu_);
          why = last_error_;
        }
        Warn(why + "; retrying in " + std::to_string(delay.count()) + " ms");
        next_retry = Clock::now() + delay;
      }
    }
    if (stopping) {
      if (!batch.empty()) {
        size_t mutations = static_cast<size_t>(
            std::count_if(batch.begin(), batch.end(), [](const Op& op) { return !op.is_sync(); }));
        std::string why;
        {
          std::lock_guard<std::mutex> lock(error_mu_);
          why = last_error_;
        }
        Warn(why + "; stopping, giving up on " + std::to_string(mutations) +
             " mutations that could not be committed");
        dropped_ops_.fetch_add(mutations, std::memory_order_relaxed);
        pending_ops_.fetch_sub(mutations, std::memory_order_relaxed);
        AnswerSyncs(batch, batch.size(),
                    Status::Unavailable("durable store " + options_.path + ": stopped"));
        batch.clear();
      }
      return;
    }
  }
}

bool DurableStore::Recover(std::vector<Op>& batch, bool retry, bool last) {
  const size_t moot = CompactForRetry(batch);
  ops_.fetch_add(moot, std::memory_order_relaxed);
  pending_ops_.fetch_sub(moot, std::memory_order_relaxed);
  if (CommitDeletions(batch)) ReturnSpace();
  // Sync ops with nothing left before them are answered: what they waited
  // for committed (or was made moot by a deletion that did).
  auto answer_leading = [&] {
    size_t n = 0;
    while (n < batch.size() && batch[n].is_sync()) ++n;
    if (n == batch.size()) SetWritable();  // nothing left to commit
    if (n > 0) {
      AnswerSyncs(batch, n, Status::Ok());
      batch.erase(batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(n));
    }
  };
  answer_leading();
  if (batch.empty()) return true;
  if (!retry) return false;
  if (!last && !MayWriteMore()) {
    Status error = Status::NoSpace("durable store " + options_.path +
                                   ": waiting for disk space to take the reserve of " +
                                   std::to_string(reserve_size_) + " bytes again");
    SetFailing(error);
    AnswerSyncs(batch, batch.size(), error);
    EraseAnsweredSyncs(batch);
    return false;
  }
  while (!batch.empty()) {
    // A chunk: up to kRetryChunkOps mutations and kRetryChunkBytes, and the
    // Sync ops among them.
    size_t end = 0, ops = 0, bytes = 0;
    while (end < batch.size() && ops < kRetryChunkOps && (ops == 0 || bytes < kRetryChunkBytes)) {
      if (!batch[end].is_sync()) {
        ++ops;
        bytes += OpBytes(batch[end].v);
      }
      ++end;
    }
    while (end < batch.size() && batch[end].is_sync()) ++end;
    Status error;
    const Outcome outcome = CommitRange(batch, end, &error);
    if (outcome == Outcome::kFailed) {
      SetFailing(error);
      AnswerSyncs(batch, batch.size(), error);
      EraseAnsweredSyncs(batch);
      return false;
    }
    answer_leading();
  }
  return true;
}

bool DurableStore::CommitDeletions(std::vector<Op>& batch) {
  std::vector<size_t> deletions;  // indexes in `batch`
  for (size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].is_deletion()) deletions.push_back(i);
  }
  if (deletions.empty()) return false;
  std::vector<bool> committed(batch.size(), false);
  size_t count = 0;
  // Commits batch[deletions[from, to)] in one transaction.
  auto commit = [&](size_t from, size_t to) {
    std::vector<const Op*> ops;
    for (size_t k = from; k < to; ++k) ops.push_back(&batch[deletions[k]]);
    size_t failed_at = ops.size();
    Status s = ApplyOps(ops, &failed_at);
    if (s.ok()) {
      commits_.fetch_add(1, std::memory_order_relaxed);
      for (size_t k = from; k < to; ++k) committed[deletions[k]] = true;
      count += to - from;
    } else {
      commit_errors_.fetch_add(1, std::memory_order_relaxed);
      SetFailing(s);
      if (failed_at < ops.size() && IsPermanentOpError(db_->last_error())) {
        // Never to succeed: dropped, as if committed.
        Warn(s.ToString() + "; dropping that mutation");
        committed[deletions[from + failed_at]] = true;
        dropped_ops_.fetch_add(1, std::memory_order_relaxed);
        pending_ops_.fetch_sub(1, std::memory_order_relaxed);
      }
    }
    return s;
  };
  Status s = commit(0, deletions.size());
  if (!s.ok() && IsNoSpace(s)) {
    // The disk is full. The last commits in the WAL may not fit in the
    // database file, which a checkpoint needs, and a large deletion needs
    // much WAL: give up the reserve, checkpoint (the WAL goes into the file
    // and is emptied), and delete in small transactions, each checkpointed,
    // so that each fits in the space the one before freed.
    GiveUpReserve();
    (void)db_->Checkpoint();
    for (size_t k = 0; k < deletions.size(); ++k) {
      if (committed[deletions[k]]) continue;
      // A session's messages first, a few at a time: they are most of it.
      if (const auto* d = std::get_if<store_ops::DeleteSession>(&batch[deletions[k]].v)) {
        bool more = true;
        while (more) {
          s = db_->DeleteSomeMessages(d->client_id, kDeletionChunk, &more);
          if (!s.ok()) break;
          (void)db_->Checkpoint();
        }
        if (!s.ok()) break;
      }
      size_t end = k + 1;
      while (end < deletions.size() && end - k < kDeletionChunk &&
             !std::holds_alternative<store_ops::DeleteSession>(batch[deletions[end]].v)) {
        ++end;
      }
      s = commit(k, end);
      if (!s.ok()) break;
      (void)db_->Checkpoint();
      k = end - 1;
    }
  }
  ops_.fetch_add(count, std::memory_order_relaxed);
  pending_ops_.fetch_sub(count, std::memory_order_relaxed);
  size_t i = 0;
  std::erase_if(batch, [&](const Op&) { return committed[i++]; });
  return count > 0;
}

void DurableStore::ReturnSpace() {
  auto checkpoint = [this] {
    Status s = db_->Checkpoint();
    if (!s.ok() && IsNoSpace(s) && reserve_held_ != 0) {
      GiveUpReserve();
      s = db_->Checkpoint();
    }
    return s;
  };
  Status s = checkpoint();
  // Moving pages writes them to the WAL: small steps, each checkpointed
  // (which cuts the file and empties the WAL), fit on a full disk.
  const uint32_t step =
      static_cast<uint32_t>(std::clamp<uint64_t>(reserve_size_ / 4 / 4096, 16, kVacuumPages));
  const auto deadline = Clock::now() + kVacuumTime;
  while (s.ok() && Clock::now() < deadline) {
    uint64_t freed = 0;
    s = db_->IncrementalVacuum(step, &freed);
    if (!s.ok() && IsNoSpace(s) && reserve_held_ != 0) {
      GiveUpReserve();
      s = db_->IncrementalVacuum(step, &freed);
    }
    if (s.ok()) s = checkpoint();
    if (freed == 0) break;
  }
  if (!s.ok()) Warn(s.ToString() + "; the space freed stays inside the database for now");
}

bool DurableStore::MayWriteMore() {
  if (TakeReserve()) return true;
  // Deleted rows may still hold space inside the file.
  if (db_->FreeBytes() > 0) {
    ReturnSpace();
    if (TakeReserve()) return true;
  }
  // A database with free pages inside writes into them without growing.
  return db_->FreeBytes() >= reserve_size_;
}
void DurableStore::SetFailing(const Status& error) {
  if (!failing_) {
    failing_ = true;
    failing_since_ms_.store(UnixNowMs(), std::memory_order_relaxed);
    writable_.store(false, std::memory_order_relaxed);
  }
  std::lock_guard<std::mutex> lock(error_mu_);
  last_error_ = error.ToString();
}

void DurableStore::SetWritable() {
  if (!failing_) return;
  const uint64_t since = failing_since_ms_.load(std::memory_order_relaxed);
  const uint64_t now = UnixNowMs();
  failing_ = false;
  retry_backoff_.Reset();
  writable_.store(true, std::memory_order_relaxed);
  failing_since_ms_.store(0, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(error_mu_);
    last_error_.clear();
  }
  Warn("durable store " + options_.path + ": writing again after " +
       std::to_string(now > since ? (now - since) / 1000 : 0) + " s");
}

DurableStore::Outcome DurableStore::CommitRange(std::vector<Op>& batch, size_t end, Status* error) {
  std::vector<const Op*> mutations;
  for (size_t i = 0; i < end; ++i) {
    if (!batch[i].is_sync()) mutations.push_back(&batch[i]);
  }
  size_t failed_at = mutations.size();
  Status s = mutations.empty() ? Status::Ok() : ApplyOps(mutations, &failed_at);
  if (s.ok()) {
    if (!mutations.empty()) commits_.fetch_add(1, std::memory_order_relaxed);
    ops_.fetch_add(mutations.size(), std::memory_order_relaxed);
    pending_ops_.fetch_sub(mutations.size(), std::memory_order_relaxed);
    // Nothing waits behind this range: writable before anyone hears OK.
    if (std::none_of(batch.begin() + static_cast<std::ptrdiff_t>(end), batch.end(),
                     [](const Op& op) { return !op.is_sync(); })) {
      SetWritable();
    }
    AnswerSyncs(batch, end, s);
    batch.erase(batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(end));
    return Outcome::kCommitted;
  }
  commit_errors_.fetch_add(1, std::memory_order_relaxed);
  // A poison op would fail every retry and hold back everything behind it.
  if (failed_at < mutations.size() && IsPermanentOpError(db_->last_error())) {
    Warn(s.ToString() + "; dropping that mutation, retrying the other " +
         std::to_string(mutations.size() - 1));
    // Whoever waited on this range is told: one of its mutations is lost.
    AnswerSyncs(batch, end, s);
    const Op* poison = mutations[failed_at];
    batch.erase(batch.begin() + (poison - batch.data()));
    EraseAnsweredSyncs(batch);
    dropped_ops_.fetch_add(1, std::memory_order_relaxed);
    pending_ops_.fetch_sub(1, std::memory_order_relaxed);
    return Outcome::kRetryNow;
  }
  *error = std::move(s);
  return Outcome::kFailed;
}

Status DurableStore::ApplyOps(const std::vector<const Op*>& ops, size_t* failed_at) {
  Status s = db_->Begin();
  if (!s.ok()) return s;
  for (size_t i = 0; i < ops.size(); ++i) {
    s = db_->Apply(ops[i]->v);
    if (!s.ok()) {
      *failed_at = i;
      db_->Rollback();
      return s;
    }
  }
  s = db_->Commit();
  if (!s.ok()) db_->Rollback();
  return s;
}

void DurableStore::AnswerSyncs(std::vector<Op>& batch, size_t end, const Status& status) {
  for (size_t i = 0; i < end; ++i) {
    if (auto* sync = std::get_if<store_ops::Sync>(&batch[i].v); sync && sync->done) {
      sync->done(status);
      sync->done = nullptr;
    }
  }
}

void DurableStore::EraseAnsweredSyncs(std::vector<Op>& batch) {
  std::erase_if(batch, [](const Op& op) {
    const auto* sync = std::get_if<store_ops::Sync>(&op.v);
    return sync != nullptr && !sync->done;
  });
}

}  // namespace ferry::core
