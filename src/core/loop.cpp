#include "core/loop.h"

#include "core/log.h"

namespace ferry::core {

Loop::Loop() {
  uv_loop_init(&loop_);
  loop_.data = this;
  async_ = UvHandle<uv_async_t>::Make();
  uv_async_init(&loop_, async_.get(), [](uv_async_t* a) {
    static_cast<Loop*>(a->loop->data)->Drain();
  });
  thread_id_ = std::this_thread::get_id();
}

Loop::~Loop() {
  async_.Reset();
  // Let close callbacks run so that handle memory is freed.
  uv_run(&loop_, UV_RUN_NOWAIT);
  if (uv_loop_close(&loop_) == UV_EBUSY) {
    uv_walk(&loop_, [](uv_handle_t* h, void*) {
      if (!uv_is_closing(h)) uv_close(h, nullptr);
    }, nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop_) != 0) FERRY_WARN("event loop closed with handles still open");
  }
}

void Loop::Run() {
  BindToCurrentThread();
  uv_run(&loop_, UV_RUN_DEFAULT);
}

void Loop::Stop() {
  FERRY_DCHECK(IsLoopThread());
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
  }
  Drain();
  async_.Reset();
}

void Loop::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    queue_.push_back(std::move(fn));
    // uv_async_send coalesces; Drain() empties the whole queue each time.
    uv_async_send(async_.get());
  }
}

void Loop::Drain() {
  std::vector<std::function<void()>> batch;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) return;
      batch.swap(queue_);
    }
    for (auto& fn : batch) fn();
    batch.clear();
  }
}

}  // namespace ferry::core
