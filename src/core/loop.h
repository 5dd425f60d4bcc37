// libuv plumbing: a Loop that other threads can post work to, and RAII
// owners for libuv handles.
//
// Thread rules: a Loop and every handle created on it are touched only from
// the thread that runs it, except Loop::Post(), which any thread may call.
// A handle's memory outlives its owner until libuv's close callback runs
// (UvHandle's destructor calls uv_close with a callback that frees it), so
// owners can be destroyed at any time on the loop thread.
#pragma once

#include <uv.h>

#include <cassert>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#define FERRY_DCHECK(cond) assert(cond)

namespace ferry::core {

// Owns one libuv handle of type T (uv_timer_t, uv_tcp_t, ...). Move-only.
template <typename T>
class UvHandle {
 public:
  UvHandle() = default;
  // Allocates the handle; the caller must uv_*_init it before use.
  static UvHandle Make() {
    UvHandle h;
    h.handle_ = new T();
    return h;
  }
  ~UvHandle() { Reset(); }
  UvHandle(UvHandle&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  UvHandle& operator=(UvHandle&& other) noexcept {
    if (this != &other) {
      Reset();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;

  T* get() const { return handle_; }
  T* operator->() const { return handle_; }
  explicit operator bool() const { return handle_ != nullptr; }
  uv_handle_t* raw() const { return reinterpret_cast<uv_handle_t*>(handle_); }

  // Closes the handle; its memory is freed by the close callback. A handle
  // that was allocated but never initialised (loop == nullptr) is freed now.
  void Reset() {
    if (handle_ == nullptr) return;
    uv_handle_t* h = raw();
    if (h->loop == nullptr) {
      delete handle_;
    } else if (!uv_is_closing(h)) {
      uv_close(h, [](uv_handle_t* closing) { delete reinterpret_cast<T*>(closing); });
    }
    handle_ = nullptr;
  }

 private:
  T* handle_ = nullptr;
};

// A libuv loop bound to the thread that runs it, with a cross-thread queue.
class Loop {
 public:
  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  uv_loop_t* get() { return &loop_; }

  // Runs the loop on the calling thread until Stop() and every handle closed.
  void Run();
  // Asks Run() to return once the handles are closed. Loop thread only.
  void Stop();

  // Queues fn to run on the loop thread. Any thread. Calls posted from one
  // thread run in the order posted. Posts made after Stop() are dropped.
  void Post(std::function<void()> fn);

  bool IsLoopThread() const { return std::this_thread::get_id() == thread_id_; }
  // Binds the loop to the calling thread (done by Run(); exposed for set-up
  // code that creates handles before Run()).
  void BindToCurrentThread() { thread_id_ = std::this_thread::get_id(); }

  // Loop time in milliseconds (uv_now).
  uint64_t Now() { return uv_now(&loop_); }

 private:
  void Drain();

  uv_loop_t loop_;
  UvHandle<uv_async_t> async_;
  std::thread::id thread_id_;
  std::mutex mu_;
  std::vector<std::function<void()>> queue_;  // guarded by mu_
  bool stopped_ = false;                      // guarded by mu_
};

}  // namespace ferry::core
