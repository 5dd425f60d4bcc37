// LoopGate: posts to the bridge thread's loop from threads that may outlive
// it. A worker completing a Broker::Publish, or a queue's storage thread,
// holds a shared_ptr to the gate, never to the loop: once the bridge thread
// is shutting down the gate is closed and later posts are dropped, instead
// of reaching a loop that no longer exists.
//
// Thread safety: every function may be called from any thread.
#pragma once

#include <functional>
#include <mutex>

#include "core/loop.h"

namespace ferry::bridge {

class LoopGate {
 public:
  explicit LoopGate(core::Loop& loop) : loop_(&loop) {}

  // Queues `fn` on the loop; false (and `fn` dropped) once closed.
  bool Post(std::function<void()> fn) {
    std::lock_guard lock(mu_);
    if (loop_ == nullptr) return false;
    loop_->Post(std::move(fn));
    return true;
  }

  // From now on Post drops everything.
  void Close() {
    std::lock_guard lock(mu_);
    loop_ = nullptr;
  }

 private:
  std::mutex mu_;
  core::Loop* loop_;  // guarded by mu_
};

}  // namespace ferry::bridge
